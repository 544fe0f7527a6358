/**
 * The host half of `sample` at plain temperature drawn on the device (./webgpu/sample_certified.ts): the bound that
 * certifies a device draw equal to ref's float64 draw (./sampling.ts: rowWeights, drawWeighted), and the check.
 *
 * Notation, per row (scaled by 2^31 throughout): W_i = 2^31·exp((l_i − m)/T) exactly (real numbers), S_i = Σ_{k≤i} W_k;
 * ref's running float64 sums P_i (×2^31) and target t = fl(u·P_{V−1}); the device's exact integer prefix sums Q_i of
 * q_k = u32(2^31·w̃_k), w̃_k = exp_f32(y_k), y_k = fl(fl(l_k − m)·f32(1/T)) (0 where y_k < −80).
 *
 * 1. Device terms: y_k = Y_k(1 + δ), |δ| ≤ c_y = (1 + 2^−24)²(1 + ρ) − 1 (the subtraction, the product, ρ the
 *    rounding of 1/T to f32); WGSL's exp is within 3 + 2|y| ULP (WGSL spec, accuracy of `exp`), taken twice over:
 *    ε = 2·(3 + 2|y|)·2^−23 relative. So |2^31·w̃_k − W_k| ≤ a_k = (C0 + C1·|y_k|)·2^31·w̃_k with C0, C1 below (5 %
 *    over the first-order terms: covers the products of small terms, W ≤ w̃/(1 − e), the f32 rounding of a_k itself
 *    and of C0, C1, and flushed subnormals, < 2^−126 in y). Truncating to q_k costs < 1 each (< 2 allowed: either
 *    rounding mode), the cut below y = −80 < 2^31·e^−79.99 ≪ 1 each. The device sums a_k in f32 over at most
 *    h = ⌈V/256⌉ + 258 additions (its chunks then the scan): the computed sum A ≥ (1 − γ_h)·Σ a_k (positive terms).
 *    Hence |Q_i − S_i| ≤ A_i/(1 − γ_h) + 2(i + 1).
 * 2. Ref: its exponent has ≤ 3 float64 roundings (|x| ≤ 700: ≤ 2.4e−13 absolute), expNonPositive ≤ 5e−16 relative
 *    (and 0 below −700), its running sum γ_V in float64: |P_i − S_i| ≤ 1e−9·S_i for V ≤ 2^21, taken as 2e−9·Q_i + 1.
 * 3. E_i = 2·(A_i/(1 − γ_h) + 2(i + 1) + 2e−9·Q_i + 2) ≥ |Q_i − P_i| (the factor 2: slack). The target: with
 *    t_H = fl(u·Q_total), |t − t_H| ≤ E_t = u·E_{V−1} + 2^−50·Q_total + 2.
 * 4. Certified: j found, Q_total > 0, t_H + E_t < Q_j − E_j, and j = 0 or Q_{j−1} + E_{j−1} < t_H − E_t. Then
 *    P_{j−1} < t < P_j: ref's running sum (nondecreasing) passes t first at j, so drawWeighted returns j. (j = 0:
 *    P_{−1} = 0 ≤ t.) The float64 arithmetic of the check is exact up to 2^−53 relative on values < 2^53: the
 *    "+ 2" terms cover it.
 * Any row not certified: the caller samples every row of the call from the read-back logits (ref's sampleKernel).
 * prob = w̃_j/Σ w̃ and logprob = l_j − lse are float32 (within the conformance tolerance of ref's, as greedy's).
 */
import type { RowSampling } from './sampling.js';

/** u32 words per row of the device's result. */
export const CERT_WORDS = 12;
const WGS = 256;
const U = 2 ** -24;

type Out = { data: { [i: number]: number } };

/** The constants of the device kernel for temperature T and rows of V: invT = f32(1/T), C0, C1, the chunk length. */
export function certConstants(T: number, V: number): { invT: number; c0: number; c1: number; chunk: number } {
  const invT = Math.fround(1 / T);
  const rho = Math.abs(invT * T - 1) + 2 ** -50;
  const cy = (1 + U) ** 2 * (1 + rho) - 1 + 2 ** -50;
  const K = 2; // the spec's exp bound, taken twice
  const up = (x: number) => Math.fround(x * (1 + 2 ** -20));
  return {
    invT,
    c0: up(1.05 * K * 3 * 2 ** -23),
    c1: up(1.05 * (K * 2 * 2 ** -23 + 1.0001 * 1.001 * cy)),
    chunk: Math.ceil(V / WGS),
  };
}

/**
 * Check every row's device draw (`words`: N rows of CERT_WORDS, ./webgpu/sample_certified.ts) for rows of V and write
 * ids and probs; false (nothing to trust) when some row is not certified. `slack` scales the bound (1; tests lower it
 * to show that the bound matters).
 */
export function certifyRows(
  words: Uint32Array,
  V: number,
  _o: RowSampling,
  u: readonly number[],
  ids: Out,
  probs: Out,
  slack = 1,
): boolean {
  const N = u.length;
  const f = new Float32Array(words.buffer, words.byteOffset, words.length);
  const h = Math.ceil(V / WGS) + WGS + 2;
  const g = 1 / (1 - (h * U) / (1 - h * U));
  const bound = (A: number, Q: number, n: number) => slack * 2 * (A * g + 2 * n + 2e-9 * Q + 2);
  const q64 = (hi: number, lo: number) => hi * 4294967296 + lo;
  for (let n = 0; n < N; n++) {
    const b = n * CERT_WORDS,
      j = words[b]!;
    if (j >= V) return false;
    const Qtot = q64(words[b + 7]!, words[b + 8]!);
    if (!(Qtot > 0)) return false;
    const Atot = f[b + 9]!,
      Qp = q64(words[b + 1]!, words[b + 2]!),
      Qj = q64(words[b + 3]!, words[b + 4]!),
      Ap = f[b + 5]!,
      Aj = f[b + 6]!;
    if (!(Atot >= 0 && Ap >= 0 && Aj >= Ap)) return false;
    const tH = u[n]! * Qtot;
    const Et = u[n]! * bound(Atot, Qtot, V) + slack * (2 ** -50 * Qtot + 2);
    if (!(tH + Et < Qj - bound(Aj, Qj, j + 1))) return false;
    if (j > 0 && !(Qp + bound(Ap, Qp, j) < tH - Et)) return false;
  }
  for (let n = 0; n < N; n++) {
    const b = n * CERT_WORDS;
    ids.data[n] = words[b]!;
    probs.data[2 * n] = f[b + 10]!;
    probs.data[2 * n + 1] = f[b + 11]!;
  }
  return true;
}
