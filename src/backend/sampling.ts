/**
 * The sampler's arithmetic on one row of logits, backend-neutral: the definition of the `sample` kernel
 * (src/backend/kernels.ts), with the checks and attribute parsing every backend shares. The JavaScript sampler
 * (src/generate/sampler.ts) and the `ref` kernel (src/backend/sample_rows.ts) use it as is; the `wasm` backend takes
 * its table and checks from here and ports the arithmetic operation for operation to WebAssembly
 * (src/backend/wasm/assembly/sample.ts), which therefore draws the same ids from the same logits and uniform number.
 * The webgpu backend runs `sampleRow` as is on a row's top-k candidates selected on the device (./sample_candidates.ts;
 * with penalties, on the candidates of a copy with the seen ids masked, plus those ids penalised: ./sample_penalized.ts),
 * and with top-p / min-p on its 1024 largest logits where it certifies the result ref's (./sample_nucleus.ts).
 * At plain temperature it draws in float32 on the device and certifies the id against a bound on its distance to
 * the float64 sums here (./sample_certified.ts), redrawing with `sampleKernel` when it cannot.
 *
 * For temperature T > 0, top-k k, top-p p, min-p q (the sampler's steps 4–8, on already-penalised logits l):
 *   m = max l;  w_i = exp((l_i − m)/T) for l_i ≥ (k-th largest l), else 0       (float64, `expNonPositive`)
 *   top-p: keep the largest w while the mass before is < p·Σw (ties: lowest ids first)  (`nucleusThreshold`)
 *   min-p: keep w_i ≥ q·max w
 *   draw:  the first id whose running sum of kept w (in id order) exceeds u·Σ(kept w), u uniform in [0, 1)
 * T = 0 is the argmax (lowest id on ties). Every sum runs in id order in float64, so the result is deterministic.
 * The hot path touches no fresh memory: the weights live in working arrays reused from call to call.
 */

import { ConfigError, ShapeError } from '../util/errors.js';

/** The row-level settings (the sampler's resolved options satisfy it). */
export interface RowSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

const POW2_NEG = new Float64Array(1100);
for (let i = 0; i < POW2_NEG.length; i++) POW2_NEG[i] = Math.pow(2, -i);
/** 2^(−j/256), j = 0..255: the table of `expNonPositive` (also copied into backends that sample on the device). */
export const EXP_TABLE = new Float64Array(256);
for (let j = 0; j < 256; j++) EXP_TABLE[j] = Math.pow(2, -j / 256);
const INV_LN2_256 = 256 / Math.LN2,
  LN2_256_HI = 0.6931471803691238 / 256,
  LN2_256_LO = 1.9082149292705877e-10 / 256;

/**
 * exp(x) for x ≤ 0, to float64 accuracy (relative error < 5e-16 above -700, 0 below), about 2× faster than
 * Math.exp in V8: x = −k·ln2/256 + r with |r| ≤ ln2/512, exp(r) by its Taylor series to degree 5, then
 * 2^(−(k mod 256)/256) and 2^(−⌊k/256⌋) from tables. The sampler calls it V times per token.
 * Every step is one IEEE float64 operation in a fixed order (no fused multiply-add), so a WebAssembly port with
 * the same table gives the same bits (src/backend/wasm/assembly/sample.ts).
 */
export function expNonPositive(x: number): number {
  if (!(x >= -700)) return 0;
  const k = (-x * INV_LN2_256 + 0.5) | 0;
  const r = x + k * LN2_256_HI + k * LN2_256_LO;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120)))));
  return p * EXP_TABLE[k & 255]! * POW2_NEG[k >>> 8]!;
}

/**
 * Working memory of the hot path, reused from token to token (one array per slot, sized to the vocabulary; the
 * sampler runs one call at a time). Slot 0: the weights; 1: free for the caller (the penalised logits); 2: quickselect copies.
 */
const work: Float64Array[] = [new Float64Array(0), new Float64Array(0), new Float64Array(0)];
export function workArray(slot: 0 | 1 | 2, n: number): Float64Array {
  let a = work[slot]!;
  if (a.length !== n) work[slot] = a = new Float64Array(n);
  return a;
}

/** k-th largest value (1-based k ≤ length) of an array, by quickselect on a copy. */
function kthLargest(values: ArrayLike<number>, k: number): number {
  const n = values.length;
  const a = workArray(2, n);
  for (let i = 0; i < n; i++) a[i] = values[i]!;
  let lo = 0,
    hi = n - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo,
      j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}

