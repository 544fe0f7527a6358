/**
 * The wasm backend's products (./assembly/matmul.ts, ./assembly/gemv.ts): matmul (batched, transposes, fused bias,
 * accumulate; a packed 4×8 kernel, split by batch, rows or columns), the decode-shaped x·Wᵀ of a few rows as dot
 * products over weight rows (gemv), and the quantised linears matmul_q8 and matmul_bf16 (gemv-shaped).
 */
import type { View } from '../backend.js';
import {
  EXPORT_INDEX,
  flag,
  GEMV_PARALLEL_BYTES,
  MIN_PARALLEL_WORK,
  num,
  prod,
  type WasmCore,
  type WasmKernel,
} from './core.js';
import { binary } from './elementwise.js';
import { splitRange } from './layout.js';

/** Rows up to which x·Wᵀ takes the dot-product (gemv) path instead of the packed 4×8 kernel. */
const GEMV_MAX_ROWS = 4;
/** Column chunks per thread of a split gemv. */
const GEMV_CHUNKS_PER_THREAD = 4;

/** M, N, K of a quantised linear: x [..., M, K], packed weights [N, K/per], out [..., M, N]. */
function quantDims(x: View, w: View): { M: number; N: number; K: number } {
  const K = x.shape[x.shape.length - 1]!,
    N = w.shape[0]!,
    M = prod(x.shape) / K;
  return { M, N, K };
}

/**
 * A decode-shaped kernel (args end with scratch, lo, hi over N output columns): split by columns when the work is
 * big enough to be worth a second thread (`bytes`: weight bytes × rows of x; each chunk a multiple of 8 columns).
 */
function gemv(
  be: WasmCore,
  fn: 'gemv_nt' | 'matmul_q8' | 'matmul_q4k' | 'matmul_bf16',
  N: number,
  bytes: number,
  head: number[],
): void {
  if (bytes < GEMV_PARALLEL_BYTES || be.threads <= 1 || N < 16) {
    be.fns[fn](...head, be.scratch[0]!, 0, N);
    return;
  }
  const ranges = splitRange(N, be.threads * GEMV_CHUNKS_PER_THREAD, 8);
  be.pool.run(
    EXPORT_INDEX.get(fn)!,
    be.fns[fn],
    ranges.map(([lo, hi]) => [...head, 0, lo, hi]),
  );
}

/**
 * Rows of x from which a quantised product runs as float32 panels (a prompt's prefill) instead of gemv-shaped passes
 * (which stream the weights once per 4–8 rows of x), per form: where the panels' one dequantisation pass costs less
 * than the passes it saves (measured on a 12 × 768 Llama: prefill of 256 tokens q8 382 → 481 tok/s, q4k 426 → 508,
 * bf16 275 → 474; below these rows the gemv passes were as fast or faster). LLMTS_QUANT_PANEL_ROWS sets one bound
 * for all (the bench's comparison).
 */
const PANEL_ENV = globalThis.process?.env?.['LLMTS_QUANT_PANEL_ROWS'];
/** The panels' settings (tests and benches change them). */
export const quantPanels = {
  minRows: { q8: Number(PANEL_ENV ?? 96), q4k: Number(PANEL_ENV ?? 64), bf16: Number(PANEL_ENV ?? 32) },
  /** Weights dequantised per panel: 4M (16 MB of float32), so even a 128k-token head is never whole in float32. */
  weights: 1 << 22,
};

/**
 * out (M, N) = x (M, K) · Wᵀ for a quantised W of N rows, many rows of x: W dequantised a panel of rows at a time
 * into float32 (`dequant(ids, n, dst)`: its rows `ids[0..n)` — the embedding kernel of its form, the same values the
 * gemv kernels read) and multiplied by the packed float32 kernel, the panel's columns copied into place; x rounded
 * first as the kernel rounds it (`round`: the `round_rows` export), so the result is the contract's up to float32
 * summation order. The dequantisation costs one pass over W; the product then runs at the float32 GEMM's rate
 * instead of M/4 passes.
 */
