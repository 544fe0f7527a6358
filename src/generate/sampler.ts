/**
 * The sampler: from one row of next-token logits, pick a token id. The random "coin" is an `Rng` the caller passes in,
 * so the same seed gives the same draw on every run and backend.
 *
 * Order of operations (the Hugging Face `generate` / llama.cpp order):
 *   1. model log-probabilities  log_softmax(logits)            (reported, as OpenAI's `logprobs` reports the model's)
 *   2. penalties on the logits (the result rounded to float32, as the logits are):
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
 *
 * Steps 2–8 live in src/backend/sampling.ts (penalised logits are rounded to float32, like the logits; the rest
 * is float64 arithmetic over the vocabulary), which is also the definition of the backends' `sample` kernel: the
 * engine draws on the device with the same uniform number and gets the same id. The hot path allocates nothing per
 * token (working arrays are reused).
 */
import { ConfigError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import {
  argmax,
  drawWeighted,
  logSumExp,
  MAX_TOP_N,
  penaltiesOn,
  penalizeRow,
  rowWeights,
  sampleRow,
  topN,
} from '../backend/sampling.js';

export { expNonPositive, nucleusThreshold, drawWeighted, topN } from '../backend/sampling.js';

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
export const MAX_TOP_LOGPROBS = MAX_TOP_N; // 20, as OpenAI's API (and what the `sample` kernel reports)

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
    if (!(k in SAMPLER_DEFAULTS))
      throw new ConfigError(k, `unknown sampler setting (known: ${Object.keys(SAMPLER_DEFAULTS).join(', ')})`);
    (r as unknown as Record<string, unknown>)[k] = v;
  }
  if (!isNum(r.temperature) || r.temperature < 0)
    throw new ConfigError('temperature', `expected a number ≥ 0, got ${String(r.temperature)}`);
  if (!Number.isInteger(r.topK) || r.topK < 0)
    throw new ConfigError('topK', `expected an integer ≥ 0 (0 disables), got ${String(r.topK)}`);
  if (!isNum(r.topP) || !(r.topP > 0 && r.topP <= 1))
    throw new ConfigError('topP', `expected 0 < topP ≤ 1, got ${String(r.topP)}`);
  if (!isNum(r.minP) || r.minP < 0 || r.minP > 1)
    throw new ConfigError('minP', `expected 0 ≤ minP ≤ 1, got ${String(r.minP)}`);
  if (!isNum(r.repetitionPenalty) || r.repetitionPenalty <= 0)
    throw new ConfigError(
      'repetitionPenalty',
      `expected a number > 0 (1 disables), got ${String(r.repetitionPenalty)}`,
    );
  if (!isNum(r.frequencyPenalty))
    throw new ConfigError('frequencyPenalty', `expected a finite number, got ${String(r.frequencyPenalty)}`);
  if (!isNum(r.presencePenalty))
    throw new ConfigError('presencePenalty', `expected a finite number, got ${String(r.presencePenalty)}`);
  if (!Number.isInteger(r.penaltyLastN) || r.penaltyLastN < -1)
    throw new ConfigError(
      'penaltyLastN',
      `expected an integer ≥ -1 (-1: whole sequence, 0: off), got ${String(r.penaltyLastN)}`,
    );
  if (!Number.isInteger(r.topLogprobs) || r.topLogprobs < 0 || r.topLogprobs > MAX_TOP_LOGPROBS)
    throw new ConfigError('topLogprobs', `expected an integer in 0..${MAX_TOP_LOGPROBS}, got ${String(r.topLogprobs)}`);
  return r;
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

/** The penalised copy's working memory, reused from token to token. */
let penaltyRow = new Float32Array(0);

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
  const o = resolved(opts);
  const l = penalised(logits, o, counts);
  if (o.temperature === 0) {
    const d = new Float64Array(l.length);
    d[argmax(l)] = 1;
    return d;
  }
  const d = rowWeights(l, o);
  const out = Float64Array.from(d.w); // d.w is working memory
  scale(out, 1 / d.sum);
  return out;
}

