// The `sample` kernel (src/backend/sample_rows.ts on src/backend/sampling.ts, src/backend/wasm/assembly/sample.ts) against the JavaScript sampler:
// on every test backend it draws exactly the id sampleToken draws from the same row and coin (flat and peaked rows,
// ties, -Infinity entries, every filter, the binned top-p path), its draws follow the sampling distribution, and
// generate() takes the same tokens whether it samples on the device (topLogprobs 0) or on the host (topLogprobs 1).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { generate } from '../src/generate/engine.js';
import {
  resolveSamplerOptions,
  sampleToken,
  samplingDistribution,
  type SamplerOptions,
} from '../src/generate/sampler.js';
import { loadModel } from '../src/model/hf/folder.js';
import { rowWeights } from '../src/backend/sampling.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs, testBackends } from './helpers.js';

const backends = await testBackends();

/** Run `sample` on rows (N, V) with uniforms u; returns ids and (prob, logprob) pairs. */
function runSample(
  be: Backend,
  rows: Float32Array,
  N: number,
  V: number,
  o: SamplerOptions,
  u: number[],
): [Int32Array, Float32Array] {
  const x = be.alloc(N * V, 'f32'),
    ids = be.alloc(N, 'i32'),
    pr = be.alloc(2 * N, 'f32');
  try {
    be.write(x, rows);
    const r = resolveSamplerOptions(o);
    be.run(
      'sample',
      [{ buf: x, shape: [N, 1, V] }],
      [
        { buf: ids, shape: [N] },
        { buf: pr, shape: [N, 2] },
      ],
      { temperature: r.temperature, topK: r.topK, topP: r.topP, minP: r.minP, u },
    );
    return [be.readSync!(ids) as Int32Array, be.readSync!(pr) as Float32Array];
  } finally {
    for (const b of [x, ids, pr]) be.free(b);
  }
}

/** `sample` with topN alternatives: ids, (prob, logprob), top ids [N, n], top logprobs [N, n]. */
function runSampleTop(
  be: Backend,
  rows: Float32Array,
  N: number,
  V: number,
  o: SamplerOptions,
  u: number[],
  n: number,
  extra: Record<string, number | readonly number[]> = {},
): [Int32Array, Float32Array, Int32Array, Float32Array] {
  const x = be.alloc(N * V, 'f32'),
    ids = be.alloc(N, 'i32'),
    pr = be.alloc(2 * N, 'f32'),
    ti = be.alloc(N * n, 'i32'),
    tl = be.alloc(N * n, 'f32');
  try {
    be.write(x, rows);
    const r = resolveSamplerOptions(o);
    be.run(
      'sample',
      [{ buf: x, shape: [N, V] }],
      [
        { buf: ids, shape: [N] },
        { buf: pr, shape: [N, 2] },
        { buf: ti, shape: [N, n] },
        { buf: tl, shape: [N, n] },
      ],
      { temperature: r.temperature, topK: r.topK, topP: r.topP, minP: r.minP, u, topN: n, ...extra },
    );
    return [
      be.readSync!(ids) as Int32Array,
      be.readSync!(pr) as Float32Array,
      be.readSync!(ti) as Int32Array,
      be.readSync!(tl) as Float32Array,
    ];
  } finally {
    for (const b of [x, ids, pr, ti, tl]) be.free(b);
  }
}

const SETTINGS: SamplerOptions[] = [
  { temperature: 1, topP: 0.9 },
  { temperature: 0 },
  { temperature: 1 },
  { temperature: 0.6, topK: 40 },
  { temperature: 1.2, topK: 100, topP: 0.8 },
  { temperature: 1, minP: 0.1 },
  { temperature: 0.9, topP: 0.3, minP: 0.02 },
];

