// Rows of logits for the top-k `sample` tests (./sample_candidates.test.ts, ./webgpu_sample_topk.test.ts).
import { rowWeights } from '../src/backend/sampling.js';
import type { Rng } from '../src/util/rng.js';

/** Rows (N, V): normal logits times `scale`, rounded to multiples of `step` where given (ties). */
export function logitRows(rng: Rng, N: number, V: number, scale: number, step = 0): Float32Array {
  const r = new Float32Array(N * V);
  for (let i = 0; i < r.length; i++) {
    const x = rng.normal() * scale;
    r[i] = step > 0 ? Math.round(x / step) * step : x;
  }
  return r;
}

/**
 * top-p values on the nucleus boundaries of `row` at top-k k, temperature 1: (mass of its j largest weights) / (their
 * total), j = 1..count. There the kept set turns on the last bits of sums taken in different orders, so a sampler
 * that searched the nucleus otherwise than ref (mass bins from 4096 entries on) would keep another set.
 */
export function boundaryTopPs(row: Float32Array, k: number, count: number): number[] {
  const d = rowWeights(row, { temperature: 1, topK: k, topP: 1, minP: 0 });
  const w = Array.from(d.w)
    .filter((v) => v > 0)
    .sort((a, b) => b - a);
  const out: number[] = [];
  let acc = 0;
  for (let j = 0; j < w.length && out.length < count; j++) {
    acc += w[j]!;
    const p = acc / d.sum;
    if (p > 0 && p < 1) out.push(p);
  }
  return out;
}