/**
 * The nucleus of a weight vector: the largest entries, in descending order, while the mass before each is < `p`
 * (for probabilities, p = top_p; for unnormalised weights, p = top_p × their sum). Described as a value `t` and a
 * count `kEq`: every entry > t is kept, plus the first `kEq` entries equal to t (lowest ids first).
 * Expected O(V): a three-way quickselect on the mass instead of a full sort; for large vectors of weights ≤ 1
 * (always the case in the sampler) first narrowed to one mass bin (`nucleusInBins`).
 */
export function nucleusThreshold(probs: Float64Array, p: number): { t: number; kEq: number } {
  const n = probs.length;
  let wmax = 0;
  for (let i = 0; i < n; i++) if (probs[i]! > wmax) wmax = probs[i]!;
  if (n >= BIN_MIN && wmax <= 1) {
    const hi = new Uint32Array(probs.buffer, probs.byteOffset, n * 2);
    binMass.fill(0);
    let top = 0,
      bottom = binMass.length;
    for (let i = 0; i < n; i++) {
      const v = probs[i]!;
      if (v > 0) {
        const b = hi[2 * i + 1]! >>> BIN_SHIFT;
        binMass[b] += v;
        if (b > top) top = b;
        if (b < bottom) bottom = b;
      }
    }
    return nucleusInBins(probs, p, top, bottom);
  }
  const a = new Float64Array(n);
  return nucleusSelect(a, copyPositive(probs, a), p);
}

/** Vocabularies from this size on find the nucleus through mass bins. */
const BIN_MIN = 4096;
/** Bits of a double's high word kept for its bin: sign, 11 exponent bits, 6 mantissa bits (64 bins per octave). */
const BIN_SHIFT = 14;
/** Bins of the weights in (0, 1]: 1.0's high word 0x3FF00000 >>> 14 = 65472 is the largest. */
const binMass = new Float64Array(65536);

/** The positive entries of `v`, in order, into `out`; returns their count. */
function copyPositive(v: Float64Array, out: Float64Array): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (v[i]! > 0) out[n++] = v[i]!;
  return n;
}

/**
 * The nucleus for a large vocabulary, given the mass per bin (`binMass[b]`: the sum in id order of the positive
 * entries whose float64 high word >>> BIN_SHIFT is b, for b in [bottom, top]). For positive doubles the bit pattern
 * orders like the value, so the bins sort coarsely (64 per octave): walk down from the largest bin until the mass
 * reaches p, and settle the exact threshold inside that one bin with `nucleusSelect`.
 */
function nucleusInBins(probs: Float64Array, p: number, top: number, bottom: number): { t: number; kEq: number } {
  const n = probs.length;
  const hi = new Uint32Array(probs.buffer, probs.byteOffset, n * 2);
  let acc = 0;
  for (let b = top; b >= bottom; b--) {
    const m = binMass[b]!;
    if (m === 0) continue;
    if (acc + m >= p) {
      const sub = workArray(2, n);
      let k = 0;
      for (let i = 0; i < n; i++) if (probs[i]! > 0 && hi[2 * i + 1]! >>> BIN_SHIFT === b) sub[k++] = probs[i]!;
      return nucleusSelect(sub, k, p - acc);
    }
    acc += m;
  }
  const a = workArray(2, n);
  return nucleusSelect(a, copyPositive(probs, a), p); // rounding: p is past the total mass
}

/**
 * Expected O(n) three-way quickselect on the mass (the exact rule; see nucleusThreshold) over the positive values
 * a[0..n), which it reorders.
 */
