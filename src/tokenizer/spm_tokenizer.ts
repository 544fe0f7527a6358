/**
 * `SpmTokenizer`: SentencePiece-style BPE, as Llama 1/2, Mistral, TinyLlama, Phi-3 and Gemma ship it (their
 * tokenizer.json: a BPE model with `byte_fallback`, spaces written as "▁"). Encoding:
 *   text ─▶ cut at honoured special tokens ─▶ each stretch normalized (e.g. "▁" put first, " " → "▁")
 *        ─▶ its characters as pieces (a character with no piece: its UTF-8 bytes as <0xXX> tokens, or <unk>)
 *        ─▶ BPE merges over the whole stretch (bpe_merge.ts) ─▶ ids
 * There is no pre-tokenizer split: the whole stretch is one word, as in Hugging Face's and llama.cpp's encoders. When
 * no piece has a "▁" after another character (Llama's and Mistral's vocabularies: "▁" only leads a piece or forms
 * runs), no merge can join a character to a "▁" after it, so the stretch is encoded in pieces cut before each run of
 * "▁" — the same ids, each piece a short word the word cache remembers (checked at load; else the whole stretch).
 * Decoding: each piece's text with "▁" read as a space (a byte token: its byte), joined, read as UTF-8, and the
 * leading space the encoder added stripped (Hugging Face's Strip / Metaspace decoder).
 *
 * The normalization steps are the ones Hugging Face's converters write (tokenizer.json, see spm_json.ts):
 *   Llama 2 (legacy):  normalizer Sequence[Prepend "▁", Replace " " → "▁"]   decoder [.., Strip 1 leading space]
 *   Llama (legacy off): pre_tokenizer Metaspace(prepend_scheme "first", split false)
 *   Gemma:             normalizer Replace " " → "▁" (no leading "▁", nothing stripped)
 * Prepend is applied to every stretch between special tokens (as Hugging Face and llama.cpp do); Metaspace "first"
 * only to a stretch at the start of the text; Metaspace does not prepend to a stretch already starting with "▁".
 */
import { VocabularyError } from '../util/errors.js';
import { MergeList, type ModelErrorFn } from './bpe_merge.js';
import { decodeUtf8, encodeUtf8 } from './bytes.js';
import { BpeTokenizerBase } from './bpe_base.js';
import { spanHash, WordCache } from './word_cache.js';
import type { UnicodeNormalization } from './tokenizer.js';
import type { DecodeOptions, SpecialToken, TextTokenizer, TokenizerConfig } from './types.js';

/** SentencePiece's space mark. */
export const SPACE_MARK = '\u2581';

/** One normalization step before the model (the tokenizer.json normalizer, then its pre-tokenizer). */
export type SpmStep =
  | { kind: 'unicode'; form: UnicodeNormalization }
  /** Hugging Face's Prepend normalizer: put `text` first on every non-empty stretch. */
  | { kind: 'prepend'; text: string }
  /** Hugging Face's Replace normalizer with a String pattern (every occurrence). */
  | { kind: 'replace'; from: string; to: string }
  /** Hugging Face's Metaspace pre-tokenizer without split: " " → replacement, and the replacement put first. */
  | { kind: 'metaspace'; replacement: string; scheme: 'always' | 'first' | 'never' };

