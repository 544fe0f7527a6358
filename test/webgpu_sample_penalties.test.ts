// webgpu's `sample` with penalties (src/backend/sample_penalized.ts, src/backend/webgpu/sample_penalty.ts): the seen
// ids masked in a device copy, their raw logits gathered, the copy's candidates selected, ref's float64 draw on
// candidates ∪ seen ids with the penalised values. Against ref's `sampleKernel` on the full rows: the same ids,
// probabilities and top alternatives exactly, log-probabilities (of the RAW row) within float32; every penalty alone
// and together, r < 1 and r > 1, negative logits, ids seen many times, repeated pairs, the same ids in several rows,
// invalid pairs, N > 1, topN, top-k and greedy, penalties that make a tail id win; the counters show the device path
// (no full-row read); the logits stay unchanged; generate() with penalties draws ref's tokens. Skipped where Dawn
// finds no adapter.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { candidateCap, candidateStride } from '../src/backend/sample_candidates.js';
import { nucleusStride } from '../src/backend/sample_nucleus.js';
import { penaltySelectK } from '../src/backend/sample_penalized.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import { logSumExp, type PenaltySettings, penalizeRow, type RowSampling } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { SAMPLE_TOPK_MAX } from '../src/backend/webgpu/sample.js';
import { generate } from '../src/generate/engine.js';
import { loadModel } from '../src/model/hf/folder.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs } from './helpers.js';
import { boundaryTopPs, logitRows } from './sample_topk_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const maker = webgpuMaker('webgpu sample with penalties');
const be = await maker.make();

type Result = { ids: Int32Array; pr: Float32Array; ti: Int32Array; tl: Float32Array };
type Case = { x: Float32Array; N: number; V: number; o: RowSampling; u: number[]; n: number };

/** `sample` with penalties on webgpu; also returns the logits as read back after the call. */
async function onGpu(g: WebGpuBackend, c: Case, p: PenaltySettings, counts: number[][]) {
  const { x, N, V, o, u, n } = c;
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
    const countOffsets = [0];
    for (const r of counts) countOffsets.push(countOffsets[countOffsets.length - 1]! + r.length);
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      outs.slice(0, n > 0 ? 4 : 2).map((buf, i) => ({ buf, shape: shapes[i]! })),
      { ...o, ...p, u, counts: counts.flat(), countOffsets, ...(n > 0 ? { topN: n } : {}) },
    );
    const r = await Promise.all([...outs, bx].map((b) => g.read(b)));
    return {
      ids: r[0] as Int32Array,
      pr: r[1] as Float32Array,
      ti: r[2] as Int32Array,
      tl: r[3] as Float32Array,
      logits: r[4] as Float32Array,
    };
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

function onRef(c: Case, p: PenaltySettings, counts: number[][]): Result {
  const { x, N, V, o, u, n } = c;
  const r = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  const top = n > 0 ? { n, ids: { data: r.ti }, logprobs: { data: r.tl } } : undefined;
  sampleKernel({ data: x, shape: [N, V] }, { data: r.ids }, { data: r.pr }, o, u, top, { settings: p, counts });
  return r;
}

const lpTol = (lp: number, V: number) => 1e-5 * Math.max(1, Math.abs(lp)) + 2e-6 * Math.log(V);

/** The webgpu draw equals ref's (ids, probabilities, top ids exactly; log-probabilities to float32); the counters' change. */
async function expectRef(g: WebGpuBackend, c: Case, p: PenaltySettings, counts: number[][], exactProb = true) {
  const before = { ...g.counts };
  const got = await onGpu(g, c, p, counts);
  const d = Object.fromEntries(Object.entries(g.counts).map(([k, v]) => [k, v - before[k as keyof typeof before]]));
  const want = onRef(c, p, counts);
  const { N, V, n, x } = c;
  const label = `V ${V} ${JSON.stringify(c.o)} ${JSON.stringify(p)} n ${n}`;
  expect([...got.logits], `${label}: the logits unchanged`).toEqual([...x]);
  expect([...got.ids], label).toEqual([...want.ids]);
  for (let r = 0; r < N; r++) {
    // the certified plain-temperature draw's probability is float32 (as without penalties); the others ref's
    if (exactProb) expect(got.pr[2 * r], label).toBe(want.pr[2 * r]);
    // (its f32 ratio of integer sums, whose terms were truncated: < V of 2^31·Σw below)
    else
      expect(Math.abs(got.pr[2 * r]! - want.pr[2 * r]!), label).toBeLessThanOrEqual(
        want.pr[2 * r]! * (1e-5 + V * 2 ** -31) + 1e-9,
      );
    const lp = want.pr[2 * r + 1]!;
    // ref's logprob is that of the raw row: l[id] − lse(l)
    const row = x.subarray(r * V, (r + 1) * V);
    expect(Math.abs(lp - (row[want.ids[r]!]! - logSumExp(row)))).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(lp)));
    expect(Math.abs(got.pr[2 * r + 1]! - lp), label).toBeLessThanOrEqual(lpTol(lp, V));
  }
  if (n > 0) {
    expect([...got.ti.subarray(0, N * n)], label).toEqual([...want.ti]);
    for (let i = 0; i < N * n; i++)
      expect(Math.abs(got.tl[i]! - want.tl[i]!), label).toBeLessThanOrEqual(lpTol(want.tl[i]!, V));
  }
  return { d, got, want };
}

