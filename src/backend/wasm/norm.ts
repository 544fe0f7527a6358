/**
 * The wasm backend's row kernels (./assembly/norm.ts): embedding and its backward (token ids checked against the
 * table: they index memory), layernorm, rmsnorm, softmax and their backwards, cross-entropy and its backward. One
 * row per chunk; norm backwards sum dw/db by a separate column-split pass when threaded.
 */
import type { Attrs, View } from '../backend.js';
import { flag, MIN_PARALLEL_WORK, num, prod, type WasmCore, type WasmKernel } from './core.js';

/**
 * Norm backward: dx by rows; dw (and db) in the same pass on one thread, or by a column-split *_dw pass on
 * several (same summation order, so the result does not depend on the thread count).
 */
function normBackward(
  be: WasmCore,
  fn: 'layernorm_backward' | 'rmsnorm_backward',
  N: number,
  C: number,
  head: number[],
  dwArgs: number[],
): void {
  const work = N * C * 6;
  const threads = work >= MIN_PARALLEL_WORK && N >= 2 ? Math.min(be.threads, N) : 1;
  if (threads <= 1) {
    be.fns[fn](...head, 1, be.scratch[0]!, 0, N);
    return;
  }
  be.par(fn, N, work, 1, (lo, hi, s) => [...head, 0, s, lo, hi]);
  const dwFn = fn === 'layernorm_backward' ? 'layernorm_dw' : 'rmsnorm_dw';
  be.par(dwFn, C, N * C * 3, 4, (lo, hi, s) => [...dwArgs, N, C, s, lo, hi]);
}

