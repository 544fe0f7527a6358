/**
 * Reference kernels: elementwise maths, broadcasting, reductions and data movement (see ../kernels.ts).
 * Plain loops over typed arrays, written to be read. Arrays are Float32Array or Float64Array (gradient checks).
 */
import type { Attrs } from '../backend.js';
import { size, strides } from '../../util/shape.js';
import { ConfigError } from '../../util/errors.js';

export type Arr = Float32Array | Float64Array | Int32Array;
export interface RefView {
  data: Arr;
  shape: readonly number[];
}

/** out = f(a, b) with NumPy broadcasting of a and b to out.shape. */
export function broadcastBinary(a: RefView, b: RefView, out: RefView, f: (x: number, y: number) => number): void {
  const o = out.data,
    A = a.data,
    B = b.data;
  const n = o.length;
  if (A.length === n && B.length === n) {
    for (let i = 0; i < n; i++) o[i] = f(A[i]!, B[i]!);
    return;
  }
  if (A.length === n && n % B.length === 0 && isSuffix(b.shape, out.shape)) {
    // b repeats along leading axes (e.g. a bias over the last axis)
    const m = B.length;
    for (let i = 0; i < n; i++) o[i] = f(A[i]!, B[i % m]!);
    return;
  }
  const rank = out.shape.length;
  const sa = bcastStrides(a.shape, out.shape),
    sb = bcastStrides(b.shape, out.shape);
  const idx = new Array<number>(rank).fill(0);
  let ia = 0,
    ib = 0;
  for (let i = 0; i < n; i++) {
    o[i] = f(A[ia]!, B[ib]!);
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]!++;
      ia += sa[k]!;
      ib += sb[k]!;
      if (idx[k]! < out.shape[k]!) break;
      ia -= sa[k]! * out.shape[k]!;
      ib -= sb[k]! * out.shape[k]!;
      idx[k] = 0;
    }
  }
}

/** True if `s` (after dropping leading 1s) equals the trailing axes of `full`. */
function isSuffix(s: readonly number[], full: readonly number[]): boolean {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  const t = s.slice(i);
  const off = full.length - t.length;
  return off >= 0 && t.every((d, k) => d === full[off + k]);
}

/** Strides of `shape` as broadcast to `out` (0 along broadcast axes), aligned to out's rank. */
export function bcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = strides(shape);
  const r = new Array<number>(out.length).fill(0);
  const off = out.length - shape.length;
  for (let k = 0; k < shape.length; k++) r[off + k] = shape[k] === 1 ? 0 : st[k]!;
  return r;
}

export function unary(a: RefView, out: RefView, f: (x: number) => number): void {
  const A = a.data,
    o = out.data;
  for (let i = 0; i < o.length; i++) o[i] = f(A[i]!);
}

const GELU_C = Math.sqrt(2 / Math.PI);
export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
}
export function geluGrad(x: number): number {
  const u = GELU_C * (x + 0.044715 * x * x * x);
  const t = Math.tanh(u);
  const du = GELU_C * (1 + 3 * 0.044715 * x * x);
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
}
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
export function silu(x: number): number {
  return x * sigmoid(x);
}
export function siluGrad(x: number): number {
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
}

/** sum_to: reduce `a` onto out.shape (same rank, each axis equal or 1). */
export function sumTo(a: RefView, out: RefView): void {
  const o = out.data;
  o.fill(0);
  const rank = a.shape.length;
  const so = bcastStrides(out.shape, a.shape);
  const idx = new Array<number>(rank).fill(0);
  const A = a.data;
  let io = 0;
  for (let i = 0; i < A.length; i++) {
    o[io] += A[i]!;
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]!++;
      io += so[k]!;
      if (idx[k]! < a.shape[k]!) break;
      io -= so[k]! * a.shape[k]!;
      idx[k] = 0;
    }
  }
}

/** out[perm-permuted index] = a[index]; out.shape[k] = a.shape[perm[k]]. */
export function transpose(a: RefView, out: RefView, perm: readonly number[]): void {
  const rank = a.shape.length;
  const sa = strides(a.shape);
  // stride in a for each axis of out
  const s = perm.map((p) => sa[p]!);
  const idx = new Array<number>(rank).fill(0);
  const A = a.data,
    o = out.data;
  let ia = 0;
  for (let i = 0; i < o.length; i++) {
    o[i] = A[ia]!;
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]!++;
      ia += s[k]!;
      if (idx[k]! < out.shape[k]!) break;
      ia -= s[k]! * out.shape[k]!;
      idx[k] = 0;
    }
  }
}

/**
 * Copy the box `[begin, begin + box)` between a big array and a small one.
 * dir 'out': small = big[box] (slice). dir 'in': big[box] = small (pad_slice after zeroing).
 */
export function copyBox(big: RefView, small: RefView, begin: readonly number[], dir: 'out' | 'in'): void {
  const rank = big.shape.length;
  const sb = strides(big.shape);
  const n = size(small.shape);
  if (n === 0) return;
  const inner = small.shape[rank - 1]!;
  const outerShape = small.shape.slice(0, rank - 1);
  const outer = size(outerShape);
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  const B = big.data,
    S = small.data;
  for (let r = 0; r < outer; r++) {
    let off = begin[rank - 1]!;
    for (let k = 0; k < rank - 1; k++) off += (begin[k]! + idx[k]!) * sb[k]!;
    const so = r * inner;
    if (dir === 'out') for (let j = 0; j < inner; j++) S[so + j] = B[off + j]!;
    else for (let j = 0; j < inner; j++) B[off + j] = S[so + j]!;
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]!++;
      if (idx[k]! < outerShape[k]!) break;
      idx[k] = 0;
    }
  }
}

export function concat(inputs: readonly RefView[], out: RefView, axis: number): void {
  let pos = 0;
  for (const a of inputs) {
    const begin = out.shape.map((_, k) => (k === axis ? pos : 0));
    copyBox(out, a, begin, 'in');
    pos += a.shape[axis]!;
  }
}

export function attrNum(attrs: Attrs | undefined, key: string, dflt?: number): number {
  const v = attrs?.[key];
  if (v === undefined) {
    if (dflt === undefined) throw new ConfigError(key, 'kernel attribute is required');
    return dflt;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v as number;
}
