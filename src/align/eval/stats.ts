/**
 * The statistics `llmts align verify` reports beside win rates:
 * - best-of-n under a reward model (Stiennon et al. 2020; Gao et al. 2023, "Scaling Laws for Reward Model
 *   Overoptimization"): of n samples per prompt keep the one the reward model scores highest, and the analytic KL
 *   of that best-of-n policy from the sampling policy, KL_bon = log n − (n − 1)/n nats (Stiennon et al.'s formula;
 *   Beirami et al. 2024 show it is an upper bound, reached when samples never repeat): where best-of-n sits on the
 *   KL axis beside the trained policies;
 * - the distinct-reply ratio (distinct replies / replies: a collapsed policy repeats itself) and the EOS rate (the
 *   share of replies that ended on their own rather than at the token limit);
 * - reward-model calibration: predicted P(a ≻ b) = σ(r_a − r_b) (Bradley–Terry) against the observed outcome
 *   (1 a won, 0 b won, ½ a tie), in equal-width bins of the prediction, with the expected calibration error
 *   Σ_bins (n_bin / n) · |mean predicted − mean observed| (Guo et al. 2017).
 */
import { ShapeError } from '../../util/errors.js';

/** For each prompt, the index of the highest score among its n samples (the first on a tie). */
export function bestIndex(scores: readonly (readonly number[])[]): number[] {
  return scores.map((s, i) => {
    if (!s.length) throw new ShapeError(`bestIndex: prompt ${i} has no samples`);
    let best = 0;
    for (let k = 1; k < s.length; k++) if (s[k]! > s[best]!) best = k;
    return best;
  });
}

/**
 * Best-of-n: score every sample of every prompt with `score` (a reward model, one call per sample, in order) and
 * keep the highest. Returns the chosen replies, their indices, and every score.
 */
export async function bestOfN<P>(
  prompts: readonly P[],
  samples: readonly (readonly string[])[],
  score: (prompt: P, reply: string) => number | Promise<number>,
): Promise<{ replies: string[]; index: number[]; scores: number[][] }> {
  if (samples.length !== prompts.length)
    throw new ShapeError(`bestOfN: ${prompts.length} prompts but ${samples.length} lists of samples`);
  const scores: number[][] = [];
  for (let i = 0; i < prompts.length; i++) {
    const row: number[] = [];
    for (const s of samples[i]!) row.push(await score(prompts[i]!, s));
    scores.push(row);
  }
  const index = bestIndex(scores);
  return { replies: index.map((k, i) => samples[i]![k]!), index, scores };
}

/** KL(best-of-n ‖ sampling policy) = log n − (n − 1)/n nats (see the header); n a whole number ≥ 1. */
export function bestOfNKl(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new ShapeError(`bestOfNKl: n must be a whole number ≥ 1, got ${n}`);
  return Math.log(n) - (n - 1) / n;
}

/** Distinct replies / replies (exact string equality); NaN for none. */
export function distinctRatio(replies: readonly string[]): number {
  return replies.length ? new Set(replies).size / replies.length : NaN;
}

/**
 * The share of replies that ended on their own: `ended` is true (or the engine's finish_reason 'stop') for a reply
 * that stopped at EOS / an end-of-turn token, false (or 'length') for one cut at the token limit. NaN for none.
 */
export function eosRate(ended: readonly (boolean | 'stop' | 'length')[]): number {
  if (!ended.length) return NaN;
  return ended.filter((e) => e === true || e === 'stop').length / ended.length;
}

/** Bradley–Terry: P(a ≻ b) = σ(r_a − r_b). */
export function preferenceProbability(ra: number, rb: number): number {
  const d = ra - rb;
  return d >= 0 ? 1 / (1 + Math.exp(-d)) : Math.exp(d) / (1 + Math.exp(d));
}

export interface CalibrationBin {
  /** The bin [low, high) of predicted probabilities (the last bin includes 1). */
  low: number;
  high: number;
  /** Predictions in the bin; their mean, and the mean observed outcome (NaN when n = 0). */
  n: number;
  predicted: number;
  observed: number;
}

/**
 * Calibration of predicted probabilities `predicted` (each P(a ≻ b)) against outcomes `observed` (1, 0 or ½ for a
 * tie) in `bins` equal-width bins over [0, 1], with the expected calibration error (see the header).
 */
export function calibrationBins(
  predicted: readonly number[],
  observed: readonly number[],
  bins = 10,
): { bins: CalibrationBin[]; ece: number } {
  if (predicted.length !== observed.length)
    throw new ShapeError(`calibrationBins: ${predicted.length} predictions but ${observed.length} outcomes`);
  if (!Number.isInteger(bins) || bins < 1) throw new ShapeError(`calibrationBins: bins must be ≥ 1, got ${bins}`);
  const acc = Array.from({ length: bins }, () => ({ n: 0, p: 0, o: 0 }));
  predicted.forEach((p, i) => {
    const o = observed[i]!;
    if (!(p >= 0 && p <= 1)) throw new ShapeError(`calibrationBins: prediction ${i} is ${p}, not a probability`);
    if (o !== 0 && o !== 0.5 && o !== 1) throw new ShapeError(`calibrationBins: outcome ${i} is ${o}, not 0, ½ or 1`);
    const b = acc[Math.min(bins - 1, Math.floor(p * bins))]!;
    b.n++;
    b.p += p;
    b.o += o;
  });
  const N = predicted.length;
  let ece = 0;
  const out = acc.map((b, k) => {
    if (b.n) ece += (b.n / N) * Math.abs(b.p / b.n - b.o / b.n);
    return {
      low: k / bins,
      high: (k + 1) / bins,
      n: b.n,
      predicted: b.n ? b.p / b.n : NaN,
      observed: b.n ? b.o / b.n : NaN,
    };
  });
  return { bins: out, ece: N ? ece : NaN };
}
