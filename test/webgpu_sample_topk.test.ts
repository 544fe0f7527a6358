// webgpu's top-k `sample` (src/backend/webgpu/sample.ts): the candidates selected in WGSL (./sample_topk.ts), only
// they read back, ref's float64 sampler on them. Against ref's `sampleKernel` on the full rows: the same ids and
// probabilities exactly, log-probabilities within float32 (lse on the device), for V = 7 … 50 000, k = 1 … 1024,
// top-p / min-p inside top-k, top-p on the nucleus boundaries, ties at the threshold, ±0, subnormals, -Infinity, the
// top alternatives; the counters show which path ran (candidates: no full-row read; a tie past the slot: the full
// rows); and generate() on webgpu with top-k draws ref's tokens through it. Skipped where Dawn finds no adapter.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { candidateCap, candidateStride } from '../src/backend/sample_candidates.js';
import { nucleusStride } from '../src/backend/sample_nucleus.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import type { RowSampling } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { SAMPLE_TOPK_MAX } from '../src/backend/webgpu/sample.js';
import { generate } from '../src/generate/engine.js';
import { loadModel } from '../src/model/hf/folder.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs } from './helpers.js';
import { boundaryTopPs, logitRows } from './sample_topk_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const maker = webgpuMaker('webgpu top-k sample');
const be = await maker.make();

type Result = { ids: Int32Array; pr: Float32Array; ti: Int32Array; tl: Float32Array };

