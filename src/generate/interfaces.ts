/**
 * What the generation engine needs from a model and from the text side, as small structural interfaces. `CausalLM`
 * (src/model/model.ts) satisfies `DecoderModel`; a tokenizer becomes a `TextCodec` through `tokenizerCodec`
 * (src/chat/codec.ts); tests use scripted fakes. The engine sees token ids only; text enters only through a
 * `TextCodec` (for stop strings, streamed text and token strings), and src/generate imports nothing from src/tokenizer.
 */

/** A key/value cache: how many positions it holds, and a way to empty it. */
export interface DecoderCache {
  readonly length: number;
  reset(): void;
}

/** The result of a forward pass: logits that can be read back asynchronously and then freed. */
export interface LogitsTensor {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
  /**
   * A step still waiting to run with other generations' (./step_batcher.ts): the logits once it has run (the engine
   * awaits this before it samples). Absent: these are the logits.
   */
  settle?(): Promise<LogitsTensor>;
}

/** A decoder-only language model with a KV cache. */
export interface DecoderModel<C extends DecoderCache = DecoderCache> {
  config: { vocabSize: number; maxPositions: number };
  /**
   * ids: row-major (B, T). Returns logits (B, T, V), or (B, 1, V) with lastOnly. With a cache, the T new positions
   * follow the cache's `length` positions and are appended to it.
   */
  forward(ids: Int32Array, B: number, T: number, opts?: { cache?: C; lastOnly?: boolean }): LogitsTensor;
  /**
   * A cache for `batch` rows. rowStart (ragged batches): per row, where its real tokens start in the left-padded
   * prompt; a cache that takes it reports it back as `rowStart` (CausalLM's KVCache), else the engine does not pad.
   */
  newCache(batch: number, maxLen?: number, rowStart?: readonly number[]): C;
}

/** Turns ids into text a piece at a time, never splitting a character (held bytes are released by later ids). */
export interface IdStreamDecoder {
  /** Text completed by this id (may be empty when the id ends in the middle of a UTF-8 sequence). */
  push(id: number): string;
  /** Release anything still held at the end (incomplete bytes become U+FFFD). */
  flush(): string;
}

/** The text side the engine needs. */
export interface TextCodec {
  /** Encode trusted text: special-token markers in it become their special ids (a rendered chat template). */
  encode(text: string): number[];
  /** Encode untrusted text (what a user typed): marker text stays ordinary characters. Defaults to `encode`. */
  encodePlain?(text: string): number[];
  decode(ids: readonly number[]): string;
  /** A fresh streaming decoder. */
  streamDecoder(): IdStreamDecoder;
  /** The raw bytes of one token (for OpenAI `logprobs.bytes`); defaults to the UTF-8 of decode([id]). */
  tokenBytes?(id: number): Uint8Array;
  /** A control token (a role marker, eos: never text): constrained decoding never emits one as text. */
  isSpecial?(id: number): boolean;
  /** What identifies the vocabulary (the tokenizer), so codecs made anew per call share cached tables. */
  readonly vocabKey?: object;
}