export interface SpmTokenizerSpec {
  /** The vocabulary string of each ordinary token by id ("▁the", "<0x0A>"); undefined at special-token ids. */
  pieces: readonly (string | undefined)[];
  /** Merges in priority order as [left id, right id]; the piece left + right must be a token. */
  merges: ReadonlyArray<readonly [number, number]>;
  /** Characters without a piece become their UTF-8 bytes' <0xXX> tokens (Llama, Gemma). */
  byteFallback: boolean;
  /** The id unknown characters become (when byte fallback cannot), or undefined (they are refused). */
  unkId?: number;
  /** Consecutive unknown characters become one unk id. */
  fuseUnk?: boolean;
  /** Normalization of each stretch of ordinary text, in order. */
  steps: readonly SpmStep[];
  /** Decoding: replacements applied to each piece's text ("▁" → " "). */
  decodeReplace: ReadonlyArray<{ from: string; to: string }>;
  /** Decoding: leading spaces stripped from the decoded text (Llama's Strip decoder: 1). */
  stripLeft: number;
  specialTokens?: readonly SpecialToken[];
  /** A tokenizer.json post_processor, written back unchanged (Llama's TemplateProcessing with <s>). */
  postProcessor?: unknown;
  /** tokenizer.json parts this tokenizer was read from, written back unchanged. */
  json?: { normalizer: unknown; pre_tokenizer: unknown; decoder: unknown };
  config?: TokenizerConfig;
  fail?: ModelErrorFn;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export class SpmTokenizer extends BpeTokenizerBase implements TextTokenizer {
  /** A SentencePiece-style vocabulary (pieces over characters), not a byte-level one. */
  readonly style = 'sentencepiece' as const;
  readonly pieces: readonly (string | undefined)[];
  readonly merges: MergeList;
  readonly byteFallback: boolean;
  readonly unkId: number | undefined;
  readonly fuseUnk: boolean;
  readonly steps: readonly SpmStep[];
  readonly decodeReplace: ReadonlyArray<{ from: string; to: string }>;
  /** Leading spaces the decoder strips (StreamDecoder reads this too). */
  readonly leadingSpaceStrip: number;
  readonly postProcessor: unknown;
  readonly json: SpmTokenizerSpec['json'];
  /** Piece → id. */
  private readonly pieceId = new Map<string, number>();
  /** The <0xXX> token of each byte, or -1. */
  readonly byteId = new Int32Array(256).fill(-1);
  /** The bytes each ordinary token decodes to. */
  private readonly pieceBytes: (Uint8Array | undefined)[];
  private ids = new Int32Array(256);
  /** Whether a stretch may be cut before each run of "▁" (no piece has "▁" after another character). */
  private readonly cutAtSpaces: boolean;
  private cache = new WordCache(1 << 17);

  constructor(spec: SpmTokenizerSpec) {
    super();
    const fail: ModelErrorFn =
      spec.fail ??
      ((field, msg) => {
        throw new VocabularyError(`${field}: ${msg}`);
      });
    this.pieces = spec.pieces;
    this.byteFallback = spec.byteFallback;
    this.fuseUnk = spec.fuseUnk ?? false;
    this.steps = [...spec.steps];
    this.decodeReplace = [...spec.decodeReplace];
    this.leadingSpaceStrip = spec.stripLeft;
    this.postProcessor = spec.postProcessor;
    this.json = spec.json;
    this.config = spec.config ? { ...spec.config } : {};
    this.pieceBytes = new Array<Uint8Array | undefined>(spec.pieces.length);
    spec.pieces.forEach((p, id) => {
      if (p === undefined) return;
      if (p === '') fail(`model.vocab[${id}]`, 'a token has no text');
      if (!this.pieceId.has(p)) this.pieceId.set(p, id);
      const m = spec.byteFallback ? BYTE_PIECE.exec(p) : null;
      if (m) {
        const b = Number.parseInt(m[1]!, 16);
        if (this.byteId[b] === -1) this.byteId[b] = id;
        this.pieceBytes[id] = Uint8Array.of(b);
      } else {
        let text = p;
        for (const r of this.decodeReplace) text = text.split(r.from).join(r.to);
        this.pieceBytes[id] = encodeUtf8(text);
      }
    });
    if (spec.unkId !== undefined && (spec.unkId < 0 || spec.unkId >= spec.pieces.length))
      fail('model.unk_token', `unk id ${spec.unkId} is not a token`);
    this.unkId = spec.unkId;
    this.merges = new MergeList(spec.merges, (a, b, r) => {
      const pa = spec.pieces[a];
      const pb = spec.pieces[b];
      if (pa === undefined || pb === undefined)
        return fail(`model.merges[${r}]`, `merge (${a}, ${b}) refers to an id that is not an ordinary token`);
      const res = this.pieceId.get(pa + pb);
      if (res === undefined)
        return fail(
          `model.merges[${r}]`,
          `merge ${JSON.stringify([pa, pb])} makes a token that is not in the vocabulary`,
        );
      return res;
    });
    this.specials.register(spec.specialTokens ?? [], fail);
    this.cutAtSpaces =
      this.pieceId.has(SPACE_MARK) &&
      this.steps.some(
        (s) =>
          (s.kind === 'replace' && s.from === ' ' && s.to === SPACE_MARK) ||
          (s.kind === 'metaspace' && s.replacement === SPACE_MARK),
      ) &&
      !spec.pieces.some((p) => p !== undefined && /[^\u2581]\u2581/.test(p));
  }

  protected isOrdinary(id: number): boolean {
    return this.pieces[id] !== undefined;
  }
  protected get ordinaryCount(): number {
    return this.pieces.length;
  }
  protected ordinaryId(text: string): number | undefined {
    return this.pieceId.get(text);
  }
  protected encodeSegment(text: string, start: number, end: number, out: number[]): void {
    this.encodeStretch(text.slice(start, end), start === 0, out);
  }

  /** Text → ids with special-token text treated as plain text. */
  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    this.encodeStretch(text, true, out);
    return out;
  }

