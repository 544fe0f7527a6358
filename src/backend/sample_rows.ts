/**
 * The `sample` kernel on host arrays: rows of logits → sampled ids, their probabilities and the most likely
 * alternatives, by the backend-neutral arithmetic of ./sampling.ts. The `ref` backend's kernel, and the webgpu
 * backend's host path for settings it does not select candidates for on the device (./webgpu/sample.ts; for those,
 * ./sample_candidates.ts runs the same `sampleRow` on the candidates).
 */
import {
  checkSampleArgs,
  logSumExp,
  penalizeRow,
  rowPenaltyPairs,
  sampleRow,
  topN,
  type RowSampling,
  type SamplePenalties,
} from './sampling.js';

type Out = { data: { [i: number]: number } };

/**
 * The `sample` kernel on host arrays: rows of `logits` (…, V) → ids (N) and (prob, logprob) pairs (N, 2); with
 * topN > 0 also the n most likely ids per row (N, n) and their log-probabilities (N, n).
 */
export function sampleKernel(
  logits: { data: ArrayLike<number>; shape: readonly number[] },
  ids: Out,
  probs: Out,
  o: RowSampling,
  u: readonly number[],
  top?: { n: number; ids: Out; logprobs: Out },
  penalties?: SamplePenalties,
): void {
  const V = logits.shape[logits.shape.length - 1]!;
  const N = V === 0 ? 0 : logits.data.length / V;
  checkSampleArgs(N, V, o, u);
  const all = logits.data as Float32Array;
  for (let n = 0; n < N; n++) {
    const row =
      typeof all.subarray === 'function'
        ? all.subarray(n * V, (n + 1) * V)
        : (Array.prototype.slice.call(all, n * V, (n + 1) * V) as number[]);
    // step 2: the penalties on a copy; the model's log-probabilities (reported) stay those of the row itself
    const pairs = rowPenaltyPairs(penalties, n);
    let l: ArrayLike<number> = row;
    if (pairs) {
      const c = Float32Array.from(row);
      penalizeRow(c, pairs, penalties!.settings);
      l = c;
    }
    const r = sampleRow(l, o, u[n]!);
    const lse = pairs ? logSumExp(row) : r.lse;
    ids.data[n] = r.id;
    probs.data[2 * n] = r.prob;
    probs.data[2 * n + 1] = row[r.id]! - lse;
    if (top && top.n > 0) {
      const t = topN(row, top.n);
      for (let k = 0; k < top.n; k++) {
        // fewer entries than n (V < n): id −1, log-probability −Infinity
        top.ids.data[n * top.n + k] = t[k]?.id ?? -1;
        top.logprobs.data[n * top.n + k] = t[k] ? t[k]!.logprob - lse : -Infinity;
      }
    }
  }
}
