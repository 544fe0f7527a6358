/**
 * How the quantised products round their activations (../backend/kernels.ts matmul_q8, matmul_q4k), in JavaScript:
 * the reference kernels' rule (the wasm kernels round in AssemblyScript: gemv.ts, and `round_rows` for the float32
 * panels of a prefill), and the tests' reference. All in float32, ties to even.
 *
 *   q8:  per row of K      dx = max|x|/8191, xq = round(x·(1/dx)) ∈ [−8191, 8191]
 *   q4k: per 256 of a row  dx = max|x|/127,  xq = round(x·(127/max|x|)) ∈ [−127, 127]   (llama.cpp's Q8_K)
 */

const f = Math.fround;

/** round-half-even of a float32 value, clamped to [−lim, lim]. */
function roundClamp(v: number, lim: number): number {
  let r = Math.round(v);
  if (r - v === 0.5 && r % 2 !== 0) r -= 1; // halves to even
  return Math.max(-lim, Math.min(lim, r));
}

/** x[o .. o + K) rounded as matmul_q8 rounds a row: xq (K integers) filled, the row's float32 scale returned. */
export function roundRowQ8(X: ArrayLike<number>, o: number, K: number, xq: Int32Array): number {
  let amax = 0;
  for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(f(X[o + k]!)));
  const dx = f(amax / 8191),
    id = dx === 0 ? 0 : f(1 / dx);
  for (let k = 0; k < K; k++) xq[k] = roundClamp(f(f(X[o + k]!) * id), 8191);
  return dx;
}

/** x[o .. o + 256) rounded as matmul_q4k rounds a super-block: xq[q0 ..] filled, the block's float32 scale returned. */
export function roundBlockQ8K(X: ArrayLike<number>, o: number, xq: Int32Array, q0: number): number {
  let amax = 0;
  for (let k = 0; k < 256; k++) amax = Math.max(amax, Math.abs(f(X[o + k]!)));
  const id = amax === 0 ? 0 : f(127 / amax);
  for (let k = 0; k < 256; k++) xq[q0 + k] = roundClamp(f(f(X[o + k]!) * id), 127);
  return f(amax / 127);
}
