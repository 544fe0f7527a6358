/**
 * The sampler: from one row of next-token logits, pick a token id. The random "coin" is an `Rng` the caller passes in,
 * so the same seed gives the same draw on every run and backend.
 *
 * Order of operations (the Hugging Face `generate` / llama.cpp order):
 *   1. model log-probabilities  log_softmax(logits)            (reported, as OpenAI's `logprobs` reports the model's)
 *   2. penalties on the logits:
 *        repetition (HF/CTRL):   l > 0 ? l / r : l · r          for every id seen in the history window
 *        frequency / presence (OpenAI):  l −= count(id) · f + (count(id) > 0 ? p : 0)
 *   3. temperature 0 → greedy: argmax of the penalised logits (lowest id wins ties); stop here.
 *   4. temperature:  l / T
 *   5. top-k:  keep the tokens whose logit ≥ the k-th largest logit (ties at the boundary are all kept, as in HF)
 *   6. top-p (nucleus): sort the survivors by probability, descending; keep a token while the probability mass of the
 *        tokens before it is < p (so the smallest prefix whose mass reaches p is kept; the top token always is)
 *   7. min-p: keep the tokens whose probability ≥ min_p · (largest probability)
 *   8. sample from the softmax of what is left, with one uniform draw from the `Rng`.
 * Every filter works on the distribution left by the previous one (renormalised), as chained HF logits warpers do.
 *
 * Everything is computed from the one logits row given (no second forward): the chosen id, its probability under
 * the final sampling distribution, the model's raw log-probability of it, and the model's top-N alternatives.
 */
import { ConfigError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

/** Sampler settings. Field names follow the OpenAI / Hugging Face spelling in camelCase. */
export interface SamplerOptions {
  /** 0 = greedy (argmax); otherwise logits are divided by it. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. Default 0. */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches topP; 1 disables. Default 1. */
  topP?: number;
  /** Drop tokens whose probability is below minP × the top probability; 0 disables. Default 0. */
  minP?: number;
  /** HF/CTRL repetition penalty (> 0; 1 disables): positive logits of seen ids are divided by it, negative multiplied. */
  repetitionPenalty?: number;
  /** OpenAI frequency penalty: subtract count(id) × this from the logit of every seen id. Default 0. */
  frequencyPenalty?: number;
  /** OpenAI presence penalty: subtract this from the logit of every id seen at least once. Default 0. */
  presencePenalty?: number;
  /**
   * How many of the most recent tokens the penalties look at (llama.cpp `penalty_last_n`). Undefined or -1: the
   * whole sequence so far, prompt included (HF). 0: penalties off.
   */
  penaltyLastN?: number;
  /** How many alternatives (by the model's log-probability) to report per token, 0..20 as in OpenAI. Default 0. */
  topLogprobs?: number;
}

/** Settings with every default filled in. */
export type ResolvedSamplerOptions = Required<SamplerOptions>;

export const SAMPLER_DEFAULTS: ResolvedSamplerOptions = {
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  penaltyLastN: -1,
  topLogprobs: 0,
};

/** Most alternatives one token may report (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

/** One alternative token with the model's log-probability. */
export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** What the sampler picked, and the probabilities around it. */
export interface SampleResult {
  /** The chosen token id. */
  id: number;
  /** Its probability under the final sampling distribution (after penalties, temperature and filters; 1 if greedy). */
  prob: number;
  /** The model's log-probability of it: log_softmax(raw logits)[id], before penalties, temperature and filters. */
  logprob: number;
  /** The `topLogprobs` most likely ids under the model's distribution, most likely first (empty if topLogprobs = 0). */
  top: TokenLogprob[];
}

function isNum(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** Fill defaults and check every field; throws ConfigError naming the field. */
export function resolveSamplerOptions(o: SamplerOptions = {}): ResolvedSamplerOptions {
  const r: ResolvedSamplerOptions = { ...SAMPLER_DEFAULTS };
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (!(k in SAMPLER_DEFAULTS)) throw new ConfigError(k, `unknown sampler setting (known: ${Object.keys(SAMPLER_DEFAULTS).join(', ')})`);
    (r as unknown as Record<string, unknown>)[k] = v;
  }
  if (!isNum(r.temperature) || r.temperature < 0) throw new ConfigError('temperature', `expected a number ≥ 0, got ${String(r.temperature)}`);
  if (!Number.isInteger(r.topK) || r.topK < 0) throw new ConfigError('topK', `expected an integer ≥ 0 (0 disables), got ${String(r.topK)}`);
  if (!isNum(r.topP) || !(r.topP > 0 && r.topP <= 1)) throw new ConfigError('topP', `expected 0 < topP ≤ 1, got ${String(r.topP)}`);
  if (!isNum(r.minP) || r.minP < 0 || r.minP > 1) throw new ConfigError('minP', `expected 0 ≤ minP ≤ 1, got ${String(r.minP)}`);
  if (!isNum(r.repetitionPenalty) || r.repetitionPenalty <= 0)
    throw new ConfigError('repetitionPenalty', `expected a number > 0 (1 disables), got ${String(r.repetitionPenalty)}`);
  if (!isNum(r.frequencyPenalty)) throw new ConfigError('frequencyPenalty', `expected a finite number, got ${String(r.frequencyPenalty)}`);
  if (!isNum(r.presencePenalty)) throw new ConfigError('presencePenalty', `expected a finite number, got ${String(r.presencePenalty)}`);
  if (!Number.isInteger(r.penaltyLastN) || r.penaltyLastN < -1)
    throw new ConfigError('penaltyLastN', `expected an integer ≥ -1 (-1: whole sequence, 0: off), got ${String(r.penaltyLastN)}`);
  if (!Number.isInteger(r.topLogprobs) || r.topLogprobs < 0 || r.topLogprobs > MAX_TOP_LOGPROBS)
    throw new ConfigError('topLogprobs', `expected an integer in 0..${MAX_TOP_LOGPROBS}, got ${String(r.topLogprobs)}`);
  return r;
}

const POW2_NEG = new Float64Array(1100);
for (let i = 0; i < POW2_NEG.length; i++) POW2_NEG[i] = Math.pow(2, -i);
const LOG2E = 1.4426950408889634, LN2_HI = 0.6931471803691238, LN2_LO = 1.9082149292705877e-10;

/**
 * exp(x) for x ≤ 0, to float64 accuracy (relative error < 1e-15 above -700, 0 below), about 2.5× faster than
 * Math.exp in V8: x = k·ln2 + r with |r| ≤ ln2/2, exp(r) by its Taylor series to degree 12, 2^k from a table.
 * The sampler calls it V times per token.
 */
export function expNonPositive(x: number): number {
  if (x < -700) return 0;
  const k = (x * LOG2E - 0.5) | 0;
  const r = x - k * LN2_HI - k * LN2_LO;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 +
    r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r / 479001600)))))))))));
  return p * POW2_NEG[-k]!;
}