/** The logits after the penalties (step 2): the row itself when no penalty applies, else a working copy. */
function penalised(
  logits: ArrayLike<number>,
  o: ResolvedSamplerOptions,
  counts: ReadonlyMap<number, number>,
): ArrayLike<number> {
  if (!penaltiesApply(o, counts)) return logits;
  const V = logits.length;
  if (penaltyRow.length !== V) penaltyRow = new Float32Array(V);
  const c = penaltyRow;
  for (let i = 0; i < V; i++) c[i] = logits[i]!;
  penalizeRow(c, counts, o); // float64 arithmetic, rounded to float32 (the `sample` kernel does the same)
  return c;
}

/** Whether the penalties change anything for this window. */
export function penaltiesApply(o: ResolvedSamplerOptions, counts: ReadonlyMap<number, number>): boolean {
  return counts.size > 0 && penaltiesOn(o);
}

function scale(a: Float64Array, k: number): void {
  if (k === 1) return;
  for (let i = 0; i < a.length; i++) a[i] = a[i]! * k;
}

/** Draw an index from a probability vector with one uniform number from `rng`. */
export function drawFrom(probs: Float64Array, rng: Rng): number {
  return drawWeighted(probs, 1, rng.random());
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
  const l = penalised(logits, o, counts);
  const r = sampleRow(l, o, o.temperature === 0 ? 0 : rng.random());
  const id = r.id,
    prob = r.prob;
  const lse = l === logits ? r.lse : logSumExp(logits);
  return { id, prob, logprob: logits[id]! - lse, top: modelTop(logits, o.topLogprobs, lse) };
}

/** The model's `n` most likely ids with their log-probabilities (lse: the row's log Σ exp). */
function modelTop(logits: ArrayLike<number>, n: number, lse: number): TokenLogprob[] {
  return n > 0 ? topN(logits, n).map((t) => ({ id: t.id, logprob: t.logprob - lse })) : [];
}

/**
 * Sample under a constraint (a grammar's allowed ids, `allowed[id]` = 1): from the final sampling distribution
 * restricted to the allowed ids and renormalised; where it gives them no mass (greedy, or the filters kept none of
 * them), from the allowed ids' logits alone with the same penalties, temperature and filters. `logprob` and `top`
 * stay the model's (raw logits). One uniform draw from `rng` (none at temperature 0).
 */
export function sampleAllowed(
  logits: ArrayLike<number>,
  opts: SamplerOptions | ResolvedSamplerOptions,
  rng: Rng,
  counts: ReadonlyMap<number, number>,
  allowed: Uint8Array,
): SampleResult {
  const o = resolved(opts);
  let id = -1,
    prob = 1;
  if (o.temperature > 0) {
    const q = samplingDistribution(logits, o, counts);
    let sum = 0;
    for (let i = 0; i < q.length; i++) {
      if (allowed[i]) sum += q[i]!;
      else q[i] = 0;
    }
    if (sum > 0) {
      id = drawWeighted(q, sum, rng.random());
      prob = q[id]! / sum;
    }
  }
  if (id < 0) {
    const masked = new Float32Array(logits.length);
    for (let i = 0; i < masked.length; i++) masked[i] = allowed[i] ? logits[i]! : -Infinity;
    const r = sampleRow(penalised(masked, o, counts), o, o.temperature === 0 ? 0 : rng.random());
    id = r.id;
    prob = r.prob;
  }
  const lse = logSumExp(logits);
  return { id, prob, logprob: logits[id]! - lse, top: modelTop(logits, o.topLogprobs, lse) };
}

/** A sampler bound to settings, a coin and a penalty window: `observe` every token of the sequence, then `sample`. */
export class Sampler {
  readonly options: ResolvedSamplerOptions;
  private readonly window: PenaltyWindow;
  constructor(
    opts: SamplerOptions,
    readonly rng: Rng,
  ) {
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
  /** Sample among the allowed ids only (see sampleAllowed). */
  sampleAllowed(logits: ArrayLike<number>, allowed: Uint8Array): SampleResult {
    return sampleAllowed(logits, this.options, this.rng, this.window.counts, allowed);
  }
  /** Whether a penalty changes the logits now. */
  penaltiesActive(): boolean {
    return penaltiesApply(this.options, this.window.counts);
  }
  /** How often each id occurs in the penalty window (for the `sample` kernel's counts). */
  get penaltyCounts(): ReadonlyMap<number, number> {
    return this.window.counts;
  }
  /** The uniform number `sample` would take from the coin now (none at temperature 0: returns 0, coin untouched). */
  drawUniform(): number {
    return this.options.temperature === 0 ? 0 : this.rng.random();
  }
}
