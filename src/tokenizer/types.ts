/**
 * Types shared by every tokenizer in this folder (byte-level BPE and character-level): encode/decode options, the
 * special-token policy, the tokenizer_config.json fields we understand, and the `TextTokenizer` interface that the
 * data, training and chat code program against.
 */

/**
 * What to do when ordinary (untrusted) text contains the text of a special token such as `<|im_start|>`:
 *  - 'refuse': throw SpecialTokenError (the default; a user cannot inject a role marker by accident or on purpose);
 *  - 'plain':  encode it as ordinary text (it becomes several ordinary tokens, never the special id).
 */
export type SpecialPolicy = 'refuse' | 'plain';

export interface EncodeOptions {
  /** Policy for special-token text that is not in `allowed`. Default 'refuse'. */
  special?: SpecialPolicy;
  /**
   * Special tokens that are honoured in this text, i.e. become their special id: for trusted text such as a chat
   * template you rendered yourself. 'all' = every special token. Default: none.
   */
  allowed?: 'all' | readonly string[];
}

export interface DecodeOptions {
  /** Leave special tokens out of the text. Default false (they appear as their text, e.g. `<|endoftext|>`). */
  skipSpecial?: boolean;
  /**
   * The ids continue a text (a generated reply): nothing is stripped from their start. A SentencePiece-style
   * tokenizer's decoder otherwise strips the space its encoder put first (Hugging Face's `decode`); generated
   * tokens are read as llama.cpp and vLLM read them, so " world" after "Hello" keeps its space.
   */
  continuation?: boolean;
}

/** The tokenizer_config.json fields we read and write; every other field is kept in `extra` and written back. */
export interface TokenizerConfig {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  /** Jinja chat template, passed through unchanged (a string, or Hugging Face's list of named templates). */
  chatTemplate?: string | Array<{ name: string; template: string }>;
  modelMaxLength?: number;
  /** Other tokenizer_config.json fields, kept as read. */
  extra?: Record<string, unknown>;
}

/** A special (added) token: its id and text. `special: false` = an added token always matched, never refused. */
export interface SpecialToken {
  id: number;
  content: string;
  special: boolean;
}

/** What every tokenizer offers (BPE `Tokenizer` and `CharTokenizer`). */
export interface TextTokenizer {
  readonly kind: 'bpe' | 'char';
  /** Number of ids (max id + 1), special tokens included: the model's embedding rows. */
  readonly vocabSize: number;
  /** Special token text → id. */
  readonly specialTokens: ReadonlyMap<string, number>;
  config: TokenizerConfig;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The UTF-8 bytes a token stands for (a special token: the bytes of its text). Throws VocabularyError. */
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
  /** The special (added) tokens with their `special` flag (false: an added token that is ordinary text). */
  readonly specialTokenList: readonly SpecialToken[];
  /** Id of a special token by text; throws VocabularyError if there is none. */
  specialId(token: string): number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
}
