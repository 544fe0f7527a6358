/**
 * Batches of SFT examples, by padding (no packing): each batch takes the next B examples of the epoch order, right-
 * pads them to the longest one (inputs with `padId`, targets with -100, so padding never counts; attention is
 * causal, so a padded position never changes the positions before it). Each epoch visits every example once in an
 * order shuffled from (seed, epoch); batches run on across epoch boundaries.
 *
 * The order is a function of the seed and the number of batches drawn, so the state saved in a checkpoint is that
 * count (and the constant RNG state the BatcherState interface carries): a resumed run draws the same batches.
 */
import type { Batch, BatcherState } from '../data/batcher.js';
import type { BatchSource } from '../train/trainer.js';
import { ConfigError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { inputsAndTargets, IGNORE_INDEX, type SftExample } from './sft_data.js';

/** Pad examples into one (B, T) batch, T the longest example's input length. */
export function padBatch(examples: readonly SftExample[], padId: number): Batch & { tokens: number } {
  const rows = examples.map(inputsAndTargets);
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.inputs.length));
  const ids = new Int32Array(B * T).fill(padId),
    targets = new Int32Array(B * T).fill(IGNORE_INDEX); // (B, T) each
  let tokens = 0;
  rows.forEach((r, b) => {
    ids.set(r.inputs, b * T);
    targets.set(r.targets, b * T);
    tokens += r.inputs.length;
  });
  return { ids, targets, B, T, tokens };
}

/** The example order of `epoch`: a permutation of 0..n-1 from (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng(BigInt(seed >>> 0) * 1_000_003n + BigInt(epoch));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

export class SftBatcher implements BatchSource {
  readonly B: number;
  /** The longest input a batch can have (maxLength − 1); batches are as long as their longest example. */
  readonly T: number;
  private drawnCount = 0;
  private orderEpoch = -1;
  private order: number[] = [];
  private readonly rngState = new Rng(0).getState();
  private realTokens = 0;

  constructor(
    private readonly examples: readonly SftExample[],
    B: number,
    maxLength: number,
    private readonly seed: number,
    private readonly padId: number,
  ) {
    if (!examples.length) throw new ConfigError('data', 'no training examples');
    this.B = B;
    this.T = maxLength - 1;
  }

  /** Examples per epoch. */
  get size(): number {
    return this.examples.length;
  }

  /** Epochs done so far (fractional): examples drawn / examples per epoch. */
  get epoch(): number {
    return (this.drawnCount * this.B) / this.examples.length;
  }

  /** Input tokens drawn so far, padding not counted (TRL's `num_tokens`). */
  get numTokens(): number {
    return this.realTokens;
  }

  private at(k: number): SftExample {
    const n = this.examples.length;
    const e = Math.floor(k / n);
    if (e !== this.orderEpoch) {
      this.order = epochOrder(n, this.seed, e);
      this.orderEpoch = e;
    }
    return this.examples[this.order[k % n]!]!;
  }

  next(): Batch {
    const start = this.drawnCount * this.B;
    const xs: SftExample[] = [];
    for (let i = 0; i < this.B; i++) xs.push(this.at(start + i));
    this.drawnCount++;
    const b = padBatch(xs, this.padId);
    this.realTokens += b.tokens;
    return { ids: b.ids, targets: b.targets, B: b.B, T: b.T };
  }

  getState(): BatcherState {
    return { rng: { ...this.rngState }, drawn: this.drawnCount };
  }

  setState(s: BatcherState): void {
    this.drawnCount = s.drawn;
    this.realTokens = 0;
    for (let k = 0; k < s.drawn * this.B; k++) this.realTokens += this.at(k).ids.length - 1;
  }
}

/** Fixed evaluation batches: the examples in order, B at a time (the last batch may be smaller), at most `max`. */
export function evalBatches(examples: readonly SftExample[], B: number, padId: number, max: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < examples.length && out.length < max; i += B) {
    const b = padBatch(examples.slice(i, i + B), padId);
    out.push({ ids: b.ids, targets: b.targets, B: b.B, T: b.T });
  }
  return out;
}
