/**
 * Judging pairs of replies with a rater, for `llmts align verify`'s win rates: policy A's reply against policy B's
 * to the same prompt, one call of the rater's `compare` per pair. What it follows:
 * - Position bias (a judge that leans towards the first reply it reads, as LLM judges do: Zheng et al. 2023,
 *   "Judging LLM-as-a-judge"; AlpacaEval randomises the order too): the order A/B is drawn per pair from the seeded
 *   Rng, so a judge that always says 'a' scores 50 % in expectation, not 100 %.
 * - Ties count half a win (AlpacaFarm's win rate).
 * - The win rate's 95 % confidence interval is the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001,
 *   "Interval Estimation for a Binomial Proportion"): unlike p̂ ± 1.96·√(p̂(1−p̂)/n) it stays inside [0, 1] and keeps
 *   close to its nominal coverage for small n and for p near 0 or 1. With ties counted half the score of a pair is
 *   0, ½ or 1; its variance is at most that of a Bernoulli variable of the same mean, so the interval, computed as
 *   for wins + ties/2 successes in n trials, is if anything wide.
 *
 * The judge is typed by its shape only: a rater module's `makeOracle(…)` result (src/align/oracle.ts) fits, and so
 * does anything else with `compare` and `score`.
 */
import { ConfigError, ShapeError } from '../../util/errors.js';
import type { Rng } from '../../util/rng.js';

import type { Verdict } from '../oracle.js';

/** A rater's verdict on (a, b): a is better, b is better, or neither (oracle.ts). */
export type { Verdict };

/** What the evaluation needs of a rater. `P` is the prompt (the conversation so far). */
export interface Judge<P = unknown> {
  compare(prompt: P, a: string, b: string, meta?: unknown): Verdict | Promise<Verdict>;
  score(prompt: P, reply: string, meta?: unknown): number | Promise<number>;
}

/** z of a two-sided 95 % interval: Φ⁻¹(0.975). */
export const Z95 = 1.959963984540054;

/**
 * The Wilson score interval of a proportion: `successes` of `n` trials (successes may be fractional: ties count
 * half), at normal quantile `z` (95 %: Z95). With p̂ = successes/n:
 *   centre = (p̂ + z²/2n) / (1 + z²/n),   half-width = z/(1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²).
 * n = 0: [0, 1] (nothing is known).
 */
export function wilsonInterval(successes: number, n: number, z = Z95): { low: number; high: number } {
  if (!(n >= 0) || !Number.isFinite(n)) throw new ShapeError(`wilsonInterval: n must be ≥ 0, got ${n}`);
  if (!(successes >= 0 && successes <= n))
    throw new ShapeError(`wilsonInterval: successes must be within [0, n = ${n}], got ${successes}`);
  if (n === 0) return { low: 0, high: 1 };
  const p = successes / n,
    z2 = z * z;
  const d = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / d;
  const half = (z / d) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export interface PairJudgement {
  /** Pairs judged. */
  n: number;
  /** Pairs where A's reply won, lost, tied. */
  wins: number;
  losses: number;
  ties: number;
  /** (wins + ties/2) / n: A's win rate against B. */
  winRate: number;
  /** Its 95 % Wilson score interval. */
  ci: { low: number; high: number };
  /** Each pair's verdict from A's side ('a': A won), in prompt order. */
  verdicts: Verdict[];
  /** Whether pair i was shown to the judge as (B, A). */
  swapped: boolean[];
}

/**
 * Judge A's reply against B's for every prompt (see the header): the judge sees (A, B) or (B, A), drawn per pair
 * from `rng`; its verdict is mapped back to A's side. Calls run one after another, in prompt order (a rater may be
 * a process of its own). `meta(i)` is passed to the judge as its last argument.
 */
export async function judgePairs<P>(
  judge: Judge<P>,
  prompts: readonly P[],
  repliesA: readonly string[],
  repliesB: readonly string[],
  rng: Rng,
  o: { meta?: (i: number) => unknown } = {},
): Promise<PairJudgement> {
  const n = prompts.length;
  if (repliesA.length !== n || repliesB.length !== n)
    throw new ShapeError(
      `judgePairs: ${n} prompts, ${repliesA.length} replies A and ${repliesB.length} replies B (need one each)`,
    );
  const verdicts: Verdict[] = [],
    swapped: boolean[] = [];
  let wins = 0,
    losses = 0,
    ties = 0;
  for (let i = 0; i < n; i++) {
    const swap = rng.random() < 0.5;
    const [first, second] = swap ? [repliesB[i]!, repliesA[i]!] : [repliesA[i]!, repliesB[i]!];
    const v = await (o.meta
      ? judge.compare(prompts[i]!, first, second, o.meta(i))
      : judge.compare(prompts[i]!, first, second));
    if (v !== 'a' && v !== 'b' && v !== 'tie')
      throw new ConfigError(
        'judge',
        `compare() returned ${JSON.stringify(v)} for pair ${i}; expected 'a', 'b' or 'tie'`,
      );
    const forA: Verdict = v === 'tie' ? 'tie' : (v === 'a') !== swap ? 'a' : 'b';
    verdicts.push(forA);
    swapped.push(swap);
    if (forA === 'a') wins++;
    else if (forA === 'b') losses++;
    else ties++;
  }
  const score = wins + ties / 2;
  return { n, wins, losses, ties, winRate: n ? score / n : NaN, ci: wilsonInterval(score, n), verdicts, swapped };
}