function panels(
  be: WasmCore,
  x: View,
  out: View,
  M: number,
  N: number,
  K: number,
  round: 'q8' | 'q4k' | null,
  dequant: (ids: number, n: number, dst: number) => void,
): void {
  const rows = Math.min(N, Math.max(8, Math.floor(quantPanels.weights / K / 8) * 8));
  const w = be.alloc(rows * K, 'f32'),
    ids = be.alloc(rows, 'i32'),
    y = rows < N ? be.alloc(M * rows, 'f32') : null,
    xr = round ? be.alloc(M * K, 'f32') : null;
  try {
    // the activations rounded as the kernel's contract says (kernels.ts), each value its integer times its scale
    if (xr)
      be.range('round_rows', M, M * K, 1, [be.p(x), be.p({ buf: xr, shape: [M, K] }), K, round === 'q4k' ? 1 : 0]);
    const xv: View = { buf: xr ?? x.buf, shape: [M, K] };
    for (let lo = 0; lo < N; lo += rows) {
      const n = Math.min(rows, N - lo);
      be.write(
        ids,
        Int32Array.from({ length: n }, (_, k) => lo + k),
      );
      dequant(be.p({ buf: ids, shape: [n] }), n, be.p({ buf: w, shape: [n, K] }));
      if (!y) {
        product(be, xv, { buf: w, shape: [N, K] }, { buf: out.buf, shape: [M, N] }, false, true, false, 1);
        continue;
      }
      product(be, xv, { buf: w, shape: [n, K] }, { buf: y, shape: [M, n] }, false, true, false, 1);
      be.strided(be.p({ buf: y, shape: [M, n] }), be.p(out) + 4 * lo, [M, n], [n, 1], [N, 1]);
    }
  } finally {
    be.free(w);
    be.free(ids);
    if (y) be.free(y);
    if (xr) be.free(xr);
  }
}

/** out = alpha·op(a)·op(b) (+ out), shapes validated: picks gemv, one thread, or a batch/row/column split. */
function product(
  be: WasmCore,
  a: View,
  b: View,
  out: View,
  transA: boolean,
  transB: boolean,
  accumulate: boolean,
  alpha: number,
): void {
  const mat = (s: readonly number[]): [number, number] => [s.length >= 2 ? s[s.length - 2]! : 1, s[s.length - 1]!];
  const [ar, ac] = mat(a.shape),
    [br, bc] = mat(b.shape),
    [M, N] = mat(out.shape);
  let m = transA ? ac : ar;
  const K = transA ? ar : ac;
  let batch = M * N === 0 ? 0 : prod(out.shape) / (M * N);
  const ba = ar * ac === 0 ? 1 : prod(a.shape) / (ar * ac),
    bb = br * bc === 0 ? 1 : prod(b.shape) / (br * bc);
  if (batch === 0) return;
  let bsA = ba === 1 ? 0 : M * K,
    bsB = bb === 1 ? 0 : K * N;
  const bsC = M * N;
  // a batch of row blocks times one shared matrix is one tall matrix
  if (batch > 1 && bsB === 0 && !transA && bsA === M * K) {
    m = M * batch;
    batch = 1;
    bsA = 0;
  }
  const pa = be.p(a),
    pb = be.p(b),
    pc = be.p(out);
  if (batch === 1 && transB && !transA && m <= GEMV_MAX_ROWS) {
    // x·Wᵀ for a few rows (decode): dot products over contiguous weight rows, columns split across threads
    gemv(be, 'gemv_nt', N, N * K * 4 * m, [pa, pb, pc, m, N, K, alpha, accumulate ? 1 : 0]);
    return;
  }
  const work = 2 * batch * m * N * K;
  // matrix-vector products (decode) are memory-bound: worth splitting at a lower flop count
  const threads = work >= MIN_PARALLEL_WORK * (m < 4 ? 1 : 4) ? be.threads : 1;
  const head = [pa, pb, pc, batch, bsA, bsB, bsC, m, N, K, transA ? 1 : 0, transB ? 1 : 0, alpha, accumulate ? 1 : 0];
  if (threads <= 1) {
    be.fns.matmul(...head, 0, be.scratch[0]!, 0, batch);
    return;
  }
  let split: number, total: number, align: number;
  if (batch >= threads && (batch % threads === 0 || batch >= 4 * threads)) [split, total, align] = [0, batch, 1];
  else if (m >= 4 * threads && m >= N) [split, total, align] = [1, m, 4];
  else if (N >= 8 * threads) [split, total, align] = [2, N, 8];
  else if (m >= 4 * threads) [split, total, align] = [1, m, 4];
  else {
    be.fns.matmul(...head, 0, be.scratch[0]!, 0, batch);
    return;
  }
  const ranges = splitRange(total, threads * 2, align);
  be.pool.run(
    EXPORT_INDEX.get('matmul')!,
    be.fns.matmul,
    ranges.map(([lo, hi]) => [...head, split, 0, lo, hi]),
  );
}

