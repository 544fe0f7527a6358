/**
 * Ragged batches without padding: sequences of different lengths run as one batch per length (so no attention mask
 * is needed), and per-sequence results come back in the caller's order through a differentiable gather.
 * Used by the reward model (./reward.ts) and sequence log-probabilities (./losses.ts).
 */
import { ShapeError } from '../util/errors.js';
import * as O from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';

export interface LengthGroup {
  /** The common length of the group's sequences. */
  T: number;
  /** Indices (into the caller's list) of the sequences in this group, in row order. */
  index: number[];
  /** Their ids, row-major (B, T) with B = index.length. */
  ids: Int32Array;
}

/** Groups sequences by length (first-seen order). Each sequence needs at least one token. */
export function groupByLength(seqs: readonly ArrayLike<number>[], what = 'sequence'): LengthGroup[] {
  if (seqs.length === 0) throw new ShapeError(`no ${what}s`);
  const byLength = new Map<number, number[]>();
  seqs.forEach((s, i) => {
    if (s.length === 0) throw new ShapeError(`${what} ${i} is empty`);
    const g = byLength.get(s.length);
    if (g) g.push(i);
    else byLength.set(s.length, [i]);
  });
  return [...byLength].map(([T, index]) => {
    const ids = new Int32Array(index.length * T);
    index.forEach((i, b) => ids.set(Array.from(seqs[i]!), b * T));
    return { T, index, ids };
  });
}

/**
 * One value per sequence, in the caller's order: `parts[g]` (B_g,) holds group g's values in its row order.
 * Returns (N,) with N the number of sequences.
 */
export function inCallerOrder(groups: readonly LengthGroup[], parts: readonly Tensor[]): Tensor {
  const N = groups.reduce((n, g) => n + g.index.length, 0);
  const order = groups.flatMap((g) => g.index); // order[k]: the sequence in row k of the concatenation
  const all =
    parts.length === 1
      ? parts[0]!
      : O.concat(
          parts.map((p) => O.reshape(p, [p.size])),
          0,
        ); // (N,)
  if (order.every((i, k) => i === k)) return O.reshape(all, [N]);
  const rowOf = new Array<number>(N);
  order.forEach((i, k) => (rowOf[i] = k));
  return O.reshape(O.embedding(O.reshape(all, [N, 1]), O.ids(rowOf, [N], all)), [N]); // gather rows: (N,)
}
