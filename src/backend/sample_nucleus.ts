/**
 * The host half of `sample` with top-p and/or min-p but no top-k (temperature > 0): ref's float64 sampler
 * (./sampling.ts `sampleRow`) on a row's top-`cap` candidates selected on the device (./webgpu/sample_topk.ts
 * `runSampleTopKTail`), certified to draw ref's id and probability bit for bit; a row it cannot certify makes the
 * caller read the full rows instead.
 *
 * Unlike top-k (./sample_candidates.ts), the entries outside the candidates C (the tail: l_i < the cap-th largest
 * logit) have nonzero weights here, and top-p's mass p = topP·Σ w runs over the whole row. Per row the device also
 * writes S̃ = Σ exp(y) and Ã = Σ (C0 + C1·|y|)·exp(y) over the tail (f32; y = (l − m)·f32(1/T), entries with
 * y < −80 left out), the constants those of the certified draw (./sample_certified.ts: exp within WGSL's accuracy
 * taken twice, the exponent's f32 roundings), so the tail's exact mass lies in
 *   [S̃/(1 + γ_h) − Ã/(1 − γ_h),  (S̃ + Ã)/(1 − γ_h) + V·2^−114]   (γ_h: f32 sums h = ⌈V/256⌉ + 10 deep; 2^−114 > e^−79.99)
 * and ref's float64 tail weights within 1e−12 of it (its exponent ≤ 2.4e−13 off, expNonPositive 5e−16). With the
 * candidates' own weights (computed here exactly as ref does), ref's row sum S lies in [S_lo, S_hi] (each widened
 * by g = (V + 16)·2^−52 for float64 summation), so ref's p in [p_lo, p_hi] = topP·[S_lo, S_hi] (widened by 2^−52).
 * A tail weight is at most w_thr·(1 + 1e−13), w_thr the weight of the smallest candidate logit (rounding is
 * monotone; expNonPositive within 5e−16 of exp).
 *
 * The nucleus searches (nucleusSelect, and from 4096 entries nucleusInBins, whose bins order by value) compare
 * float64 sums of "prefix sets" of the weights sorted in descending order against p (or p minus such a sum); each is
 * within G·(its mass) + 2^−52·p of the exact mass, G = (V + 16)·2^−51, whatever the order. With v_1 ≥ v_2 ≥ … the
 * candidates' positive weights and M_j = v_1 + … + v_j, entry j is kept for every p in range when
 * M_{j−1}·(1 + G) < p_lo·(1 − G), and the nucleus surely stops at K when M_K·(1 − G) ≥ p_hi·(1 + G). So:
 * - top-p is certified when such a K exists among the candidates with v_K > the largest tail weight: then every
 *   comparison either search makes, on the full row or on C (whose own p is in range too), comes out as in exact
 *   arithmetic, the threshold (t = v_K, kEq) is the same, and the nucleus lies in C (all of its ties included);
 * - min-p (cut = minP · the max weight 1) drops the whole tail when the largest tail weight < minP; with top-p, the
 *   row is also certified when the tail drops and the J-th weight, the last ≥ minP, is kept for every p (top-p then
 *   keeps all that min-p keeps).
 * Either way the final weights are zero outside C, and every later sum (in id order, over positive weights: +0 adds
 * nothing) is the full row's bit for bit. `sampleRow` on C alone would take p = topP·Σ_C, short of the tail's
 * share: it is given topP' = p_mid / Σ_C instead (p_mid = (p_lo + p_hi)/2; Σ_C its own sum, so its p is p_mid
 * within 2^−52, inside the range; topP' < 1, or 1 where min-p alone decides), and with `fromLength` = V (the full
 * row's nucleus search) it gives ref's id and probability. A row whose candidates are the whole row (V ≤ cap) needs no certificate.
 * With 0 < topK < V (topK > cap) ref's tail is cut further: only the upper bound holds, the lower is taken as 0.
 *
 * `tail` (penalties, ./sample_penalized_nucleus.ts): `l` is then a superset of the device's candidates (their
 * values and the seen ids' penalised ones), every entry outside it < `tail.thr` (the smallest candidate logit of the
 * masked copy), and the sums are relative to the copy's max `tail.max` ≤ the max m of `l`. The tail's weights
 * relative to m are those relative to tail.max times F = exp((tail.max − m)/T): with d = (tail.max − m)/T ≥ −600
 * (else not certified) ref's exponents stay above −680 (its weights normal, each within 3e−13 of exact: exponent
 * error ≤ 680·3·2^−53) and float64's exp(d) is within 3e−13 of F, so both bounds are scaled by exp(d)·(1 ± 1e−12).
 *
 * Layout of one row (32-bit words, `nucleusStride(cap)` = 4 + 2·cap): [count, lse, S̃, Ã (f32 bits), ids[cap],
 * logits[cap] (f32 bits)], as ./sample_candidates.ts's with the two tail sums after lse.
 */
