// webgpu's `sample` at plain temperature (src/backend/webgpu/sample.ts): the draw in WGSL, certified on the host
// against ref's float64 sums (src/backend/sample_certified.ts), else the full rows. Against ref's `sampleKernel`: the
// same ids always, for flat rows (uniform logits in ±3, V = 50 000) and peaked ones (a few large logits), T 0.5 / 1 /
// 2, thousands of (row, u); u placed on ref's own prefix boundaries must come out uncertified (and still ref's id);
// the bound lowered 1000× (a mutation) must give wrong ids; generate() with the default settings draws ref's tokens
// with most rows certified. Prints the certified fractions. Skipped where Dawn finds no adapter.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import { type RowSampling, rowWeights } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { generate } from '../src/generate/engine.js';
import { loadModel } from '../src/model/hf/folder.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs } from './helpers.js';
import { webgpuMaker } from './webgpu_backend.js';

const maker = webgpuMaker('webgpu certified sample');
const be = await maker.make();

const plain = (temperature: number): RowSampling => ({ temperature, topK: 0, topP: 1, minP: 0 });

/** `sample` on rows (N, V) on webgpu: ids, probs and the counters' change. */
async function onGpu(g: WebGpuBackend, x: Float32Array, N: number, V: number, o: RowSampling, u: number[]) {
  const bx = g.alloc(N * V, 'f32'),
    outs = [g.alloc(N, 'i32'), g.alloc(2 * N, 'f32')];
  const before = { ...g.counts };
  try {
    g.write(bx, x);
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      [
        { buf: outs[0]!, shape: [N] },
        { buf: outs[1]!, shape: [N, 2] },
      ],
      { ...o, u },
    );
    const r = await Promise.all(outs.map((b) => g.read(b)));
    const d = Object.fromEntries(Object.entries(g.counts).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
    return { ids: r[0] as Int32Array, pr: r[1] as Float32Array, d };
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

function onRef(x: Float32Array, N: number, V: number, o: RowSampling, u: number[]) {
  const ids = new Int32Array(N),
    pr = new Float32Array(2 * N);
  sampleKernel({ data: x, shape: [N, V] }, { data: ids }, { data: pr }, o, u);
  return { ids, pr };
}

/** Flat rows: uniform in ±3. Peaked: normal·1.5, plus a few logits 6–14 above (a trained model's next-token row). */
function rows(rng: Rng, N: number, V: number, kind: 'flat' | 'peaked'): Float32Array {
  const x = new Float32Array(N * V);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < V; i++) x[n * V + i] = kind === 'flat' ? (rng.random() * 2 - 1) * 3 : rng.normal() * 1.5;
    if (kind === 'peaked')
      for (let k = 0; k < 1 + Math.floor(rng.random() * 6); k++)
        x[n * V + Math.floor(rng.random() * V)] = 6 + rng.random() * 8;
  }
  return x;
}

/** Draw with every u and check ref's ids (and probabilities within the conformance tolerance); counts. */
async function check(g: WebGpuBackend, x: Float32Array, N: number, V: number, o: RowSampling, us: number[][]) {
  let certified = 0,
    rowsDone = 0,
    fallbacks = 0,
    wrong = 0;
  for (const u of us) {
    const got = await onGpu(g, x, N, V, o, u);
    const want = onRef(x, N, V, o, u);
    for (let n = 0; n < N; n++) if (got.ids[n] !== want.ids[n]) wrong++;
    if (wrong === 0)
      for (let n = 0; n < N; n++) {
        const p = want.pr[2 * n]!,
          lp = want.pr[2 * n + 1]!;
        expect(Math.abs(got.pr[2 * n]! - p)).toBeLessThanOrEqual(1e-5 * p + 1e-9);
        expect(Math.abs(got.pr[2 * n + 1]! - lp)).toBeLessThanOrEqual(
          1e-5 * Math.max(1, Math.abs(lp)) + 2e-6 * Math.log(V),
        );
      }
    certified += got.d['sampleCertifiedRows']!;
    fallbacks += got.d['sampleCertFallbacks']!;
    rowsDone += N;
    expect(got.d['native']).toBe(1);
    expect(got.d['sampleCertifiedRows']! + got.d['sampleFullRows']!).toBe(N);
    // 48 bytes a row read back; the full rows as well when a row was not certified
    expect(got.d['sampleBytesRead']).toBe(N * 48 + (got.d['sampleCertFallbacks']! > 0 ? N * V * 4 : 0));
  }
  return { certified, rows: rowsDone, fallbacks, wrong };
}

