// ref's sampler on a row's top-k candidates (src/backend/sample_candidates.ts), the host half of webgpu's top-k
// `sample`, against ref's `sampleKernel` on the full rows: the same ids and probabilities bit for bit (the candidates
// selected here in JavaScript, by sorting), for small and large vocabularies (the binned top-p path from 4096 on),
// top-p and min-p inside top-k, ties at the threshold, ±0 and -Infinity; a row over its slot gives false.
import { describe, expect, it } from 'vitest';
import { candidateCap, candidateStride, sampleCandidates } from '../src/backend/sample_candidates.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import type { RowSampling } from '../src/backend/sampling.js';
import { Rng } from '../src/util/rng.js';
import { boundaryTopPs, logitRows } from './sample_topk_cases.js';

/** The slots a selecting device would write for rows (N, V) at top-k k: ids with l ≥ k-th largest, in id order. */
function slots(rows: Float32Array, N: number, V: number, k: number, cap: number, lse: number[]): Int32Array {
  const stride = candidateStride(cap),
    w = new Int32Array(N * stride),
    f = new Float32Array(w.buffer);
  for (let n = 0; n < N; n++) {
    const row = rows.subarray(n * V, (n + 1) * V);
    const thr = Float32Array.from(row).sort().reverse()[Math.min(k, V) - 1]!;
    let c = 0;
    for (let i = 0; i < V; i++)
      if (row[i]! >= thr) {
        if (c < cap) {
          w[n * stride + 2 + c] = i;
          f[n * stride + 2 + cap + c] = row[i]!;
        }
        c++;
      }
    w[n * stride] = c;
    f[n * stride + 1] = lse[n]!;
  }
  return w;
}

function logSumExp64(row: Float32Array): number {
  let m = -Infinity,
    s = 0;
  for (const x of row) m = Math.max(m, x);
  for (const x of row) s += Math.exp(x - m);
  return m + Math.log(s);
}

function check(x: Float32Array, N: number, V: number, o: RowSampling, rng: Rng, n = 0): boolean {
  const u = Array.from({ length: N }, () => rng.random());
  const cap = candidateCap(o.topK, 1024);
  const lse = Array.from({ length: N }, (_, r) => logSumExp64(x.subarray(r * V, (r + 1) * V)));
  const want = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  const got = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  const top = (g: typeof want) => (n > 0 ? { n, ids: { data: g.ti }, logprobs: { data: g.tl } } : undefined);
  sampleKernel({ data: x, shape: [N, V] }, { data: want.ids }, { data: want.pr }, o, u, top(want));
  const w = slots(x, N, V, o.topK, cap, lse);
  const ok = sampleCandidates(w, V, cap, { data: got.ids }, { data: got.pr }, o, u, top(got));
  // a tie at the threshold past the slot: false (the device's caller reads the full rows then)
  const over = Array.from({ length: N }, (_, r) => w[r * candidateStride(cap)]!).some((c) => c > cap);
  expect(ok).toBe(!over);
  if (over) return false;
  expect([...got.ids]).toEqual([...want.ids]);
  for (let r = 0; r < N; r++) {
    expect(got.pr[2 * r]).toBe(want.pr[2 * r]); // the same float64 arithmetic
    expect(got.pr[2 * r + 1]).toBeCloseTo(want.pr[2 * r + 1]!, 4);
  }
  expect([...got.ti]).toEqual([...want.ti]);
  for (let i = 0; i < N * n; i++) expect(got.tl[i]).toBeCloseTo(want.tl[i]!, 4);
  return true;
}

describe('sample on the top-k candidates (host half)', () => {
  const settings: RowSampling[] = [
    { temperature: 1, topK: 1, topP: 1, minP: 0 },
    { temperature: 0.7, topK: 40, topP: 1, minP: 0 },
    { temperature: 1.3, topK: 20, topP: 0.95, minP: 0 },
    { temperature: 1, topK: 200, topP: 0.9, minP: 0.02 },
    { temperature: 0.8, topK: 1024, topP: 0.5, minP: 0.1 },
    { temperature: 1, topK: 1024, topP: 1, minP: 0 },
  ];
  for (const V of [7, 129, 5000, 32000])
    it.for(settings)(`V ${V}: ref's ids and probabilities bit for bit, %o`, (o) => {
      const rng = new Rng(V + o.topK);
      let drawn = 0;
      for (const [scale, step] of [
        [1, 0],
        [4, 0],
        [0.3, 0],
        [2, 0.5], // ties at the threshold
      ] as const)
        drawn += +check(logitRows(rng, 3, V, scale, step), 3, V, o, rng, Math.min(o.topK, 5));
      expect(drawn).toBeGreaterThanOrEqual(3);
    });

  it('top-p on the nucleus boundaries of a large row: the binned search of the full row (fromLength)', () => {
    const rng = new Rng(11);
    const V = 5000,
      k = 1024;
    const x = logitRows(rng, 1, V, 0.5);
    for (const topP of boundaryTopPs(x, k, 40))
      for (const u of [0.5, 0.999999]) {
        const cap = candidateCap(k, 1024);
        const got = { ids: new Int32Array(1), pr: new Float32Array(2) };
        const want = { ids: new Int32Array(1), pr: new Float32Array(2) };
        const o = { temperature: 1, topK: k, topP, minP: 0 };
        sampleKernel({ data: x, shape: [1, V] }, { data: want.ids }, { data: want.pr }, o, [u]);
        const w = slots(x, 1, V, k, cap, [0]);
        expect(sampleCandidates(w, V, cap, { data: got.ids }, { data: got.pr }, o, [u])).toBe(true);
        expect([got.ids[0], got.pr[0]]).toEqual([want.ids[0], want.pr[0]]);
      }
  });

  it('±0, subnormals and -Infinity at the threshold', () => {
    const rng = new Rng(3);
    const V = 300;
    const x = new Float32Array(V).fill(-Infinity);
    for (let i = 0; i < 40; i++) x[rng.int(V)] = i % 2 ? 0 : -0;
    for (let i = 0; i < 5; i++) x[rng.int(V)] = 1e-42;
    x[7] = 2;
    for (let t = 0; t < 20; t++)
      expect(check(x, 1, V, { temperature: 1, topK: 10, topP: 0.9, minP: 0 }, rng, 3)).toBe(true);
  });

  it('a row with more candidates than its slot holds: false, nothing written', () => {
    const V = 500,
      N = 2,
      cap = candidateCap(10, 1024);
    const x = new Float32Array(N * V);
    for (let i = 0; i < V; i++) x[i] = i % 3; // row 0: ~166 ties at the top > cap 64
    const ids = new Int32Array(N).fill(-5);
    const w = slots(x, N, V, 10, cap, [0, 0]);
    expect(w[0]).toBeGreaterThan(cap);
    const o = { temperature: 1, topK: 10, topP: 1, minP: 0 };
    expect(sampleCandidates(w, V, cap, { data: ids }, { data: new Float32Array(2 * N) }, o, [0.5, 0.5])).toBe(false);
    expect([...ids]).toEqual([-5, -5]);
  });
});