export const NORM: Record<string, WasmKernel> = {
  embedding(be, i, o) {
    const w = i[0]!,
      ids = i[1]!,
      out = o[0]!;
    const V = w.shape[0]!,
      C = w.shape[1]!,
      N = prod(ids.shape);
    const pids = be.p(ids);
    be.checkIds(pids, N, V, null, 'embedding: token id');
    be.range('embedding', N, N * C, 1, [be.p(w), pids, be.p(out), C]);
  },
  embedding_q8(be, i, o) {
    const [wq, sc, ids] = i as [View, View, View];
    const V = wq.shape[0]!,
      C = wq.shape[1]! * 4,
      N = prod(ids.shape);
    const pids = be.p(ids);
    be.checkIds(pids, N, V, null, 'embedding: token id');
    be.range('embedding_q8', N, N * C, 1, [be.p(wq), be.p(sc), pids, be.p(o[0]!), C]);
  },
  embedding_q4k(be, i, o) {
    const [wq, ids] = i as [View, View];
    const V = wq.shape[0]!,
      C = (wq.shape[1]! / 38) * 256,
      N = prod(ids.shape);
    const pids = be.p(ids);
    be.checkIds(pids, N, V, null, 'embedding: token id');
    be.range('embedding_q4k', N, N * C, 1, [be.p(wq), pids, be.p(o[0]!), C]);
  },
  embedding_bf16(be, i, o) {
    const [wb, ids] = i as [View, View];
    const V = wb.shape[0]!,
      C = wb.shape[1]! * 2,
      N = prod(ids.shape);
    const pids = be.p(ids);
    be.checkIds(pids, N, V, null, 'embedding: token id');
    be.range('embedding_bf16', N, N * C, 1, [be.p(wb), pids, be.p(o[0]!), C]);
  },
  embedding_backward(be, i, o, a) {
    const dy = i[0]!,
      ids = i[1]!,
      dw = o[0]!;
    const V = dw.shape[0]!,
      C = dw.shape[1]!,
      N = prod(ids.shape);
    const pids = be.p(ids);
    be.checkIds(pids, N, V, null, 'embedding_backward: token id');
    be.range('embedding_backward', C, V * C + N * C, 16, [
      be.p(dy),
      pids,
      be.p(dw),
      V,
      C,
      N,
      flag(a, 'accumulate', false) ? 1 : 0,
    ]);
  },
  layernorm(be, i, o, a) {
    const x = i[0]!,
      C = x.shape[x.shape.length - 1]!,
      N = prod(x.shape) / C;
    be.range('layernorm', N, N * C * 4, 1, [
      be.p(x),
      be.p(i[1]!),
      be.p(i[2]!),
      be.p(o[0]!),
      be.p(o[1]!),
      be.p(o[2]!),
      C,
      num(a, 'eps'),
    ]);
  },
  layernorm_backward(be, i, o, a) {
    const x = i[1]!,
      C = x.shape[x.shape.length - 1]!,
      N = prod(x.shape) / C;
    const head = [
      be.p(i[0]!),
      be.p(x),
      be.p(i[2]!),
      be.p(i[3]!),
      be.p(i[4]!),
      be.p(o[0]!),
      be.p(o[1]!),
      be.p(o[2]!),
      C,
      flag(a, 'accumulate', false) ? 1 : 0,
    ];
    normBackward(be, 'layernorm_backward', N, C, head, [
      be.p(i[0]!),
      be.p(x),
      be.p(i[3]!),
      be.p(i[4]!),
      be.p(o[1]!),
      be.p(o[2]!),
    ]);
  },
  rmsnorm(be, i, o, a) {
    const x = i[0]!,
      C = x.shape[x.shape.length - 1]!,
      N = prod(x.shape) / C;
    be.range('rmsnorm', N, N * C * 3, 1, [be.p(x), be.p(i[1]!), be.p(o[0]!), be.p(o[1]!), C, num(a, 'eps')]);
  },
  rmsnorm_backward(be, i, o, a) {
    const x = i[1]!,
      C = x.shape[x.shape.length - 1]!,
      N = prod(x.shape) / C;
    const head = [
      be.p(i[0]!),
      be.p(x),
      be.p(i[2]!),
      be.p(i[3]!),
      be.p(o[0]!),
      be.p(o[1]!),
      C,
      flag(a, 'accumulate', false) ? 1 : 0,
    ];
    normBackward(be, 'rmsnorm_backward', N, C, head, [be.p(i[0]!), be.p(x), be.p(i[3]!), be.p(o[1]!)]);
  },
  softmax(be, i, o) {
    const x = i[0]!,
      C = x.shape[x.shape.length - 1]!,
      N = prod(x.shape) / C;
    be.range('softmax', N, N * C * 8, 1, [be.p(x), be.p(o[0]!), C]);
  },
  softmax_backward(be, i, o) {
    const y = i[0]!,
      C = y.shape[y.shape.length - 1]!,
      N = prod(y.shape) / C;
    be.range('softmax_backward', N, N * C * 3, 1, [be.p(y), be.p(i[1]!), be.p(o[0]!), C]);
  },
  cross_entropy(be, i, o, a) {
    const lg = i[0]!,
      V = lg.shape[lg.shape.length - 1]!,
      N = prod(lg.shape) / V,
      ignore = num(a, 'ignoreIndex', -100);
    const pt = be.p(i[1]!);
    be.checkIds(pt, N, V, ignore, 'cross_entropy: target');
    be.range('cross_entropy', N, N * V * 6, 1, [be.p(lg), pt, be.p(o[0]!), be.p(o[1]!), V, ignore]);
  },
  cross_entropy_backward(be, i, o, a) {
    ceBackward(be, i[0]!, i[1]!, i[2]!, i[3]!, o[0]!, a, 'cross_entropy_backward');
  },
  // the same export with dlogits = logits: expRow reads each vector of a row before it stores over it
  cross_entropy_backward_inplace(be, i, o, a) {
    ceBackward(be, o[0]!, i[0]!, i[1]!, i[2]!, o[0]!, a, 'cross_entropy_backward_inplace');
  },
};

/** dlogits = dloss·(softmax(logits) − onehot(targets)) by rows, split across the pool (dlogits may be logits). */
function ceBackward(
  be: WasmCore,
  lg: View,
  tg: View,
  lse: View,
  dl: View,
  out: View,
  a: Attrs | undefined,
  what: string,
): void {
  const V = lg.shape[lg.shape.length - 1]!,
    N = prod(lg.shape) / V,
    ignore = num(a, 'ignoreIndex', -100);
  const pt = be.p(tg);
  be.checkIds(pt, N, V, ignore, `${what}: target`);
  be.range('cross_entropy_backward', N, N * V * 6, 1, [be.p(lg), pt, be.p(lse), be.p(dl), be.p(out), V, ignore]);
}
