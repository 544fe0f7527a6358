// The host half of webgpu's top-p / min-p `sample` without top-k (src/backend/sample_nucleus.ts), no GPU: on the
// device's slots emulated in float32 (./sample_nucleus_cases.ts, exp as far off as WGSL allows, either way), every
// row it certifies draws ref's id and probability bit for bit (ref's `sampleKernel` on the full row), over peaked,
// flat, tied, signed-zero, -Infinity, subnormal-weight rows, V below and above 4096, top-p near 1, min-p alone and
// with top-p, top-k past the slot; rows whose nucleus passes the candidates are refused; and without the tail's
// mass, or with its bound shrunk, wrong draws get through (so the bound is what makes it exact). Mutations of
// src/backend/sample_nucleus.ts that these tests catch (tried): no largest-tail-weight check (the tie across the
// slot's edge), the tail's lower bound kept with top-k past the slot (that test).
import { describe, expect, it } from 'vitest';
import { sampleNucleus } from '../src/backend/sample_nucleus.js';
import { sampleKernel } from '../src/backend/sample_rows.js';
import { type RowSampling, rowWeights } from '../src/backend/sampling.js';
import { Rng } from '../src/util/rng.js';
import { emulateSlots, zipfRows } from './sample_nucleus_cases.js';
import { logitRows } from './sample_topk_cases.js';

const CAP = 1024;

type Tally = { certified: number; refused: number; wrong: number };

/**
 * Row by row: sampleNucleus on the emulated slots against sampleKernel on the full row; `wrong` counts certified rows
 * whose id or probability differ (expected 0 unless the bound is tampered with).
 */
function run(
  x: Float32Array,
  N: number,
  V: number,
  o: RowSampling,
  us: number[],
  dir = 1,
  tamper?: (w: Int32Array) => void,
  tailScale = 1,
): Tally {
  const t: Tally = { certified: 0, refused: 0, wrong: 0 };
  for (let n = 0; n < N; n++) {
    const row = x.subarray(n * V, (n + 1) * V);
    const w = emulateSlots(row, 1, V, CAP, o.temperature, dir);
    tamper?.(w);
    for (const u of us) {
      const gi = new Int32Array(1),
        gp = new Float32Array(2),
        ri = new Int32Array(1),
        rp = new Float32Array(2);
      sampleKernel({ data: row, shape: [1, V] }, { data: ri }, { data: rp }, o, [u]);
      if (!sampleNucleus(w, V, CAP, { data: gi }, { data: gp }, o, [u], undefined, tailScale)) {
        t.refused++;
        continue;
      }
      t.certified++;
      if (gi[0] !== ri[0] || gp[0] !== rp[0]) t.wrong++;
    }
  }
  return t;
}

const us = [0.001, 0.37, 0.8, 0.999];
const o = (topP: number, minP = 0, temperature = 1, topK = 0): RowSampling => ({ temperature, topK, topP, minP });