function nucleusSelect(a: Float64Array, n: number, p: number): { t: number; kEq: number } {
  let lo = 0,
    hi = n; // current range [lo, hi); all values in it are < every value already committed
  let acc = 0; // mass of the committed (larger) values
  while (hi > lo) {
    // median-of-three pivot
    const x = a[lo]!,
      y = a[(lo + hi) >>> 1]!,
      z = a[hi - 1]!;
    // biome-ignore lint/complexity/useMathMinMax: a median of three, not a min or max
    const v = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    // three-way partition: [lo, gt) > v, [gt, lt) == v, [lt, hi) < v
    let gt = lo,
      i = lo,
      lt = hi;
    while (i < lt) {
      const w = a[i]!;
      if (w > v) {
        a[i] = a[gt]!;
        a[gt] = w;
        gt++;
        i++;
      } else if (w < v) {
        lt--;
        a[i] = a[lt]!;
        a[lt] = w;
      } else i++;
    }
    let mG = 0;
    for (let j = lo; j < gt; j++) mG += a[j]!;
    if (gt > lo && acc + mG >= p) {
      hi = gt; // the nucleus ends among the larger values
      continue;
    }
    // the nucleus ends among the values equal to v, or below them
    let before = acc + mG;
    const nEq = lt - gt;
    let k = 0;
    while (k < nEq && before < p) {
      before += v;
      k++;
    }
    if (before >= p || lt === hi) return { t: v, kEq: k };
    acc = before;
    lo = lt;
  }
  return { t: 0, kEq: 0 }; // only reached when nothing has mass
}

export interface Weights {
  /** Unnormalised final weights (0 = filtered out); the distribution is w / sum. Working memory: reused. */
  w: Float64Array;
  sum: number;
  /** log Σ exp(l) of the row given, when it fell out of the same pass (temperature 1), else NaN. */
  lse: number;
}

/**
 * The sampling distribution of logits `l` at temperature > 0, as unnormalised weights: the hot path of
 * every generated token. One pass takes the exponentials, the total mass, the top-k cut and (large vocabularies,
 * top-p < 1) the mass bins of the nucleus search; each later filter works on the weights and their running sum
 * instead of renormalising (same distribution; few passes over V, no allocation).
 * `fromLength`: the length of the row `l` was taken from, when `l` is that row's top-k candidates (every id with a
 * nonzero weight, in id order: ./sample_candidates.ts); it picks the nucleus search the full row takes (mass bins
 * from BIN_MIN on), whose sums run in another order, so that the candidates give the full row's weights bit for bit.
 * (`lse` is then that of the candidates only.)
 */
export function rowWeights(l: ArrayLike<number>, o: RowSampling, fromLength = l.length): Weights {
  const V = l.length;
  const w = workArray(0, V);
  // top-k on the logits (temperature > 0 does not change their order)
  let thr = -Infinity;
  if (o.topK > 0 && o.topK < V) thr = kthLargest(l, o.topK);
  // temperature: w = exp((l − max) / T) over the survivors
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const x = l[i]!;
    if (x > max) max = x;
  }
  const invT = 1 / o.temperature;
  let sum = 0,
    all = 0;
  const bins = o.topP < 1 && fromLength >= BIN_MIN;
  let top = 0,
    bottom = binMass.length;
  if (bins) {
    binMass.fill(0);
    const hi = new Uint32Array(w.buffer, w.byteOffset, V * 2);
    for (let i = 0; i < V; i++) {
      const x = l[i]!;
      const e = expNonPositive((x - max) * invT);
      all += e;
      if (x >= thr && e > 0) {
        w[i] = e;
        sum += e;
        const b = hi[2 * i + 1]! >>> BIN_SHIFT;
        binMass[b] += e;
        if (b > top) top = b;
        if (b < bottom) bottom = b;
      } else w[i] = 0;
    }
  } else {
    for (let i = 0; i < V; i++) {
      const x = l[i]!;
      const e = expNonPositive((x - max) * invT);
      all += e;
      if (x >= thr) {
        w[i] = e;
        sum += e;
      } else w[i] = 0;
    }
  }
  const lse = o.temperature === 1 ? max + Math.log(all) : NaN;
  // top-p: keep the largest weights up to topP of the mass
  if (o.topP < 1) {
    const p = o.topP * sum;
    const { t, kEq } = bins ? nucleusInBins(w, p, top, bottom) : nucleusThreshold(w, p);
    // kept: q > t, or q = t among the first kEq such; as arithmetic (q·1 = q, q·0 = 0, sum + 0 = sum) because the
    // two cases interleave unpredictably in a flat distribution
    let eq = 0;
    sum = 0;
    for (let i = 0; i < V; i++) {
      const q = w[i]!;
      const isEq = +(q === t);
      const kq = q * (+(q > t) | (isEq & +(eq < kEq)));
      eq += isEq;
      sum += kq;
      w[i] = kq;
    }
  }
  // min-p: drop weights below minP × the largest
  if (o.minP > 0) {
    let wmax = 0;
    for (let i = 0; i < V; i++) if (w[i]! > wmax) wmax = w[i]!;
    const cut = o.minP * wmax;
    sum = 0;
    for (let i = 0; i < V; i++) {
      if (w[i]! < cut) w[i] = 0;
      else sum += w[i]!;
    }
  }
  return { w, sum, lse };
}

