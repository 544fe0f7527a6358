/**
 * The register-blocked matmul of the webgpu backend, for training and prefill shapes (./matmul.ts picks it when both
 * M and N exceed `tiledMatmul.min`): a 16×16 workgroup computes a block of 16R×16R outputs, each thread an R×R patch
 * held in vec4 accumulators (R = 4: 64×64 blocks; R = 8: 128×128), over k in steps of BK = 1024/(16R) (16 or 8) with
 * 16R×BK tiles of op(a) and BK×16R of op(b) staged in workgroup memory (8 KiB either way) — per k, a thread reads R/4
 * vec4 of a and R/4 of b from the tiles and does R² multiply-adds, where the 32×32 kernel of ./matmul.ts does 4 for
 * 4 scalar reads. The classic SGEMM blocking (as in CUTLASS's SIMT kernels and the WebGPU matmul write-ups), without
 * vectorised global loads, so any M, N, K and layout work.
 *
 *   tiles in workgroup memory, k-major (a row of 16R values per k, as 4R vec4):
 *     As[k][m/4] = op(a)[row0 + m, k0 + k]      Bs[k][n/4] = op(b)[k0 + k, col0 + n]
 *   thread (tx, ty): out rows row0 + R·ty … + R − 1, columns col0 + R·tx … + R − 1
 *     acc[q][c] += As[k][R·ty + q] · Bs[k][R·tx + c]
 *
 * Global loads run along each operand's contiguous axis (k for a row-major a, m for a transposed one; n for b, k for
 * a transposed b), 4 elements a thread a tile; elements past M, N or K load as 0. Each output sums its products in
 * k order, as the 32×32 kernel does (the same floats: bench/lab/webgpu-matmul.mjs checks). Parameters as
 * ./matmul.ts: M, N, K, the three batch strides, alpha.
 */
import {
  MATMUL_PARAMS,
  type MatmulPrecision,
  matmulBindings,
  operand,
  precisionHelpers,
  storeOutput,
} from './matmul_wgsl.js';

/** Threads per side of a workgroup. */
const TPS = 16;

/** Output block side of the kernel with R×R outputs a thread. */
export const tileOf = (R: 4 | 8): number => TPS * R;

/** WGSL of the register-blocked kernel (R×R outputs a thread) for one layout, bias, accumulate and precision. */
export function tiledMatmulShader(
  R: 4 | 8,
  transA: boolean,
  transB: boolean,
  bias: boolean,
  accumulate: boolean,
  precision: MatmulPrecision = 'f32',
): string {
  const TILE = tileOf(R),
    BK = 1024 / TILE,
    V = TILE / 4, // vec4 a tile row
    G = R / 4; // vec4 a thread's patch row
  const vecs = V * BK;
  // the unrolled inner product of one k: a's R rows (G vec4), b's R columns (G vec4), R·G vec4 multiply-adds
  const inner: string[] = [];
  for (let g = 0; g < G; g++) inner.push(`let a${g} = As[k * ${V}u + lid.y * ${G}u + ${g}u];`);
  for (let g = 0; g < G; g++) inner.push(`let b${g} = Bs[k * ${V}u + lid.x * ${G}u + ${g}u];`);
  for (let q = 0; q < R; q++)
    for (let g = 0; g < G; g++) inner.push(`acc[${q * G + g}] += a${q >> 2}.${'xyzw'[q & 3]} * b${g};`);
  return `${matmulBindings(bias)}${precisionHelpers(precision)}
var<workgroup> As: array<vec4<f32>, ${vecs}>;
var<workgroup> Bs: array<vec4<f32>, ${vecs}>;
@compute @workgroup_size(${TPS}, ${TPS}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${MATMUL_PARAMS}
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  var acc: array<vec4<f32>, ${R * G}>;
  for (var k0 = 0u; k0 < K; k0 += ${BK}u) {
    for (var r = 0u; r < 4u; r++) {
      let e = t + r * ${TPS * TPS}u;
      // op(a)[row0 + li, k0 + lk]: along k for a row-major a, along m for a transposed one
      let li = ${transA ? `e % ${TILE}u` : `e / ${BK}u`};
      let lk = ${transA ? `e / ${TILE}u` : `e % ${BK}u`};
      let i = row0 + li;
      let ka = k0 + lk;
      var av = 0.0;
      if (i < M && ka < K) { av = ${operand(`A[aOff + ${transA ? 'ka * M + i' : 'i * K + ka'}]`, precision)}; }
      As[lk * ${V}u + li / 4u][li % 4u] = av;
      // op(b)[k0 + lkb, col0 + lj]: along n for a row-major b, along k for a transposed one
      let lj = ${transB ? `e / ${BK}u` : `e % ${TILE}u`};
      let lkb = ${transB ? `e % ${BK}u` : `e / ${TILE}u`};
      let j = col0 + lj;
      let kb = k0 + lkb;
      var bv = 0.0;
      if (j < N && kb < K) { bv = ${operand(`B[bOff + ${transB ? 'j * K + kb' : 'kb * N + j'}]`, precision)}; }
      Bs[lkb * ${V}u + lj / 4u][lj % 4u] = bv;
    }
    workgroupBarrier();
    for (var k = 0u; k < ${BK}u; k++) {
      ${inner.join('\n      ')}
    }
    workgroupBarrier();
  }
  for (var q = 0u; q < ${R}u; q++) {
    let i = row0 + lid.y * ${R}u + q;
    if (i >= M) { break; }
    for (var c = 0u; c < ${R}u; c++) {
      let j = col0 + lid.x * ${R}u + c;
      if (j < N) {
        ${storeOutput(`acc[q * ${G}u + c / 4u][c % 4u]`, bias, accumulate)}
      }
    }
  }
}`;
}
