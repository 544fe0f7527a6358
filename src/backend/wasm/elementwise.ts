/**
 * The wasm backend's elementwise kernels (./assembly/elementwise.ts): fill, copy/cast, unary maths, broadcast binary
 * ops (add … div, the activation backwards, swiglu), swiglu_fused (swiglu over a fused gate/up row), swiglu_backward,
 * dropout. Each splits its element range across
 * threads when the work is big enough (./core.ts `range`/`par`).
 */
import type { View } from '../backend.js';
import { num, prod, type WasmCore, type WasmKernel } from './core.js';
import { broadcastStrides, collapse, forEachOuter, rowStrides } from './layout.js';

const UNARY_OPS: Record<string, number> = { exp: 1, log: 2, neg: 3, sqrt: 4, rsqrt: 5, square: 6, gelu: 7, silu: 8 };

/** out = op(a) elementwise (op 0: alpha·a + beta). */
function unary(be: WasmCore, op: number, i: readonly View[], o: readonly View[], alpha = 1, beta = 0): void {
  const n = prod(o[0]!.shape);
  const cost = op >= 7 ? 12 : op === 2 ? 20 : op === 1 ? 6 : 1;
  be.range('unary', n, n * cost, 16, [op, be.p(i[0]!), be.p(o[0]!), alpha, beta]);
}

/** out = op(a, b) with NumPy broadcasting to out's shape (shapes validated). */
export function binary(be: WasmCore, op: number, i: readonly View[], o: readonly View[]): void {
  const a = i[0]!,
    b = i[1]!,
    out = o[0]!;
  const os = out.shape;
  const pa = be.p(a),
    pb = be.p(b),
    po = be.p(out);
  const n = prod(os);
  if (n === 0) return;
  const cost = op >= 4 ? 12 : 1;
  const c = collapse(os, [broadcastStrides(a.shape, os), broadcastStrides(b.shape, os), rowStrides(os)]);
  if (c.dims.length === 1) {
    // one contiguous run (same shapes, or one side a scalar): split by element ranges
    const sa = c.strides[0]![0]!,
      sb = c.strides[1]![0]!;
    be.par('binary', n, n * cost, 16, (lo, hi, s) => [
      op,
      pa + lo * sa * 4,
      pb + lo * sb * 4,
      po + lo * 4,
      1,
      1,
      hi - lo,
      0,
      0,
      0,
      sa,
      0,
      0,
      0,
      sb,
      s,
      0,
      1,
    ]);
    return;
  }
  forEachOuter(c, (off, d, s) => {
    const [sa, sb] = s as [number[], number[]];
    const inner = d[1]! * d[2]! * d[3]!;
    be.par('binary', d[0]!, d[0]! * inner * cost, 1, (lo, hi, sc) => [
      op,
      pa + off[0]! * 4,
      pb + off[1]! * 4,
      po + off[2]! * 4,
      d[1]!,
      d[2]!,
      d[3]!,
      sa[0]!,
      sa[1]!,
      sa[2]!,
      sa[3]!,
      sb[0]!,
      sb[1]!,
      sb[2]!,
      sb[3]!,
      sc,
      lo,
      hi,
    ]);
  });
}

const bin =
  (op: number): WasmKernel =>
  (be, i, o) =>
    binary(be, op, i, o);
const un =
  (name: string): WasmKernel =>
  (be, i, o) =>
    unary(be, UNARY_OPS[name]!, i, o);

export const ELEMENTWISE: Record<string, WasmKernel> = {
  fill(be, _i, o, a) {
    const out = o[0]!,
      n = prod(out.shape),
      v = num(a, 'value');
    let bits: number;
    if (out.buf.dtype === 'i32') bits = v | 0;
    else bits = new Int32Array(new Float32Array([v]).buffer)[0]!;
    be.range('fill32', n, n, 16, [be.p(out), bits]);
  },
  copy(be, i, o) {
    const a = i[0]!,
      out = o[0]!,
      n = prod(out.shape);
    const pa = be.p(a),
      po = be.p(out);
    if (a.buf.dtype === out.buf.dtype) {
      be.refreshViews();
      if (pa !== po) be.u8.copyWithin(po, pa, pa + n * 4);
    } else {
      be.range('cast', n, n, 16, [a.buf.dtype === 'f32' ? 0 : 1, pa, po]);
    }
  },
  add: bin(0),
  sub: bin(1),
  mul: bin(2),
  div: bin(3),
  gelu_backward: bin(4),
  silu_backward: bin(5),
  swiglu: bin(6),
  scale: (be, i, o, a) => unary(be, 0, i, o, num(a, 'alpha'), num(a, 'beta', 0)),
  exp: un('exp'),
  log: un('log'),
  neg: un('neg'),
  sqrt: un('sqrt'),
  rsqrt: un('rsqrt'),
  square: un('square'),
  gelu: un('gelu'),
  silu: un('silu'),
  swiglu_fused: (be, i, o) => gatedFused(be, i[0]!, o[0]!, 6),
  geglu_fused: (be, i, o) => gatedFused(be, i[0]!, o[0]!, 7),
  swiglu_backward(be, i, o) {
    const n = prod(o[0]!.shape);
    be.range('swiglu_backward', n, n * 8, 16, [be.p(i[0]!), be.p(i[1]!), be.p(i[2]!), be.p(o[0]!), be.p(o[1]!)]);
  },
  dropout(be, i, o, a) {
    const n = prod(o[0]!.shape),
      p = num(a, 'p'),
      seed = num(a, 'seed');
    const thr = p <= 0 ? 0 : Math.ceil(p * 4294967296);
    const dropAll = thr >= 4294967296 ? 1 : 0;
    be.range('dropout', n, n * 4, 16, [be.p(i[0]!), be.p(o[0]!), seed | 0, dropAll ? 0 : thr, dropAll, 1 / (1 - p)]);
  },
};

/**
 * A gated MLP's activation over a fused gate/up output gu [R, 2F] → y [R, F]: the binary kernel's op (6 swiglu, 7
 * geglu) with gate and up read as two column ranges of gu's rows (row stride 2F).
 */
function gatedFused(be: WasmCore, gu: View, y: View, op: number): void {
  const F = gu.shape[gu.shape.length - 1]! / 2,
    M = F === 0 ? 0 : prod(y.shape) / F;
  if (M === 0) return;
  const pg = be.p(gu),
    py = be.p(y);
  be.par('binary', M, M * F * 12, 1, (lo, hi, s) => [
    op,
    pg,
    pg + F * 4,
    py,
    1,
    1,
    F,
    2 * F,
    0,
    0,
    1,
    2 * F,
    0,
    0,
    1,
    s,
    lo,
    hi,
  ]);
}
