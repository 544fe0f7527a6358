/**
 * Text ↔ bytes for the byte-level tokenizer, and GPT-2's byte ↔ printable-character table.
 *
 * Encoding is UTF-8, extended the way WTF-8 does (https://simonsapin.github.io/wtf-8/) so that every JavaScript
 * string, including ones holding lone surrogates, has a byte form and comes back exactly:
 *  - a well-formed string gives exactly the bytes `new TextEncoder().encode(s)` gives (so token ids agree with
 *    tiktoken and Hugging Face on all well-formed text);
 *  - a lone surrogate U+D800..U+DFFF (no partner next to it) becomes the 3-byte sequence ED A0..BF 80..BF, which
 *    UTF-8 forbids, instead of TextEncoder's U+FFFD. `decodeUtf8` turns such a triple back into that code unit, so
 *    `decodeUtf8(encodeUtf8(s)) === s` for every string `s`. A foreign decoder (TextDecoder, Hugging Face) reads the
 *    triple as U+FFFD characters.
 * Decoding otherwise follows TextDecoder exactly (invalid bytes become U+FFFD, maximal-subpart rule).
 */

const textDecoder = new TextDecoder('utf-8');

/** Byte length of `s` in (WTF-8) UTF-8. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * Write the bytes of `s` into `out` from `pos`; returns the new position. `out` must have room for
 * `3 * s.length` bytes from `pos` (the worst case).
 */
export function encodeUtf8Into(s: string, out: Uint8Array, pos: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[pos++] = c;
    } else if (c < 0x800) {
      out[pos++] = 0xc0 | (c >> 6);
      out[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[pos++] = 0xf0 | (c >> 18);
      out[pos++] = 0x80 | ((c >> 12) & 0x3f);
      out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      out[pos++] = 0x80 | (c & 0x3f);
    } else {
      // BMP character, or a lone surrogate (WTF-8: same 3-byte shape, ED A0..BF xx)
      out[pos++] = 0xe0 | (c >> 12);
      out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      out[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/** The (WTF-8) UTF-8 bytes of `s`. */
export function encodeUtf8(s: string): Uint8Array {
  const buf = new Uint8Array(s.length * 3);
  const n = encodeUtf8Into(s, buf, 0);
  return buf.slice(0, n);
}

/** True if bytes[i..i+3) is a WTF-8 encoded surrogate: ED A0..BF 80..BF. */
function isSurrogateTriple(bytes: Uint8Array, i: number, end: number): boolean {
  return (
    i + 2 < end &&
    bytes[i] === 0xed &&
    bytes[i + 1]! >= 0xa0 &&
    bytes[i + 1]! <= 0xbf &&
    (bytes[i + 2]! & 0xc0) === 0x80
  );
}

/**
 * Decode bytes to a string: TextDecoder's UTF-8 (invalid bytes → U+FFFD), plus WTF-8 surrogate triples → the
 * surrogate code unit (so a high + low pair of triples becomes a well-formed astral character again).
 */
export function decodeUtf8(bytes: Uint8Array): string {
  let i = bytes.indexOf(0xed);
  while (i >= 0 && !isSurrogateTriple(bytes, i, bytes.length)) i = bytes.indexOf(0xed, i + 1);
  if (i < 0) return textDecoder.decode(bytes);
  // Slow path: split at surrogate triples. Decoding the pieces separately is the same as decoding the whole,
  // because ED can never continue a sequence, so any sequence open before a triple is already broken there.
  let out = '';
  let start = 0;
  const end = bytes.length;
  while (i < end) {
    if (isSurrogateTriple(bytes, i, end)) {
      if (i > start) out += textDecoder.decode(bytes.subarray(start, i));
      out += String.fromCharCode(0xd000 | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start < end) out += textDecoder.decode(bytes.subarray(start, end));
  return out;
}

/**
 * Length of the longest prefix of bytes[0..end) that ends on a character boundary, i.e. everything except a final
 * sequence that is valid so far but incomplete (at most 3 bytes), which more bytes could still complete. Used by the
 * streaming decoder to hold back a character split across tokens.
 */
export function completePrefixLength(bytes: Uint8Array, end: number): number {
  // look back at most 3 bytes for a lead byte whose sequence runs past `end`
  for (let back = 1; back <= 3 && back <= end; back++) {
    const b = bytes[end - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for its lead
    let need: number;
    if (b >= 0xc2 && b <= 0xdf) need = 2;
    else if (b >= 0xe0 && b <= 0xef) need = 3;
    else if (b >= 0xf0 && b <= 0xf4) need = 4;
    else return end; // ASCII or an invalid byte: nothing to wait for
    if (need <= back) return end; // complete (or over-long: invalid, decoded as U+FFFD now)
    // the sequence is incomplete; check the bytes we have are valid continuations for this lead
    for (let k = 1; k < back; k++) {
      const c = bytes[end - back + k]!;
      let lo = 0x80;
      let hi = 0xbf;
      if (k === 1) {
        if (b === 0xe0) lo = 0xa0;
        else if (b === 0xf0) lo = 0x90;
        else if (b === 0xf4) hi = 0x8f;
        // b === 0xed: A0..BF would be a (WTF-8) surrogate, which we also wait for
      }
      if (c < lo || c > hi) return end; // already invalid: no point waiting
    }
    return end - back;
  }
  return end;
}

/**
 * GPT-2's table from bytes to printable characters (`bytes_to_unicode` in openai/gpt-2 encoder.py): printable
 * Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in order. Token strings in vocab.json,
 * merges.txt and tokenizer.json are written with it (a space is 'Ġ', a newline 'Ċ').
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  }
  return table;
})();

/** Inverse of BYTE_TO_CHAR: char code → byte, or -1. */
const CHAR_TO_BYTE: Int16Array = (() => {
  const t = new Int16Array(512).fill(-1);
  BYTE_TO_CHAR.forEach((ch, b) => {
    t[ch.charCodeAt(0)] = b;
  });
  return t;
})();

/** Bytes → GPT-2 byte-level string ('Ġhello'). */
export function bytesToByteLevel(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]!];
  return s;
}

/** GPT-2 byte-level string → bytes, or null if it holds a character outside the table. */
export function byteLevelToBytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const b = c < 512 ? CHAR_TO_BYTE[c]! : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

/** Bytes as a Latin-1 string (one char per byte): a cheap exact Map key for a byte sequence. */
export function bytesKey(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}
