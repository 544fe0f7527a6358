// Sampler: each filter checked against its definition, computed independently here on small hand-made rows.
import { describe, it, expect } from 'vitest';
import {
  PenaltyWindow,
  Sampler,
  logSoftmax,
  resolveSamplerOptions,
  sampleToken,
  samplingDistribution,
  topN,
} from '../src/generate/sampler.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';

function softmax(l: number[]): number[] {
  const m = Math.max(...l.filter((x) => x !== -Infinity));
  const e = l.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function expectDist(got: Float64Array, want: number[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 12);
}

const LOGITS = [1.0, 3.0, 2.0, 5.0, 4.0, -1.0, 0.5];

describe('sampler filters', () => {
  it('temperature 1 with no filters is the softmax of the logits', () => {
    expectDist(samplingDistribution(LOGITS, {}), softmax(LOGITS));
  });

  it('temperature divides the logits', () => {
    for (const T of [0.5, 2])
      expectDist(samplingDistribution(LOGITS, { temperature: T }), softmax(LOGITS.map((x) => x / T)));
  });

  it('temperature 0 is greedy: one-hot at the argmax, lowest id on ties', () => {
    const d = samplingDistribution(LOGITS, { temperature: 0 });
    expect(Array.from(d)).toEqual(LOGITS.map((_, i) => (i === 3 ? 1 : 0)));
    const tie = sampleToken([0, 2, 2, 1], { temperature: 0 }, new Rng(1));
    expect(tie.id).toBe(1);
    expect(tie.prob).toBe(1);
  });

  it('top-k keeps exactly the k largest logits', () => {
    for (const k of [1, 2, 3, 6]) {
      const order = LOGITS.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0]);
      const kept = new Set(order.slice(0, k).map((p) => p[1]));
      const want = softmax(LOGITS.map((x, i) => (kept.has(i) ? x : -Infinity)));
      expectDist(samplingDistribution(LOGITS, { topK: k }), want);
    }
    // k ≥ vocabulary: no-op
    expectDist(samplingDistribution(LOGITS, { topK: 100 }), softmax(LOGITS));
  });

  it('top-k keeps ties at the boundary (HF semantics)', () => {
    const l = [1, 3, 3, 0];
    expectDist(samplingDistribution(l, { topK: 1 }), softmax([-Infinity, 3, 3, -Infinity]));
  });

  it('top-p keeps the smallest most-likely set whose mass reaches p', () => {
    const p = [0.42, 0.23, 0.17, 0.09, 0.06, 0.03];
    const l = p.map(Math.log);
    for (const topP of [0.3, 0.5, 0.66, 0.8, 0.95, 0.999]) {
      const probs = softmax(l);
      const order = probs.map((q, i) => [q, i] as const).sort((a, b) => b[0] - a[0]);
      const kept = new Set<number>();
      let before = 0;
      for (const [q, i] of order) {
        if (before >= topP) break;
        kept.add(i);
        before += q;
      }
      const want = softmax(l.map((x, i) => (kept.has(i) ? x : -Infinity)));
      expectDist(samplingDistribution(l, { topP }), want);
    }
  });

  it('top-p on a large vocabulary (the cut-off search path) matches a full sort', () => {
    const rng = new Rng(7);
    const V = 5000;
    const l = Array.from({ length: V }, () => rng.normal() * 1.5);
    const probs = softmax(l);
    const order = probs.map((q, i) => [q, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const topP = 0.9;
    const kept = new Set<number>();
    let before = 0;
    for (const [q, i] of order) {
      if (before >= topP) break;
      kept.add(i);
      before += q;
    }
    const d = samplingDistribution(l, { topP });
    let nz = 0;
    for (let i = 0; i < V; i++) if (d[i]! > 0) nz++;
    expect(nz).toBe(kept.size);
    for (const i of kept) expect(d[i]).toBeGreaterThan(0);
  });

  it('top-p with tied probabilities keeps the lowest ids first', () => {
    const l = [0, 0, 0, 0, 0]; // five tokens of 0.2: mass before the 4th is 0.6 ≥ 0.5
    const d = samplingDistribution(l, { topP: 0.5 });
    expect(Array.from(d).map((x) => +x.toFixed(12))).toEqual([1 / 3, 1 / 3, 1 / 3, 0, 0].map((x) => +x.toFixed(12)));
  });

  it('top-p on a near-uniform 32000-token row keeps the same count as the sorted definition', () => {
    const rng = new Rng(9);
    const l = Array.from({ length: 32000 }, () => rng.normal() * 0.1);
    const probs = softmax(l);
    const sorted = probs.slice().sort((a, b) => b - a);
    let before = 0,
      k = 0;
    for (const q of sorted) {
      if (before >= 0.9) break;
      before += q;
      k++;
    }
    const d = samplingDistribution(l, { topP: 0.9 });
    let nz = 0,
      minKept = Infinity,
      maxDropped = 0;
    for (let i = 0; i < d.length; i++) {
      if (d[i]! > 0) {
        nz++;
        minKept = Math.min(minKept, probs[i]!);
      } else maxDropped = Math.max(maxDropped, probs[i]!);
    }
    expect(Math.abs(nz - k)).toBeLessThanOrEqual(1); // summation order may move the boundary by one token
    expect(minKept).toBeGreaterThanOrEqual(maxDropped);
  });

  it('min-p drops tokens below min_p × the top probability', () => {
    for (const minP of [0.05, 0.2, 0.5, 1]) {
      const probs = softmax(LOGITS);
      const pmax = Math.max(...probs);
      const want = softmax(LOGITS.map((x, i) => (probs[i]! >= minP * pmax ? x : -Infinity)));
      expectDist(samplingDistribution(LOGITS, { minP }), want);
    }
  });

  it('repetition penalty divides positive and multiplies negative logits of seen ids', () => {
    const l = [2, -1, 0.5, 1.5];
    const counts = new Map([
      [0, 3],
      [1, 1],
    ]);
    const want = softmax([2 / 2, -1 * 2, 0.5, 1.5]);
    expectDist(samplingDistribution(l, { repetitionPenalty: 2 }, counts), want);
  });

  it('frequency and presence penalties subtract count·f + p from seen ids (the result rounded to float32)', () => {
    const l = [2, -1, 0.5, 1.5];
    const counts = new Map([
      [0, 3],
      [3, 1],
    ]);
    const f = 0.4,
      pr = 0.7;
    const want = softmax([Math.fround(2 - (3 * f + pr)), -1, 0.5, Math.fround(1.5 - (1 * f + pr))]);
    expectDist(samplingDistribution(l, { frequencyPenalty: f, presencePenalty: pr }, counts), want);
  });

  it('applies the chain in order: penalties → temperature → top-k → top-p → min-p', () => {
    const l = [3, 2.5, 2, 1, 0.5, 0];
    const counts = new Map([[0, 2]]);
    const o = { repetitionPenalty: 1.5, frequencyPenalty: 0.25, temperature: 0.8, topK: 4, topP: 0.85, minP: 0.15 };
    // by hand, step by step
    let x = l.slice();
    x[0] = x[0]! / 1.5 - 2 * 0.25; // 1.5
    x = x.map((v) => v / 0.8);
    const kth = x.slice().sort((a, b) => b - a)[3]!;
    x = x.map((v) => (v >= kth ? v : -Infinity));
    let p = softmax(x);
    const order = p.map((q, i) => [q, i] as const).sort((a, b) => b[0] - a[0]);
    const keep = new Set<number>();
    let before = 0;
    for (const [q, i] of order) {
      if (before >= 0.85) break;
      keep.add(i);
      before += q;
    }
    x = x.map((v, i) => (keep.has(i) ? v : -Infinity));
    p = softmax(x);
    const pmax = Math.max(...p);
    x = x.map((v, i) => (p[i]! >= 0.15 * pmax ? v : -Infinity));
    expectDist(samplingDistribution(l, o, counts), softmax(x));
  });
});

describe('sampleToken', () => {
  it('reports the model logprob, the final probability and the top alternatives from the same row', () => {
    const lp = logSoftmax(LOGITS);
    const r = sampleToken(LOGITS, { topK: 2, topLogprobs: 3 }, new Rng(3));
    expect([3, 4]).toContain(r.id);
    expect(r.logprob).toBeCloseTo(lp[r.id]!, 12);
    const d = samplingDistribution(LOGITS, { topK: 2 });
    expect(r.prob).toBeCloseTo(d[r.id]!, 12);
    expect(r.top.map((t) => t.id)).toEqual([3, 4, 1]);
    for (const t of r.top) expect(t.logprob).toBeCloseTo(lp[t.id]!, 12);
  });

  it('topN returns the largest entries in order', () => {
    const rng = new Rng(11);
    const v = Array.from({ length: 300 }, () => rng.normal());
    const want = v
      .map((x, i) => [x, i] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 7)
      .map((p) => p[1]);
    expect(topN(v, 7).map((t) => t.id)).toEqual(want);
  });

  it('is deterministic for a seed, and different seeds give different draws', () => {
    const draws = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 64 }, () => sampleToken(LOGITS, { temperature: 1.5 }, rng).id);
    };
    expect(draws(42)).toEqual(draws(42));
    expect(draws(42)).not.toEqual(draws(43));
  });

  it('empirical frequencies match the sampling distribution', () => {
    const o = { temperature: 1.3, topK: 5 };
    const d = samplingDistribution(LOGITS, o);
    const n = 20000;
    const counts = new Array(LOGITS.length).fill(0) as number[];
    const rng = new Rng(2024);
    const ro = resolveSamplerOptions(o);
    for (let i = 0; i < n; i++) counts[sampleToken(LOGITS, ro, rng).id]++;
    let chi2 = 0;
    let df = -1;
    for (let i = 0; i < LOGITS.length; i++) {
      const p = d[i]!;
      if (p === 0) {
        expect(counts[i]).toBe(0); // filtered tokens never drawn
        continue;
      }
      // each frequency within 5 standard errors of its probability
      expect(Math.abs(counts[i]! / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
      chi2 += (counts[i]! - n * p) ** 2 / (n * p);
      df++;
    }
    // chi-square with 4 degrees of freedom: P(χ² > 18.47) = 0.001
    expect(df).toBe(4);
    expect(chi2).toBeLessThan(18.47);
  });
});

