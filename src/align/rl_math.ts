/**
 * The reinforcement-learning arithmetic of PPO (RLOO reuses its KL estimates and clipped term), on host arrays in
 * float64, as TRL's PPOTrainer computes it (trl/trainer/ppo_trainer.py, utils.py), from the papers:
 *
 * - per-token KL estimates of the policy π against the frozen reference π_ref on the sampled tokens (Schulman,
 *   "Approximating KL divergence"): k1 = log π − log π_ref (unbiased, may be negative per token),
 *   k3 = (r − 1) − log r with r = π_ref / π (unbiased and ≥ 0 per token);
 * - KL-shaped rewards (Ziegler et al. 2019, §2.2): r_t = −β·kl_t at every reply token, plus the reward model's score
 *   at the reply's last token;
 * - generalised advantage estimation (Schulman et al. 2016) with γ, λ: δ_t = r_t + γ·V_{t+1} − V_t (V after the last
 *   token = 0), A_t = δ_t + γλ·A_{t+1}; returns R_t = A_t + V_t;
 * - whitening (TRL `masked_whiten`): (x − mean)/√(var + 1e-8) over every reply token of the batch, var unbiased;
 * - the adaptive KL controller (Ziegler et al. 2019, §2.2; TRL's AdaptiveKLController): e = clip(KL/target − 1,
 *   −0.2, 0.2), β ← β·(1 + e·n/horizon) after a batch of n episodes;
 * - the clipped surrogate objective (Schulman et al. 2017, eq. 7) and the clipped value loss, per token:
 *   pg = max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)) with ρ = exp(log π − log π_old);
 *   vf = ½·max((V − R)², (clip(V, V_old − ε_v, V_old + ε_v) − R)²).
 * The tensor side (ppo_objective.ts) builds its loss so that its value and gradient are these.
 */
import { ConfigError } from '../util/errors.js';

/** Which KL estimator the per-token penalty uses. */
export type KlEstimator = 'k1' | 'k3';

/** Per-token KL estimate from the sampled tokens' log-probabilities under π (`logp`) and π_ref (`refLogp`). */
export function klPerToken(logp: ArrayLike<number>, refLogp: ArrayLike<number>, kind: KlEstimator): Float64Array {
  if (logp.length !== refLogp.length)
    throw new ConfigError('klPerToken', `${logp.length} policy log-probs but ${refLogp.length} reference ones`);
  const out = new Float64Array(logp.length);
  for (let t = 0; t < logp.length; t++) {
    const logr = refLogp[t]! - logp[t]!; // log(π_ref / π)
    out[t] = kind === 'k1' ? logp[t]! - refLogp[t]! : Math.expm1(logr) - logr;
  }
  return out;
}

/** Per-token rewards of one reply: −β·kl_t, with `score` added at the last token. */
export function shapedRewards(kl: ArrayLike<number>, beta: number, score: number): Float64Array {
  const r = new Float64Array(kl.length);
  for (let t = 0; t < kl.length; t++) r[t] = -beta * kl[t]!;
  if (r.length) r[r.length - 1]! += score;
  return r;
}

/** GAE over one reply: advantages and returns (R = A + V). The value after the last token is 0. */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  gamma: number,
  lambda: number,
): { advantages: Float64Array; returns: Float64Array } {
  const n = rewards.length;
  if (values.length !== n) throw new ConfigError('gae', `${n} rewards but ${values.length} values`);
  const advantages = new Float64Array(n),
    returns = new Float64Array(n);
  let last = 0;
  for (let t = n - 1; t >= 0; t--) {
    const next = t + 1 < n ? values[t + 1]! : 0;
    const delta = rewards[t]! + gamma * next - values[t]!;
    last = delta + gamma * lambda * last;
    advantages[t] = last;
    returns[t] = last + values[t]!;
  }
  return { advantages, returns };
}

/** Mean and unbiased variance over every element of every row (TRL masked_mean / masked_var). */
export function meanVar(rows: readonly ArrayLike<number>[]): { mean: number; variance: number; n: number } {
  let n = 0,
    s = 0;
  for (const r of rows) for (let i = 0; i < r.length; i++) (s += r[i]!), n++;
  const mean = n ? s / n : 0;
  let ss = 0;
  for (const r of rows) for (let i = 0; i < r.length; i++) ss += (r[i]! - mean) ** 2;
  // TRL: masked_var(unbiased=True) multiplies by n / (n − 1); one element has no spread
  const variance = n > 1 ? ss / (n - 1) : 0;
  return { mean, variance, n };
}

/** Whiten every element of every row together: (x − mean)/√(var + 1e-8) (shiftMean false adds the mean back). */
export function whiten(rows: readonly ArrayLike<number>[], shiftMean = true): Float64Array[] {
  const { mean, variance } = meanVar(rows);
  const inv = 1 / Math.sqrt(variance + 1e-8);
  return rows.map((r) => Float64Array.from(r, (x) => (x - mean) * inv + (shiftMean ? 0 : mean)));
}

/** The KL coefficient: fixed, or the adaptive controller of Ziegler et al. */
export interface KlController {
  readonly value: number;
  /** After a batch of `nSteps` episodes whose mean KL (per reply, summed over its tokens) was `currentKl`. */
  update(currentKl: number, nSteps: number): void;
}

export class FixedKlController implements KlController {
  constructor(public value: number) {}
  update(): void {}
}

export class AdaptiveKlController implements KlController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(target > 0)) throw new ConfigError('target', `the adaptive KL controller needs a target > 0, got ${target}`);
    if (!(horizon > 0)) throw new ConfigError('horizon', `must be > 0, got ${horizon}`);
  }
  update(currentKl: number, nSteps: number): void {
    const e = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (e * nSteps) / this.horizon;
  }
}

/**
 * One token's clipped policy loss max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε_high)), and whether clipping took the gradient
 * away (TRL's pg_clipfrac counts it). ε_high defaults to ε (DAPO's clip-higher sets it apart).
 */
export function clippedPolicyTerm(
  advantage: number,
  logp: number,
  oldLogp: number,
  cliprange: number,
  cliprangeHigh = cliprange,
): { loss: number; clipped: boolean; ratio: number } {
  const ratio = Math.exp(logp - oldLogp);
  const a = -advantage * ratio;
  const b = -advantage * Math.min(1 + cliprangeHigh, Math.max(1 - cliprange, ratio));
  return { loss: Math.max(a, b), clipped: b > a, ratio };
}

/** One token's clipped value loss ½·max(…) (see the header), and whether the clipped branch won. */
export function clippedValueTerm(
  value: number,
  oldValue: number,
  ret: number,
  cliprangeValue: number,
): { loss: number; clipped: boolean } {
  const a = (value - ret) ** 2;
  const vc = Math.min(oldValue + cliprangeValue, Math.max(oldValue - cliprangeValue, value));
  const b = (vc - ret) ** 2;
  return { loss: 0.5 * Math.max(a, b), clipped: b > a };
}

/** Mean of each statistic over the steps since the last call. */
export class StatsMean {
  private sums = new Map<string, number>();
  private n = 0;
  add(s: object): void {
    for (const [k, v] of Object.entries(s)) this.sums.set(k, (this.sums.get(k) ?? 0) + (v as number));
    this.n++;
  }
  take(): Record<string, number> {
    const out = Object.fromEntries([...this.sums].map(([k, v]) => [k, v / this.n]));
    this.sums.clear();
    this.n = 0;
    return out;
  }
}