/** `sample` on rows (N, V) on webgpu, with n top alternatives when n > 0. */
async function onGpu(g: WebGpuBackend, x: Float32Array, N: number, V: number, o: RowSampling, u: number[], n = 0) {
  const bx = g.alloc(N * V, 'f32'),
    outs = [
      g.alloc(N, 'i32'),
      g.alloc(2 * N, 'f32'),
      g.alloc(Math.max(1, N * n), 'i32'),
      g.alloc(Math.max(1, N * n), 'f32'),
    ];
  try {
    g.write(bx, x);
    const shapes = [[N], [N, 2], [N, n], [N, n]];
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      outs.slice(0, n > 0 ? 4 : 2).map((buf, i) => ({ buf, shape: shapes[i]! })),
      { ...o, u, ...(n > 0 ? { topN: n } : {}) },
    );
    const r = await Promise.all(outs.map((b) => g.read(b)));
    return { ids: r[0] as Int32Array, pr: r[1] as Float32Array, ti: r[2] as Int32Array, tl: r[3] as Float32Array };
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

function onRef(x: Float32Array, N: number, V: number, o: RowSampling, u: number[], n = 0): Result {
  const r = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  const top = n > 0 ? { n, ids: { data: r.ti }, logprobs: { data: r.tl } } : undefined;
  sampleKernel({ data: x, shape: [N, V] }, { data: r.ids }, { data: r.pr }, o, u, top);
  return r;
}

/** The webgpu draw equals ref's (ids, probabilities exactly; log-probabilities to float32); the counters' change. */
async function expectRef(g: WebGpuBackend, x: Float32Array, N: number, V: number, o: RowSampling, u: number[], n = 0) {
  const before = { ...g.counts };
  const got = await onGpu(g, x, N, V, o, u, n);
  const d = Object.fromEntries(Object.entries(g.counts).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
  const want = onRef(x, N, V, o, u, n);
  const label = `V ${V} ${JSON.stringify(o)} u ${u.join(',')}`;
  expect([...got.ids], label).toEqual([...want.ids]);
  for (let r = 0; r < N; r++) {
    expect(got.pr[2 * r], label).toBe(want.pr[2 * r]);
    expect(Math.abs(got.pr[2 * r + 1]! - want.pr[2 * r + 1]!), label).toBeLessThanOrEqual(
      1e-5 * Math.max(1, Math.abs(want.pr[2 * r + 1]!)) + 2e-6 * Math.log(V),
    );
  }
  if (n > 0) {
    expect([...got.ti.subarray(0, N * n)], label).toEqual([...want.ti]);
    for (let i = 0; i < N * n; i++) expect(Math.abs(got.tl[i]! - want.tl[i]!)).toBeLessThanOrEqual(1e-4);
  }
  return d;
}

/** Candidates of each row: ids with l ≥ the k-th largest (for the tests' own expectations). */
function candidates(x: Float32Array, N: number, V: number, k: number): number[] {
  return Array.from({ length: N }, (_, n) => {
    const row = x.subarray(n * V, (n + 1) * V);
    const thr = Float32Array.from(row).sort().reverse()[Math.min(k, V) - 1]!;
    return row.filter((v) => v >= thr).length;
  });
}

const SETTINGS: RowSampling[] = [
  { temperature: 1, topK: 1, topP: 1, minP: 0 },
  { temperature: 0.7, topK: 5, topP: 1, minP: 0 },
  { temperature: 1.3, topK: 40, topP: 0.95, minP: 0 },
  { temperature: 1, topK: 200, topP: 0.9, minP: 0.02 },
  { temperature: 0.8, topK: SAMPLE_TOPK_MAX, topP: 0.5, minP: 0.1 },
  { temperature: 1, topK: SAMPLE_TOPK_MAX, topP: 1, minP: 0 },
];

describe.skipIf(!be)(`webgpu top-k sample ${be ? '' : `(skipped: ${maker.why})`}`, () => {
  const g = be!;
  for (const V of [7, 129, 5000, 50000])
    it.for(SETTINGS)(`V ${V}: ref's draw from the device's candidates, no full row read back, %o`, async (o) => {
      const rng = new Rng(V * 31 + o.topK);
      const N = 4,
        cap = candidateCap(o.topK, SAMPLE_TOPK_MAX);
      for (const [scale, step] of [
        [1, 0],
        [4, 0],
        [0.3, 0],
        [2, 0.25], // ties at the threshold
      ] as const) {
        const x = logitRows(rng, N, V, scale, step);
        const u = Array.from({ length: N }, () => rng.random());
        const over = candidates(x, N, V, o.topK).some((c) => c > cap);
        const d = await expectRef(g, x, N, V, o, u);
        expect(d['native']).toBe(1);
        expect(d['hostSteps']).toBe(1);
        expect([d['sampleCandidateRows'], d['sampleFullRows']]).toEqual(over ? [0, N] : [N, 0]);
        const slotBytes = N * candidateStride(cap) * 4;
        expect(d['sampleBytesRead']).toBe(over ? slotBytes + N * V * 4 : slotBytes);
      }
    });

  it('ties at the threshold: every candidate kept (more than k), the draw still ref’s', async () => {
    const rng = new Rng(2);
    const V = 3000,
      N = 3,
      o = { temperature: 1, topK: 10, topP: 0.9, minP: 0 };
    const x = logitRows(rng, N, V, 1, 0.5);
    const c = candidates(x, N, V, o.topK);
    expect(Math.min(...c)).toBeGreaterThan(o.topK);
    expect(Math.max(...c)).toBeLessThanOrEqual(candidateCap(o.topK, SAMPLE_TOPK_MAX));
    for (let t = 0; t < 10; t++) {
      const d = await expectRef(g, x, N, V, o, [rng.random(), rng.random(), 0.999999]);
      expect(d['sampleCandidateRows']).toBe(N);
    }
  });

  it('a tie past the slot (count > cap): that call reads the full rows, ref’s draw', async () => {
    const V = 5000,
      N = 2,
      o = { temperature: 0.9, topK: 16, topP: 1, minP: 0 };
    const x = new Float32Array(N * V);
    for (let i = 0; i < x.length; i++) x[i] = i < V ? i % 4 : (i * 7919) % 13; // row 0: 1250 equal maxima
    expect(candidates(x, N, V, o.topK)[0]).toBeGreaterThan(candidateCap(o.topK, SAMPLE_TOPK_MAX));
    const d = await expectRef(g, x, N, V, o, [0.3, 0.7]);
    expect([d['sampleCandidateRows'], d['sampleFullRows']]).toEqual([0, N]);
  });

  it('±0 at the threshold (equal as numbers), subnormals, -Infinity', async () => {
    const rng = new Rng(4);
    const V = 700;
    const x = new Float32Array(2 * V).fill(-Infinity);
    for (let i = 0; i < 60; i++) x[rng.int(2 * V)] = i % 2 ? 0 : -0;
    for (let i = 0; i < 8; i++) x[rng.int(2 * V)] = i % 2 ? 1e-42 : -3e-43;
    x[3] = 1.5;
    x[V + 9] = 0.25;
    for (const k of [1, 2, 6, 20])
      for (let t = 0; t < 5; t++) {
        const d = await expectRef(g, x, 2, V, { temperature: 1, topK: k, topP: 0.8, minP: 0 }, [
          rng.random(),
          rng.random(),
        ]);
        expect(d['sampleCandidateRows']).toBe(2);
      }
  });

  it('top-p on the nucleus boundaries of a large row (the full row’s binned search)', async () => {
    const rng = new Rng(12);
    const V = 5000,
      k = 1024;
    const x = logitRows(rng, 1, V, 0.5);
    for (const topP of boundaryTopPs(x, k, 24)) {
      const d = await expectRef(g, x, 1, V, { temperature: 1, topK: k, topP, minP: 0 }, [0.999999]);
      expect(d['sampleCandidateRows']).toBe(1);
    }
  });

  it('the top alternatives (topN ≤ k) from the candidates; topN > k on the full rows', async () => {
    const rng = new Rng(6);
    const V = 20000,
      N = 3;
    for (const [k, n, device] of [
      [20, 5, true],
      [5, 5, true],
      [3, 5, false],
    ] as const) {
      const x = logitRows(rng, N, V, 2, 0.5);
      const d = await expectRef(g, x, N, V, { temperature: 1, topK: k, topP: 0.9, minP: 0 }, [0.1, 0.5, 0.9], n);
      expect(d['sampleCandidateRows']).toBe(device ? N : 0);
      expect(d['sampleFullRows']).toBe(device ? 0 : N);
    }
  });

  it('bytes read back per token, V = 50 000 (SwiftShader sanity check; time is not meaningful there)', async () => {
    const rng = new Rng(8);
    const V = 50000;
    const x = logitRows(rng, 1, V, 2);
    const per = async (o: RowSampling) => {
      const before = g.counts.sampleBytesRead;
      const t0 = performance.now();
      await expectRef(g, x, 1, V, o, [0.42]);
      return { bytes: g.counts.sampleBytesRead - before, ms: performance.now() - t0 };
    };
    const full = await per({ temperature: 1, topK: 0, topP: 0.9, minP: 0 });
    const k40 = await per({ temperature: 1, topK: 40, topP: 0.9, minP: 0 });
    const k1024 = await per({ temperature: 1, topK: 1024, topP: 0.9, minP: 0 });
    console.info(
      `sample, V ${V}: bytes read back per token: top-p only (flat: candidates, then the full row) ${full.bytes} (${full.ms.toFixed(1)} ms), ` +
        `top-k 40 ${k40.bytes} (${k40.ms.toFixed(1)} ms), top-k 1024 ${k1024.bytes} (${k1024.ms.toFixed(1)} ms)`,
    );
    expect(full.bytes).toBe(V * 4 + nucleusStride(SAMPLE_TOPK_MAX) * 4); // a flat row: the candidates, then the row
    expect(k40.bytes).toBe(candidateStride(candidateCap(40, SAMPLE_TOPK_MAX)) * 4);
    expect(k1024.bytes).toBeLessThan((V * 4) / 20);
  });

  // the decode path: generate() samples through the backend's `sample`, so top-k decoding on webgpu takes this path
  const llama = fixtureDirs().find((d) => path.basename(d) === 'llama-tiny');
  it.skipIf(!llama)('generate() with top-k on webgpu: ref’s tokens, every row from the candidates', async () => {
    const prompt = [1, 5, 9, 2];
    const opts = { temperature: 0.9, topK: 8, topP: 0.9, seed: 7, maxTokens: 6 };
    const run = async (backend: Backend) => {
      const model = await loadModel(llama!, { backend });
      return (await generate(model, [prompt], opts)).choices[0]!.ids;
    };
    const want = await run(getBackend('ref'));
    const before = { ...g.counts };
    expect(await run(g)).toEqual(want);
    expect(g.counts.sampleCandidateRows - before.sampleCandidateRows).toBe(want.length);
    expect(g.counts.sampleFullRows - before.sampleFullRows).toBe(0);
  });
});
