/**
 * Integers in a range as a grammar: the decimal spellings JSON allows (no leading zeros, no "-0", at most 16 digits)
 * of every integer lo ≤ x ≤ hi, either bound possibly open — JSON Schema's minimum / maximum on integers.
 *
 * Non-negative ranges split by digit count; a range of same-length spellings [a, b] is, digit by digit, a's first
 * digit then "≥ the rest of a", the digits strictly between then anything, b's first digit then "≤ the rest of b"
 * (the construction regex range generators use). Negative ranges are "-" and the range of their magnitudes.
 */
import { alt, byteSet, empty, type Expr, lit, rep, seq } from './grammar.js';

/** The largest magnitude written (16 digits, as the JSON grammar's integers). */
export const MAX_INT_DIGITS = 16;
const MAX = 10 ** MAX_INT_DIGITS - 1;

const digit = (lo: number, hi: number): Expr => byteSet([[0x30 + lo, 0x30 + hi]]);

/** Same-length digit strings s with a ≤ s ≤ b (a ≤ b, equal lengths). */
function sameLength(a: string, b: string): Expr {
  if (a.length === 0) return empty();
  if (a === b) return lit(a);
  const a0 = a.charCodeAt(0) - 48,
    b0 = b.charCodeAt(0) - 48;
  const ra = a.slice(1),
    rb = b.slice(1);
  if (a0 === b0) return seq(lit(a[0]!), sameLength(ra, rb));
  const n = ra.length;
  const nines = '9'.repeat(n),
    zeros = '0'.repeat(n);
  const parts: Expr[] = [];
  // a whole first digit where the rest is free: a0 if ra is all zeros, b0 if rb is all nines
  const lo = ra === zeros ? a0 : a0 + 1;
  const hi = rb === nines ? b0 : b0 - 1;
  if (lo > a0) parts.push(seq(lit(a[0]!), sameLength(ra, nines)));
  if (lo <= hi) parts.push(seq(digit(lo, hi), rep(digit(0, 9), n, n)));
  if (hi < b0) parts.push(seq(lit(b[0]!), sameLength(zeros, rb)));
  return alt(...parts);
}

/** Non-negative integers lo ≤ x ≤ hi (hi ≤ MAX). */
function unsigned(lo: number, hi: number): Expr {
  const parts: Expr[] = [];
  for (let len = String(lo).length; len <= String(hi).length; len++) {
    const first = len === 1 ? 0 : 10 ** (len - 1);
    const last = 10 ** len - 1;
    const a = Math.max(lo, first),
      b = Math.min(hi, last);
    if (a <= b) parts.push(sameLength(String(a), String(b)));
  }
  return alt(...parts);
}

/**
 * Integers lo ≤ x ≤ hi (−Infinity / Infinity: open), spelled as JSON writes them. lo ≤ hi, both within 16 digits
 * (the caller checks).
 */
export function intRange(lo: number, hi: number): Expr {
  const l = Math.max(lo, -MAX),
    h = Math.min(hi, MAX);
  if (l >= 0) return unsigned(l, h);
  if (h < 0) return seq(lit('-'), unsigned(-h, -l));
  return alt(seq(lit('-'), unsigned(1, -l)), unsigned(0, h));
}
