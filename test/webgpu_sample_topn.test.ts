// webgpu's `sample` with top alternatives (topN, the API's top_logprobs) at temperature 0 and at plain temperature
// (src/backend/webgpu/sample.ts, plan 'topn'): the candidates for k = topN selected in WGSL, at plain temperature the
// certified draw beside them, one host step (src/backend/sample_topn.ts). Against ref's `sampleKernel` on the same
// logits: the same ids and alternatives' ids exactly (ref's `topN` order: largest first, lowest id first among
// equals), probabilities and log-probabilities to float32; topN 1, 5, 20; N > 1 rows; V 7 … 50 000; T 0, 0.7, 1;
// ties among the top entries and at the topN-th place; ±0 and -Infinity; a tie past the slot reads the full rows;
// the counters show no full-row read for peaked rows; generate() with topLogprobs through the engine on the Llama
// fixture gives ref's tokens and alternatives. Skipped where Dawn finds no adapter.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { candidateStride } from '../src/backend/sample_candidates.js';
import { CERT_WORDS } from '../src/backend/sample_certified.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import { topNCap } from '../src/backend/sample_topn.js';
import type { RowSampling } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { samplePlan } from '../src/backend/webgpu/sample.js';
import { generate } from '../src/generate/engine.js';
import { loadModel } from '../src/model/hf/folder.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs } from './helpers.js';
import { logitRows } from './sample_topk_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const maker = webgpuMaker('webgpu topN sample');
const be = await maker.make();

const plain = (temperature: number): RowSampling => ({ temperature, topK: 0, topP: 1, minP: 0 });

type Result = { ids: Int32Array; pr: Float32Array; ti: Int32Array; tl: Float32Array };

