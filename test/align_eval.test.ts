/**
 * The evaluation statistics of `llmts align verify` (src/align/eval/): the Wilson score interval against values
 * worked out by hand from its formula (and published ones), and its coverage in a seeded simulation of binomial
 * win counts (≈ 95 %, where the plain Wald interval falls short); judging pairs with the A/B order drawn per pair
 * (a judge that always picks the first reply scores ≈ 50 %, a judge with a real preference keeps it whatever the
 * order), ties counted half; best-of-n, its analytic KL, the distinct-reply ratio, the EOS rate and the calibration
 * bins against hand-computed values.
 */
import { describe, expect, it } from 'vitest';
import { judgePairs, wilsonInterval, Z95, type Judge, type Verdict } from '../src/align/eval/judge.js';
import {
  bestIndex,
  bestOfN,
  bestOfNKl,
  calibrationBins,
  distinctRatio,
  eosRate,
  preferenceProbability,
} from '../src/align/eval/stats.js';
import { Rng } from '../src/util/rng.js';

describe('Wilson score interval', () => {
  it('matches hand-computed values', () => {
    // 7 of 10: p̂ 0.7, z²/n 0.38415, centre (0.7 + 0.19208)/1.38415 = 0.64449, half 1.41600·√(0.021 + 0.0096038) = 0.24771
    const a = wilsonInterval(7, 10);
    expect(a.low).toBeCloseTo(0.3968, 4);
    expect(a.high).toBeCloseTo(0.8922, 4);
    // 0 of 10: [0, z²/(n + z²)]
    const b = wilsonInterval(0, 10);
    expect(b.low).toBe(0);
    expect(b.high).toBeCloseTo(Z95 ** 2 / (10 + Z95 ** 2), 12);
    // 50 of 100: symmetric around ½
    const c = wilsonInterval(50, 100);
    expect(c.low).toBeCloseTo(0.4038, 4);
    expect(c.high).toBeCloseTo(0.5962, 4);
    // a tie counts half: 6.5 of 10
    const d = wilsonInterval(6.5, 10);
    expect(d.low).toBeLessThan(0.65);
    expect(d.high).toBeGreaterThan(0.65);
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
    expect(() => wilsonInterval(11, 10)).toThrow(/within \[0, n = 10\]/);
  });

  it('covers the true win rate ≈ 95 % of the time in a seeded simulation (n = 40 and 400; p from 0.05 to 0.7)', () => {
    const rng = new Rng(2026);
    const trials = 2000;
    for (const n of [40, 400])
      for (const p of [0.05, 0.3, 0.5, 0.7]) {
        let wilson = 0,
          wald = 0;
        for (let t = 0; t < trials; t++) {
          let k = 0;
          for (let i = 0; i < n; i++) if (rng.random() < p) k++;
          const ci = wilsonInterval(k, n);
          if (ci.low <= p && p <= ci.high) wilson++;
          const q = k / n,
            h = Z95 * Math.sqrt((q * (1 - q)) / n);
          if (q - h <= p && p <= q + h) wald++;
        }
        const cov = wilson / trials;
        expect(cov, `n ${n}, p ${p}`).toBeGreaterThan(0.925);
        expect(cov, `n ${n}, p ${p}`).toBeLessThan(0.975);
        if (n === 40 && p === 0.05) expect(wald / trials).toBeLessThan(0.9); // where the naive interval fails
      }
  });
});

/** A judge that prefers the reply ending with '.', else calls a tie; it records what it was shown. */
function dotJudge(seen: [string, string][] = []): Judge<string> {
  return {
    compare(_p, a, b): Verdict {
      seen.push([a, b]);
      const da = a.endsWith('.'),
        db = b.endsWith('.');
      return da === db ? 'tie' : da ? 'a' : 'b';
    },
    score: (_p, r) => (r.endsWith('.') ? 1 : 0),
  };
}