describe.skipIf(!be)(`webgpu certified sample ${be ? '' : `(skipped: ${maker.why})`}`, () => {
  const g = be!;
  const fractions: string[] = [];

  for (const kind of ['flat', 'peaked'] as const)
    for (const T of [0.5, 1, 2])
      it(`${kind} rows, T ${T}: ref's ids always (V 50 000 and smaller)`, async () => {
        const rng = new Rng(T * 100 + (kind === 'flat' ? 1 : 2));
        const per: string[] = [];
        let c = 0,
          r = 0;
        for (const [V, N, calls] of [
          [50000, 1, 60],
          [50000, 3, 10],
          [5000, 1, 150],
          [129, 4, 100],
        ] as const) {
          const x = rows(rng, N, V, kind);
          const us = Array.from({ length: calls }, () => Array.from({ length: N }, () => rng.random()));
          const s = await check(g, x, N, V, plain(T), us);
          expect(s.wrong, `V ${V}`).toBe(0);
          c += s.certified;
          r += s.rows;
          per.push(`V ${V}×${N}: ${s.certified}/${s.rows}`);
        }
        fractions.push(`${kind} T ${T}: ${c}/${r} rows certified (${per.join(', ')})`);
        if (kind === 'peaked') expect(c / r).toBeGreaterThan(0.5);
        else expect(c).toBeGreaterThan(0);
      });

  it('u on ref’s prefix boundaries: not certified, ref’s id from the full row', async () => {
    const rng = new Rng(5);
    for (const [V, kind] of [
      [50000, 'flat'],
      [50000, 'peaked'],
      [300, 'peaked'],
    ] as const)
      for (const T of [0.5, 1, 2]) {
        const x = rows(rng, 1, V, kind);
        const o = plain(T);
        const { w, sum } = rowWeights(x, o);
        // boundaries after the largest weights (most likely drawn) and after random ids
        const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => w[b]! - w[a]!);
        const at = [...order.slice(0, 6), ...Array.from({ length: 6 }, () => Math.floor(rng.random() * (V - 1)))];
        const prefix = new Float64Array(V);
        let acc = 0;
        for (let i = 0; i < V; i++) prefix[i] = acc += w[i]!;
        for (const i of at) {
          for (const u of [
            prefix[i]! / sum,
            (prefix[i]! - w[i]! * 1e-7) / sum,
            (prefix[i]! + w[i + 1]! * 1e-7) / sum,
          ]) {
            if (!(u >= 0 && u < 1)) continue;
            const s = await check(g, x, 1, V, o, [[u]]);
            expect(s.wrong).toBe(0);
            expect(s.fallbacks, `V ${V} T ${T} i ${i} u ${u}`).toBe(1);
          }
        }
      }
  });

  it('a bound too small (a mutation) gives wrong ids', async () => {
    const rng = new Rng(6);
    const V = 50000,
      x = rows(rng, 1, V, 'flat'),
      o = plain(1);
    const { w, sum } = rowWeights(x, o);
    let acc = 0;
    const us: number[][] = [];
    for (let i = 0; i < V && us.length < 200; i++) {
      acc += w[i]!;
      if (i % 97 === 0) us.push([(acc - w[i]! * 1e-6) / sum], [(acc + w[i + 1]! * 1e-6) / sum]); // near boundaries
    }
    const wrongAt: number[] = [];
    for (const slack of [1e-3, 1e-5, 0]) {
      g.sampleCertSlack = slack;
      try {
        const s = await check(g, x, 1, V, o, us);
        fractions.push(`mutation (bound × ${slack}): ${s.wrong} wrong ids of ${s.rows}, ${s.certified} certified`);
        wrongAt.push(s.wrong);
      } finally {
        g.sampleCertSlack = 1;
      }
    }
    expect(wrongAt[wrongAt.length - 1]).toBeGreaterThan(0);
    const s = await check(g, x, 1, V, o, us);
    fractions.push(`same u, true bound: ${s.wrong} wrong, ${s.certified}/${s.rows} certified`);
    expect(s.wrong).toBe(0);
  });

  const llama = fixtureDirs().find((d) => path.basename(d) === 'llama-tiny');
  it.skipIf(!llama)('generate() with the default sampling: ref’s tokens, most rows certified', async () => {
    const prompt = [1, 5, 9, 2];
    const opts = { seed: 11, maxTokens: 24 };
    const run = async (backend: Backend) => {
      const model = await loadModel(llama!, { backend });
      return (await generate(model, [prompt], opts)).choices[0]!.ids;
    };
    const want = await run(getBackend('ref'));
    const before = { ...g.counts };
    expect(await run(g)).toEqual(want);
    const c = g.counts.sampleCertifiedRows - before.sampleCertifiedRows;
    fractions.push(`generate() llama-tiny: ${c}/${want.length} rows certified`);
    expect(c).toBeGreaterThan(want.length / 2);
  });

  it('prints the certified fractions', () => {
    console.log(fractions.join('\n'));
  });
});
