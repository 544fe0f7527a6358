/**
 * Adapter from a tokenizer (src/tokenizer, `TextTokenizer`) to the `TextCodec` the generation engine uses: encode
 * (with a chosen special-token policy), decode, token bytes, and a streaming decoder that never splits a character.
 * It lives here, where tokenizer and generation meet: src/generate sees token ids and the `TextCodec` interface only.
 */
import { StreamDecoder } from '../tokenizer/stream_decoder.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { IdStreamDecoder, TextCodec } from '../generate/interfaces.js';

export interface CodecOptions {
  /**
   * Special tokens honoured when encoding text: 'all' for trusted text (a chat template we rendered, a prompt typed
   * by the person running the CLI), 'none' to encode marker text as ordinary characters. Default 'all'.
   */
  specials?: 'all' | 'none';
}

/**
 * A streaming UTF-8 decoder over raw token bytes (TextDecoder in stream mode), for token sources that are not a
 * `TextTokenizer`. Tokenizers use their own `StreamDecoder`, which also keeps WTF-8 surrogates exact.
 */
export function byteStreamDecoder(tokenBytes: (id: number) => Uint8Array): IdStreamDecoder {
  const td = new TextDecoder('utf-8');
  return {
    push: (id) => td.decode(tokenBytes(id), { stream: true }),
    flush: () => td.decode(),
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** How one token shows on its own: its text when its bytes are whole UTF-8, else its bytes in hex, e.g. <e6 9d>. */
export function tokenPiece(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return `<${Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(' ')}>`;
  }
}

/** Wrap a tokenizer for the engine. */
export function tokenizerCodec(tok: TextTokenizer, o: CodecOptions = {}): TextCodec {
  const specials = o.specials ?? 'all';
  // control tokens (role markers, eos): never text. Added tokens marked special: false (Qwen's <tool_call>, <think>)
  // are text a grammar may use.
  const controls = new Set(tok.specialTokenList.filter((s) => s.special).map((s) => s.id));
  return {
    encode: (text) =>
      specials === 'all' ? tok.encode(text, { allowed: 'all' }) : tok.encode(text, { special: 'plain' }),
    encodePlain: (text) => tok.encode(text, { special: 'plain' }),
    // the engine decodes generated ids: read as a continuation (a SentencePiece-style tokenizer keeps their first space)
    decode: (ids) => tok.decode(ids, { continuation: true }),
    tokenBytes: (id) => tok.tokenBytes(id),
    isSpecial: (id) => controls.has(id),
    vocabKey: tok,
    streamDecoder: () => new StreamDecoder(tok, { continuation: true }),
  };
}

/** A TextCodec as is; a tokenizer wrapped with `tokenizerCodec` (special tokens honoured: trusted text). */
export function toCodec(t: TextCodec | TextTokenizer): TextCodec {
  return typeof (t as TextCodec).streamDecoder === 'function' ? (t as TextCodec) : tokenizerCodec(t as TextTokenizer);
}