describe('penalty window and Sampler', () => {
  it('counts the whole sequence by default, the last N with penaltyLastN, nothing with 0', () => {
    const seq = [1, 2, 2, 3, 1, 1];
    expect([...PenaltyWindow.from(seq, -1).counts].sort()).toEqual([
      [1, 3],
      [2, 2],
      [3, 1],
    ]);
    expect([...PenaltyWindow.from(seq, 3).counts].sort()).toEqual([
      [1, 2],
      [3, 1],
    ]);
    expect(PenaltyWindow.from(seq, 0).counts.size).toBe(0);
  });

  it('Sampler.observe feeds the penalties', () => {
    const s = new Sampler({ temperature: 0, repetitionPenalty: 10 }, new Rng(0));
    expect(s.sample([5, 4, 1]).id).toBe(0);
    s.observe(0);
    expect(s.sample([5, 4, 1]).id).toBe(1); // 5/10 < 4
    s.observe([1]);
    expect(s.sample([5, 4, 1]).id).toBe(2);
  });
});

describe('validation', () => {
  const bad: [Record<string, unknown>, string][] = [
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: Number.NaN }, 'temperature'],
    [{ topK: 1.5 }, 'topK'],
    [{ topK: -1 }, 'topK'],
    [{ topP: 0 }, 'topP'],
    [{ topP: 1.01 }, 'topP'],
    [{ minP: -0.1 }, 'minP'],
    [{ minP: 2 }, 'minP'],
    [{ repetitionPenalty: 0 }, 'repetitionPenalty'],
    [{ frequencyPenalty: Infinity }, 'frequencyPenalty'],
    [{ presencePenalty: 'a' }, 'presencePenalty'],
    [{ penaltyLastN: -2 }, 'penaltyLastN'],
    [{ topLogprobs: 21 }, 'topLogprobs'],
    [{ topp: 0.5 }, 'topp'],
  ];
  for (const [o, field] of bad)
    it(`rejects ${JSON.stringify(o)} naming ${field}`, () => {
      try {
        resolveSamplerOptions(o as never);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).field).toBe(field);
      }
    });
});

