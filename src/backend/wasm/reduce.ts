/**
 * The wasm backend's reductions and the optimiser (./assembly/reduce.ts, the adamw of ./assembly/elementwise.ts):
 * sum_to (broadcast gradients, bias columns), sumsq / sum_all over many tensors in float64 partials, and the
 * multi-tensor adamw, all tensors' chunks in one pool dispatch.
 */
import type { View } from '../backend.js';
import { CHUNKS_PER_THREAD, num, PARTIALS, prod, type WasmCore, type WasmKernel } from './core.js';
import { broadcastStrides, collapse, forEachOuter, rowStrides } from './layout.js';

/** Σ a (or Σ a²) over every input, in float64 partials (one per chunk) summed here in chunk order. */
function sumAll(be: WasmCore, ins: readonly View[], out: View, sq: boolean): void {
  const po = be.p(out);
  const parts = ins.map((a) => ({ n: prod(a.shape), head: [be.p(a), sq ? 1 : 0] }));
  let s = 0;
  // one partial per chunk; a group of G tensors makes at most G + threads·CHUNKS_PER_THREAD chunks
  const G = PARTIALS - be.threads * CHUNKS_PER_THREAD - 1;
  for (let j0 = 0; j0 < parts.length; j0 += G) {
    const chunks = be.multi('sum_f64', parts.slice(j0, j0 + G), 1, (c) => [be.partials + 8 * c]);
    be.refreshViews();
    const dv = new Float64Array(be.mem.buffer, be.partials, chunks.length);
    for (let c = 0; c < chunks.length; c++) s += dv[c]!;
  }
  be.f32[po >>> 2] = s;
}

export const REDUCE: Record<string, WasmKernel> = {
  sum_to(be, i, o) {
    const a = i[0]!,
      out = o[0]!;
    const pa = be.p(a),
      po = be.p(out);
    const no = prod(out.shape);
    be.fns.fill32(po, 0, 0, 0, no);
    if (prod(a.shape) === 0) return;
    const c = collapse(a.shape, [rowStrides(a.shape), broadcastStrides(out.shape, a.shape)]);
    if (c.dims.length === 2 && c.strides[1]![0] === 0 && c.strides[1]![1] === 1) {
      // [R, K] → [1, K] (bias gradients): split the columns
      const [R, K] = c.dims as [number, number];
      be.range('col_sum', K, R * K, 16, [pa, po, R, K]);
      return;
    }
    forEachOuter(c, (off, d, s) => {
      be.fns.sum_to(
        pa + off[0]! * 4,
        po + off[1]! * 4,
        d[1]!,
        d[2]!,
        d[3]!,
        s[1]![0]!,
        s[1]![1]!,
        s[1]![2]!,
        s[1]![3]!,
        0,
        0,
        d[0]!,
      );
    });
  },
  sumsq: (be, i, o) => sumAll(be, i, o[0]!, true),
  sum_all: (be, i, o) => sumAll(be, i, o[0]!, false),
  adamw(be, i, o, a) {
    const lr = num(a, 'lr'),
      b1 = num(a, 'beta1'),
      b2 = num(a, 'beta2'),
      eps = num(a, 'eps');
    const wd = num(a, 'weightDecay'),
      step = num(a, 'step'),
      gs = num(a, 'gradScale', 1);
    const stepSize = lr / (1 - Math.pow(b1, step)),
      invBc2s = 1 / Math.sqrt(1 - Math.pow(b2, step));
    const parts = i.map((g, j) => ({
      n: prod(g.shape),
      head: [
        be.p(g),
        be.p(o[3 * j]!),
        be.p(o[3 * j + 1]!),
        be.p(o[3 * j + 2]!),
        1 - lr * wd,
        b1,
        b2,
        eps,
        stepSize,
        invBc2s,
        gs,
      ],
    }));
    be.multi('adamw', parts, 4);
  },
};