import { candidateStride, writeCandidateDraw } from './sample_candidates.js';
import { certConstants } from './sample_certified.js';
import { checkSampleArgs, expNonPositive, sampleRow, type RowSampling } from './sampling.js';

type Out = { data: { [i: number]: number } };

/** Words of one row's slot: count, lse, the tail sums S̃ and Ã, cap ids, cap logits. */
export function nucleusStride(cap: number): number {
  return candidateStride(cap) + 2;
}

/** The device constants for temperature T, rows of V (invT = f32(1/T), C0, C1: ./sample_certified.ts). */
export function nucleusConstants(T: number, V: number): { invT: number; c0: number; c1: number } {
  const { invT, c0, c1 } = certConstants(T, V);
  return { invT, c0, c1 };
}

const U32 = 2 ** -24;

/**
 * Whether ref's draw on the full row (V long) is ref's draw on its candidates `l` (float32 logits in id order, all
 * entries ≥ the smallest of them; fewer than V), given the device's tail sums `ts`, `ta` (see above): the topP' to
 * draw from the candidates with (`o.topP` where top-p is off), or null when it cannot be certified. `tailScale`
 * scales the tail interval's distance from S̃ (1; tests lower it to show that the bound matters).
 */
export function certifyNucleus(
  l: ArrayLike<number>,
  V: number,
  o: RowSampling,
  ts: number,
  ta: number,
  tailScale = 1,
  tail?: { thr: number; max: number },
): number | null {
  const c = l.length;
  if (!(c >= 1 && c < V && o.temperature > 0 && ts >= 0 && ta >= 0 && ts < Infinity && ta < Infinity)) return null;
  let max = -Infinity,
    min = Infinity;
  for (let i = 0; i < c; i++) {
    const x = l[i]!;
    if (x > max) max = x;
    if (x < min) min = x;
  }
  if (tail) min = tail.thr;
  if (!(Number.isFinite(max) && min > -Infinity && min <= max)) return null;
  const invT = 1 / o.temperature;
  // the device's sums are relative to tail.max (≤ max): scaled by f = exp((tail.max − max)/T), see above
  const d = tail ? (tail.max - max) * invT : 0;
  if (!(d <= 0 && d >= -600)) return null;
  const f = d === 0 ? 1 : Math.exp(d),
    fHi = d === 0 ? 1 : f * (1 + 1e-12),
    fLo = d === 0 ? 1 : f * (1 - 1e-12);
  const v = new Float64Array(c);
  let n = 0,
    sumC = 0;
  for (let i = 0; i < c; i++) {
    const w = expNonPositive((l[i]! - max) * invT);
    if (w > 0) {
      v[n++] = w;
      sumC += w;
    }
  }
  const tailMax = expNonPositive((min - max) * invT) * (1 + 1e-13);
  const tailDrop = o.minP > 0 && tailMax < o.minP;
  if (o.topP === 1) return tailDrop ? 1 : null;
  // the tail's mass (ref's float64 weights) and ref's p
  const h = Math.ceil(V / 256) + 10,
    gh = (h * U32) / (1 - h * U32);
  const hiT = (ts + ((ts + ta) / (1 - gh) + V * 2 ** -114 - ts) * tailScale) * (1 + 1e-12) * fHi;
  const exactTail = o.topK === 0 || o.topK >= V;
  const loT = exactTail ? Math.max(0, (ts + (ts / (1 + gh) - ta / (1 - gh) - ts) * tailScale) * (1 - 1e-12) * fLo) : 0;
  const g = (V + 16) * 2 ** -52,
    G = (V + 16) * 2 ** -51;
  const pLo = o.topP * (sumC * (1 - g) + loT) * (1 - g) * (1 - 2 ** -52),
    pHi = o.topP * (sumC * (1 + g) + hiT) * (1 + g) * (1 + 2 ** -52);
  const sorted = v.subarray(0, n).sort().reverse();
  const keptAll = (j: number) => before(sorted, j) * (1 + G) < pLo * (1 - G); // entry j (1-based) kept for every p
  const pMid = (pLo + pHi) / 2,
    topPC = Math.min(1, pMid / sumC);
  // top-p: the first K whose mass reaches the middle of the range, robustly inside C and above the tail
  let m = 0,
    K = 0;
  while (K < n && m < pMid) m += sorted[K++]!;
  if (K >= 1 && m >= pMid) {
    const stops = before(sorted, K + 1) * (1 - G) >= pHi * (1 + G);
    if (keptAll(K) && stops && sorted[K - 1]! > tailMax && topPC < 1) return topPC;
  }
  // top-p with min-p: top-p keeps all that min-p keeps, and min-p drops the tail
  if (!tailDrop) return null;
  let J = 0;
  while (J < n && sorted[J]! >= o.minP) J++;
  return J >= 1 && keptAll(J) ? topPC : null;
}

