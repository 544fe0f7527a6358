/**
 * matmul on WebGPU: out[p] = alpha·op(a[p])·op(b[p]) (+ out) (+ bias) for each batch p (../kernels.ts), as a tiled
 * WGSL kernel: a 16×16 workgroup computes a 32×32 block of out (2×2 per thread), staging 32×16 tiles of op(a) and
 * 16×32 of op(b) in workgroup memory; transA / transB change only how a tile is loaded, so one generated shader per
 * layout (NN, NT, TN, TT), bias and accumulate. Batches run on the grid's z axis; a shared (batch 1) operand reads
 * offset 0. Products with both M and N above `tiledMatmul.min` (training, prefill) take the register-blocked kernel of
 * ./matmul_tiled.ts instead, and x·Wᵀ for a few rows of x (decode) the matrix-vector kernel of ./matmul_gemv.ts.
 * Every one of them comes in the backend's matmul precision: 'f32', or 'f16' (operands rounded to binary16 as they
 * are loaded, f32 accumulation: ./matmul_wgsl.ts). Under 'f16' with tensor cores on (./tensor_cores.ts), products
 * that ./matmul_tc_wgsl.ts's `tcPlan` accepts (M and N at least `tensorCoreMatmul.min`) take the subgroup-matrix
 * kernels of ./matmul_tc.ts instead (same operand rounding, f32 accumulation and epilogue).
 */
import type { Attrs } from '../backend.js';
import { size } from '../../util/shape.js';
import type { GpuContext } from './core.js';
import { Params } from './core.js';
import type { KView } from './kview.js';
import { GEMV_COLUMNS, GEMV_ROWS, gemvShader } from './matmul_gemv.js';
import { runTensorCoreMatmul } from './matmul_tc.js';
import { type TcSpelling, tcPlan, type tensorCoreMatmul } from './matmul_tc_wgsl.js';
import { tiledMatmulShader, tileOf } from './matmul_tiled.js';
import {
  MATMUL_PARAMS,
  type MatmulPrecision,
  matmulBindings,
  operand,
  precisionHelpers,
  storeOutput,
} from './matmul_wgsl.js';
import { wgsl } from './wgsl_memo.js';

/**
 * The register-blocked kernels (./matmul_tiled.ts), taken when M and N are both greater than `min` (smaller products,
 * decode's few rows, keep the 32×32 kernel, which wastes less of a block on them): 8×8 outputs a thread in 128×128
 * blocks when both are at least `big`, else 4×4 in 64×64. On SwiftShader the 8×8 kernel is ×4–4.7 and the 4×4 ×2.3
 * the 32×32's speed at M512 K256 N384 (bench/lab/webgpu-matmul.mjs); no GPU has measured them yet. Settable for
 * comparisons (min Infinity: always 32×32; big Infinity: never 8×8; big 0: 8×8 above min). x·Wᵀ with at most
 * `gemvRows` rows of x (decode) takes the matrix-vector kernel of ./matmul_gemv.ts (0: never).
 */
export const tiledMatmul = { min: 32, big: 128, gemvRows: GEMV_ROWS };

const T = 16; // threads per side
const BM = 32; // output block rows (and columns)
const BK = 16;

function shader(
  transA: boolean,
  transB: boolean,
  bias: boolean,
  accumulate: boolean,
  precision: MatmulPrecision,
): string {
  // params: M, N, K, aBatch (elements, 0 if shared), bBatch, oBatch, alpha
  const aAt = operand(transA ? 'A[aOff + k * M + i]' : 'A[aOff + i * K + k]', precision);
  const bAt = operand(transB ? 'B[bOff + j * K + k]' : 'B[bOff + k * N + j]', precision);
  return `${matmulBindings(bias)}${precisionHelpers(precision)}
var<workgroup> As: array<array<f32, ${BK}>, ${BM}>;
var<workgroup> Bs: array<array<f32, ${BM}>, ${BK}>;
@compute @workgroup_size(${T}, ${T}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${MATMUL_PARAMS}
  let row0 = wid.y * ${BM}u;
  let col0 = wid.x * ${BM}u;
  var acc: array<f32, 4>;
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    // each thread loads 2 elements of each tile
    for (var r = 0u; r < 2u; r++) {
      let li = lid.y + r * ${T}u; // tile row 0..31
      let lk = lid.x;             // tile col 0..15
      let i = row0 + li;
      let k = k0 + lk;
      As[li][lk] = select(0.0, ${aAt}, i < M && k < K);
      let kk = k0 + lid.y;
      let j = col0 + lid.x + r * ${T}u;
      Bs[lid.y][lid.x + r * ${T}u] = select(0.0, ${bAt.replace(/\bk\b/g, 'kk')}, j < N && kk < K);
    }
    workgroupBarrier();
    for (var k = 0u; k < ${BK}u; k++) {
      let a0 = As[lid.y][k];
      let a1 = As[lid.y + ${T}u][k];
      let b0 = Bs[k][lid.x];
      let b1 = Bs[k][lid.x + ${T}u];
      acc[0] += a0 * b0;
      acc[1] += a0 * b1;
      acc[2] += a1 * b0;
      acc[3] += a1 * b1;
    }
    workgroupBarrier();
  }
  for (var q = 0u; q < 4u; q++) {
    let i = row0 + lid.y + (q / 2u) * ${T}u;
    let j = col0 + lid.x + (q % 2u) * ${T}u;
    if (i < M && j < N) {
      ${storeOutput('acc[q]', bias, accumulate)}
    }
  }
}`;
}