describe('judgePairs', () => {
  const prompts = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
  const A = ['x.', 'x.', 'x!', 'x.', 'x!', 'x.'];
  const B = ['y!', 'y.', 'y.', 'y!', 'y!', 'y!'];
  // A wins 0, 3, 5; ties 1, 4; loses 2 → (3 + 2/2) / 6

  it('counts wins, losses and ties (half) from A’s side, whatever order the judge saw', async () => {
    const seen: [string, string][] = [];
    const r = await judgePairs(dotJudge(seen), prompts, A, B, new Rng(1));
    expect([r.wins, r.losses, r.ties, r.n]).toEqual([3, 1, 2, 6]);
    expect(r.winRate).toBeCloseTo(4 / 6, 12);
    expect(r.verdicts).toEqual(['a', 'tie', 'b', 'a', 'tie', 'a']);
    expect(r.ci).toEqual(wilsonInterval(4, 6));
    // what the judge was shown follows the drawn order
    seen.forEach(([first, second], i) => expect([first, second]).toEqual(r.swapped[i] ? [B[i], A[i]] : [A[i], B[i]]));
    expect(r.swapped.some((s) => s)).toBe(true);
    expect(r.swapped.some((s) => !s)).toBe(true);
    // the same seed draws the same orders
    expect((await judgePairs(dotJudge(), prompts, A, B, new Rng(1))).swapped).toEqual(r.swapped);
  });

  it('a judge that always picks the first reply scores ≈ 50 %, not 100 %', async () => {
    const first: Judge<number> = { compare: async (): Promise<Verdict> => 'a', score: () => 0 };
    const n = 2000;
    const ps = Array.from({ length: n }, (_, i) => i);
    const r = await judgePairs(first, ps, ps.map(String), ps.map(String), new Rng(9));
    expect(r.winRate).toBeGreaterThan(0.46);
    expect(r.winRate).toBeLessThan(0.54);
    expect(r.ci.low).toBeLessThan(0.5);
    expect(r.ci.high).toBeGreaterThan(0.5);
  });

  it('bad input: mismatched lists, a verdict outside a/b/tie', async () => {
    await expect(judgePairs(dotJudge(), prompts, A, B.slice(1), new Rng(1))).rejects.toThrow(
      /6 prompts, 6 replies A and 5/,
    );
    const odd = { compare: () => 'left', score: () => 0 } as unknown as Judge<string>;
    await expect(judgePairs(odd, prompts, A, B, new Rng(1))).rejects.toThrow(/compare\(\) returned "left" for pair 0/);
  });
});

describe('best-of-n, KL, distinct replies, EOS rate, calibration', () => {
  it('best-of-n keeps the highest score (the first on a tie)', async () => {
    expect(
      bestIndex([
        [1, 3, 2],
        [5, 5, 0],
        [-1, -0.5, -2],
      ]),
    ).toEqual([1, 0, 1]);
    const r = await bestOfN(
      ['q1', 'q2'],
      [
        ['a', 'bbb', 'cc'],
        ['dddd', 'e'],
      ],
      async (_p, s) => s.length,
    );
    expect(r.replies).toEqual(['bbb', 'dddd']);
    expect(r.index).toEqual([1, 0]);
    expect(r.scores).toEqual([
      [1, 3, 2],
      [4, 1],
    ]);
  });

  it('the best-of-n KL is log n − (n − 1)/n', () => {
    expect(bestOfNKl(1)).toBe(0);
    expect(bestOfNKl(2)).toBeCloseTo(0.193147, 6); // ln 2 − 1/2
    expect(bestOfNKl(4)).toBeCloseTo(0.636294, 6); // ln 4 − 3/4
    expect(bestOfNKl(16)).toBeCloseTo(1.835089, 6); // ln 16 − 15/16 = 2.772589 − 0.9375
    expect(() => bestOfNKl(0)).toThrow(/whole number ≥ 1/);
    expect(() => bestOfNKl(2.5)).toThrow(/whole number ≥ 1/);
  });

  it('distinct-reply ratio and EOS rate', () => {
    expect(distinctRatio(['a', 'b', 'a', 'c'])).toBe(0.75);
    expect(distinctRatio(['a', 'a', 'a', 'a'])).toBe(0.25);
    expect(distinctRatio([])).toBeNaN();
    expect(eosRate([true, false, true, true])).toBe(0.75);
    expect(eosRate(['stop', 'length', 'stop', 'stop', 'stop'])).toBe(0.8);
    expect(eosRate([])).toBeNaN();
  });

  it('calibration bins: mean predicted vs observed per bin, and the expected calibration error', () => {
    expect(preferenceProbability(0, 0)).toBe(0.5);
    expect(preferenceProbability(2, 1)).toBeCloseTo(1 / (1 + Math.exp(-1)), 15);
    expect(preferenceProbability(-800, 0)).toBe(0); // no overflow
    const p = [0.1, 0.15, 0.55, 0.6, 0.9, 1];
    const o = [0, 1, 1, 0.5, 1, 1];
    const { bins, ece } = calibrationBins(p, o, 4);
    expect(bins.map((b) => b.n)).toEqual([2, 0, 2, 2]);
    expect(bins[0]!.predicted).toBeCloseTo(0.125, 12);
    expect(bins[0]!.observed).toBe(0.5);
    expect(bins[1]!.predicted).toBeNaN();
    expect(bins[2]!.predicted).toBeCloseTo(0.575, 12);
    expect(bins[2]!.observed).toBe(0.75);
    expect(bins[3]!.predicted).toBeCloseTo(0.95, 12);
    expect(bins[3]!.observed).toBe(1);
    expect(bins[3]!.high).toBe(1);
    // (2/6)·|0.125 − 0.5| + (2/6)·|0.575 − 0.75| + (2/6)·|0.95 − 1| = (0.375 + 0.175 + 0.05) / 3
    expect(ece).toBeCloseTo(0.2, 12);
    expect(() => calibrationBins([0.5], [0.3])).toThrow(/not 0, ½ or 1/);
    expect(() => calibrationBins([1.5], [1])).toThrow(/not a probability/);
  });
});
