// webgpu's `sample` with penalties and top-p and/or min-p but no top-k (src/backend/webgpu/sample.ts, plan
// 'penalized-nucleus'; src/backend/sample_penalized_nucleus.ts): the masked copy's 1 024 largest and tail sums
// selected in WGSL, ref's draw on candidates ∪ seen ids certified on the host. Against ref's `sampleKernel` on the
// full rows with the same penalties: the same ids and probabilities exactly, top alternatives' ids exactly,
// log-probabilities (of the raw row) within float32; peaked rows certified (no full-row read), flat rows falling
// back, a penalty raising a seen id to the max (the bounds rescaled), the max penalised away, negative penalties,
// N > 1, topN, small rows. Skipped where Dawn finds no adapter.
import { describe, expect, it } from 'vitest';
import { nucleusStride } from '../src/backend/sample_nucleus.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import type { PenaltySettings, RowSampling } from '../src/backend/sampling.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { SAMPLE_TOPK_MAX, samplePlan } from '../src/backend/webgpu/sample.js';
import { Rng } from '../src/util/rng.js';
import { zipfRows } from './sample_nucleus_cases.js';
import { logitRows } from './sample_topk_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const maker = webgpuMaker('webgpu top-p sample with penalties');
const be = await maker.make();
const SLOT = nucleusStride(SAMPLE_TOPK_MAX) * 4;

/** `sample` with penalties on webgpu and on ref: ids, probabilities, top ids equal; returns the counters' change. */
async function expectRef(
  g: WebGpuBackend,
  x: Float32Array,
  N: number,
  V: number,
  o: RowSampling,
  p: PenaltySettings,
  counts: number[][],
  u: number[],
  n = 0,
) {
  const bx = g.alloc(N * V, 'f32'),
    outs = [
      g.alloc(N, 'i32'),
      g.alloc(2 * N, 'f32'),
      g.alloc(Math.max(1, N * n), 'i32'),
      g.alloc(Math.max(1, N * n), 'f32'),
    ];
  const before = { ...g.counts };
  const countOffsets = [0];
  for (const r of counts) countOffsets.push(countOffsets[countOffsets.length - 1]! + r.length);
  const attrs = { ...o, ...p, u, counts: counts.flat(), countOffsets, ...(n > 0 ? { topN: n } : {}) };
  try {
    g.write(bx, x);
    const shapes = [[N], [N, 2], [N, n], [N, n]];
    g.run(
      'sample',
      [{ buf: bx, shape: [N, V] }],
      outs.slice(0, n > 0 ? 4 : 2).map((buf, i) => ({ buf, shape: shapes[i]! })),
      attrs,
    );
    const [ids, pr, ti, tl, lg] = (await Promise.all([...outs, bx].map((b) => g.read(b)))) as [
      Int32Array,
      Float32Array,
      Int32Array,
      Float32Array,
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
    sampleKernel({ data: x, shape: [N, V] }, { data: w.ids }, { data: w.pr }, o, u, top, { settings: p, counts });
    const label = `V ${V} ${JSON.stringify(o)} ${JSON.stringify(p)} u ${u.join(',')}`;
    expect(samplePlan(n > 0 ? 4 : 2, attrs, V, N), label).toBe('penalized-nucleus');
    expect([...lg], `${label}: the logits unchanged`).toEqual([...x]);
    expect([...ids], label).toEqual([...w.ids]);
    for (let r = 0; r < N; r++) {
      expect(pr[2 * r], label).toBe(w.pr[2 * r]);
      expect(Math.abs(pr[2 * r + 1]! - w.pr[2 * r + 1]!), label).toBeLessThanOrEqual(1e-4);
    }
    if (n > 0) {
      expect([...ti.subarray(0, N * n)], label).toEqual([...w.ti]);
      for (let i = 0; i < N * n; i++) expect(Math.abs(tl[i]! - w.tl[i]!)).toBeLessThanOrEqual(1e-4);
    }
    return { d, ids };
  } finally {
    for (const b of [bx, ...outs]) g.free(b);
  }
}

/** The distinct valid seen ids of each row's pairs. */
const seenCount = (counts: number[][], V: number) =>
  counts.reduce((a, r) => {
    const s = new Set<number>();
    for (let j = 0; j + 1 < r.length; j += 2) if (r[j]! >= 0 && r[j]! < V && r[j + 1]! > 0) s.add(r[j]!);
    return a + s.size;
  }, 0);

/** Row r's pairs: its `top` largest ids (counts 1–4), a few random ids, the largest once more; the last row of 3 none. */
function seenPairs(rng: Rng, x: Float32Array, N: number, V: number, top: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < N; r++) {
    if (N >= 3 && r === N - 1) {
      out.push([]);
      continue;
    }
    const row = x.subarray(r * V, (r + 1) * V);
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    const flat: number[] = [];
    for (const id of order.slice(0, top)) flat.push(id, 1 + rng.int(4));
    for (let j = 0; j < 5; j++) flat.push(rng.int(V), 1 + rng.int(3));
    flat.push(order[0]!, 2, -1, 3, V + 1, 1);
    out.push(flat);
  }
  return out;
}

