/**
 * `Tokenizer`: byte-level BPE as GPT-2, GPT-4 (tiktoken) and Llama 3 use it. Encoding:
 *   text ─▶ cut at honoured special tokens ─▶ split pattern (pre-tokenizer regex) ─▶ each word's UTF-8 bytes
 *        ─▶ BPE merges inside the word (BpeModel) ─▶ ids
 * with a cache from word to ids (word_cache.ts: most words repeat, so most cost one allocation-free lookup), and
 * for GPT-2's and cl100k's (= Llama 3's) patterns a hand-written scanner instead of the RegExp (gpt2_splitter.ts). Decoding joins the tokens'
 * bytes and reads them as UTF-8. Every string encodes (all 256 byte tokens exist) and decodes back exactly; lone
 * surrogates included (see bytes.ts: they travel as WTF-8 triples).
 *
 * Merge semantics are Hugging Face's (a merge list of id pairs, lowest rank first, leftmost on ties); tiktoken's
 * rank files are converted to that form (tiktoken_files.ts) and give identical ids (tested on GPT-2, cl100k_base,
 * o200k_base against js-tiktoken).
 */
import { ConfigError, VocabularyError } from '../util/errors.js';
import { BpeModel, type ModelErrorFn } from './bpe_model.js';
import { byteLevelToBytes, bytesKey, bytesToByteLevel, decodeUtf8, encodeUtf8, encodeUtf8Into } from './bytes.js';
import { scannerFor, type WordEndFn } from './gpt2_splitter.js';
import { compilePattern, namedPattern, type PatternName } from './patterns.js';
import { BpeTokenizerBase } from './bpe_base.js';
import { spanHash, WordCache } from './word_cache.js';
import type { DecodeOptions, SpecialToken, TextTokenizer, TokenizerConfig } from './types.js';

/** Everything that defines a BPE tokenizer; what the trainer and the file readers build it from (see `toSpec`). */
export interface BpeTokenizerSpec {
  /** Bytes of each ordinary token by id; undefined at special-token ids (and unused ids). */
  tokenBytes: readonly (Uint8Array | undefined)[];
  /** Merges in priority order as [left id, right id]; the result is the token with the concatenated bytes. */
  merges: ReadonlyArray<readonly [number, number]>;
  /** Special (added) tokens. Their ids must not be ordinary tokens. */
  specialTokens?: readonly SpecialToken[];
  /**
   * Pre-tokenizer: a named pattern, or a list of split patterns (Oniguruma syntax) applied one after another
   * (each piece of the first is split again by the second, …). Default 'gpt2'.
   */
  pattern?: PatternName | { patterns: readonly string[] };
  /** Prepend a space to text that does not start with one (Hugging Face ByteLevel `add_prefix_space`). */
  addPrefixSpace?: boolean;
  /** Unicode normalization applied to ordinary text before splitting (Hugging Face `normalizer`, e.g. Qwen's NFC). */
  normalizer?: UnicodeNormalization;
  /** Llama 3's `ignore_merges`: a word that is itself a token is emitted whole. */
  ignoreMerges?: boolean;
  /**
   * A tokenizer.json `post_processor` read from a file, written back unchanged (e.g. Llama 3's TemplateProcessing
   * that makes Hugging Face add <|begin_of_text|>). `encode` itself never adds BOS/EOS: callers (chat templates,
   * data pipelines) add them explicitly.
   */
  postProcessor?: unknown;
  config?: TokenizerConfig;
  /** Error reporter for malformed specs (file readers pass one naming the file). */
  fail?: ModelErrorFn;
}

export type UnicodeNormalization = 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

/** Cache entries longer than this (in UTF-16 units) are not cached; the cache is cleared past CACHE_MAX words. */
const CACHE_MAX_WORD = 128;
const CACHE_MAX = 1 << 17;

