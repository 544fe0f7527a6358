/**
 * What the two BPE tokenizers (byte-level `Tokenizer`, SentencePiece-style `SpmTokenizer`) share around their special
 * tokens: the registry, the ids and lookups the `TextTokenizer` interface asks for, and `encode`'s walk that cuts a
 * text at honoured special tokens and hands each stretch between them to the subclass.
 */
import { SpecialRegistry } from './special_registry.js';
import type { EncodeOptions, SpecialToken, TokenizerConfig } from './types.js';

export abstract class BpeTokenizerBase {
  readonly kind = 'bpe' as const;
  config: TokenizerConfig = {};
  /** The special tokens (registered by the subclass once its vocabulary is built). */
  protected readonly specials = new SpecialRegistry((id) => this.isOrdinary(id));

  /** Whether an id is an ordinary (vocabulary) token. */
  protected abstract isOrdinary(id: number): boolean;
  /** Ordinary ids: max + 1. */
  protected abstract get ordinaryCount(): number;
  /** The ordinary token a tokenizer_config.json token string names, if any. */
  protected abstract ordinaryId(text: string): number | undefined;
  /** Append the ids of the ordinary text text[start..end) (start 0: it begins the whole text). */
  protected abstract encodeSegment(text: string, start: number, end: number, out: number[]): void;

  /** Number of ids (max id + 1), special tokens included. */
  get vocabSize(): number {
    return Math.max(this.ordinaryCount, this.specials.end);
  }

  /** Special token text → id. */
  get specialTokens(): ReadonlyMap<string, number> {
    return this.specials.byContent;
  }

  /** The special (added) tokens, with their `special` flag. */
  get specialTokenList(): readonly SpecialToken[] {
    return this.specials.list;
  }

  /**
   * Add special tokens (e.g. chat roles) after the current last id; returns their ids (existing ones keep theirs).
   * The model's embedding must grow to the new `vocabSize`.
   */
  addSpecialTokens(contents: readonly string[]): number[] {
    return this.specials.add(contents, this.vocabSize);
  }

  specialId(token: string): number {
    return this.specials.id(token);
  }

  isSpecial(id: number): boolean {
    return this.specials.byId.has(id);
  }

  private configId(token: string | undefined): number | undefined {
    if (token === undefined) return undefined;
    return this.specials.byContent.get(token) ?? this.ordinaryId(token);
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

  /**
   * Text → ids. Special-token text in `text` is refused (SpecialTokenError) unless `options.special` is 'plain'
   * (encoded as ordinary text) or the token is in `options.allowed` (becomes its special id).
   */
  encode(text: string, options?: EncodeOptions): number[] {
    const allowed = options?.allowed;
    if (allowed !== undefined && allowed !== 'all') for (const a of allowed) this.specialId(a); // typo → VocabularyError
    const out: number[] = [];
    this.specials.matcher.split(
      text,
      options,
      (a, b) => this.encodeSegment(text, a, b, out),
      (id) => out.push(id),
    );
    return out;
  }

  /** Number of tokens `text` encodes to. */
  countTokens(text: string, options?: EncodeOptions): number {
    return this.encode(text, options).length;
  }
}