/** The tensor-core kernels a call may take: the spelling that passed the self-check, and the plan's selection. */
export interface TcUse {
  spelling: TcSpelling;
  sel: typeof tensorCoreMatmul;
}

/**
 * Record one matmul call's dispatch. `precision` (the backend's matmul precision): 'f16' takes the kernels that
 * round each operand element to binary16 as they load it (./matmul_wgsl.ts f16r), each memoised apart from the f32
 * one; `tc` (f16 only, tensor cores on): products tcPlan accepts go to ./matmul_tc.ts. Returns whether they did.
 */
export function runMatmul(
  ctx: GpuContext,
  ins: readonly KView[],
  outs: readonly KView[],
  a: Attrs,
  precision: MatmulPrecision = 'f32',
  tc: TcUse | null = null,
): boolean {
  const transA = a['transA'] === true,
    transB = a['transB'] === true,
    accumulate = a['accumulate'] === true,
    alpha = (a['alpha'] as number | undefined) ?? 1;
  const A = ins[0]!,
    B = ins[1]!,
    bias = ins[2],
    O = outs[0]!;
  const r = O.shape.length;
  const M = O.shape[r - 2]!,
    N = O.shape[r - 1]!;
  const aShape = A.shape,
    K = transA ? aShape[aShape.length - 2]! : aShape[aShape.length - 1]!;
  const batches = size(O.shape) / Math.max(1, M * N);
  if (M * N === 0 || batches === 0) return false;
  const aB = size(A.shape) / (M * K || 1) === 1 ? 0 : M * K;
  const bB = size(B.shape) / (K * N || 1) === 1 ? 0 : K * N;
  if (tc && precision === 'f16') {
    const cap = Math.min(ctx.device.limits.maxBufferSize, ctx.device.limits.maxStorageBufferBindingSize);
    const plan = tcPlan(M, N, K, transA, transB, batches, aB === 0, bB === 0, cap, tc.sel);
    if (plan) {
      runTensorCoreMatmul(ctx, plan, tc.spelling, A, B, bias, O, accumulate, alpha);
      return true;
    }
  }
  const p = new Params().u32(M, N, K, aB, bB, M * N).f32(alpha);
  const bufs = [A.b.gpu, B.b.gpu, ...(bias ? [bias.b.gpu] : []), O.b.gpu];
  if (!transA && transB && M <= tiledMatmul.gemvRows && Math.ceil(N / GEMV_COLUMNS) <= 65535) {
    const code = wgsl(`matmul-gemv:${!!bias}:${accumulate}:${precision}`, () =>
      gemvShader(!!bias, accumulate, precision),
    );
    ctx.dispatch(code, p, bufs, [Math.ceil(N / GEMV_COLUMNS), 1, batches]);
    return false;
  }
  if (M > tiledMatmul.min && N > tiledMatmul.min) {
    const R = M >= tiledMatmul.big && N >= tiledMatmul.big ? 8 : 4,
      side = tileOf(R);
    const code = wgsl(`matmul-tiled:${R}:${transA}:${transB}:${!!bias}:${accumulate}:${precision}`, () =>
      tiledMatmulShader(R, transA, transB, !!bias, accumulate, precision),
    );
    ctx.dispatch(code, p, bufs, [Math.ceil(N / side), Math.ceil(M / side), batches]);
    return false;
  }
  const code = wgsl(`matmul:${transA}:${transB}:${!!bias}:${accumulate}:${precision}`, () =>
    shader(transA, transB, !!bias, accumulate, precision),
  );
  ctx.dispatch(code, p, bufs, [Math.ceil(N / BM), Math.ceil(M / BM), batches]);
  return false;
}