const PENALTIES: PenaltySettings[] = [
  { repetitionPenalty: 1.3, frequencyPenalty: 0, presencePenalty: 0 },
  { repetitionPenalty: 1, frequencyPenalty: 0.4, presencePenalty: 0.5 },
  { repetitionPenalty: 0.7, frequencyPenalty: -0.3, presencePenalty: -0.5 }, // boosts: the max raised
];

const SETTINGS: [RowSampling, number][] = [
  [{ temperature: 1, topK: 0, topP: 0.9, minP: 0 }, 0],
  [{ temperature: 1, topK: 0, topP: 1, minP: 0.05 }, 3],
  [{ temperature: 0.8, topK: 0, topP: 0.85, minP: 0.02 }, 0],
];

describe.skipIf(!be)(`webgpu top-p / min-p sample with penalties ${be ? '' : `(skipped: ${maker.why})`}`, () => {
  const g = be!;

  for (const V of [5000, 50000])
    it.for(PENALTIES)(
      `V ${V}, peaked rows: certified from the masked copy's candidates, no full row, %o`,
      async (p) => {
        const rng = new Rng(V + Math.round(p.repetitionPenalty * 10));
        const N = 3;
        for (const [o, n] of SETTINGS) {
          const x = zipfRows(rng, N, V, 2);
          const counts = seenPairs(rng, x, N, V, 4);
          const { d } = await expectRef(g, x, N, V, o, p, counts, [rng.random(), rng.random(), 0.999999], n);
          const got = [d['sampleNucleusRows'], d['sampleDevicePenaltyRows'], d['sampleNucleusFallbacks']];
          expect(got, `${V} ${JSON.stringify(o)}`).toEqual([N, N, 0]);
          expect(d['sampleFullRows']).toBe(0);
          expect(d['native']).toBe(1);
          expect(d['sampleBytesRead']).toBe(N * SLOT + seenCount(counts, V) * 4);
        }
      },
    );

  it('flat rows (the nucleus passes the candidates): the call reads the full rows back, ref’s draw', async () => {
    const rng = new Rng(2);
    const V = 20000,
      N = 2;
    const x = logitRows(rng, N, V, 0.5);
    const counts = seenPairs(rng, x, N, V, 10);
    for (const o of [
      { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 1, topK: 0, topP: 1, minP: 0.1 },
    ]) {
      const { d } = await expectRef(g, x, N, V, o, PENALTIES[0]!, counts, [0.25, 0.75]);
      expect([d['sampleNucleusRows'], d['sampleNucleusFallbacks'], d['sampleFullRows']]).toEqual([0, 1, N]);
      expect(d['sampleDevicePenaltyRows']).toBe(0);
      expect(d['sampleBytesRead']).toBe(N * SLOT + seenCount(counts, V) * 4 + N * V * 4);
    }
  });

  it('a penalty raises a seen id to the max (m > the copy’s max: bounds rescaled), or takes the max away', async () => {
    const rng = new Rng(3);
    const V = 30000,
      N = 2;
    const x = zipfRows(rng, N, V, 2);
    const row0 = x.subarray(0, V);
    const order = Array.from(row0.keys()).sort((a, b) => row0[b]! - row0[a]! || a - b);
    // row 0: a mid-rank id boosted above the max; row 1: its max penalised far down
    const mid = order[200]!,
      row1 = x.subarray(V);
    const top1 = row1.indexOf(Math.max(...row1));
    const p = { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: -(row0[order[0]!]! - row0[mid]! + 3) };
    const pDown = { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 40 };
    for (const o of [
      { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 0.7, topK: 0, topP: 1, minP: 0.1 },
      { temperature: 1.3, topK: 0, topP: 0.8, minP: 0.05 },
    ]) {
      for (const u of [
        [0.01, 0.5],
        [0.99, 0.2],
      ]) {
        const { d } = await expectRef(g, x, N, V, o, p, [[mid, 1], []], u, 2);
        expect([d['sampleNucleusRows'], d['sampleFullRows']]).toEqual([N, 0]);
        const r2 = await expectRef(g, x, N, V, o, pDown, [[], [top1, 1]], u);
        expect([r2.d['sampleNucleusRows'], r2.d['sampleFullRows']]).toEqual([N, 0]);
        expect(r2.ids[1]).not.toBe(top1);
      }
    }
  });

  it('a seen id raised above the copy’s max with a heavy tail: the tail’s share (rescaled) decides the nucleus', async () => {
    // candidates: 1 024 logits near −2, the tail 476 at −3.5 (with the max 1 above m_c = 0 its mass is 1/e of the
    // copy's view): top-p 0.5's cut lies among the candidates either way, but only the rescaled bounds give ref's
    const rng = new Rng(6);
    const V = 1500,
      N = 2;
    const x = new Float32Array(N * V);
    for (let r = 0; r < N; r++) {
      const perm = Array.from({ length: V }, (_, i) => i).sort(() => rng.random() - 0.5);
      for (let j = 0; j < V; j++) x[r * V + perm[j]!] = j === 0 ? 0 : j <= 1023 ? -2 - 1e-3 * j : -3.5 - 1e-3 * j;
    }
    const s = x.indexOf(-2 - 1e-3 * 500); // a candidate of row 0, raised to 1
    const p = { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: -(3 - 1e-3 * 500) };
    for (const o of [
      { temperature: 1, topK: 0, topP: 0.5, minP: 0 },
      { temperature: 1, topK: 0, topP: 0.3, minP: 0.01 },
    ])
      for (const u of [
        [0.999, 0.999],
        [0.6, 0.4],
      ]) {
        const { d } = await expectRef(
          g,
          x,
          N,
          V,
          o,
          p,
          [
            [s, 1],
            [s, 1],
          ],
          u,
        );
        expect([d['sampleNucleusRows'], d['sampleFullRows']], JSON.stringify(o)).toEqual([N, 0]);
      }
  });

  it('small rows (V ≤ 1 024: candidates ∪ seen ids are the row), every id seen, −Infinity', async () => {
    const rng = new Rng(4);
    const V = 300,
      N = 2;
    const x = logitRows(rng, N, V, 1);
    for (let i = 0; i < N * V; i += 11) x[i] = -Infinity;
    const o = { temperature: 0.9, topK: 0, topP: 0.92, minP: 0.01 };
    const all = Array.from({ length: V }, (_, i) => [i, 1]).flat();
    for (const p of PENALTIES) {
      const { d } = await expectRef(g, x, N, V, o, p, seenPairs(rng, x, N, V, 20), [0.3, 0.6], 3);
      expect(d['sampleNucleusRows']).toBe(N);
      // every id of row 0 seen: its copy has no mass (all candidates −∞), L is the row
      const r = await expectRef(g, x, N, V, o, p, [all, [1, 1]], [0.3, 0.6]);
      expect([r.d['sampleNucleusRows'], r.d['sampleFullRows']]).toEqual([N, 0]);
    }
  });
});