/**
 * Penalty pairs for N rows of `x`: row 0 the row's `top` largest ids (so penalties move the candidates) and random ids,
 * counts up to 40, one id given twice; row 1 the same ids (repeated across rows) plus invalid pairs; later rows
 * random tail ids; the last row of 3 or more none.
 */
function seenPairs(rng: Rng, x: Float32Array, N: number, V: number, top: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < N; r++) {
    const row = x.subarray(r * V, (r + 1) * V);
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    const flat: number[] = [];
    if (r === 0 || r === 1) {
      for (const id of order.slice(0, Math.min(top, V))) flat.push(id, 1 + Math.floor(rng.random() * 40));
      for (let j = 0; j < 6; j++) flat.push(Math.floor(rng.random() * V), 1 + Math.floor(rng.random() * 3));
      flat.push(order[0]!, 2); // a repeated pair: penalised twice
      if (r === 1) {
        flat.push(-1, 3, V + 2, 1, order[1 % V]!, 0); // invalid: ignored
        flat.push(...out[0]!.slice(0, 6)); // row 0's first ids, seen here too
      }
    } else if (!(N >= 3 && r === N - 1)) {
      // the tail: penalties that boost (r < 1 on negatives, negative f / p) can make one of them win
      for (const id of order.slice(-Math.min(5, V))) flat.push(id, 1 + Math.floor(rng.random() * 5));
    }
    out.push(flat);
  }
  return out;
}

const PENALTIES: PenaltySettings[] = [
  { repetitionPenalty: 1.3, frequencyPenalty: 0, presencePenalty: 0 },
  { repetitionPenalty: 0.6, frequencyPenalty: 0, presencePenalty: 0 },
  { repetitionPenalty: 1, frequencyPenalty: 0.4, presencePenalty: 0 },
  { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 1.5 },
  { repetitionPenalty: 1.7, frequencyPenalty: 0.3, presencePenalty: 0.8 },
  { repetitionPenalty: 0.5, frequencyPenalty: -0.6, presencePenalty: -4 }, // boosts: tail ids win
];

const SETTINGS: [RowSampling, number][] = [
  [{ temperature: 0, topK: 0, topP: 1, minP: 0 }, 0],
  [{ temperature: 0, topK: 0, topP: 1, minP: 0 }, 4],
  [{ temperature: 1, topK: 5, topP: 1, minP: 0 }, 5],
  [{ temperature: 0.8, topK: 40, topP: 0.9, minP: 0 }, 0],
  [{ temperature: 1.2, topK: 200, topP: 1, minP: 0.05 }, 3],
];