export class Tokenizer extends BpeTokenizerBase implements TextTokenizer {
  readonly model: BpeModel;
  /** The named pattern, or null when the split patterns came from a file. */
  readonly patternName: PatternName | null;
  /** Split patterns (Oniguruma syntax), applied in order. */
  readonly splitPatterns: readonly string[];
  readonly addPrefixSpace: boolean;
  readonly normalizer: UnicodeNormalization | null;
  /** tokenizer.json post_processor to write back (see BpeTokenizerSpec.postProcessor), or undefined. */
  readonly postProcessor: unknown;
  private readonly regexes: RegExp[];
  private cache = new WordCache(CACHE_MAX);
  /** Hand-written scanner when the split pattern is GPT-2's or cl100k's (gpt2_splitter.ts), else null. */
  private readonly scanner: WordEndFn | null;
  private scratch = new Uint8Array(1024);
  private _vocabSize: number;

  constructor(spec: BpeTokenizerSpec) {
    super();
    const fail = spec.fail;
    this.model = new BpeModel(spec.tokenBytes, spec.merges, {
      ignoreMerges: spec.ignoreMerges ?? false,
      ...(fail ? { fail } : {}),
    });
    const pattern = spec.pattern ?? 'gpt2';
    if (typeof pattern === 'string') {
      this.patternName = pattern;
      this.splitPatterns = [namedPattern(pattern)];
    } else {
      this.patternName = null;
      this.splitPatterns = [...pattern.patterns];
    }
    this.regexes = this.splitPatterns.map((p, i) => {
      try {
        return compilePattern(p, `pre_tokenizer.pattern[${i}]`);
      } catch (e) {
        if (fail && e instanceof ConfigError) return fail(e.field, e.message);
        throw e;
      }
    });
    this.addPrefixSpace = spec.addPrefixSpace ?? false;
    this.scanner = this.splitPatterns.length === 1 ? scannerFor(this.splitPatterns[0]!) : null;
    this.normalizer = spec.normalizer ?? null;
    this.postProcessor = spec.postProcessor;
    this.config = spec.config ? { ...spec.config } : {};
    this._vocabSize = spec.tokenBytes.length;
    this.specials.register(spec.specialTokens ?? [], fail);
  }

  protected isOrdinary(id: number): boolean {
    return !!this.model.tokenBytes[id];
  }
  protected get ordinaryCount(): number {
    return this._vocabSize;
  }
  protected ordinaryId(text: string): number | undefined {
    return this.model.bytesToId.get(bytesKey(encodeUtf8(text)));
  }
  protected encodeSegment(text: string, start: number, end: number, out: number[]): void {
    this.encodeOrdinaryInto(start === 0 && end === text.length ? text : text.slice(start, end), out);
  }

