/**
 * Running statistics of preference batches for TRL's metric names, kept apart for training steps and evaluations
 * and read (and reset) by the metric hooks: mean chosen / rejected reward, margin, accuracy (chosen above
 * rejected), mean log-probabilities (DPO), and the reward and length of every reply (for the reward-vs-length
 * correlation on held-out replies). KTO's unpaired rows have their own (KtoStats, ktoMetrics).
 */

export class PrefStats {
  n = 0;
  chosen = 0;
  rejected = 0;
  correct = 0;
  logpChosen = 0;
  logpRejected = 0;
  /** Per reply: its reward and its length in tokens (evaluations only). */
  readonly replies: { reward: number; length: number }[] = [];

  /** Add pairs: rewards (P,) each, and optionally log-probs and reply lengths. */
  add(
    rc: ArrayLike<number>,
    rr: ArrayLike<number>,
    o: { logps?: [ArrayLike<number>, ArrayLike<number>]; lengths?: [number[], number[]] } = {},
  ): void {
    for (let i = 0; i < rc.length; i++) {
      this.n++;
      this.chosen += rc[i]!;
      this.rejected += rr[i]!;
      if (rc[i]! > rr[i]!) this.correct++;
      if (o.logps) {
        this.logpChosen += o.logps[0][i]!;
        this.logpRejected += o.logps[1][i]!;
      }
      if (o.lengths)
        this.replies.push({ reward: rc[i]!, length: o.lengths[0][i]! }, { reward: rr[i]!, length: o.lengths[1][i]! });
    }
  }
}

/** Pearson correlation of two equal-length lists (NaN when either is constant or there are fewer than 2). */
export function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n < 2 || y.length !== n) return NaN;
  const mx = x.reduce((a, b) => a + b, 0) / n,
    my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0,
    sxx = 0,
    syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** Statistics as TRL-named metrics (`prefix` 'eval_' for evaluations); empty when nothing was measured. */
export function statMetrics(s: PrefStats, prefix: string, kind: 'reward' | 'dpo'): Record<string, number> {
  if (!s.n) return {};
  const m: Record<string, number> = {
    [`${prefix}rewards/chosen`]: s.chosen / s.n,
    [`${prefix}rewards/rejected`]: s.rejected / s.n,
    [`${prefix}rewards/margins`]: (s.chosen - s.rejected) / s.n,
  };
  if (kind === 'reward') m[`${prefix}accuracy`] = s.correct / s.n;
  else {
    m[`${prefix}rewards/accuracies`] = s.correct / s.n;
    m[`${prefix}logps/chosen`] = s.logpChosen / s.n;
    m[`${prefix}logps/rejected`] = s.logpRejected / s.n;
  }
  if (s.replies.length >= 2) {
    const r = pearson(
      s.replies.map((x) => x.reward),
      s.replies.map((x) => x.length),
    );
    if (Number.isFinite(r)) m[`${prefix}reward_length_correlation`] = r;
  }
  return m;
}

/**
 * KTO's running statistics (kto_objective.ts), for TRL's KTOTrainer metric names: rewards β·(log π − log π_ref) and
 * log-probabilities of the desirable ("chosen") and undesirable ("rejected") rows apart, with their counts, and the
 * KL reference point of each batch.
 */
export class KtoStats {
  nChosen = 0;
  nRejected = 0;
  rewardChosen = 0;
  rewardRejected = 0;
  logpChosen = 0;
  logpRejected = 0;
  kl = 0;
  batches = 0;

  /** Add a batch: each row's reward and log-prob (B,), its label, and the batch's reference point z0. */
  add(rewards: ArrayLike<number>, logps: ArrayLike<number>, desirable: readonly boolean[], z0: number): void {
    for (let i = 0; i < rewards.length; i++) {
      if (desirable[i]) {
        this.nChosen++;
        this.rewardChosen += rewards[i]!;
        this.logpChosen += logps[i]!;
      } else {
        this.nRejected++;
        this.rewardRejected += rewards[i]!;
        this.logpRejected += logps[i]!;
      }
    }
    this.kl += z0;
    this.batches++;
  }
}

/**
 * KTO statistics as TRL-named metrics: rewards/chosen, rewards/rejected (means over the rows of each kind; absent
 * when there were none), rewards/margins (their difference, a missing side counting 0, as TRL), logps/chosen,
 * logps/rejected, kl (the mean reference point), count/chosen, count/rejected. Empty when nothing was measured.
 */
export function ktoMetrics(s: KtoStats, prefix: string): Record<string, number> {
  if (!s.batches) return {};
  const m: Record<string, number> = {
    [`${prefix}kl`]: s.kl / s.batches,
    [`${prefix}count/chosen`]: s.nChosen,
    [`${prefix}count/rejected`]: s.nRejected,
  };
  const rc = s.nChosen ? s.rewardChosen / s.nChosen : NaN,
    rr = s.nRejected ? s.rewardRejected / s.nRejected : NaN;
  if (s.nChosen) {
    m[`${prefix}rewards/chosen`] = rc;
    m[`${prefix}logps/chosen`] = s.logpChosen / s.nChosen;
  }
  if (s.nRejected) {
    m[`${prefix}rewards/rejected`] = rr;
    m[`${prefix}logps/rejected`] = s.logpRejected / s.nRejected;
  }
  m[`${prefix}rewards/margins`] = (s.nChosen ? rc : 0) - (s.nRejected ? rr : 0);
  return m;
}