  /** The normalized text of one stretch of ordinary text (`first`: it starts the whole text). */
  normalize(text: string, first: boolean): string {
    let s = text;
    for (const st of this.steps) {
      if (st.kind === 'unicode') s = s.normalize(st.form);
      else if (st.kind === 'prepend') {
        if (s.length > 0) s = st.text + s;
      } else if (st.kind === 'replace') s = s.split(st.from).join(st.to);
      else {
        s = s.split(' ').join(st.replacement);
        const put = st.scheme === 'always' || (st.scheme === 'first' && first);
        if (put && s.length > 0 && !s.startsWith(st.replacement)) s = st.replacement + s;
      }
    }
    return s;
  }

  private encodeStretch(text: string, first: boolean, out: number[]): void {
    const s = this.normalize(text, first);
    if (!this.cutAtSpaces) {
      this.encodeWord(s, out);
      return;
    }
    // pieces cut before each run of "▁" (see the top of this file), each through the word cache
    const MARK = 0x2581;
    let start = 0;
    for (let i = 1; i <= s.length; i++) {
      if (i < s.length && !(s.charCodeAt(i) === MARK && s.charCodeAt(i - 1) !== MARK)) continue;
      const h = i - start <= 128 ? spanHash(s, start, i) : 0;
      if (i - start > 128 || !this.cache.emit(s, start, i, h, out)) {
        const w = s.slice(start, i);
        const from = out.length;
        this.encodeWord(w, out);
        if (i - start <= 128) this.cache.add(w, h, out, from, out.length);
      }
      start = i;
    }
  }

  /** BPE over one word: its characters as pieces (or byte tokens, or <unk>), then the merges. */
  private encodeWord(s: string, out: number[]): void {
    if (this.ids.length < s.length * 4) this.ids = new Int32Array(s.length * 4 + 64);
    const ids = this.ids;
    let n = 0;
    let lastUnk = false;
    for (const ch of s) {
      const id = this.pieceId.get(ch);
      if (id !== undefined) {
        ids[n++] = id;
        lastUnk = false;
        continue;
      }
      if (this.byteFallback) {
        const bytes = encodeUtf8(ch);
        let all = true;
        for (const b of bytes) if (this.byteId[b] === -1) all = false;
        if (all) {
          for (const b of bytes) ids[n++] = this.byteId[b]!;
          lastUnk = false;
          continue;
        }
      }
      if (this.unkId === undefined)
        throw new VocabularyError(
          `the character ${JSON.stringify(ch)} (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) has no token and the tokenizer has no unk token`,
        );
      if (!(this.fuseUnk && lastUnk)) ids[n++] = this.unkId;
      lastUnk = true;
    }
    this.merges.mergeInto(ids, n, out);
  }

