/**
 * The `sample` kernel on a row's top-k candidates instead of the row: what a backend that selects them on the device
 * (./webgpu/sample_topk.ts) reads back, and ref's float64 sampler (./sampling.ts `sampleRow`, the same code) on them.
 *
 * Why it is exact: at temperature > 0 with 0 < topK = k, every weight of the definition (./sampling.ts rowWeights)
 * outside C = {i : l_i ≥ the k-th largest l} is exactly 0, and top-p, min-p and the draw only ever zero more of them.
 * Every float64 sum runs in id order over the positive weights, where +0 terms change nothing, so the sums over C's
 * entries in id order are the full row's bit for bit — provided the nucleus search is the one the full row takes
 * (mass bins when the row has ≥ 4096 entries), which `sampleRow`'s `fromLength` picks. The row's max is in C, so are
 * its topN ≤ k largest entries (ref's `topN`: lowest id first among equals, preserved in id order). What C cannot
 * give is log Σ exp over the row: the selecting backend computes it there (float32) and stores it with C.
 *
 * Layout of one row in the read-back buffer (32-bit words; `stride` = 2 + 2·cap): [count, lse (f32 bits),
 * ids[cap], logits[cap] (f32 bits)]; count = |C| (ties at the threshold can make it larger than k), of which the
 * first min(count, cap) are stored, in id order.
 */
import { ConfigError } from '../util/errors.js';
import { checkSampleArgs, sampleRow, topN, type RowSampling } from './sampling.js';

type Out = { data: { [i: number]: number } };

/** The most candidates a row's slot holds for top-k `k` (a tie at the threshold past it: the full row instead). */
export function candidateCap(k: number, max: number): number {
  return Math.min(max, Math.max(64, 2 * k));
}

/** Words of one row's slot for `cap` candidates: count, lse, cap ids, cap logits. */
export function candidateStride(cap: number): number {
  return 2 + 2 * cap;
}

/**
 * Sample every row from its candidates (`words`: N slots of `candidateStride(cap)` words, as above) of rows V long:
 * ids (N), probs (N, 2) = (probability, logit − lse) and, with `top`, the n ≤ k largest entries (N, n) as
 * log-probabilities, exactly as ./sample_rows.ts `sampleKernel` on the full rows (lse aside: the stored one).
 * Returns false, having written nothing, when some row has more candidates than its slot holds (the caller samples
 * the full rows instead).
 */
export function sampleCandidates(
  words: Int32Array,
  V: number,
  cap: number,
  ids: Out,
  probs: Out,
  o: RowSampling,
  u: readonly number[],
  top?: { n: number; ids: Out; logprobs: Out },
): boolean {
  const N = u.length,
    stride = candidateStride(cap);
  checkSampleArgs(N, V, o, u);
  if (!(o.temperature > 0 && o.topK > 0) || (top && top.n > o.topK))
    throw new ConfigError('topK', 'sample on candidates: needs temperature > 0, topK > 0 and topN ≤ topK');
  for (let n = 0; n < N; n++) {
    const c = words[n * stride]!;
    if (!(c >= 1 && c <= cap)) return false;
  }
  const bits = new Float32Array(words.buffer, words.byteOffset, N * stride);
  for (let n = 0; n < N; n++) {
    const base = n * stride,
      c = words[base]!,
      lse = bits[base + 1]!;
    const rowIds = words.subarray(base + 2, base + 2 + c),
      l = bits.subarray(base + 2 + cap, base + 2 + cap + c);
    writeCandidateDraw(n, l, rowIds, lse, sampleRow(l, o, u[n]!, V), ids, probs, top);
  }
  return true;
}

/**
 * Row n's outputs from a draw `r` on its candidates (logits `l`, their ids `rowIds`, the row's lse): the id, (prob,
 * logprob), and with `top` the n largest candidates as log-probabilities (ref's `topN` order; −1 / −∞ past them).
 */
export function writeCandidateDraw(
  n: number,
  l: Float32Array,
  rowIds: Int32Array,
  lse: number,
  r: { id: number; prob: number },
  ids: Out,
  probs: Out,
  top?: { n: number; ids: Out; logprobs: Out },
): void {
  ids.data[n] = rowIds[r.id]!;
  probs.data[2 * n] = r.prob;
  probs.data[2 * n + 1] = l[r.id]! - lse;
  if (top && top.n > 0) {
    const t = topN(l, top.n);
    for (let k = 0; k < top.n; k++) {
      top.ids.data[n * top.n + k] = t[k] ? rowIds[t[k]!.id]! : -1;
      top.logprobs.data[n * top.n + k] = t[k] ? t[k]!.logprob - lse : -Infinity;
    }
  }
}
