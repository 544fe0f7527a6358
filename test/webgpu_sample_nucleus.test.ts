// webgpu's `sample` with top-p and/or min-p but no top-k (src/backend/webgpu/sample.ts, plan 'nucleus'): the 1 024
// largest logits and the tail's mass selected in WGSL (sample_topk.ts `runSampleTopKTail`), the draw certified and
// run on the host (src/backend/sample_nucleus.ts). Against ref's `sampleKernel` on the full rows: the same ids and
// probabilities exactly; peaked rows drawn from the candidates (8 KiB read back a row), flat rows falling back to
// the full rows (counted), min-p alone, top-p with min-p, topN, top-k past the slot; the tail sums the kernel writes
// within the bound of float64's; and seeded generate() on webgpu with top-p draws ref's tokens. Skipped where Dawn
// finds no adapter.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { nucleusStride } from '../src/backend/sample_nucleus.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import type { RowSampling } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { SAMPLE_TOPK_MAX } from '../src/backend/webgpu/sample.js';
import { generate } from '../src/generate/engine.js';
import type { ModelConfig } from '../src/model/config.js';
import { loadModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs } from './helpers.js';
import { zipfRows } from './sample_nucleus_cases.js';
import { logitRows } from './sample_topk_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const maker = webgpuMaker('webgpu top-p sample');
const be = await maker.make();
const SLOT = nucleusStride(SAMPLE_TOPK_MAX) * 4;