export const MATMUL: Record<string, WasmKernel> = {
  matmul(be, i, o, a) {
    let accumulate = flag(a, 'accumulate', false);
    const bias = i[2];
    if (bias) {
      // out = bias on every row (or out += bias), then the product accumulates onto it: no separate add pass
      const out = o[0]!,
        N = out.shape[out.shape.length - 1] ?? 1,
        rows = N === 0 ? 0 : prod(out.shape) / N;
      if (accumulate) binary(be, 0, [out, { buf: bias.buf, shape: [N] }], [out]);
      else be.strided(be.p(bias), be.p(out), [rows, N], [0, 1], [N, 1]);
      accumulate = true;
    }
    product(
      be,
      i[0]!,
      i[1]!,
      o[0]!,
      flag(a, 'transA', false),
      flag(a, 'transB', false),
      accumulate,
      num(a, 'alpha', 1),
    );
  },
  matmul_q8(be, i, o) {
    const [x, wq, sc] = i as [View, View, View];
    const { M, N, K } = quantDims(x, wq);
    if (M >= quantPanels.minRows.q8)
      return panels(be, x, o[0]!, M, N, K, 'q8', (ids, n, dst) =>
        be.range('embedding_q8', n, n * K, 1, [be.p(wq), be.p(sc), ids, dst, K]),
      );
    be.ensureScratch(16 + 4 * 2 * K); // four rows of x rounded to int16 (gemv.ts)
    gemv(be, 'matmul_q8', N, N * K * M, [be.p(x), be.p(wq), be.p(sc), be.p(o[0]!), M, N, K]);
  },
  matmul_q4k(be, i, o) {
    const [x, wq] = i as [View, View];
    const { M, N, K } = quantDims(x, wq);
    if (M >= quantPanels.minRows.q4k)
      return panels(be, x, o[0]!, M, N, K, 'q4k', (ids, n, dst) =>
        be.range('embedding_q4k', n, n * K, 1, [be.p(wq), ids, dst, K]),
      );
    be.ensureScratch(8 * (K / 64 + K / 16 + 2 * K)); // eight rows of x rounded, their scales and sums per 32 (gemv.ts)
    gemv(be, 'matmul_q4k', N, ((N * K * 19) / 32) * M, [be.p(x), be.p(wq), be.p(o[0]!), M, N, K]);
  },
  matmul_bf16(be, i, o) {
    const [x, wb] = i as [View, View];
    const { M, N, K } = quantDims(x, wb);
    if (M >= quantPanels.minRows.bf16)
      return panels(be, x, o[0]!, M, N, K, null, (ids, n, dst) =>
        be.range('embedding_bf16', n, n * K, 1, [be.p(wb), ids, dst, K]),
      );
    be.ensureScratch(4 * 4 * K); // up to four rows of x, permuted (gemv.ts)
    gemv(be, 'matmul_bf16', N, N * K * 2 * M, [be.p(x), be.p(wb), be.p(o[0]!), M, N, K]);
  },
};