/** The mass of the first j − 1 entries of `s` (exact enough: the callers' margins cover its rounding). */
function before(s: Float64Array, j: number): number {
  let m = 0;
  for (let i = 0; i < j - 1; i++) m += s[i]!;
  return m;
}

/**
 * Sample every row from its candidates (`words`: N slots of `nucleusStride(cap)` words) of rows V long, as
 * ./sample_candidates.ts `sampleCandidates` does (ids, probs = (probability, logit − lse), the n largest as
 * log-probabilities), each row certified as above. Returns false, having written nothing, when some row's slot
 * overflowed (ties at the cap) or some row is not certified: the caller samples the full rows instead.
 */
export function sampleNucleus(
  words: Int32Array,
  V: number,
  cap: number,
  ids: Out,
  probs: Out,
  o: RowSampling,
  u: readonly number[],
  top?: { n: number; ids: Out; logprobs: Out },
  tailScale = 1,
): boolean {
  const N = u.length,
    stride = nucleusStride(cap);
  checkSampleArgs(N, V, o, u);
  const bits = new Float32Array(words.buffer, words.byteOffset, N * stride);
  const topPs = new Float64Array(N);
  const row = (n: number) => {
    const base = n * stride,
      c = words[base]!;
    return { base, c, l: bits.subarray(base + 4 + cap, base + 4 + cap + c) };
  };
  for (let n = 0; n < N; n++) {
    const { base, c, l } = row(n);
    if (!(c >= 1 && c <= cap)) return false;
    const t = c < V ? certifyNucleus(l, V, o, bits[base + 2]!, bits[base + 3]!, tailScale) : o.topP;
    if (t === null) return false;
    topPs[n] = t;
  }
  for (let n = 0; n < N; n++) {
    const { base, c, l } = row(n),
      lse = bits[base + 1]!,
      rowIds = words.subarray(base + 4, base + 4 + c);
    writeCandidateDraw(n, l, rowIds, lse, sampleRow(l, { ...o, topP: topPs[n]! }, u[n]!, V), ids, probs, top);
  }
  return true;
}
