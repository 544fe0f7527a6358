/**
 * Unicode code point classes as byte-level grammar expressions: a set of code points becomes an alternation of
 * sequences of byte sets that matches exactly the UTF-8 encodings of its members, and nothing else (no overlong
 * forms, no surrogates, nothing above U+10FFFF, no stray continuation bytes).
 *
 *   codepointClass: inclusive code point ranges (optionally negated) → Expr
 *   anyCodepoint: any Unicode scalar value (GBNF's `.`)
 *
 * The ranges are split the classic way (RE2, Rust regex-syntax's Utf8Sequences): first at the encoding-length
 * boundaries U+007F/U+07FF/U+FFFF, then wherever the start and end differ above a continuation-byte boundary, until
 * every piece [s, e] has the property that the bytes of s and e, position by position, bound a byte range and every
 * combination of bytes within those ranges is the encoding of a member. Pieces with the same tail are then merged
 * by taking the union of their first bytes, so ASCII-only classes come out as a single byte set.
 */
import { alt, type Expr, seq } from './grammar.js';

/** Largest Unicode code point. */
export const MAX_CODEPOINT = 0x10ffff;
const SURROGATE_LO = 0xd800;
const SURROGATE_HI = 0xdfff;

type Range = [number, number];

/** Sort, clip to U+0000..U+10FFFF, merge, and take out the surrogates; optionally complement. */
function normalize(ranges: readonly (readonly [number, number])[], negate: boolean): Range[] {
  const sorted: Range[] = [];
  for (const [lo, hi] of ranges) {
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw new RangeError(`bad code point range [${lo}, ${hi}]`);
    const a = Math.max(lo, 0);
    const b = Math.min(hi, MAX_CODEPOINT);
    if (a <= b) sorted.push([a, b]);
  }
  sorted.sort((x, y) => x[0] - y[0]);
  const merged: Range[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  let out = merged;
  if (negate) {
    const comp: Range[] = [];
    let next = 0;
    for (const [a, b] of merged) {
      if (a > next) comp.push([next, a - 1]);
      next = b + 1;
    }
    if (next <= MAX_CODEPOINT) comp.push([next, MAX_CODEPOINT]);
    out = comp;
  }
  // remove the surrogate block
  const scalar: Range[] = [];
  for (const [a, b] of out) {
    if (b < SURROGATE_LO || a > SURROGATE_HI) scalar.push([a, b]);
    else {
      if (a < SURROGATE_LO) scalar.push([a, SURROGATE_LO - 1]);
      if (b > SURROGATE_HI) scalar.push([SURROGATE_HI + 1, b]);
    }
  }
  return scalar;
}

/** The UTF-8 encoding of a scalar value. */
function encode(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

/** Largest code point encoded in n bytes. */
const MAX_OF_LENGTH = [0, 0x7f, 0x7ff, 0xffff];

/**
 * Split a range of scalar values (no surrogates inside) into byte-range sequences: each is a list of [lo, hi]
 * byte ranges, one per byte of the encoding.
 */
function utf8Sequences(range: Range, out: [number, number][][]): void {
  const todo: Range[] = [range];
  outer: while (todo.length > 0) {
    let [s, e] = todo.pop()!;
    for (;;) {
      // split at the encoding-length boundaries
      let split = false;
      for (let n = 1; n < 4; n++) {
        const max = MAX_OF_LENGTH[n]!;
        if (s <= max && max < e) {
          todo.push([max + 1, e]);
          e = max;
          split = true;
          break;
        }
      }
      if (split) continue;
      // split where start and end differ above a continuation-byte boundary but are not aligned to it
      for (let i = 1; i < 4; i++) {
        const m = (1 << (6 * i)) - 1;
        if ((s & ~m) !== (e & ~m)) {
          if ((s & m) !== 0) {
            todo.push([(s | m) + 1, e]);
            e = s | m;
            split = true;
            break;
          }
          if ((e & m) !== m) {
            todo.push([e & ~m, e]);
            e = (e & ~m) - 1;
            split = true;
            break;
          }
        }
      }
      if (split) continue;
      const a = encode(s);
      const b = encode(e);
      out.push(a.map((x, i) => [x, b[i]!]));
      continue outer;
    }
  }
}

function byteRangeSet(lo: number, hi: number): Uint8Array {
  const set = new Uint8Array(256);
  set.fill(1, lo, hi + 1);
  return set;
}

/**
 * A set of code points (inclusive ranges; `negate`: the complement within U+0000..U+10FFFF) as an Expr matching
 * exactly the UTF-8 encodings of its members. Surrogates (U+D800..U+DFFF) and values above U+10FFFF are never
 * members. An empty class is the empty byte set, which matches nothing.
 */
export function codepointClass(ranges: readonly (readonly [number, number])[], negate: boolean): Expr {
  const seqs: [number, number][][] = [];
  for (const r of normalize(ranges, negate)) utf8Sequences(r, seqs);
  // group sequences with identical tails (bytes 2..n): (A|B)·T = (A∪B)·T
  const groups = new Map<string, { first: Uint8Array; tail: [number, number][] }>();
  for (const s of seqs) {
    const tail = s.slice(1);
    const key = tail.map(([lo, hi]) => `${lo}-${hi}`).join(',');
    let g = groups.get(key);
    if (!g) {
      g = { first: new Uint8Array(256), tail };
      groups.set(key, g);
    }
    g.first.fill(1, s[0]![0], s[0]![1] + 1);
  }
  if (groups.size === 0) return { k: 'set', set: new Uint8Array(256) };
  const alts = [...groups.values()]
    .sort((x, y) => x.tail.length - y.tail.length || x.first.indexOf(1) - y.first.indexOf(1))
    .map((g) =>
      seq({ k: 'set', set: g.first }, ...g.tail.map(([lo, hi]): Expr => ({ k: 'set', set: byteRangeSet(lo, hi) }))),
    );
  return alt(...alts);
}

/** Any Unicode scalar value (U+0000..U+10FFFF except surrogates), as its UTF-8 encoding. */
export function anyCodepoint(): Expr {
  return codepointClass([[0, MAX_CODEPOINT]], false);
}
