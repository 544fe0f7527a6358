/**
 * Matrix-vector products on WebGPU: out = alpha·x·Wᵀ (+ out) (+ bias) for a few rows of x (M ≤ GEMV_ROWS: decode),
 * W row-major [N, K] as a linear layer stores it (./matmul.ts picks it for NT products that small). The tiled kernels
 * read Wᵀ's tile with one thread per column, K floats apart — a different cache line per thread. Here a workgroup of
 * 256 threads takes 8 output columns, 32 threads a column (a warp on NVIDIA), and the 32 walk the column's row of W
 * together, k = lane, lane + 32, … — each step one contiguous 128-byte read — accumulating the M rows of x at once
 * (x's rows are small and shared by all columns: cached); the 32 partial sums of a column are then added in
 * workgroup memory by halving (16, 8, 4, 2, 1). Parameters as ./matmul.ts: M, N, K, the three batch strides, alpha.
 *
 *   thread t: column j = 8·workgroup + t / 32, lane = t % 32
 *   part[m] = Σ_{k ≡ lane (mod 32)} x[m, k]·W[j, k]       out[m, j] = alpha·Σ_lane part[m] (+ out) (+ bias[j])
 */
import { type MatmulPrecision, matmulBindings, operand, precisionHelpers, storeOutput } from './matmul_wgsl.js';

/** Rows of x up to which an x·Wᵀ product takes this kernel. */
export const GEMV_ROWS = 4;
/** Output columns a workgroup computes (32 threads each). */
export const GEMV_COLUMNS = 8;

/**
 * A matrix-vector kernel (this file's, ./matmul_quant.ts's): `decls` its bindings; `row` the WGSL that adds column
 * j's products into part[m] for the M rows, lane by lane (k = lane, lane + 32, …; runs only for j < N); `store` what
 * lane 0 writes for row m once the 32 lanes' sum `v0` is formed by halving in workgroup memory. In scope for both:
 * wid, t (local index), lane, j, M, N, K. params: M, N, K, then the kernel's own.
 */
export function gemvKernel(decls: string, row: string, store: string): string {
  return `${decls}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let M = pu(0u);
  let N = pu(1u);
  let K = pu(2u);
  let lane = t % 32u;
  let j = wid.x * ${GEMV_COLUMNS}u + t / 32u;
  var part: array<f32, ${GEMV_ROWS}>;
  if (j < N) {
    ${row}
  }
  for (var m = 0u; m < M; m++) {
    red[t] = part[m];
    workgroupBarrier();
    for (var h = 16u; h > 0u; h = h / 2u) {
      if (lane < h) { red[t] += red[t + h]; }
      workgroupBarrier();
    }
    if (lane == 0u && j < N) {
      let v0 = red[t];
      ${store}
    }
    workgroupBarrier();
  }
}`;
}

/**
 * WGSL of the x·Wᵀ matrix-vector kernel, with bias and accumulate built in or not, in a matmul precision (params as
 * ./matmul.ts's).
 */
export function gemvShader(bias: boolean, accumulate: boolean, precision: MatmulPrecision = 'f32'): string {
  return gemvKernel(
    matmulBindings(bias) + precisionHelpers(precision),
    `let aOff = wid.z * pu(3u);
    let w0 = wid.z * pu(4u) + j * K;
    for (var k = lane; k < K; k += 32u) {
      let w = ${operand('B[w0 + k]', precision)};
      for (var m = 0u; m < M; m++) { part[m] += ${operand('A[aOff + m * K + k]', precision)} * w; }
    }`,
    `let i = m;
      let oOff = wid.z * pu(5u);
      ${storeOutput('v0', bias, accumulate)}`,
  );
}
