/**
 * `StreamDecoder`: decodes token ids one at a time as a model produces them, emitting only whole characters. A
 * character whose UTF-8 bytes are split across tokens (common for CJK and emoji under byte-level BPE) is held
 * back until its last byte arrives. So is a WTF-8 high surrogate (see bytes.ts), until we know whether a low one
 * follows. `flush()` at the end returns whatever is held (an unfinished character as U+FFFD).
 * Invariant: the concatenation of everything `push` and `flush` return equals `tokenizer.decode(allIds, options)`
 * (`continuation`: generated ids, nothing stripped from their start; see DecodeOptions).
 */
import { completePrefixLength, decodeUtf8 } from './bytes.js';

/** What the stream decoder needs from a tokenizer. */
export interface TokenBytesSource {
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
  /** Leading spaces `decode` strips from a text (a SentencePiece-style tokenizer's prefix space), if any. */
  readonly leadingSpaceStrip?: number;
}

export class StreamDecoder {
  private buf = new Uint8Array(64);
  private len = 0;
  private readonly skipSpecial: boolean;
  /** Leading spaces still to strip: the tokenizer's count until the first byte goes out. */
  private strip: number;

  constructor(
    private readonly tokenizer: TokenBytesSource,
    options: { skipSpecial?: boolean; continuation?: boolean } = {},
  ) {
    this.skipSpecial = options.skipSpecial ?? false;
    this.strip = options.continuation ? 0 : (tokenizer.leadingSpaceStrip ?? 0);
  }

  /** Add one token; returns the text that became complete (often '', never a partial character). */
  push(id: number): string {
    if (this.skipSpecial && this.tokenizer.isSpecial(id)) return '';
    let b = this.tokenizer.tokenBytes(id);
    if (this.strip > 0) {
      let k = 0;
      while (k < this.strip && k < b.length && b[k] === 0x20) k++;
      this.strip = k === b.length ? this.strip - k : 0;
      b = b.subarray(k);
    }
    if (this.len + b.length > this.buf.length) {
      const nb = new Uint8Array(Math.max(this.buf.length * 2, this.len + b.length));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    this.buf.set(b, this.len);
    this.len += b.length;
    return this.emit();
  }

  /** Add several tokens; returns the text that became complete. */
  pushMany(ids: Iterable<number>): string {
    let s = '';
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** Bytes held back, waiting for the rest of a character. */
  get pendingBytes(): number {
    return this.len;
  }

  /** End of stream: return what is held back (invalid/incomplete bytes as U+FFFD) and reset. */
  flush(): string {
    const s = this.len ? decodeUtf8(this.buf.subarray(0, this.len)) : '';
    this.len = 0;
    return s;
  }

  private emit(): string {
    let cut = completePrefixLength(this.buf, this.len);
    // hold a trailing WTF-8 high surrogate (ED A0..AF xx): its low half may come next
    if (
      cut >= 3 &&
      this.buf[cut - 3] === 0xed &&
      this.buf[cut - 2]! >= 0xa0 &&
      this.buf[cut - 2]! <= 0xaf &&
      (this.buf[cut - 1]! & 0xc0) === 0x80
    ) {
      cut -= 3;
    }
    if (cut === 0) return '';
    const s = decodeUtf8(this.buf.subarray(0, cut));
    this.buf.copyWithin(0, cut, this.len);
    this.len -= cut;
    return s;
  }
}