describe('sample_nucleus: certified rows draw ref ids and probabilities bit for bit', () => {
  it('peaked (Zipf-like) rows, V 50 000 and 3 000, top-p 0.9 / 0.95, both exp directions', () => {
    const rng = new Rng(1);
    for (const V of [50000, 3000])
      for (const s of [1.5, 2])
        for (const dir of [1, -1])
          for (const p of [0.9, 0.95]) {
            const x = zipfRows(rng, 3, V, s);
            const t = run(x, 3, V, o(p), us, dir);
            expect(t.wrong, `V ${V} s ${s} p ${p}`).toBe(0);
            // s 2: every row certified; s 1.5: the nucleus at 0.95 can pass the 1 024 candidates (refused)
            expect(t.certified, `V ${V} s ${s} p ${p}`).toBeGreaterThanOrEqual(s === 2 ? 12 : 4);
          }
  });

  it('flat rows fall back (their nucleus passes the candidates); a flat tail under min-p does not', () => {
    const rng = new Rng(2);
    for (const V of [50000, 5000]) {
      const x = logitRows(rng, 2, V, 0.5);
      expect(run(x, 2, V, o(0.9), us)).toEqual({ certified: 0, refused: 8, wrong: 0 });
      expect(run(x, 2, V, o(1, 0.05), us)).toMatchObject({ certified: 0, wrong: 0 }); // 0.05 of the max: past the slot
    }
    // a peaked head over a flat tail far below min-p: min-p alone drops the tail
    const V = 20000,
      x = logitRows(rng, 2, V, 0.5);
    for (let i = 0; i < 2 * V; i += 997) x[i] = 12;
    const t = run(x, 2, V, o(1, 0.1), us);
    expect(t).toEqual({ certified: 8, refused: 0, wrong: 0 });
  });

  it('top-p near 1, min-p alone and with top-p, temperatures, top-k past the slot', () => {
    const rng = new Rng(3);
    let certified = 0;
    for (const V of [4096, 4095, 50000]) {
      const x = zipfRows(rng, 2, V, 2);
      for (const set of [
        o(0.999),
        o(0.9999),
        o(1, 0.001),
        o(1, 1e-5),
        o(0.95, 0.01),
        o(0.9, 0.05, 0.7),
        o(0.8, 0, 1.3),
        o(0.9, 0, 1, 2000),
        o(0.9, 0, 1, V),
      ]) {
        const t = run(x, 2, V, set, us);
        expect(t.wrong, `V ${V} ${JSON.stringify(set)}`).toBe(0);
        certified += t.certified;
      }
    }
    expect(certified).toBeGreaterThan(100);
  });

  it('top-k past the slot (1 024 < k < V): only the tail’s upper bound holds (ref cuts the rest)', () => {
    const rng = new Rng(8);
    const V = 20000,
      x = zipfRows(rng, 6, V, 1.5);
    let certified = 0;
    for (const p of [0.5, 0.6, 0.7])
      for (const k of [1500, 3000]) {
        const t = run(x, 6, V, o(p, 0, 1, k), [0.999, 0.6]);
        expect(t.wrong, `top-p ${p} top-k ${k}`).toBe(0);
        certified += t.certified;
      }
    expect(certified).toBeGreaterThan(0);
  });

  it('top-p on the nucleus boundaries: p at a prefix mass of ref own weights is certified only when it is safe', () => {
    const rng = new Rng(4);
    const V = 8000,
      x = zipfRows(rng, 1, V, 1.6);
    const d = rowWeights(x, o(1));
    const w = Array.from(d.w)
      .filter((v) => v > 0)
      .sort((a, b) => b - a);
    let acc = 0,
      t: Tally = { certified: 0, refused: 0, wrong: 0 };
    for (let j = 0; j < 300; j++) {
      acc += w[j]!;
      for (const p of [acc / d.sum, (acc / d.sum) * (1 + 1e-12), (acc / d.sum) * (1 - 1e-12)]) {
        if (!(p < 1)) continue;
        const r = run(x, 1, V, o(p), [0.999, 0.5]);
        t = { certified: t.certified + r.certified, refused: t.refused + r.refused, wrong: t.wrong + r.wrong };
      }
    }
    expect(t.wrong).toBe(0);
    expect(t.refused).toBeGreaterThan(0);
  });

  it('ties at the slot boundary (past the slot: refused), ±0, -Infinity, subnormal weights', () => {
    const rng = new Rng(5);
    const V = 6000;
    // 1 000 large logits then 100 tied at the boundary: 1 100 candidates > cap
    const x = logitRows(rng, 1, V, 1);
    for (let i = 0; i < 1000; i++) x[i * 5] = 20 + i * 0.001;
    for (let i = 0; i < 100; i++) x[i * 7 + 1] = 15;
    expect(run(x, 1, V, o(0.9), us)).toMatchObject({ certified: 0, wrong: 0 });
    // ties inside the slot, ±0 and -Infinity in the row and among candidates
    const y = zipfRows(rng, 1, V, 2);
    for (let i = 0; i < V; i += 3) y[i] = -Infinity;
    y[10] = 0;
    y[11] = -0;
    y[12] = 0;
    for (let i = 100; i < 160; i++) y[i] = -1;
    for (const set of [o(0.9), o(0.99), o(0.5, 0.2), o(1, 0.3)]) expect(run(y, 1, V, set, us).wrong).toBe(0);
    // weights tied across the slot's edge: logits apart by less than exp resolves (all weight 1), the nucleus
    // a tie group in id order that mixes candidates and tail ids: refused (the largest tail weight is not below it)
    const e = new Float32Array(3000).fill(-2e-30);
    e[0] = 0;
    for (let i = 1; i <= 1023; i++) e[2 * i - 1] = -1e-30;
    expect(run(e, 1, 3000, o(0.3001), us)).toEqual({ certified: 0, refused: 4, wrong: 0 });
    // subnormal weights: T small enough that the candidates' weights fall to 1e-310
    const z = zipfRows(rng, 1, V, 1.2);
    for (const T of [0.01, 0.02, 0.05]) expect(run(z, 1, V, o(0.9, 0, T), us).wrong).toBe(0);
    const s = new Float32Array(V).fill(-1e4);
    s[5] = 0;
    s[6] = -7.1; // weight e^-710 at T 0.01? no: (−7.1)/0.01 = −710, below ref's −700: weight 0
    s[7] = -6.9; // e^-690: subnormal-free but tiny
    for (const set of [o(0.9, 0, 0.01), o(0.999999, 0, 0.01), o(1, 1e-300, 0.01)])
      expect(run(s, 1, V, set, us).wrong).toBe(0);
  });

  it('small rows (V ≤ cap: the candidates are the row) need no certificate', () => {
    const rng = new Rng(6);
    for (const V of [7, 1024]) {
      const x = logitRows(rng, 3, V, 0.1);
      expect(run(x, 3, V, o(0.9), us)).toEqual({ certified: 12, refused: 0, wrong: 0 });
    }
  });

  it('without the tail mass, or with its bound shrunk, wrong draws are certified', () => {
    const rng = new Rng(7);
    const V = 50000,
      x = zipfRows(rng, 6, V, 1.3);
    // the tail dropped: p = topP·Σ over the candidates only
    const noTail = (w: Int32Array) => {
      w[2] = 0;
      w[3] = 0;
    };
    expect(run(x, 6, V, o(0.85), us, 1, noTail).wrong).toBeGreaterThan(0);
    // the bound shrunk to nothing: S̃ taken as exact; p put just past a prefix mass inside the f32 tail's error
    let wrong = 0;
    for (let n = 0; n < 2; n++) {
      const row = x.subarray(n * V, (n + 1) * V);
      const d = rowWeights(row, o(1));
      const w = Array.from(d.w)
        .filter((v) => v > 0)
        .sort((a, b) => b - a);
      let acc = 0;
      for (let j = 0; j < 80; j++) {
        acc += w[j]!;
        const p = (acc / d.sum) * (1 + 2e-8);
        if (p < 1) wrong += run(row, 1, V, o(p), [0.999], -1, undefined, 0).wrong;
      }
    }
    expect(wrong).toBeGreaterThan(0);
  });
});