describe('nucleusThreshold on large vocabularies (binned path) equals the definition', () => {
  it('keeps exactly the sorted-prefix tokens for random weight vectors of 5,000–40,000 entries', async () => {
    const { nucleusThreshold } = await import('../src/generate/sampler.js');
    const { Rng } = await import('../src/util/rng.js');
    const rng = new Rng(99);
    for (let trial = 0; trial < 12; trial++) {
      const V = 5000 + rng.int(35000);
      const w = new Float64Array(V);
      const spread = [0.3, 2, 8][trial % 3]!;
      for (let i = 0; i < V; i++) w[i] = rng.random() < 0.05 ? 0 : Math.exp(-Math.abs(rng.normal()) * spread);
      if (trial % 4 === 0) for (let i = 0; i < 50; i++) w[rng.int(V)] = 0.5; // ties
      let sum = 0;
      for (const x of w) sum += x;
      const p = [0.1, 0.5, 0.9, 0.99][trial % 4]! * sum;
      // the definition: sort by weight (desc), ties by id; keep while the mass before is < p
      const order = [...w.keys()].filter((i) => w[i]! > 0).sort((a, b) => w[b]! - w[a]! || a - b);
      const want = new Set<number>();
      let before = 0;
      for (const i of order) {
        if (before >= p) break;
        want.add(i);
        before += w[i]!;
      }
      const { t, kEq } = nucleusThreshold(w, p);
      const got = new Set<number>();
      let eq = 0;
      for (let i = 0; i < V; i++) if (w[i]! > t || (w[i] === t && w[i]! > 0 && eq++ < kEq)) got.add(i);
      expect(got.size, `trial ${trial}`).toBe(want.size);
      for (const i of want) expect(got.has(i), `trial ${trial}: id ${i}`).toBe(true);
    }
  });
});