/** log_softmax of a row, in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[i]! - lse;
  return out;
}

/** The `n` largest entries of `v` (ids and values), largest first; lowest id first among equal values. */
export function topN(v: ArrayLike<number>, n: number): TokenLogprob[] {
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

/** k-th largest value (1-based k ≤ length) of an array, by quickselect on a copy. */
function kthLargest(values: ArrayLike<number>, k: number): number {
  const a = Float64Array.from(values);
  let lo = 0, hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!; a[i] = a[j]!; a[j] = t;
        i++; j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}

/** Token-count bookkeeping for the penalties, over the last `penaltyLastN` tokens (or all). */
export class PenaltyWindow {
  readonly counts = new Map<number, number>();
  private readonly queue: number[] = [];
  constructor(private readonly lastN: number) {}
  /** Record one more token of the sequence (prompt or generated). */
  push(id: number): void {
    if (this.lastN === 0) return;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    if (this.lastN > 0) {
      this.queue.push(id);
      if (this.queue.length > this.lastN) {
        const old = this.queue.shift()!;
        const c = this.counts.get(old)! - 1;
        if (c === 0) this.counts.delete(old);
        else this.counts.set(old, c);
      }
    }
  }
  static from(ids: ArrayLike<number>, lastN: number): PenaltyWindow {
    const w = new PenaltyWindow(lastN);
    for (let i = 0; i < ids.length; i++) w.push(ids[i]!);
    return w;
  }
}

/** Apply repetition, frequency and presence penalties in place (float64 working copy of the logits). */
export function applyPenalties(l: Float64Array, counts: ReadonlyMap<number, number>, o: ResolvedSamplerOptions): void {
  const r = o.repetitionPenalty, f = o.frequencyPenalty, p = o.presencePenalty;
  if (r === 1 && f === 0 && p === 0) return;
  for (const [id, c] of counts) {
    if (id < 0 || id >= l.length || c <= 0) continue;
    let x = l[id]!;
    if (r !== 1) x = x > 0 ? x / r : x * r;
    x -= c * f + p;
    l[id] = x;
  }
}

/**
 * The nucleus of a weight vector: the largest entries, in descending order, while the mass before each is < `p`
 * (for probabilities, p = top_p; for unnormalised weights, p = top_p × their sum). Described as a value `t` and a
 * count `kEq`: every entry > t is kept, plus the first `kEq` entries equal to t (lowest ids first).
 * Expected O(V): a three-way quickselect on the mass instead of a full sort.
 */
export function nucleusThreshold(probs: Float64Array, p: number): { t: number; kEq: number } {
  if (probs.length >= 4096) return nucleusByBins(probs, p);
  return nucleusSelect(probs, p);
}

const BIN_SHIFT = 17; // bits of a double's high word kept: sign, 11 exponent bits, 3 mantissa bits (8 bins per octave)
const binMass = new Float64Array(1 << (32 - BIN_SHIFT));

/**
 * The same nucleus for a large vocabulary in one pass: for positive doubles the bit pattern orders like the value,
 * so binning by the high bits (8 bins per octave) sorts coarsely. Sum the mass per bin, walk down from the largest
 * bin until the mass reaches p, and settle the exact threshold inside that one bin with `nucleusSelect`.
 */
function nucleusByBins(probs: Float64Array, p: number): { t: number; kEq: number } {
  const hi = new Uint32Array(probs.buffer, probs.byteOffset, probs.length * 2);
  binMass.fill(0);
  let top = 0, bottom = binMass.length;
  for (let i = 0; i < probs.length; i++) {
    const v = probs[i]!;
    if (v > 0) {
      const b = hi[2 * i + 1]! >>> BIN_SHIFT;
      binMass[b] += v;
      if (b > top) top = b;
      if (b < bottom) bottom = b;
    }
  }
  let acc = 0;
  for (let b = top; b >= bottom; b--) {
    const m = binMass[b]!;
    if (m === 0) continue;
    if (acc + m >= p) {
      let n = 0;
      for (let i = 0; i < probs.length; i++) if (probs[i]! > 0 && hi[2 * i + 1]! >>> BIN_SHIFT === b) n++;
      const sub = new Float64Array(n);
      n = 0;
      for (let i = 0; i < probs.length; i++) if (probs[i]! > 0 && hi[2 * i + 1]! >>> BIN_SHIFT === b) sub[n++] = probs[i]!;
      return nucleusSelect(sub, p - acc);
    }
    acc += m;
  }
  return nucleusSelect(probs, p); // rounding: p is past the total mass
}

/** Expected O(V) three-way quickselect on the mass (the exact rule; see nucleusThreshold). */
function nucleusSelect(probs: Float64Array, p: number): { t: number; kEq: number } {
  let n = 0;
  for (let i = 0; i < probs.length; i++) if (probs[i]! > 0) n++;
  const a = new Float64Array(n);
  n = 0;
  for (let i = 0; i < probs.length; i++) if (probs[i]! > 0) a[n++] = probs[i]!;
  let lo = 0, hi = n; // current range [lo, hi); all values in it are < every value already committed
  let acc = 0; // mass of the committed (larger) values
  while (hi > lo) {
    // median-of-three pivot
    const x = a[lo]!, y = a[(lo + hi) >>> 1]!, z = a[hi - 1]!;
    const v = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    // three-way partition: [lo, gt) > v, [gt, lt) == v, [lt, hi) < v
    let gt = lo, i = lo, lt = hi;
    while (i < lt) {
      const w = a[i]!;
      if (w > v) { a[i] = a[gt]!; a[gt] = w; gt++; i++; }
      else if (w < v) { lt--; a[i] = a[lt]!; a[lt] = w; }
      else i++;
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
    while (k < nEq && before < p) { before += v; k++; }
    if (before >= p || lt === hi) return { t: v, kEq: k };
    acc = before;
    lo = lt;
  }
  return { t: 0, kEq: 0 }; // only reached when nothing has mass
}

/** Parsed settings are marked so hot loops validate once. */
const resolvedMark = new WeakSet<object>();

function resolved(o: SamplerOptions | ResolvedSamplerOptions): ResolvedSamplerOptions {
  if (resolvedMark.has(o)) return o as ResolvedSamplerOptions;
  const r = resolveSamplerOptions(o);
  resolvedMark.add(r);
  return r;
}

/**
 * The final sampling distribution for one logits row (steps 2 and 4–7 above): probabilities in float64, zero for
 * every filtered-out token, summing to 1. For temperature 0 it is one-hot at the greedy choice.
 * Each filter zeroes entries and renormalises, which equals a softmax over the surviving logits.
 */
export function samplingDistribution(
  logits: ArrayLike<number>,
  opts: SamplerOptions | ResolvedSamplerOptions,
  counts: ReadonlyMap<number, number> = new Map(),
): Float64Array {
  const d = weights(logits, resolved(opts), counts);
  scale(d.w, 1 / d.sum);
  return d.w;
}

interface Weights {
  /** Unnormalised final weights (0 = filtered out); the distribution is w / sum. */
  w: Float64Array;
  sum: number;
  /** The model's log Σ exp(logits) when it fell out of the same pass (no penalties, temperature 1), else NaN. */
  lse: number;
}

/**
 * The sampling distribution as unnormalised weights: the hot path of every generated token, so each filter works
 * on the weights and their running sum instead of renormalising (same distribution; fewer passes over V).
 */
function weights(logits: ArrayLike<number>, o: ResolvedSamplerOptions, counts: ReadonlyMap<number, number>): Weights {
  const V = logits.length;
  const penalised = counts.size > 0 && !(o.repetitionPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0);
  let l: ArrayLike<number> = logits;
  if (penalised) {
    const c = new Float64Array(V);
    for (let i = 0; i < V; i++) c[i] = logits[i]!;
    applyPenalties(c, counts, o);
    l = c;
  }
  const w = new Float64Array(V);
  if (o.temperature === 0) {
    w[argmax(l)] = 1;
    return { w, sum: 1, lse: NaN };
  }
  // top-k on the logits (temperature > 0 does not change their order)
  let thr = -Infinity;
  if (o.topK > 0 && o.topK < V) thr = kthLargest(l, o.topK);
  // temperature: w = exp((l − max) / T) over the survivors
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (l[i]! > max) max = l[i]!;
  const invT = 1 / o.temperature;
  let sum = 0, all = 0;
  for (let i = 0; i < V; i++) {
    const x = l[i]!;
    const e = expNonPositive((x - max) * invT);
    all += e;
    if (x >= thr) {
      w[i] = e;
      sum += e;
    }
  }
  const lse = !penalised && o.temperature === 1 ? max + Math.log(all) : NaN;
  // top-p: keep the largest weights up to topP of the mass
  if (o.topP < 1) {
    const { t, kEq } = nucleusThreshold(w, o.topP * sum);
    let eq = 0;
    sum = 0;
    for (let i = 0; i < V; i++) {
      const q = w[i]!;
      if (q > t || (q === t && eq++ < kEq)) sum += q;
      else w[i] = 0;
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

function scale(a: Float64Array, k: number): void {
  if (k === 1) return;
  for (let i = 0; i < a.length; i++) a[i] = a[i]! * k;
}

/** log Σ exp(logits): the model's normaliser, so logprob(id) = logits[id] − logSumExp. */
function logSumExp(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += expNonPositive(logits[i]! - max);
  return max + Math.log(sum);
}

function argmax(l: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
  return best;
}

/** Draw an index from a probability vector with one uniform number from `rng`. */
export function drawFrom(probs: Float64Array, rng: Rng): number {
  return drawWeighted(probs, 1, rng);
}

/** Draw an index with probability w[i] / sum, with one uniform number from `rng`. */
function drawWeighted(probs: Float64Array, sum: number, rng: Rng): number {
  const u = rng.random() * sum;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (p <= 0) continue;
    acc += p;
    last = i;
    if (u < acc) return i;
  }
  return last; // rounding: u ≥ the summed mass; take the last token with mass
}

/**
 * Pick the next token from one logits row.
 * @param logits  (V,) raw model logits for the next position
 * @param opts    sampler settings (validated here; pre-resolve with resolveSamplerOptions in a loop)
 * @param rng     the coin; not touched when temperature is 0
 * @param counts  how often each id occurs in the penalty window (PenaltyWindow.counts); empty = no penalties
 */
export function sampleToken(
  logits: ArrayLike<number>,
  opts: SamplerOptions | ResolvedSamplerOptions,
  rng: Rng,
  counts: ReadonlyMap<number, number> = new Map(),
): SampleResult {
  const o = resolved(opts);
  const d = weights(logits, o, counts);
  const lse = Number.isNaN(d.lse) ? logSumExp(logits) : d.lse;
  const id = o.temperature === 0 ? argmax(d.w) : drawWeighted(d.w, d.sum, rng);
  const top = topN(logits, o.topLogprobs).map((t) => ({ id: t.id, logprob: t.logprob - lse }));
  return { id, prob: d.w[id]! / d.sum, logprob: logits[id]! - lse, top };
}

/** A sampler bound to settings, a coin and a penalty window: `observe` every token of the sequence, then `sample`. */
export class Sampler {
  readonly options: ResolvedSamplerOptions;
  private readonly window: PenaltyWindow;
  constructor(opts: SamplerOptions, readonly rng: Rng) {
    this.options = resolved(opts);
    this.window = new PenaltyWindow(this.options.penaltyLastN);
  }
  /** Record tokens of the sequence (the prompt, then each generated token) for the penalties. */
  observe(ids: number | ArrayLike<number>): void {
    if (typeof ids === 'number') this.window.push(ids);
    else for (let i = 0; i < ids.length; i++) this.window.push(ids[i]!);
  }
  sample(logits: ArrayLike<number>): SampleResult {
    return sampleToken(logits, this.options, this.rng, this.window.counts);
  }
}