describe.each(backends.map((b) => [b.name, b] as const))('sample kernel on %s', (_n, be) => {
  it('draws the id sampleToken draws, with its probability and log-probability', () => {
    const rng = new Rng(17);
    let rowsChecked = 0;
    for (const V of [5, 300, 4096, 32000]) {
      for (const kind of ['flat', 'peaked', 'ties', 'masked'] as const) {
        const N = 2;
        const rows = new Float32Array(N * V);
        for (let i = 0; i < rows.length; i++) {
          const z = rng.normal();
          rows[i] =
            kind === 'flat'
              ? 0.3 * z
              : kind === 'peaked'
                ? 6 * z
                : kind === 'ties'
                  ? Math.round(z * 2) / 2
                  : i % 3 === 0
                    ? -Infinity
                    : z;
        }
        for (const o of SETTINGS) {
          const coin = new Rng(V + SETTINGS.indexOf(o));
          const want = [0, 1].map((n) => sampleToken(rows.subarray(n * V, (n + 1) * V), o, coin));
          const replay = new Rng(V + SETTINGS.indexOf(o));
          const u = [0, 1].map(() => (o.temperature === 0 ? 0 : replay.random()));
          const [ids, probs] = runSample(be, rows, N, V, o, u);
          for (let n = 0; n < N; n++) {
            expect(ids[n], `V ${V} ${kind} ${JSON.stringify(o)} row ${n}`).toBe(want[n]!.id);
            expect(probs[2 * n]!).toBeCloseTo(want[n]!.prob, 6);
            expect(Math.abs(probs[2 * n + 1]! - want[n]!.logprob)).toBeLessThan(
              1e-6 * (1 + Math.abs(want[n]!.logprob)),
            );
            rowsChecked++;
          }
        }
      }
    }
    expect(rowsChecked).toBe(4 * 4 * SETTINGS.length * 2);
  });

  it('reports the top alternatives sampleToken reports (largest first, lowest id among ties), as log-probabilities', () => {
    const rng = new Rng(31);
    for (const V of [5, 301, 32000]) {
      for (const kind of ['flat', 'ties', 'masked'] as const) {
        const N = 2;
        const rows = Float32Array.from({ length: N * V }, (_, i) => {
          const z = rng.normal();
          return kind === 'flat' ? 0.3 * z : kind === 'ties' ? Math.round(z * 2) / 2 : i % 3 === 0 ? -Infinity : z;
        });
        for (const n of [1, 8, 20]) {
          for (const o of [
            { temperature: 0.8, topP: 0.9, topLogprobs: n },
            { temperature: 0, topLogprobs: n },
          ]) {
            const u = [0.25, 0.75];
            const [ids, , ti, tl] = runSampleTop(be, rows, N, V, o, o.temperature === 0 ? [0, 0] : u, n);
            for (let r = 0; r < N; r++) {
              const want = sampleToken(rows.subarray(r * V, (r + 1) * V), o, { random: () => u[r]! } as unknown as Rng);
              expect(ids[r]).toBe(want.id);
              for (let k = 0; k < n; k++) {
                const w = want.top[k];
                expect(ti[r * n + k], `V ${V} ${kind} n ${n} row ${r} rank ${k}`).toBe(w ? w.id : -1);
                if (w && w.logprob === -Infinity)
                  expect(tl[r * n + k]).toBe(-Infinity); // a masked entry among the top n
                else if (w)
                  expect(Math.abs(tl[r * n + k]! - w.logprob)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(w.logprob)));
                else expect(tl[r * n + k]).toBe(-Infinity);
              }
            }
          }
        }
      }
    }
    const rows = new Float32Array(10);
    expect(() => runSampleTop(be, rows, 2, 5, {}, [0.5, 0.5], 21)).toThrow(/topN/);
  });

  it("applies the penalties from each row's token counts: the id, probability and log-probabilities sampleToken gives", () => {
    const rng = new Rng(47);
    for (const V of [301, 32000]) {
      for (const kind of ['flat', 'peaked'] as const) {
        const N = 3;
        const rows = Float32Array.from({ length: N * V }, () => (kind === 'flat' ? 0.4 : 4) * rng.normal());
        // row 0: the 40 most likely ids of row 0 seen (so the penalties move the draw), row 1: none, row 2: a few,
        // one out of range (skipped by both)
        const byLogit = (r: number) =>
          Array.from({ length: V }, (_, i) => i).sort((a, b) => rows[r * V + b]! - rows[r * V + a]!);
        const counts = [
          new Map(
            byLogit(0)
              .slice(0, 40)
              .map((id, k) => [id, 1 + (k % 3)] as [number, number]),
          ),
          new Map<number, number>(),
          new Map<number, number>([
            [byLogit(2)[0]!, 2],
            [7, 1],
            [V + 5, 1],
          ]),
        ];
        const flat: number[] = [],
          countOffsets = [0];
        for (const c of counts) {
          for (const [id, k] of c) flat.push(id, k);
          countOffsets.push(flat.length);
        }
        for (const o of [
          { temperature: 0, repetitionPenalty: 3, topLogprobs: 3 },
          {
            temperature: 0.9,
            topP: 0.9,
            repetitionPenalty: 1.2,
            frequencyPenalty: 0.3,
            presencePenalty: 0.2,
            topLogprobs: 3,
          },
          { temperature: 1.1, topK: 50, frequencyPenalty: -0.5 },
        ]) {
          const u = [0.1, 0.5, 0.9];
          const r = resolveSamplerOptions(o);
          const [ids, probs, ti, tl] = runSampleTop(be, rows, N, V, o, o.temperature === 0 ? [0, 0, 0] : u, 3, {
            counts: flat,
            countOffsets,
            repetitionPenalty: r.repetitionPenalty,
            frequencyPenalty: r.frequencyPenalty,
            presencePenalty: r.presencePenalty,
          });
          for (let n = 0; n < N; n++) {
            const want = sampleToken(
              rows.subarray(n * V, (n + 1) * V),
              o,
              { random: () => u[n]! } as unknown as Rng,
              counts[n],
            );
            expect(ids[n], `V ${V} ${kind} ${JSON.stringify(o)} row ${n}`).toBe(want.id);
            expect(probs[2 * n]!).toBeCloseTo(want.prob, 6);
            expect(Math.abs(probs[2 * n + 1]! - want.logprob)).toBeLessThan(1e-6 * (1 + Math.abs(want.logprob)));
            const K = r.topLogprobs; // the kernel reports 3 either way; sampleToken as many as asked
            for (let k = 0; k < K; k++) expect(ti[n * 3 + k]).toBe(want.top[k]?.id ?? -1);
            for (let k = 0; k < K && want.top[k]; k++)
              expect(Math.abs(tl[n * 3 + k]! - want.top[k]!.logprob)).toBeLessThan(
                1e-6 * (1 + Math.abs(want.top[k]!.logprob)),
              );
          }
          // the penalties changed row 0's greedy choice (its top ids were all seen)
          if (o.temperature === 0) expect(ids[0]).not.toBe(byLogit(0)[0]);
        }
      }
    }
    const rows = new Float32Array(10);
    expect(() => runSampleTop(be, rows, 2, 5, {}, [0.5, 0.5], 1, { counts: [1, 1], countOffsets: [0, 2] })).toThrow(
      /countOffsets/,
    );
  });

  it('agrees to the last bit of its sums: coins on the running-sum boundaries draw the same id', () => {
    // u·Σw placed exactly on (and one ulp around) running sums of the final weights: the id drawn there depends on
    // the last bits of Σw and of the running sum, so any difference in summation order between the kernel and the
    // definition (ref's sums in id order) shows up as a different id (checked: a kernel that adds the same terms in
    // four interleaved lanes fails here). V not a multiple of 4 exercises the SIMD loops' tails.
    const rng = new Rng(99);
    let boundaryDraws = 0;
    for (const V of [7, 301, 4099, 32003]) {
      const row = Float32Array.from({ length: V }, () => 0.4 * rng.normal());
      for (const o of [
        { temperature: 1, topP: 0.9 },
        { temperature: 0.7, topK: 50, topP: 0.95 },
        { temperature: 1.1, minP: 0.05 },
        { temperature: 1 },
      ]) {
        const r = resolveSamplerOptions(o);
        const { w, sum } = rowWeights(row, r);
        const ws = Float64Array.from(w);
        let acc = 0;
        const coins: number[] = [];
        for (let i = 0; i < V && coins.length < 24; i++) {
          if (!(ws[i]! > 0)) continue;
          acc += ws[i]!;
          if (i % Math.max(1, Math.floor(V / 8)) !== 0) continue;
          const u = acc / sum;
          for (const c of [u, u - Number.EPSILON * u, u + Number.EPSILON * u]) if (c >= 0 && c < 1) coins.push(c);
        }
        for (const u of coins) {
          const want = sampleToken(row, o, { random: () => u } as unknown as Rng);
          const [ids] = runSample(be, row, 1, V, o, [u]);
          expect(ids[0], `V ${V} ${JSON.stringify(o)} u ${u}`).toBe(want.id);
          boundaryDraws++;
        }
      }
    }
    expect(boundaryDraws).toBeGreaterThan(100);
  });

  it('draws follow the sampling distribution (one call, 20,000 rows)', () => {
    const l = [1.0, 3.0, 2.0, 5.0, 4.0, -1.0, 0.5];
    const o = { temperature: 1.3, topK: 5, topP: 0.95 };
    const d = samplingDistribution(l, o);
    const N = 20000,
      V = l.length;
    const rows = new Float32Array(N * V);
    for (let n = 0; n < N; n++) rows.set(l, n * V);
    const rng = new Rng(2024);
    const [ids] = runSample(
      be,
      rows,
      N,
      V,
      o,
      Array.from({ length: N }, () => rng.random()),
    );
    const counts = new Array<number>(V).fill(0);
    for (const id of ids) counts[id]!++;
    let chi2 = 0,
      df = -1;
    for (let i = 0; i < V; i++) {
      if (d[i] === 0) {
        expect(counts[i]).toBe(0);
        continue;
      }
      chi2 += (counts[i]! - N * d[i]!) ** 2 / (N * d[i]!);
      df++;
    }
    expect(df).toBe(3); // top-k 5, then top-p 0.95 drops one more
    expect(chi2).toBeLessThan(16.27); // χ² with 3 degrees of freedom: P(> 16.27) = 0.001
  });

  it('rejects a wrong number of uniforms and bad settings', () => {
    const rows = new Float32Array(10);
    expect(() => runSample(be, rows, 2, 5, {}, [0.5])).toThrow(/u/);
    expect(() => runSample(be, rows, 2, 5, {}, [0.5, 1])).toThrow(/u/);
  });
});