  /** Text → ids with every special-token string treated as plain text (same as `encode(text, { special: 'plain' })`). */
  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    this.encodeOrdinaryInto(text, out);
    return out;
  }

  private encodeOrdinaryInto(text: string, out: number[]): void {
    if (this.normalizer !== null) text = text.normalize(this.normalizer);
    if (this.addPrefixSpace && text.length > 0 && text.charCodeAt(0) !== 0x20) text = ' ' + text;
    const n = text.length;
    const scanner = this.scanner;
    if (scanner !== null) {
      // GPT-2's or cl100k's pattern, scanned by hand: no match objects, no substrings on cache hits
      for (let i = 0; i < n; ) {
        const j = scanner(text, i, n);
        this.encodeSpan(text, i, j, out);
        i = j;
      }
    } else if (this.regexes.length === 1) {
      const re = this.regexes[0]!;
      re.lastIndex = 0;
      let last = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        if (m.index > last) this.encodeSpan(text, last, m.index, out);
        last = m.index + m[0].length;
        this.encodeSpan(text, m.index, last, out);
      }
      if (last < n) this.encodeSpan(text, last, n, out);
    } else {
      this.splitLevel(0, text, out);
    }
  }

  private splitLevel(level: number, text: string, out: number[]): void {
    if (level === this.regexes.length) {
      this.encodeSpan(text, 0, text.length, out);
      return;
    }
    const re = this.regexes[level]!;
    re.lastIndex = 0;
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) this.splitLevel(level + 1, text.slice(last, m.index), out);
      this.splitLevel(level + 1, m[0], out);
      last = m.index + m[0].length;
    }
    if (last < text.length) this.splitLevel(level + 1, text.slice(last), out);
  }

  /** BPE the pre-tokenized word text[start..end) (through the cache). */
  private encodeSpan(text: string, start: number, end: number, out: number[]): void {
    const cacheable = end - start <= CACHE_MAX_WORD;
    const h = cacheable ? spanHash(text, start, end) : 0;
    if (cacheable && this.cache.emit(text, start, end, h, out)) return;
    if (this.scratch.length < (end - start) * 3) this.scratch = new Uint8Array((end - start) * 3 + 64);
    const w = start === 0 && end === text.length ? text : text.slice(start, end);
    const nb = encodeUtf8Into(w, this.scratch, 0);
    const from = out.length;
    this.model.encodeWord(this.scratch, 0, nb, out);
    if (cacheable) this.cache.add(w, h, out, from, out.length);
  }

  /** Ids → text. Invalid UTF-8 (e.g. a character cut between two tokens at the end) becomes U+FFFD. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    return decodeUtf8(this.decodeBytes(ids, options));
  }

  /** Ids → the bytes they stand for. Throws VocabularyError for an id outside the vocabulary. */
  decodeBytes(ids: ArrayLike<number>, options?: DecodeOptions): Uint8Array {
    const skip = options?.skipSpecial ?? false;
    const parts: Uint8Array[] = new Array<Uint8Array>(ids.length);
    let total = 0;
    let k = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const b = this.model.tokenBytes[id];
      if (b) {
        parts[k++] = b;
        total += b.length;
        continue;
      }
      const sb = this.specials.bytes.get(id);
      if (sb === undefined) throw this.badId(id, i);
      if (skip) continue;
      parts[k++] = sb;
      total += sb.length;
    }
    const buf = new Uint8Array(total);
    let pos = 0;
    for (let i = 0; i < k; i++) {
      buf.set(parts[i]!, pos);
      pos += parts[i]!.length;
    }
    return buf;
  }

  private badId(id: number, index?: number): VocabularyError {
    return new VocabularyError(
      `token id ${String(id)}${index !== undefined ? ` at index ${index}` : ''} is not in the vocabulary (ids are 0..${this.vocabSize - 1})`,
    );
  }

  tokenBytes(id: number): Uint8Array {
    const b = this.model.tokenBytes[id] ?? this.specials.bytes.get(id);
    if (b === undefined) throw this.badId(id);
    return b;
  }

  /** The token's Hugging Face vocabulary string: byte-level ('Ġthe') for ordinary tokens, the text for specials. */
  tokenString(id: number): string {
    const b = this.model.tokenBytes[id];
    if (b) return bytesToByteLevel(b);
    const s = this.specials.byId.get(id);
    if (!s) throw this.badId(id);
    return s.content;
  }

  /** Id of a Hugging Face vocabulary string ('Ġthe', or a special token's text), or undefined. */
  tokenToId(token: string): number | undefined {
    const sp = this.specials.byContent.get(token);
    if (sp !== undefined) return sp;
    const b = byteLevelToBytes(token);
    return b === null ? undefined : this.model.bytesToId.get(bytesKey(b));
  }

  /** The text of one token as a person would read it (a partial character shows as U+FFFD). */
  tokenText(id: number): string {
    return decodeUtf8(this.tokenBytes(id));
  }

  /** Forget cached word encodings (frees memory after a big job). */
  clearCache(): void {
    this.cache.clear();
  }

  /** The spec this tokenizer was built from (for saving, or building a modified copy). */
  toSpec(): BpeTokenizerSpec {
    const merges: [number, number][] = [];
    const m = this.model;
    for (let r = 0; r < m.mergeCount; r++) merges.push([m.mergeLeft[r]!, m.mergeRight[r]!]);
    return {
      tokenBytes: m.tokenBytes,
      merges,
      specialTokens: this.specials.list.map((s) => ({ ...s })),
      pattern: this.patternName ?? { patterns: this.splitPatterns },
      addPrefixSpace: this.addPrefixSpace,
      ...(this.normalizer ? { normalizer: this.normalizer } : {}),
      ignoreMerges: m.ignoreMerges,
      ...(this.postProcessor !== undefined ? { postProcessor: structuredClone(this.postProcessor) } : {}),
      config: structuredClone(this.config),
    };
  }
}
