// src/backend/sample_penalized_nucleus.ts on an emulated device (./sample_nucleus_cases.ts `emulateSlots` on the
// masked copy, its exp off by the most WGSL allows either way, the gathered raw logits after the slots): wherever a
// row set is certified, the ids and probabilities equal ref's `sampleKernel` with the penalties on the full rows bit
// for bit, the logprobs and top alternatives the raw row's; peaked rows certified, flat rows not; seen ids raised
// above the copy's max (the rescaled bounds) and penalised down, boosting and damping penalties, N = 3.
import { describe, expect, it } from 'vitest';
import { nucleusStride } from '../src/backend/sample_nucleus.js';
import { penaltyIndex } from '../src/backend/sample_penalized.js';
import { sampleNucleusPenalized } from '../src/backend/sample_penalized_nucleus.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import type { PenaltySettings, RowSampling } from '../src/backend/sampling.js';
import { Rng } from '../src/util/rng.js';
import { emulateSlots, zipfRows } from './sample_nucleus_cases.js';

const CAP = 1024;

/** The host half on emulated slots; null where not certified, else ids, probs, top ids / logprobs. */
function onDevice(
  x: Float32Array,
  N: number,
  V: number,
  o: RowSampling,
  p: PenaltySettings,
  counts: number[][],
  u: number[],
  n: number,
  dir: number,
) {
  const penalties = { settings: p, counts };
  const index = penaltyIndex(penalties, N, V);
  const copy = Float32Array.from(x);
  for (const f of index.flat) copy[f] = -Infinity;
  const slots = emulateSlots(copy, N, V, CAP, o.temperature, dir);
  const words = new Int32Array(N * nucleusStride(CAP) + index.flat.length);
  words.set(slots);
  const gathered = new Float32Array(words.buffer, N * nucleusStride(CAP) * 4, index.flat.length);
  index.flat.forEach((f, j) => {
    gathered[j] = x[f]!;
  });
  const r = {
    ids: new Int32Array(N),
    pr: new Float32Array(2 * N),
    ti: new Int32Array(N * n),
    tl: new Float32Array(N * n),
  };
  const top = n > 0 ? { n, ids: { data: r.ti }, logprobs: { data: r.tl } } : undefined;
  const ok = sampleNucleusPenalized(
    words,
    V,
    CAP,
    N * nucleusStride(CAP),
    index,
    penalties,
    { data: r.ids },
    { data: r.pr },
    o,
    u,
    top,
  );
  return ok ? r : null;
}

function onRef(
  x: Float32Array,
  N: number,
  V: number,
  o: RowSampling,
  p: PenaltySettings,
  counts: number[][],
  u: number[],
  n: number,
) {
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

const PENALTIES: PenaltySettings[] = [
  { repetitionPenalty: 1.3, frequencyPenalty: 0, presencePenalty: 0 },
  { repetitionPenalty: 1, frequencyPenalty: 0.4, presencePenalty: 0.5 },
  { repetitionPenalty: 0.7, frequencyPenalty: -0.3, presencePenalty: -0.5 },
  { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: -4 }, // seen ids raised far above the copy's max
];

const SETTINGS: RowSampling[] = [
  { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
  { temperature: 0.7, topK: 0, topP: 0.95, minP: 0 },
  { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
  { temperature: 1.2, topK: 0, topP: 0.8, minP: 0.02 },
];

/** Row r's pairs: its `top` largest ids and a few random ones; the last row of 3 none. */
function seenPairs(rng: Rng, x: Float32Array, N: number, V: number, top: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < N; r++) {
    const row = x.subarray(r * V, (r + 1) * V);
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    const flat: number[] = [];
    if (!(N >= 3 && r === N - 1)) {
      for (const id of order.slice(0, top)) flat.push(id, 1 + rng.int(4));
      for (let j = 0; j < 6; j++) flat.push(order[rng.int(V)]!, 1 + rng.int(3));
    }
    out.push(flat);
  }
  return out;
}

describe('sampleNucleusPenalized (emulated device)', () => {
  it('certified draws are ref’s with the penalties, peaked rows certified, flat rows not', () => {
    const rng = new Rng(11);
    let certified = 0,
      flatCertified = 0;
    for (const V of [3000, 20000])
      for (const p of PENALTIES)
        for (const o of SETTINGS)
          for (const [s, peaked] of [
            [2, true],
            [0.6, false],
          ] as const) {
            const N = 3,
              n = 2;
            const x = zipfRows(rng, N, V, s);
            const counts = seenPairs(rng, x, N, V, 3);
            const u = [rng.random(), rng.random(), rng.random()];
            const want = onRef(x, N, V, o, p, counts, u, n);
            for (const dir of [-1, 1]) {
              const got = onDevice(x, N, V, o, p, counts, u, n, dir);
              const label = `V ${V} s ${s} ${JSON.stringify(o)} ${JSON.stringify(p)} dir ${dir}`;
              if (!got) continue;
              if (peaked) certified++;
              else flatCertified++;
              expect([...got.ids], label).toEqual([...want.ids]);
              for (let r = 0; r < N; r++) {
                expect(got.pr[2 * r], label).toBe(want.pr[2 * r]);
                expect(Math.abs(got.pr[2 * r + 1]! - want.pr[2 * r + 1]!), label).toBeLessThanOrEqual(1e-4);
              }
              expect([...got.ti], label).toEqual([...want.ti]);
            }
          }
    // 2 V × 4 penalties × 4 settings × 2 directions = 64 peaked sets
    expect(certified).toBeGreaterThanOrEqual(56);
    expect(flatCertified).toBeLessThanOrEqual(16);
  });

  it('a seen id raised above the copy’s max by 1 … 6 over a heavy tail: certified, ref’s nucleus', () => {
    const rng = new Rng(12);
    const V = 1500,
      N = 2;
    let certified = 0;
    for (const lift of [1, 2, 4, 6])
      for (const o of [
        { temperature: 1, topK: 0, topP: 0.5, minP: 0 },
        { temperature: 0.8, topK: 0, topP: 0.3, minP: 0.01 },
      ])
        for (let t = 0; t < 4; t++) {
          const x = new Float32Array(N * V);
          for (let r = 0; r < N; r++) {
            const perm = Array.from({ length: V }, (_, i) => i).sort(() => rng.random() - 0.5);
            for (let j = 0; j < V; j++) x[r * V + perm[j]!] = j === 0 ? 0 : j <= 1023 ? -2 - 1e-3 * j : -3.5 - 1e-3 * j;
          }
          const s = x.indexOf(-2 - 1e-3 * 500);
          const p = { repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: -(2 + 1e-3 * 500 + lift) };
          const counts = [
              [s, 1],
              [s, 1],
            ],
            u = [rng.random(), rng.random()];
          const want = onRef(x, N, V, o, p, counts, u, 0);
          for (const dir of [-1, 1]) {
            const got = onDevice(x, N, V, o, p, counts, u, 0, dir);
            if (!got) continue;
            certified++;
            expect([...got.ids], `lift ${lift} ${JSON.stringify(o)}`).toEqual([...want.ids]);
            expect([...got.pr].filter((_, i) => i % 2 === 0)).toEqual([...want.pr].filter((_, i) => i % 2 === 0));
          }
        }
    expect(certified).toBe(4 * 2 * 4 * 2);
  });
});