/** log Σ exp(logits): the model's normaliser, so logprob(id) = logits[id] − logSumExp. */
export function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += expNonPositive(logits[i]! - max);
  return max + Math.log(sum);
}

/** Index of the largest entry (the lowest on ties). */
export function argmax(l: ArrayLike<number>): number {
  let best = 0,
    bv = l[0]!;
  for (let i = 1; i < l.length; i++) {
    const x = l[i]!;
    if (x > bv) {
      bv = x;
      best = i;
    }
  }
  return best;
}

/**
 * The index i with  Σ_{j<i} w[j] ≤ u·sum < Σ_{j≤i} w[j]  (the running sum in id order, over positive weights): a
 * draw with probability w[i] / sum for u uniform in [0, 1). Rounding past the summed mass gives the last positive.
 */
export function drawWeighted(w: Float64Array, sum: number, u: number): number {
  const target = u * sum;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < w.length; i++) {
    const p = w[i]!;
    if (p <= 0) continue;
    acc += p;
    last = i;
    if (target < acc) return i;
  }
  return last;
}

/**
 * Sample one row: the id, its probability under the final distribution, and the row's log Σ exp (the model's
 * normaliser at temperature 1, so logprob(id) = l[id] − lse). `u` is the uniform number (unused at T = 0).
 * `fromLength`: as rowWeights' (l the top-k candidates of a row that long: the id is then an index into l).
 */
export function sampleRow(
  l: ArrayLike<number>,
  o: RowSampling,
  u: number,
  fromLength = l.length,
): { id: number; prob: number; lse: number } {
  if (o.temperature === 0) return { id: argmax(l), prob: 1, lse: logSumExp(l) };
  const d = rowWeights(l, o, fromLength);
  const id = drawWeighted(d.w, d.sum, u);
  return { id, prob: d.w[id]! / d.sum, lse: Number.isNaN(d.lse) ? logSumExp(l) : d.lse };
}

/** The `n` largest entries of `v` (ids and values), largest first; lowest id first among equal values. */
export function topN(v: ArrayLike<number>, n: number): { id: number; logprob: number }[] {
  const ids: number[] = [];
  const vals: number[] = [];
  if (n <= 0) return [];
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (ids.length === n && !(x > vals[n - 1]!)) continue;
    let j = ids.length === n ? n - 1 : ids.length;
    while (j > 0 && x > vals[j - 1]!) {
      if (j < n) {
        ids[j] = ids[j - 1]!;
        vals[j] = vals[j - 1]!;
      }
      j--;
    }
    ids[j] = i;
    vals[j] = x;
  }
  return ids.map((id, k) => ({ id, logprob: vals[k]! }));
}

/** The penalty settings (the sampler's resolved options satisfy it); 1, 0, 0 = off. */
export interface PenaltySettings {
  repetitionPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
}

/** Whether the settings change any logit of an id that was seen. */
export function penaltiesOn(o: PenaltySettings): boolean {
  return !(o.repetitionPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0);
}

/**
 * The penalties on a float32 row of logits, in place, for each (id, count) seen (count > 0): repetition (HF/CTRL)
 * l > 0 ? l / r : l · r, then l −= count · f + p, in float64, the result rounded to float32 like every logit (as
 * transformers and llama.cpp keep logits). The sampler's step 2, shared by the JavaScript path and every backend.
 */
export function penalizeRow(row: Float32Array, counts: Iterable<readonly [number, number]>, o: PenaltySettings): void {
  const r = o.repetitionPenalty,
    f = o.frequencyPenalty,
    p = o.presencePenalty;
  for (const [id, c] of counts) {
    if (!(id >= 0 && id < row.length) || !(c > 0)) continue;
    let x = row[id]!;
    if (r !== 1) x = x > 0 ? x / r : x * r;
    x -= c * f + p;
    row[id] = x;
  }
}

/** The `sample` kernel's penalty attributes (sampleAttrs): the settings and each row's flat [id, count, …]. */
export interface SamplePenalties {
  settings: PenaltySettings;
  counts: readonly (readonly number[])[];
}