const dirs = fixtureDirs();
describe.each(backends.map((b) => [b.name, b] as const))('generate samples on the device on %s', (_n, be) => {
  it.each(dirs.map((d) => [path.basename(d), d] as const))(
    '%s: same tokens and top alternatives as sampling on the host (penalties too), one kernel call per step',
    async (_f, dir) => {
      const model = await loadModel(dir, { backend: be });
      const run = be.run.bind(be),
        supports = be.supports.bind(be);
      let kernelCalls = 0;
      be.run = (name, i, o, a) => {
        if (name === 'sample') kernelCalls++;
        run(name, i, o, a);
      };
      try {
        for (const opts of [
          { temperature: 1, topP: 0.9 },
          { temperature: 0.8, topK: 20, topLogprobs: 3 },
          { temperature: 0, topLogprobs: 5 },
          {
            temperature: 0.9,
            repetitionPenalty: 1.3,
            frequencyPenalty: 0.4,
            presencePenalty: 0.1,
            penaltyLastN: 6,
            topLogprobs: 2,
          },
        ]) {
          const prompts = [
            [5, 9, 2],
            [5, 9, 2],
            [7, 1, 4],
          ];
          kernelCalls = 0;
          const dev = await generate(model, prompts, { ...opts, maxTokens: 12, seed: 11 });
          expect(kernelCalls).toBeGreaterThan(0);
          kernelCalls = 0;
          be.supports = (k) => k !== 'sample' && supports(k); // a backend without the kernel: the host path
          const host = await generate(model, prompts, { ...opts, maxTokens: 12, seed: 11 });
          be.supports = supports;
          expect(kernelCalls).toBe(0);
          for (let r = 0; r < prompts.length; r++) {
            const a = dev.choices[r]!,
              b = host.choices[r]!;
            expect(a.ids).toEqual(b.ids);
            a.logprobs.content.forEach((e, t) => {
              const h = b.logprobs.content[t]!;
              expect(e.logprob).toBeCloseTo(h.logprob, 5);
              expect(e.prob).toBeCloseTo(h.prob, 6);
              expect(e.top_logprobs.map((x) => x.id)).toEqual(h.top_logprobs.map((x) => x.id));
              expect(e.top_logprobs.length).toBe(opts.topLogprobs ?? 0);
              e.top_logprobs.forEach((x, k) => expect(x.logprob).toBeCloseTo(h.top_logprobs[k]!.logprob, 5));
            });
          }
        }
      } finally {
        be.run = run;
        be.supports = supports;
        for (const t of model.params.values()) t.dispose();
      }
    },
  );
});