/** `sample` on rows (N, V) on webgpu with n top alternatives. */
async function onGpu(g: WebGpuBackend, x: Float32Array, N: number, V: number, o: RowSampling, u: number[], n: number) {
  const bx = g.alloc(N * V, 'f32'),
    outs = [g.alloc(N, 'i32'), g.alloc(2 * N, 'f32'), g.alloc(N * n, 'i32'), g.alloc(N * n, 'f32')];
  try {
    g.write(bx, x);
    const shapes = [[N], [N, 2], [N, n], [N, n]];
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      outs.map((buf, i) => ({ buf, shape: shapes[i]! })),
      { ...o, u, topN: n },
    );
    const r = await Promise.all(outs.map((b) => g.read(b)));
    return { ids: r[0] as Int32Array, pr: r[1] as Float32Array, ti: r[2] as Int32Array, tl: r[3] as Float32Array };
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

function onRef(x: Float32Array, N: number, V: number, o: RowSampling, u: number[], n: number): Result {
  const r = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  sampleKernel({ data: x, shape: [N, V] }, { data: r.ids }, { data: r.pr }, o, u, {
    n,
    ids: { data: r.ti },
    logprobs: { data: r.tl },
  });
  return r;
}

/** |a − b| within `tol`, or both the same infinity. */
function near(a: number, b: number, tol: number, label: string): void {
  if (!Number.isFinite(b)) expect(a, label).toBe(b);
  else expect(Math.abs(a - b), label).toBeLessThanOrEqual(tol);
}

/** The webgpu draw and alternatives equal ref's (ids exactly, the rest to float32); the counters' change. */
async function expectRef(
  g: WebGpuBackend,
  x: Float32Array,
  N: number,
  V: number,
  o: RowSampling,
  u: number[],
  n: number,
) {
  expect(samplePlan(4, { ...o, u, topN: n }, V, N)).toBe('topn');
  const before = { ...g.counts };
  const got = await onGpu(g, x, N, V, o, u, n);
  const d = Object.fromEntries(Object.entries(g.counts).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
  const want = onRef(x, N, V, o, u, n);
  const label = `V ${V} N ${N} T ${o.temperature} n ${n} u ${u.join(',')}`;
  expect([...got.ids], label).toEqual([...want.ids]);
  expect([...got.ti], label).toEqual([...want.ti]);
  // probabilities: the conformance tolerance, 1e-5·(|want| + rms(want)) over the (prob, logprob) output
  const rms = Math.sqrt(want.pr.reduce((a, v) => a + v * v, 0) / want.pr.length);
  for (let r = 0; r < N; r++) {
    const p = want.pr[2 * r]!,
      lp = want.pr[2 * r + 1]!;
    if (o.temperature === 0) expect(got.pr[2 * r], label).toBe(1);
    else near(got.pr[2 * r]!, p, 1e-5 * (p + rms), label);
    near(got.pr[2 * r + 1]!, lp, 1e-5 * Math.max(1, Math.abs(lp)) + 2e-6 * Math.log(V), label);
  }
  for (let i = 0; i < N * n; i++) near(got.tl[i]!, want.tl[i]!, 1e-4, `${label} alternative ${i}`);
  // the drawn id's logprob equals its alternative's where it is one (as in ref)
  for (let r = 0; r < N; r++)
    for (let k = 0; k < n; k++)
      if (got.ti[r * n + k] === got.ids[r]) expect(got.tl[r * n + k], label).toBe(got.pr[2 * r + 1]);
  expect(d['native'], label).toBe(1);
  expect(d['hostSteps'], label).toBe(1);
  return d;
}

/** Bytes one device call reads back: the certified words (T > 0) and the slots. */
const deviceBytes = (N: number, n: number, T: number) =>
  N * ((T > 0 ? CERT_WORDS : 0) + candidateStride(topNCap(n))) * 4;

/**
 * Peaked rows (a confident next-token row): normal·1.5, plus one to four logits 14–22 above (the rest of the row
 * holds well under 1 % of the mass at V = 50 000, so the certified draw needs no fallback but near a boundary).
 */
function peaked(rng: Rng, N: number, V: number): Float32Array {
  const x = new Float32Array(N * V);
  for (let r = 0; r < N; r++) {
    for (let i = 0; i < V; i++) x[r * V + i] = rng.normal() * 1.5;
    for (let k = 0; k < 1 + Math.floor(rng.random() * 4); k++) x[r * V + rng.int(V)] = 14 + rng.random() * 8;
  }
  return x;
}

describe.skipIf(!be)(`webgpu topN sample ${be ? '' : `(skipped: ${maker.why})`}`, () => {
  const g = be!;

  for (const V of [7, 129, 5000, 50000])
    for (const T of [0, 1, 0.7])
      it(`V ${V}, T ${T}: ref's draw and alternatives, no full row read back (peaked rows)`, async () => {
        const rng = new Rng(V * 7 + T * 10);
        const N = 3;
        for (const n of [1, 5, 20])
          for (let t = 0; t < 3; t++) {
            const x = peaked(rng, N, V);
            const u = Array.from({ length: N }, () => rng.random());
            const d = await expectRef(g, x, N, V, plain(T), u, n);
            expect([d['sampleFullRows'], d['sampleCertFallbacks']]).toEqual([0, 0]);
            expect(T > 0 ? d['sampleCertifiedRows'] : d['sampleCandidateRows']).toBe(N);
            expect(d['sampleBytesRead']).toBe(deviceBytes(N, n, T));
            if (V >= 5000) expect(d['sampleBytesRead']).toBeLessThan((N * V * 4) / 40);
          }
      });

  it('normal rows with ties (logits on a 0.5 grid): ref’s alternatives, or the full rows when a tie passes the slot', async () => {
    const rng = new Rng(3);
    const V = 3000,
      N = 4;
    let device = 0,
      full = 0;
    for (const T of [0, 1, 0.7])
      for (const n of [1, 5, 20]) {
        const x = logitRows(rng, N, V, 2, 0.5);
        const d = await expectRef(g, x, N, V, plain(T), [0.1, 0.4, 0.7, 0.999999], n);
        device += (d['sampleCertifiedRows'] ?? 0) + (d['sampleCandidateRows'] ?? 0);
        full += d['sampleFullRows']!;
      }
    expect(device + full).toBe(9 * 4);
    expect(device).toBeGreaterThan(0);
  });

  it('ties among the top entries and at the topN-th place (inside the slot): lowest id first, on the device', async () => {
    const rng = new Rng(5);
    const V = 1000,
      N = 2;
    const x = new Float32Array(N * V);
    for (let i = 0; i < x.length; i++) x[i] = rng.normal();
    for (const r of [0, 1]) {
      const at = (i: number, v: number) => {
        x[r * V + ((i + 97 * r) % V)] = v;
      };
      for (const i of [500, 3, 900]) at(i, 9); // a three-way tie at the top: argmax is the lowest id
      for (const i of [20, 10]) at(i, 8);
      for (const i of [60, 30, 50, 40]) at(i, 7); // the 6th place: four equal
    }
    for (const T of [0, 1, 0.7])
      for (const n of [1, 2, 3, 5, 6, 7, 9]) {
        const d = await expectRef(g, x, N, V, plain(T), [0.3, 0.8], n);
        expect(d['sampleFullRows']).toBe(0);
      }
    const want = onRef(x, N, V, plain(0), [0, 0], 6);
    expect([...want.ti.subarray(0, 6)]).toEqual([3, 500, 900, 10, 20, 30]);
  });

  it('a tie at the topN-th place past the slot: that call reads the full rows, ref’s result', async () => {
    const V = 5000,
      N = 2,
      n = 5;
    const x = new Float32Array(N * V);
    for (let i = 0; i < x.length; i++) x[i] = i < V ? i % 4 : ((i * 7919) % 13) / 2; // row 0: 1250 equal maxima
    for (const T of [0, 0.7]) {
      const d = await expectRef(g, x, N, V, plain(T), [0.3, 0.7], n);
      expect([d['sampleCertifiedRows'] ?? 0, d['sampleCandidateRows'] ?? 0, d['sampleFullRows']]).toEqual([0, 0, N]);
      expect(d['sampleBytesRead']).toBe(deviceBytes(N, n, T) + N * V * 4);
    }
  });

  it('±0 (equal as numbers) at the topN-th place, -Infinity, V < topN', async () => {
    const rng = new Rng(4);
    const V = 700;
    const x = new Float32Array(2 * V).fill(-Infinity);
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < 6; i++) x[r * V + 3 + 11 * i + r] = i % 2 ? 0 : -0;
      x[r * V + 400 + r] = 1.5;
      x[r * V + 9] = 0.25;
    }
    for (const T of [0, 1, 0.7]) {
      for (const n of [1, 2, 3, 5, 8]) {
        const d = await expectRef(g, x, 2, V, plain(T), [rng.random(), rng.random()], n);
        expect(d['sampleFullRows']).toBe(0);
      }
      // 8 finite entries a row: the 20th largest is −∞, so every entry is a candidate (past the slot): the full rows
      const d = await expectRef(g, x, 2, V, plain(T), [rng.random(), rng.random()], 20);
      expect(d['sampleFullRows']).toBe(2);
      // V < topN: every entry a candidate, ids −1 and −∞ past them (as ref)
      const small = Float32Array.from([0.5, -Infinity, 2, -0, 0, 2, -1]);
      const e = await expectRef(g, small, 1, 7, plain(T), [0.6], 20);
      expect(e['sampleFullRows']).toBe(0);
    }
  });

  it('bytes read back per token, V = 50 000 (SwiftShader: time is not meaningful there)', async () => {
    const rng = new Rng(8);
    const V = 50000;
    const x = peaked(rng, 1, V);
    const line: string[] = [];
    for (const [T, n] of [
      [0.7, 5],
      [0.7, 20],
      [0, 5],
    ] as const) {
      const d = await expectRef(g, x, 1, V, plain(T), [0.42], n);
      expect(d['sampleBytesRead']).toBe(deviceBytes(1, n, T));
      line.push(`T ${T} topN ${n}: ${d['sampleBytesRead']}`);
    }
    console.info(`sample with topN, V ${V}: bytes read back per token ${line.join(', ')} (the full row: ${V * 4})`);
  });

  // the decode path: generate() with topLogprobs asks `sample` for the alternatives
  const llama = fixtureDirs().find((dir) => path.basename(dir) === 'llama-tiny');
  it.skipIf(!llama)(
    'generate() with topLogprobs on webgpu: ref’s tokens and alternatives, on the device path',
    async () => {
      const prompt = [1, 5, 9, 2];
      for (const opts of [
        { temperature: 0.8, seed: 7, maxTokens: 8, topLogprobs: 5 },
        { temperature: 1, seed: 3, maxTokens: 8, topLogprobs: 20 },
        { temperature: 0, seed: 1, maxTokens: 8, topLogprobs: 3 },
      ]) {
        const run = async (backend: Backend) => {
          const model = await loadModel(llama!, { backend });
          return (await generate(model, [prompt], opts)).choices[0]!;
        };
        const want = await run(getBackend('ref'));
        const before = { ...g.counts };
        const got = await run(g);
        expect(got.ids).toEqual(want.ids);
        const lps = (c: typeof got) =>
          c.logprobs.content.map((e) => [e.logprob, e.prob, ...e.top_logprobs.map((t) => t.logprob)]);
        const [a, b] = [lps(got), lps(want)];
        expect(a.length).toBe(b.length);
        for (let i = 0; i < a.length; i++)
          for (let j = 0; j < b[i]!.length; j++) expect(Math.abs(a[i]![j]! - b[i]![j]!)).toBeLessThanOrEqual(1e-4);
        expect(got.logprobs.content.map((e) => e.top_logprobs.map((t) => t.id))).toEqual(
          want.logprobs.content.map((e) => e.top_logprobs.map((t) => t.id)),
        );
        const dev =
          opts.temperature === 0
            ? g.counts.sampleCandidateRows - before.sampleCandidateRows
            : g.counts.sampleCertifiedRows - before.sampleCertifiedRows;
        const full = g.counts.sampleFullRows - before.sampleFullRows;
        expect(dev + full).toBe(want.ids.length);
        if (opts.temperature === 0) expect(full).toBe(0);
        expect(dev).toBeGreaterThan(0);
      }
    },
  );
});