/** Row n's (id, count) pairs when the penalties change its logits, else null. */
export function rowPenaltyPairs(p: SamplePenalties | undefined, n: number): Iterable<readonly [number, number]> | null {
  const flat = p?.counts[n];
  if (!p || !flat || flat.length === 0 || !penaltiesOn(p.settings)) return null;
  return (function* () {
    for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!] as const;
  })();
}

/** Most alternatives the `sample` kernel reports per row (OpenAI's top_logprobs allows 20). */
export const MAX_TOP_N = 20;

/** Checks of the `sample` kernel's attributes (shared by every backend). */
export function checkSampleArgs(N: number, V: number, o: RowSampling, u: readonly number[]): void {
  if (!(V > 0)) throw new ShapeError(`sample: rows of ${V} logits`);
  if (u.length !== N)
    throw new ConfigError('u', `sample: expected ${N} uniform numbers (one per row), got ${u.length}`);
  if (!(o.temperature >= 0)) throw new ConfigError('temperature', `sample: expected ≥ 0, got ${o.temperature}`);
  if (!Number.isInteger(o.topK) || o.topK < 0)
    throw new ConfigError('topK', `sample: expected an integer ≥ 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new ConfigError('topP', `sample: expected 0 < topP ≤ 1, got ${o.topP}`);
  if (!(o.minP >= 0 && o.minP <= 1)) throw new ConfigError('minP', `sample: expected 0 ≤ minP ≤ 1, got ${o.minP}`);
}

/**
 * The `sample` kernel's attributes with their defaults (topN: alternatives per row, 0 = none; penalties: the three
 * settings and the rows' (id, count) pairs as one flat `counts` [id, count, …] with `countOffsets` (N + 1 indices:
 * row n's pairs are counts[countOffsets[n] .. countOffsets[n + 1])), or none).
 */
export function sampleAttrs(a: Readonly<Record<string, unknown>> | undefined): {
  o: RowSampling;
  u: readonly number[];
  topN: number;
  penalties?: SamplePenalties;
} {
  const n = (k: string, d: number): number => {
    const v = a?.[k];
    if (v === undefined) return d;
    if (typeof v !== 'number') throw new ConfigError(k, `sample: expected a number, got ${typeof v}`);
    return v;
  };
  const u = a?.u;
  if (!Array.isArray(u) || u.some((x) => typeof x !== 'number' || !(x >= 0 && x < 1)))
    throw new ConfigError('u', 'sample: expected an array of uniform numbers in [0, 1), one per row');
  const top = n('topN', 0);
  if (!Number.isInteger(top) || top < 0 || top > MAX_TOP_N)
    throw new ConfigError('topN', `sample: expected an integer 0..${MAX_TOP_N}, got ${top}`);
  const o = { temperature: n('temperature', 1), topK: n('topK', 0), topP: n('topP', 1), minP: n('minP', 0) };
  const flat = a?.counts,
    offs = a?.countOffsets;
  if (flat === undefined) return { o, u: u as number[], topN: top };
  const isNums = (x: unknown): x is number[] => Array.isArray(x) && x.every((v) => typeof v === 'number');
  if (
    !isNums(flat) ||
    !isNums(offs) ||
    offs.length !== u.length + 1 ||
    offs[0] !== 0 ||
    offs[u.length] !== flat.length ||
    offs.some((x, i) => i > 0 && (x < offs[i - 1]! || (x - offs[i - 1]!) % 2 !== 0))
  )
    throw new ConfigError(
      'counts',
      `sample: expected flat [id, count, …] pairs with ${u.length + 1} countOffsets (0, …, their length) splitting them by row`,
    );
  const counts = Array.from({ length: u.length }, (_, i) => flat.slice(offs[i], offs[i + 1]));
  const settings = {
    repetitionPenalty: n('repetitionPenalty', 1),
    frequencyPenalty: n('frequencyPenalty', 0),
    presencePenalty: n('presencePenalty', 0),
  };
  if (
    !(settings.repetitionPenalty > 0) ||
    !Number.isFinite(settings.frequencyPenalty) ||
    !Number.isFinite(settings.presencePenalty)
  )
    throw new ConfigError('repetitionPenalty', 'sample: penalties must be finite, the repetition penalty > 0');
  return { o, u: u as number[], topN: top, penalties: { settings, counts } };
}
