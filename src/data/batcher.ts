/**
 * Random-window batches, as nanoGPT's `get_batch`: each of the B rows starts at a random offset of the token stream
 * and holds T + 1 consecutive ids; `ids` are the first T and `targets` the last T (shifted by one). The offsets come
 * from a seeded `Rng` whose state (and the count of batches drawn) can be saved in a checkpoint and restored, so a
 * resumed run draws exactly the batches an uninterrupted run would have drawn.
 *
 * Several shards: a window never straddles two shards; the shard is chosen in proportion to its number of windows,
 * so with one shard this is exactly `randint(len(data) - T)`.
 */
import { ConfigError } from '../util/errors.js';
import { Rng, type RngState } from '../util/rng.js';
import type { IdArray, TokenSplit } from './shards.js';

export interface Batch {
  /** (B, T) input ids, row-major. */
  ids: Int32Array;
  /** (B, T) next-token targets: targets[b, t] = ids[b, t + 1] of the same window. */
  targets: Int32Array;
  B: number;
  T: number;
}

export interface BatcherState {
  rng: RngState;
  /** Number of batches drawn so far (the data position). */
  drawn: number;
}

export class Batcher {
  readonly B: number;
  readonly T: number;
  private readonly shards: IdArray[];
  /** Cumulative window counts per shard (windows = len − T). */
  private readonly cum: number[];
  private readonly windows: number;
  private rng: Rng;
  private drawnCount = 0;

  /** @param name which split, for error messages ('train' or 'validation') */
  constructor(split: TokenSplit, B: number, T: number, rng: Rng, name = 'train') {
    if (!(Number.isInteger(B) && B >= 1)) throw new ConfigError('batchSize', `must be an integer ≥ 1, got ${B}`);
    if (!(Number.isInteger(T) && T >= 1)) throw new ConfigError('blockSize', `must be an integer ≥ 1, got ${T}`);
    this.B = B;
    this.T = T;
    this.shards = split.shards.filter((s) => s.length > T);
    this.cum = [];
    let acc = 0;
    for (const s of this.shards) {
      acc += s.length - T;
      this.cum.push(acc);
    }
    this.windows = acc;
    if (this.windows === 0) {
      throw new ConfigError(
        'blockSize',
        `the ${name} split holds ${split.tokens} tokens, fewer than one window of blockSize + 1 = ${T + 1}. ` +
          `Use more text, a smaller --blockSize${name === 'train' ? '' : ', or a larger --valFraction'}.`,
      );
    }
    this.rng = rng;
  }

  /** Number of distinct window start positions. */
  get numWindows(): number {
    return this.windows;
  }

  /** Number of batches drawn so far. */
  get drawn(): number {
    return this.drawnCount;
  }

  /** Draw the next batch. */
  next(): Batch {
    const { B, T } = this;
    const ids = new Int32Array(B * T),
      targets = new Int32Array(B * T); // (B, T) each
    for (let b = 0; b < B; b++) {
      let w = this.rng.int(this.windows);
      let s = 0;
      while (w >= this.cum[s]!) s++;
      if (s > 0) w -= this.cum[s - 1]!;
      const shard = this.shards[s]!;
      const o = b * T;
      for (let t = 0; t < T; t++) {
        ids[o + t] = shard[w + t]!;
        targets[o + t] = shard[w + t + 1]!;
      }
    }
    this.drawnCount++;
    return { ids, targets, B, T };
  }

  getState(): BatcherState {
    return { rng: this.rng.getState(), drawn: this.drawnCount };
  }

  setState(s: BatcherState): void {
    this.rng.setState(s.rng);
    this.drawnCount = s.drawn;
  }
}

/** A fixed list of `count` batches drawn with a fixed seed: the same every time it is called (evaluation). */
export function fixedBatches(
  split: TokenSplit,
  B: number,
  T: number,
  count: number,
  seed: number,
  name = 'validation',
): Batch[] {
  const b = new Batcher(split, B, T, new Rng(seed), name);
  return Array.from({ length: count }, () => b.next());
}

/** Check that a split can fill at least one batch of B distinct windows; otherwise a ConfigError saying what to change. */
export function checkSplitSize(split: TokenSplit, B: number, T: number, name: string): void {
  const need = B * T + 1;
  if (split.tokens < need) {
    throw new ConfigError(
      name === 'train' ? 'batchSize' : 'valFraction',
      `the ${name} split holds ${split.tokens} tokens, smaller than one batch (batchSize × blockSize + 1 = ${B} × ${T} + 1 = ${need}). ` +
        `Use more text, or a smaller --batchSize / --blockSize${name === 'train' ? '' : ' / a larger --valFraction'}.`,
    );
  }
}
