/**
 * The top alternatives of `sample` (`topN`, the API's top_logprobs) from a backend's top-k selection with k = n
 * (./webgpu/sample_topk.ts, the slot layout of ./sample_candidates.ts) instead of the full row, at temperature 0 and at
 * plain temperature (whose draw is certified apart: ./sample_certified.ts).
 *
 * Why it is exact: the slot holds C = {i : l_i ≥ the n-th largest l} in id order (comparisons on the logits' bits,
 * −0 with +0), so ref's `topN` (largest first, lowest id first among equal values, −0 equal to +0) run on C's logits
 * picks the same entries in the same order as on the row: every entry it passes over in the row is below the n-th
 * largest, hence outside C, and C keeps the row's relative id order. C's largest entry (lowest id among equals) is the
 * row's `argmax`: ref's draw at temperature 0, probability 1. The row's log Σ exp cannot come from C: the selecting
 * backend computes it over the row (float32) and stores it with C, so log-probabilities are l − that lse (within the
 * conformance tolerance of ref's float64).
 */
import { candidateStride } from './sample_candidates.js';
import { argmax, topN } from './sampling.js';

type Out = { data: { [i: number]: number } };

/** The candidates a slot holds for n alternatives: ties at the n-th place up to this many stay on the device path. */
export function topNCap(n: number): number {
  return Math.max(8, 2 * n);
}

/**
 * Every row's n top alternatives from its slot (`words` from word `base` on: N slots of `candidateStride(cap)` words)
 * into `top` (N, n) as ref's `sampleKernel` writes them (ids −1 and −Infinity past a row of V < n), and the drawn
 * token: with `greedy` ids (N) and probs (N, 2) = (1, l − lse) of the row's argmax; else the ids already drawn (the
 * certified draw's) keep their probability, and their log-probability is made l − lse where the id is among the
 * candidates (so it equals its alternative's, as in ref). Returns false, having written nothing, when some row has
 * more candidates than its slot holds (ties at the n-th place past `cap`: the caller samples the full rows instead).
 */
export function sampleTopN(
  words: Int32Array,
  base: number,
  N: number,
  cap: number,
  top: { n: number; ids: Out; logprobs: Out },
  ids: Out,
  probs: Out,
  greedy: boolean,
): boolean {
  const stride = candidateStride(cap);
  for (let r = 0; r < N; r++) {
    const c = words[base + r * stride]!;
    if (!(c >= 1 && c <= cap)) return false;
  }
  const bits = new Float32Array(words.buffer, words.byteOffset, words.length);
  for (let r = 0; r < N; r++) {
    const b = base + r * stride,
      c = words[b]!,
      lse = bits[b + 1]!;
    const rowIds = words.subarray(b + 2, b + 2 + c),
      l = bits.subarray(b + 2 + cap, b + 2 + cap + c);
    const t = topN(l, top.n);
    for (let k = 0; k < top.n; k++) {
      top.ids.data[r * top.n + k] = t[k] ? rowIds[t[k]!.id]! : -1;
      top.logprobs.data[r * top.n + k] = t[k] ? t[k]!.logprob - lse : -Infinity;
    }
    if (greedy) {
      const j = argmax(l);
      ids.data[r] = rowIds[j]!;
      probs.data[2 * r] = 1;
      probs.data[2 * r + 1] = l[j]! - lse;
    } else {
      const j = rowIds.indexOf(ids.data[r]!);
      if (j >= 0) probs.data[2 * r + 1] = l[j]! - lse;
    }
  }
  return true;
}
