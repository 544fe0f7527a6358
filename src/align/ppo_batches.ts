/**
 * The order of PPO's work, all derived from the run seed and counters (so a resumed run needs only the counter):
 *
 * - prompts: batch k of rollouts takes the prompts at positions k·N … k·N + N − 1 of an endless sequence of passes
 *   over the training prompts, each pass in its own seeded order;
 * - minibatches: optimizer step s works on batch k = ⌊s / S⌋ (S = ppoEpochs × N / M steps per batch), epoch
 *   e = ⌊(s mod S) / (N/M)⌋, and the M rollouts of minibatch m of that epoch's seeded shuffle (TRL shuffles the batch
 *   anew each PPO epoch).
 *
 * `PpoBatcher` is the loop's BatchSource: a batch's ids are rollout indices within batch k (B = M; T = the longest
 * prompt + reply among them when `lengthOf` is set, so the loop's tokens per second count what the step computed).
 */
import type { Batch, BatcherState } from '../data/batcher.js';
import type { BatchSource } from '../train/trainer.js';
import { hashUniform, Rng } from '../util/rng.js';

/** A seed derived from (seed, stream, index). */
export function derivedSeed(seed: number, stream: number, index: number): number {
  return Math.floor(hashUniform((seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0, index) * 4294967296) >>> 0;
}

function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  new Rng(seed).shuffle(p);
  return p;
}

/** The training-prompt indices of rollout batch k (N of them, from `nPrompts`). */
export function batchPrompts(seed: number, k: number, N: number, nPrompts: number): number[] {
  const out: number[] = [];
  let pass = -1;
  let perm: Int32Array = new Int32Array(0);
  for (let i = 0; i < N; i++) {
    const g = k * N + i;
    const p = Math.floor(g / nPrompts);
    if (p !== pass) {
      pass = p;
      perm = permutation(nPrompts, derivedSeed(seed, 1, p));
    }
    out.push(perm[g % nPrompts]!);
  }
  return out;
}

export class PpoBatcher implements BatchSource {
  readonly B: number;
  readonly T = 1;
  /** The length (prompt + reply) of rollout i of the current batch, for the batch's T. */
  lengthOf: ((i: number) => number) | null = null;
  /** Optimizer steps per batch of rollouts. */
  readonly stepsPerBatch: number;
  private drawn = 0;

  constructor(
    private readonly seed: number,
    /** Rollouts per batch (N) and per minibatch (M). */
    private readonly N: number,
    M: number,
    private readonly epochs: number,
  ) {
    this.B = M;
    this.stepsPerBatch = (epochs * N) / M;
  }

  /** The batch of rollouts the next minibatch comes from. */
  get nextBatchIndex(): number {
    return Math.floor(this.drawn / this.stepsPerBatch);
  }

  next(): Batch {
    const k = Math.floor(this.drawn / this.stepsPerBatch);
    const j = this.drawn % this.stepsPerBatch;
    const perEpoch = this.N / this.B;
    const e = Math.floor(j / perEpoch),
      m = j % perEpoch;
    const perm = permutation(this.N, derivedSeed(this.seed, 2, k * this.epochs + e));
    this.drawn++;
    const ids = perm.slice(m * this.B, (m + 1) * this.B);
    const T = this.lengthOf ? Math.max(...Array.from(ids, this.lengthOf)) : 1;
    return { ids, targets: new Int32Array(this.B), B: this.B, T };
  }

  getState(): BatcherState {
    return { rng: { hi: 0, lo: 0, spare: null }, drawn: this.drawn };
  }

  setState(s: BatcherState): void {
    this.drawn = s.drawn;
  }
}