  /**
   * Ids → text (invalid UTF-8 from byte tokens becomes U+FFFD), the encoder's leading space stripped unless
   * `options.continuation`.
   */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const bytes = this.decodeBytes(ids, options);
    let start = 0;
    const strip = options?.continuation ? 0 : this.leadingSpaceStrip;
    while (start < strip && start < bytes.length && bytes[start] === 0x20) start++;
    return decodeUtf8(start ? bytes.subarray(start) : bytes);
  }

  /** Ids → the bytes they stand for (nothing stripped). Throws VocabularyError for an id outside the vocabulary. */
  decodeBytes(ids: ArrayLike<number>, options?: DecodeOptions): Uint8Array {
    const skip = options?.skipSpecial ?? false;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      let b = this.pieceBytes[id];
      if (b === undefined) {
        b = this.specials.bytes.get(id);
        if (b === undefined) throw this.badId(id, i);
        if (skip) continue;
      }
      parts.push(b);
      total += b.length;
    }
    const buf = new Uint8Array(total);
    let pos = 0;
    for (const p of parts) {
      buf.set(p, pos);
      pos += p.length;
    }
    return buf;
  }

  private badId(id: number, index?: number): VocabularyError {
    return new VocabularyError(
      `token id ${String(id)}${index !== undefined ? ` at index ${index}` : ''} is not in the vocabulary (ids are 0..${this.vocabSize - 1})`,
    );
  }

  tokenBytes(id: number): Uint8Array {
    const b = this.pieceBytes[id] ?? this.specials.bytes.get(id);
    if (b === undefined) throw this.badId(id);
    return b;
  }

  /** The token's vocabulary string ("▁the", "<0x0A>"), or a special token's text. */
  tokenString(id: number): string {
    const p = this.pieces[id];
    if (p !== undefined) return p;
    const s = this.specials.byId.get(id);
    if (!s) throw this.badId(id);
    return s.content;
  }

  /** Id of a vocabulary string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.specials.byContent.get(token) ?? this.pieceId.get(token);
  }

  /** The text of one token as a person would read it. */
  tokenText(id: number): string {
    return decodeUtf8(this.tokenBytes(id));
  }

  /** Forget cached word encodings. */
  clearCache(): void {
    this.cache.clear();
  }

  /** The spec this tokenizer was built from. */
  toSpec(): SpmTokenizerSpec {
    const merges: [number, number][] = [];
    for (let r = 0; r < this.merges.length; r++) merges.push([this.merges.left[r]!, this.merges.right[r]!]);
    return {
      pieces: this.pieces,
      merges,
      byteFallback: this.byteFallback,
      ...(this.unkId !== undefined ? { unkId: this.unkId } : {}),
      fuseUnk: this.fuseUnk,
      steps: this.steps,
      decodeReplace: this.decodeReplace,
      stripLeft: this.leadingSpaceStrip,
      specialTokens: this.specials.list.map((s) => ({ ...s })),
      ...(this.postProcessor !== undefined ? { postProcessor: structuredClone(this.postProcessor) } : {}),
      ...(this.json !== undefined ? { json: structuredClone(this.json) } : {}),
      config: structuredClone(this.config),
    };
  }
}

/**
 * Llama's layout (what Hugging Face's LlamaConverter writes with legacy on, and llama.cpp's SPM vocabulary does):
 * "▁" put first on every stretch when `addSpacePrefix`, " " → "▁", and one leading space stripped on decoding.
 * Gemma's is the same without the prefix (and nothing stripped).
 */
export function llamaSpmLayout(
  addSpacePrefix: boolean,
): Pick<SpmTokenizerSpec, 'steps' | 'decodeReplace' | 'stripLeft'> {
  return {
    steps: [
      ...(addSpacePrefix ? [{ kind: 'prepend', text: SPACE_MARK } as const] : []),
      { kind: 'replace', from: ' ', to: SPACE_MARK },
    ],
    decodeReplace: [{ from: SPACE_MARK, to: ' ' }],
    stripLeft: addSpacePrefix ? 1 : 0,
  };
}

/** Whether a tokenizer puts a "▁" before a text (llama.cpp's `add_space_prefix`). */
export function addsSpacePrefix(tok: SpmTokenizer): boolean {
  return tok.normalize('x', true) !== tok.normalize('x', false) || tok.normalize('x', false).startsWith(SPACE_MARK);
}