/** `sample` on rows (N, V) on webgpu and on ref; ids and probabilities equal; the counters' change. */
async function expectRef(g: WebGpuBackend, x: Float32Array, N: number, V: number, o: RowSampling, u: number[], n = 0) {
  const bx = g.alloc(N * V, 'f32'),
    outs = [
      g.alloc(N, 'i32'),
      g.alloc(2 * N, 'f32'),
      g.alloc(Math.max(1, N * n), 'i32'),
      g.alloc(Math.max(1, N * n), 'f32'),
    ];
  const before = { ...g.counts };
  try {
    g.write(bx, x);
    const shapes = [[N], [N, 2], [N, n], [N, n]];
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      outs.slice(0, n > 0 ? 4 : 2).map((buf, i) => ({ buf, shape: shapes[i]! })),
      { ...o, u, ...(n > 0 ? { topN: n } : {}) },
    );
    const [ids, pr, ti, tl] = (await Promise.all(outs.map((b) => g.read(b)))) as [
      Int32Array,
      Float32Array,
      Int32Array,
      Float32Array,
    ];
    const d = Object.fromEntries(Object.entries(g.counts).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
    const w = {
      ids: new Int32Array(N),
      pr: new Float32Array(2 * N),
      ti: new Int32Array(N * n),
      tl: new Float32Array(N * n),
    };
    const top = n > 0 ? { n, ids: { data: w.ti }, logprobs: { data: w.tl } } : undefined;
    sampleKernel({ data: x, shape: [N, V] }, { data: w.ids }, { data: w.pr }, o, u, top);
    const label = `V ${V} ${JSON.stringify(o)} u ${u.join(',')}`;
    expect([...ids], label).toEqual([...w.ids]);
    for (let r = 0; r < N; r++) {
      expect(pr[2 * r], label).toBe(w.pr[2 * r]);
      expect(Math.abs(pr[2 * r + 1]! - w.pr[2 * r + 1]!), label).toBeLessThanOrEqual(1e-4);
    }
    if (n > 0) {
      expect([...ti.subarray(0, N * n)], label).toEqual([...w.ti]);
      for (let i = 0; i < N * n; i++) expect(Math.abs(tl[i]! - w.tl[i]!)).toBeLessThanOrEqual(1e-4);
    }
    return d;
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

describe.skipIf(!be)(`webgpu top-p / min-p sample ${be ? '' : `(skipped: ${maker.why})`}`, () => {
  const g = be!;

  it('peaked rows: ref’s draw from the device’s candidates, 8 KiB a row read back, no full row', async () => {
    const rng = new Rng(1);
    for (const V of [5000, 50000])
      for (const o of [
        { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
        { temperature: 0.7, topK: 0, topP: 0.95, minP: 0 },
        { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
        { temperature: 1.2, topK: 0, topP: 0.9, minP: 0.02 },
        { temperature: 1, topK: 5000, topP: 0.8, minP: 0 },
      ]) {
        const N = 3,
          x = zipfRows(rng, N, V, 2);
        const d = await expectRef(g, x, N, V, o, [rng.random(), rng.random(), 0.999999]);
        expect([d['sampleNucleusRows'], d['sampleNucleusFallbacks'], d['sampleFullRows']], `V ${V}`).toEqual([N, 0, 0]);
        expect(d['native']).toBe(1);
        expect(d['sampleBytesRead']).toBe(N * SLOT);
      }
  });

  it('flat rows (the nucleus passes the 1 024 candidates): the call reads the full rows back, ref’s draw', async () => {
    const rng = new Rng(2);
    const V = 20000,
      N = 2;
    const x = logitRows(rng, N, V, 0.5);
    for (const o of [
      { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 1, topK: 0, topP: 1, minP: 0.1 },
    ]) {
      const d = await expectRef(g, x, N, V, o, [0.25, 0.75]);
      expect([d['sampleNucleusRows'], d['sampleNucleusFallbacks'], d['sampleFullRows']]).toEqual([0, 1, N]);
      expect(d['sampleBytesRead']).toBe(N * SLOT + N * V * 4);
    }
  });

  it('topN alternatives, small rows (V ≤ 1 024: the candidates are the row), −Infinity, ±0', async () => {
    const rng = new Rng(3);
    const o = { temperature: 0.9, topK: 0, topP: 0.92, minP: 0.01 };
    const x = zipfRows(rng, 2, 30000, 1.8);
    const d = await expectRef(g, x, 2, 30000, o, [0.1, 0.9], 5);
    expect(d['sampleNucleusRows']).toBe(2);
    const y = logitRows(rng, 2, 300, 1);
    for (let i = 0; i < 600; i += 7) y[i] = -Infinity;
    y[5] = 0;
    y[6] = -0;
    const d2 = await expectRef(g, y, 2, 300, o, [0.3, 0.6], 3);
    expect(d2['sampleNucleusRows']).toBe(2);
  });

  it('a heavy tail (a tenth of the mass outside the candidates): its sum moves the nucleus, ref’s draw', async () => {
    const rng = new Rng(4);
    const V = 50000,
      N = 4;
    const x = zipfRows(rng, N, V, 1.3);
    for (const o of [
      { temperature: 1, topK: 0, topP: 0.7, minP: 0 },
      { temperature: 0.9, topK: 0, topP: 0.75, minP: 0 },
    ]) {
      const d = await expectRef(g, x, N, V, o, [0.999, 0.99, 0.9, 0.5]);
      expect(d['sampleNucleusRows']).toBe(N);
    }
  });

  it('generate() with top-p / min-p on webgpu, a random Llama of vocabulary 6 000: ref’s tokens', async () => {
    const config: ModelConfig = {
      family: 'llama',
      vocabSize: 6000,
      hiddenSize: 32,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
      headDim: 16,
      intermediateSize: 48,
      maxPositions: 32,
      normEps: 1e-5,
      ropeTheta: 10000,
      tieWordEmbeddings: false,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      dropout: 0,
      bosTokenId: null,
      eosTokenId: null,
      padTokenId: null,
    };
    const prompt = [1, 5, 9, 2];
    for (const opts of [
      { temperature: 0.8, topP: 0.9, seed: 3, maxTokens: 8 },
      { temperature: 1, minP: 0.05, seed: 4, maxTokens: 8 },
    ]) {
      const run = async (backend: Backend) => {
        const model = initModel(config, new Rng(21), { backend, std: 0.6 });
        return (await generate(model, [prompt], opts)).choices[0]!.ids;
      };
      const want = await run(getBackend('ref'));
      const before = { ...g.counts };
      expect(await run(g)).toEqual(want);
      const rows = g.counts.sampleNucleusRows - before.sampleNucleusRows;
      console.info(`${JSON.stringify(opts)}: ${rows} of ${want.length} tokens from the candidates`);
      expect(rows).toBeGreaterThan(0);
    }
  });

  // the decode path: generate() samples through the backend's `sample`
  const llama = fixtureDirs().find((p) => path.basename(p) === 'llama-tiny');
  it.skipIf(!llama)('generate() with top-p on webgpu: ref’s tokens, every row from the candidates', async () => {
    const prompt = [1, 5, 9, 2];
    const opts = { temperature: 0.9, topP: 0.9, seed: 11, maxTokens: 6 };
    const run = async (backend: Backend) => {
      const model = await loadModel(llama!, { backend });
      return (await generate(model, [prompt], opts)).choices[0]!.ids;
    };
    const want = await run(getBackend('ref'));
    const before = { ...g.counts };
    expect(await run(g)).toEqual(want);
    expect(g.counts.sampleNucleusRows - before.sampleNucleusRows).toBe(want.length);
    expect(g.counts.sampleFullRows - before.sampleFullRows).toBe(0);
  });
});