describe.skipIf(!be)(`webgpu sample with penalties ${be ? '' : `(skipped: ${maker.why})`}`, () => {
  const g = be!;
  for (const V of [7, 300, 5000, 50000])
    it.for(PENALTIES)(`V ${V}: ref's draw from the masked copy's candidates, no full row read back, %o`, async (p) => {
      const rng = new Rng(V * 17 + Math.round(p.repetitionPenalty * 10) + Math.round(p.presencePenalty * 10));
      const N = 3;
      for (const [o, n] of V === 50000 ? SETTINGS.slice(2, 4) : SETTINGS)
        for (const [scale, shift] of [
          [2, 0],
          [3, -25], // every logit negative
        ] as const) {
          const x = logitRows(rng, N, V, scale).map((v) => v + shift);
          const counts = seenPairs(rng, x, N, V, Math.max(3, o.topK >> 1));
          const u = Array.from({ length: N }, () => rng.random());
          const c = { x, N, V, o, u, n };
          const { d } = await expectRef(g, c, p, counts);
          const k = penaltySelectK(o, n),
            cap = candidateCap(k, SAMPLE_TOPK_MAX);
          const seen = counts.map((r) => {
            const s = new Set<number>();
            for (let j = 0; j + 1 < r.length; j += 2) if (r[j]! >= 0 && r[j]! < V && r[j + 1]! > 0) s.add(r[j]!);
            return s.size;
          });
          expect(d['sampleDevicePenaltyRows'], `${V} ${JSON.stringify(o)}`).toBe(N);
          expect(d['sampleFullRows']).toBe(0);
          expect(d['native']).toBe(1);
          expect(d['hostSteps']).toBe(1);
          expect(d['sampleBytesRead']).toBe((N * candidateStride(cap) + seen.reduce((a, b) => a + b, 0)) * 4);
        }
    });

  it('a tail id wins by the penalties (and its logprob is the raw row’s)', async () => {
    const V = 2000,
      N = 2,
      rng = new Rng(5);
    const x = logitRows(rng, N, V, 1);
    const tail = [17, 1500];
    x[tail[0]!] = -30;
    x[V + tail[1]!] = -12;
    const p = { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: -50 };
    for (const [o, n] of SETTINGS) {
      const c = { x, N, V, o, u: [rng.random(), rng.random()], n };
      const { got, d } = await expectRef(g, c, p, [
        [tail[0]!, 1],
        [tail[1]!, 2],
      ]);
      expect([...got.ids]).toEqual(tail);
      // the raw logit's log-probability: about −30 − lse, not the penalised logit's
      expect(got.pr[1]).toBeLessThan(-25);
      expect(d['sampleDevicePenaltyRows']).toBe(N);
    }
  });

  it('the top ids penalised away: the next ones drawn, from the copy’s candidates', async () => {
    const V = 3000,
      N = 2,
      rng = new Rng(9),
      o = { temperature: 1, topK: 4, topP: 1, minP: 0 };
    const x = logitRows(rng, N, V, 1);
    for (let r = 0; r < N; r++) for (let j = 0; j < 20; j++) x[r * V + 100 + j] = 9 + j / 8; // 20 high ids, seen
    const counts = [0, 1].map(() => Array.from({ length: 20 }, (_, j) => [100 + j, 3]).flat());
    const p = { repetitionPenalty: 4, frequencyPenalty: 0.5, presencePenalty: 2 };
    for (let t = 0; t < 8; t++) {
      const { d } = await expectRef(g, { x, N, V, o, u: [rng.random(), rng.random()], n: 4 }, p, counts);
      expect(d['sampleDevicePenaltyRows']).toBe(N);
    }
  });

  it('top-p on the penalised row’s nucleus boundaries, V ≥ 4096: the full row’s mass-bin search, ref’s ids', async () => {
    const rng = new Rng(12);
    const V = 5000,
      k = 1024;
    const x = logitRows(rng, 1, V, 0.5);
    const counts = [Array.from({ length: 300 }, (_, j) => [(j * 37) % V, 1 + (j % 7)]).flat()];
    const p = { repetitionPenalty: 1.2, frequencyPenalty: 0.05, presencePenalty: 0.1 };
    const pen = Float32Array.from(x);
    penalizeRow(
      pen,
      (function* () {
        for (let j = 0; j < counts[0]!.length; j += 2) yield [counts[0]![j]!, counts[0]![j + 1]!] as const;
      })(),
      p,
    );
    for (const topP of boundaryTopPs(pen, k, 24)) {
      const { d } = await expectRef(
        g,
        { x, N: 1, V, o: { temperature: 1, topK: k, topP, minP: 0 }, u: [0.999999], n: 0 },
        p,
        counts,
      );
      expect(d['sampleDevicePenaltyRows']).toBe(1);
    }
  });

  it('bytes read a token at V = 50 000 with 100 seen ids: top-k 40, plain temperature, top-p only', async () => {
    const V = 50000,
      rng = new Rng(31);
    const x = logitRows(rng, 1, V, 1);
    for (let j = 0; j < 5; j++) x[Math.floor(rng.random() * V)]! += 16;
    const counts = [Array.from({ length: 100 }, (_, j) => [(j * 997) % V, 1 + (j % 3)]).flat()];
    const p = { repetitionPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1 };
    const bytes: Record<string, number> = {};
    for (const [name, o] of [
      ['top-k 40', { temperature: 0.8, topK: 40, topP: 1, minP: 0 }],
      ['plain T', { temperature: 0.8, topK: 0, topP: 1, minP: 0 }],
      ['top-p only', { temperature: 0.8, topK: 0, topP: 0.95, minP: 0 }],
    ] as const) {
      const { d } = await expectRef(g, { x, N: 1, V, o, u: [0.4], n: 0 }, p, counts, name !== 'plain T');
      bytes[name] = d['sampleBytesRead']!;
      console.log(`${name}: ${d['sampleBytesRead']} B read back a token`);
    }
    expect(bytes['top-k 40']).toBe(candidateStride(candidateCap(40, SAMPLE_TOPK_MAX)) * 4 + 100 * 4);
    expect(bytes['plain T']).toBe(16 + 100 * 4 + 48);
    expect(bytes['top-p only']).toBe(nucleusStride(SAMPLE_TOPK_MAX) * 4 + 100 * 4); // was V · 4 (the full row)
  });

  it('a tie past the slot: that call reads the full rows, ref’s draw', async () => {
    const V = 5000,
      N = 2,
      o = { temperature: 0.9, topK: 16, topP: 1, minP: 0 };
    const x = new Float32Array(N * V);
    for (let i = 0; i < x.length; i++) x[i] = i < V ? i % 4 : (i * 7919) % 13; // row 0: 1250 equal maxima
    const p = { repetitionPenalty: 1.2, frequencyPenalty: 0, presencePenalty: 0 };
    const { d } = await expectRef(g, { x, N, V, o, u: [0.3, 0.7], n: 2 }, p, [
      [3, 1, 7, 2],
      [0, 1],
    ]);
    expect(d['sampleDevicePenaltyRows']).toBe(0);
    expect(d['sampleFullRows']).toBe(N);
  });

  for (const V of [300, 5000, 50000])
    it.for(PENALTIES)(`V ${V}, plain temperature: the certified draw on the penalised copy, %o`, async (p) => {
      const rng = new Rng(V * 13 + Math.round(p.repetitionPenalty * 10) + Math.round(p.presencePenalty * 10));
      const N = 3;
      let certified = 0;
      for (const T of [1, 0.7])
        for (const shift of [0, -25]) {
          // peaked rows (a model's next-token row: a few logits well above the rest), as the certified tests'
          const x = logitRows(rng, N, V, 1).map((v) => v + shift);
          for (let j = 0; j < 5 * N; j++)
            x[Math.floor(j / 5) * V + Math.floor(rng.random() * V)]! += 14 + 8 * rng.random();
          const counts = seenPairs(rng, x, N, V, 3);
          const u = Array.from({ length: N }, () => rng.random());
          const o = { temperature: T, topK: 0, topP: 1, minP: 0 };
          const { d } = await expectRef(g, { x, N, V, o, u, n: 0 }, p, counts, false);
          const M = counts
            .map((r) => {
              const s = new Set<number>();
              for (let j = 0; j + 1 < r.length; j += 2) if (r[j]! >= 0 && r[j]! < V && r[j + 1]! > 0) s.add(r[j]!);
              return s.size;
            })
            .reduce((a, b) => a + b, 0);
          if (d['sampleCertFallbacks'] === 0) {
            certified++;
            expect(d['sampleDevicePenaltyRows'], `${V} T ${T}`).toBe(N);
            expect(d['sampleCertifiedRows']).toBe(N);
            expect(d['sampleFullRows']).toBe(0);
            expect(d['sampleBytesRead']).toBe(N * 16 + M * 4 + N * 48);
          } else expect(d['sampleFullRows']).toBe(N);
          expect(d['native']).toBe(2);
          expect(d['hostSteps']).toBe(2);
        }
      // a fallback is rare here (u within the bound of an interval's end, or a draw from the low bulk)
      expect(certified).toBeGreaterThanOrEqual(3);
    });

  it('plain temperature: a tail id made to win by the penalties, its raw logprob reported', async () => {
    const V = 4000,
      N = 2,
      rng = new Rng(21);
    const x = logitRows(rng, N, V, 1);
    x[33] = -20;
    x[V + 3999] = -15;
    const p = { repetitionPenalty: 1, frequencyPenalty: -10, presencePenalty: -30 };
    for (let t = 0; t < 4; t++) {
      const c = { x, N, V, o: { temperature: 1, topK: 0, topP: 1, minP: 0 }, u: [rng.random(), rng.random()], n: 0 };
      const { got, d } = await expectRef(
        g,
        c,
        p,
        [
          [33, 1],
          [3999, 2],
        ],
        false,
      );
      expect([...got.ids]).toEqual([33, 3999]);
      expect(got.pr[1]).toBeLessThan(-15);
      expect(d['sampleDevicePenaltyRows']).toBe(N);
    }
  });

  it('settings past SAMPLE_TOPK_MAX or below temperature 0.01 still sample on the host, ref’s draw', async () => {
    const V = 500,
      N = 2,
      rng = new Rng(4);
    const x = logitRows(rng, N, V, 2);
    const p = { repetitionPenalty: 1.3, frequencyPenalty: 0.1, presencePenalty: 0.2 };
    for (const o of [
      { temperature: 0.005, topK: 0, topP: 1, minP: 0 },
      { temperature: 0.005, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 0.8, topK: SAMPLE_TOPK_MAX + 1, topP: 1, minP: 0 },
      { temperature: 0.8, topK: SAMPLE_TOPK_MAX + 1, topP: 0.9, minP: 0 },
    ]) {
      const { d } = await expectRef(g, { x, N, V, o, u: [0.2, 0.9], n: 0 }, p, [
        [1, 2, 3, 4],
        [5, 1],
      ]);
      expect(d['sampleFullRows']).toBe(N);
      expect(d['sampleDevicePenaltyRows']).toBe(0);
    }
  });

  it('penalties set but no row has counts: the plain paths (no copy)', async () => {
    const V = 700,
      N = 2,
      rng = new Rng(6);
    const x = logitRows(rng, N, V, 2);
    const p = { repetitionPenalty: 1.3, frequencyPenalty: 0, presencePenalty: 0 };
    const { d } = await expectRef(g, { x, N, V, o: SETTINGS[3]![0], u: [0.2, 0.9], n: 0 }, p, [[], []]);
    expect(d['sampleDevicePenaltyRows']).toBe(0);
    expect(d['sampleCandidateRows']).toBe(N);
  });

  // the decode path: generate() passes each row's token counts to the backend's `sample`
  const llama = fixtureDirs().find((dir) => path.basename(dir) === 'llama-tiny');
  it.skipIf(!llama)(
    'generate() with penalties on webgpu: ref’s tokens and alternatives, on the device path',
    async () => {
      const prompt = [1, 5, 9, 2, 5, 5];
      for (const opts of [
        {
          temperature: 0.9,
          topK: 8,
          seed: 7,
          maxTokens: 8,
          repetitionPenalty: 1.4,
          frequencyPenalty: 0.3,
          presencePenalty: 0.2,
          topLogprobs: 2,
        },
        { temperature: 0, seed: 1, maxTokens: 8, repetitionPenalty: 2 },
      ]) {
        const run = async (backend: Backend) => {
          const model = await loadModel(llama!, { backend });
          return (await generate(model, [prompt], opts)).choices[0]!;
        };
        const want = await run(getBackend('ref'));
        const before = { ...g.counts };
        const got = await run(g);
        expect(got.ids).toEqual(want.ids);
        // the reported logprobs and alternatives: the raw rows' (as ref's), to float32
        const lps = (c: typeof got) =>
          c.logprobs.content.map((e) => [e.logprob, e.prob, ...e.top_logprobs.map((t) => t.logprob)]);
        const [a, b] = [lps(got), lps(want)];
        expect(a.length).toBe(b.length);
        for (let i = 0; i < a.length; i++)
          for (let j = 0; j < b[i]!.length; j++) expect(Math.abs(a[i]![j]! - b[i]![j]!)).toBeLessThanOrEqual(1e-4);
        expect(got.logprobs.content.map((e) => e.top_logprobs.map((t) => t.id))).toEqual(
          want.logprobs.content.map((e) => e.top_logprobs.map((t) => t.id)),
        );
        expect(g.counts.sampleDevicePenaltyRows - before.sampleDevicePenaltyRows).toBe(want.ids.length);
        expect(g.counts.sampleFullRows - before.sampleFullRows).toBe(0);
      }
    },
  );

  it.skipIf(!llama)('generate() with penalties at plain temperature on webgpu: ref’s tokens', async () => {
    const prompt = [1, 5, 9, 2, 5, 5];
    const opts = { temperature: 0.8, seed: 11, maxTokens: 10, repetitionPenalty: 1.5, presencePenalty: 0.5 };
    const run = async (backend: Backend) => {
      const model = await loadModel(llama!, { backend });
      return (await generate(model, [prompt], opts)).choices[0]!;
    };
    const want = await run(getBackend('ref'));
    const before = { ...g.counts };
    const got = await run(g);
    expect(got.ids).toEqual(want.ids);
    const dev = g.counts.sampleDevicePenaltyRows - before.sampleDevicePenaltyRows,
      full = g.counts.sampleFullRows - before.sampleFullRows;
    console.log(`generate, plain temperature with penalties: ${dev} rows certified on the device, ${full} redrawn`);
    expect(dev + full).toBe(want.ids.length);
    expect(dev).toBeGreaterThan(0);
  });
});
