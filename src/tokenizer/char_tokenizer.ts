/**
 * `CharTokenizer`: one token per character (Unicode code point), the vocabulary being the distinct characters of a
 * corpus sorted by code point, as nanoGPT's shakespeare_char does (so tinyshakespeare gives its 65 ids: '\n' = 0,
 * ' ' = 1, …). Special tokens, if any, follow the characters. For teaching runs; real models use BPE.
 * Saved as a Hugging Face-shaped tokenizer.json: model type "WordLevel" (vocab = character → id), a Split
 * pre-tokenizer that isolates every character (`[\s\S]`), a Fuse decoder (see hf_json.ts).
 */
import { VocabularyError } from '../util/errors.js';
import { encodeUtf8 } from './bytes.js';
import { SpecialMatcher } from './special_tokens.js';
import type { DecodeOptions, EncodeOptions, SpecialToken, TextTokenizer, TokenizerConfig } from './types.js';

function byCodePoint(a: string, b: string): number {
  return a.codePointAt(0)! - b.codePointAt(0)!;
}

export class CharTokenizer implements TextTokenizer {
  readonly kind = 'char' as const;
  /** The characters by id (specials excluded). */
  readonly chars: readonly string[];
  config: TokenizerConfig;
  private readonly idOf: Map<string, number>;
  private readonly specialList: SpecialToken[];
  private readonly specialMap: Map<string, number>;
  private readonly specialById: Map<number, string>;
  private readonly matcher: SpecialMatcher;
  private readonly bytesCache = new Map<number, Uint8Array>();

  /** A vocabulary of the distinct characters of `text` (sorted by code point), then `specialTokens`. */
  static fromText(
    text: string,
    options: { specialTokens?: readonly string[]; config?: TokenizerConfig } = {},
  ): CharTokenizer {
    const chars = [...new Set(Array.from(text))].sort(byCodePoint);
    return new CharTokenizer(chars, options.specialTokens ?? [], options.config);
  }

  /** `chars`: one character (code point) per id; `specialTokens` get the ids after them. */
  constructor(chars: readonly string[], specialTokens: readonly string[] = [], config: TokenizerConfig = {}) {
    this.chars = [...chars];
    this.idOf = new Map();
    this.chars.forEach((c, i) => {
      if (Array.from(c).length !== 1)
        throw new VocabularyError(`character-level vocabulary entry ${i} is ${JSON.stringify(c)}, not one character`);
      if (this.idOf.has(c)) throw new VocabularyError(`character ${JSON.stringify(c)} appears twice in the vocabulary`);
      this.idOf.set(c, i);
    });
    this.specialList = [];
    this.specialMap = new Map();
    this.specialById = new Map();
    for (const s of specialTokens) {
      if (s.length === 0 || this.specialMap.has(s))
        throw new VocabularyError(`special token ${JSON.stringify(s)} is empty or repeated`);
      const id = this.chars.length + this.specialList.length;
      this.specialList.push({ id, content: s, special: true });
      this.specialMap.set(s, id);
      this.specialById.set(id, s);
    }
    this.matcher = new SpecialMatcher(this.specialList);
    this.config = { ...config };
  }

  get vocabSize(): number {
    return this.chars.length + this.specialList.length;
  }

  get specialTokens(): ReadonlyMap<string, number> {
    return this.specialMap;
  }

  get specialTokenList(): readonly SpecialToken[] {
    return this.specialList;
  }

  specialId(token: string): number {
    const id = this.specialMap.get(token);
    if (id === undefined) throw new VocabularyError(`no special token ${JSON.stringify(token)}`);
    return id;
  }

  isSpecial(id: number): boolean {
    return this.specialById.has(id);
  }

  private configId(t: string | undefined): number | undefined {
    return t === undefined ? undefined : (this.specialMap.get(t) ?? this.idOf.get(t));
  }
  get bosId(): number | undefined {
    return this.configId(this.config.bosToken);
  }
  get eosId(): number | undefined {
    return this.configId(this.config.eosToken);
  }
  get padId(): number | undefined {
    return this.configId(this.config.padToken);
  }

  /** Text → ids; a character outside the vocabulary throws VocabularyError. */
  encode(text: string, options?: EncodeOptions): number[] {
    const allowed = options?.allowed;
    if (allowed !== undefined && allowed !== 'all') for (const a of allowed) this.specialId(a); // typo → VocabularyError
    const out: number[] = [];
    this.matcher.split(
      text,
      options,
      (a, b) => {
        for (let i = a; i < b; i++) {
          const c = text.charCodeAt(i);
          // a surrogate pair is one character
          const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < b && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
          const ch = pair ? text.slice(i, i + 2) : text[i]!;
          const id = this.idOf.get(ch);
          if (pair) i++;
          if (id === undefined) {
            throw new VocabularyError(
              `character ${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at index ${pair ? i - 1 : i} is not in the character vocabulary`,
            );
          }
          out.push(id);
        }
      },
      (id) => out.push(id),
    );
    return out;
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const skip = options?.skipSpecial ?? false;
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const c = this.chars[id];
      if (c !== undefined && Number.isInteger(id)) {
        s += c;
        continue;
      }
      const sp = this.specialById.get(id);
      if (sp === undefined)
        throw new VocabularyError(
          `token id ${id} at index ${i} is not in the vocabulary (ids are 0..${this.vocabSize - 1})`,
        );
      if (!skip) s += sp;
    }
    return s;
  }

  tokenBytes(id: number): Uint8Array {
    let b = this.bytesCache.get(id);
    if (b === undefined) {
      const s = this.chars[id] ?? this.specialById.get(id);
      if (s === undefined || !Number.isInteger(id))
        throw new VocabularyError(`token id ${id} is not in the vocabulary (ids are 0..${this.vocabSize - 1})`);
      b = encodeUtf8(s);
      this.bytesCache.set(id, b);
    }
    return b;
  }
}
