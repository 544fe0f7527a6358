/**
 * Batches of preference pairs, whole prompt groups at a time (pref_data.ts): a batch takes the next `groupsPerBatch`
 * prompt groups of the epoch order, so every pair of one prompt (a ranking row's C(K,2) pairs) is in the same
 * batch. Each epoch visits every group once in an order shuffled from (seed, epoch) (sft_batches.ts `epochOrder`).
 *
 * A batch carries pair indices, not tokens: `ids` holds the B pair indices into the objective's pair list (training
 * pairs first, then held-out pairs), `targets` is unused (zeros), and T is the batch's tokens per pair (prompt and
 * both replies, mean, rounded up), so the loop's B·T counts the tokens a step computes on. The objectives
 * (reward_objective.ts, dpo_objective.ts) look the pairs up.
 *
 * The state saved in a checkpoint is the number of batches drawn; the order is a function of (seed, that count).
 */
import type { Batch, BatcherState } from '../data/batcher.js';
import type { BatchSource } from '../train/trainer.js';
import { ConfigError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { PrefPair } from './pref_data.js';
import { epochOrder } from './sft_batches.js';

/** Tokens of a pair as the objectives compute them: prompt + chosen, prompt + rejected. */
export function pairTokens(p: PrefPair): number {
  return 2 * p.prompt.length + p.chosen.length + p.rejected.length;
}

/**
 * One batch of the items `index` (positions in `pairs`), numbered from `offset` in the objective's list; `tokensOf`
 * counts an item's tokens (pairs: `pairTokens`; KTO's rows: kto_data.ts `rowTokens`).
 */
export function pairBatch<P = PrefPair>(
  pairs: readonly P[],
  index: readonly number[],
  offset: number,
  tokensOf: (p: P) => number = pairTokens as unknown as (p: P) => number,
): Batch & { tokens: number } {
  const B = index.length;
  const tokens = index.reduce((n, i) => n + tokensOf(pairs[i]!), 0);
  return {
    ids: Int32Array.from(index, (i) => i + offset),
    targets: new Int32Array(B),
    B,
    T: Math.max(1, Math.ceil(tokens / B)),
    tokens,
  };
}

/** Batches of whole groups (see the header); `P` is the item type (a pair, or a KTO row with its `tokensOf`). */
export class PrefBatcher<P = PrefPair> implements BatchSource {
  /** Prompt groups per batch. */
  readonly B: number;
  readonly T = 1;
  private drawnCount = 0;
  private orderEpoch = -1;
  private order: number[] = [];
  private readonly rngState = new Rng(0).getState();
  private realTokens = 0;

  constructor(
    private readonly pairs: readonly P[],
    private readonly groups: readonly number[][],
    groupsPerBatch: number,
    private readonly seed: number,
    private readonly tokensOf: (p: P) => number = pairTokens as unknown as (p: P) => number,
  ) {
    if (!groups.length) throw new ConfigError('data', 'no training pairs');
    this.B = groupsPerBatch;
  }

  /** Epochs done so far (fractional): groups drawn / groups per epoch. */
  get epoch(): number {
    return (this.drawnCount * this.B) / this.groups.length;
  }

  /** Tokens drawn so far (TRL's `num_tokens`). */
  get numTokens(): number {
    return this.realTokens;
  }

  private groupAt(k: number): number[] {
    const n = this.groups.length;
    const e = Math.floor(k / n);
    if (e !== this.orderEpoch) {
      this.order = epochOrder(n, this.seed, e);
      this.orderEpoch = e;
    }
    return this.groups[this.order[k % n]!]!;
  }

  private indicesOf(batch: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.B; i++) out.push(...this.groupAt(batch * this.B + i));
    return out;
  }

  next(): Batch {
    const b = pairBatch(this.pairs, this.indicesOf(this.drawnCount), 0, this.tokensOf);
    this.drawnCount++;
    this.realTokens += b.tokens;
    return { ids: b.ids, targets: b.targets, B: b.B, T: b.T };
  }

  getState(): BatcherState {
    return { rng: { ...this.rngState }, drawn: this.drawnCount };
  }

  setState(s: BatcherState): void {
    this.drawnCount = s.drawn;
    this.realTokens = 0;
    for (let k = 0; k < s.drawn; k++)
      for (const i of this.indicesOf(k)) this.realTokens += this.tokensOf(this.pairs[i]!);
  }
}

/** Fixed held-out batches: the groups in order, `groupsPerBatch` at a time, at most `max` batches. */
export function prefEvalBatches<P = PrefPair>(
  pairs: readonly P[],
  groups: readonly number[][],
  groupsPerBatch: number,
  offset: number,
  max: number,
  tokensOf: (p: P) => number = pairTokens as unknown as (p: P) => number,
): Batch[] {
  const out: Batch[] = [];
  for (let g = 0; g < groups.length && out.length < max; g += groupsPerBatch) {
    const b = pairBatch(pairs, groups.slice(g, g + groupsPerBatch).flat(), offset, tokensOf);
    out.push({ ids: b.ids, targets: b.targets, B: b.B, T: b.T });
  }
  return out;
}
