/**
 * The preference losses (src/align/pref_losses.ts) against float64 formulas written here from the papers / TRL:
 * the reward model's Bradley–Terry loss with margins and reward centring, and DPO's sigmoid (with and without label
 * smoothing), robust, hinge and IPO losses; their gradients against central finite differences of the same float64
 * formulas. Plus the statistics behind the metrics (accuracy, margins, reward-vs-length correlation).
 */
import { describe, expect, it } from 'vitest';
import { bradleyTerryLoss, dpoFamilyLoss, type DpoLossType } from '../src/align/pref_losses.js';
import { pearson, PrefStats, statMetrics } from '../src/align/pref_stats.js';
import { getBackend } from '../src/backend/registry.js';
import { backward } from '../src/tensor/autograd.js';
import { tensor, tidy, type Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';

const backend = getBackend('ref');
const logSigmoid = (z: number) => (z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z)));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** TRL RewardTrainer: −logσ(rc − rr − m) averaged, + coef · mean((rc + rr)²). */
function btRef(rc: number[], rr: number[], m: number[], coef: number): number {
  return mean(rc.map((c, i) => -logSigmoid(c - rr[i]! - m[i]!))) + coef * mean(rc.map((c, i) => (c + rr[i]!) ** 2));
}

/** TRL dpo_trainer.py dpo_loss, x = (πc − πr) − (refc − refr). */
function dpoRef(
  pc: number[],
  pr: number[],
  rc: number[],
  rr: number[],
  type: DpoLossType,
  beta: number,
  eps: number,
): number {
  return mean(
    pc.map((_, i) => {
      const x = pc[i]! - pr[i]! - (rc[i]! - rr[i]!);
      switch (type) {
        case 'sigmoid':
          return -logSigmoid(beta * x) * (1 - eps) - logSigmoid(-beta * x) * eps;
        case 'robust':
          return (-logSigmoid(beta * x) * (1 - eps) + logSigmoid(-beta * x) * eps) / (1 - 2 * eps);
        case 'hinge':
          return Math.max(0, 1 - beta * x);
        case 'ipo':
          return (x - 1 / (2 * beta)) ** 2;
      }
    }),
  );
}

function vec(xs: number[]): Tensor {
  return tensor(Float32Array.from(xs), [xs.length], { backend, requiresGrad: true });
}

/** Gradient of f at x by central differences (float64). */
function numGrad(f: (x: number[]) => number, x: number[], h = 1e-5): number[] {
  return x.map((_, i) => {
    const a = [...x],
      b = [...x];
    a[i]! += h;
    b[i]! -= h;
    return (f(a) - f(b)) / (2 * h);
  });
}

/** Values that float32 holds exactly, so the float64 formula sees what the tensors hold. */
function f32(xs: number[]): number[] {
  return Array.from(Float32Array.from(xs));
}

const rng = new Rng(7);
const draw = (n: number, s: number) => f32(Array.from({ length: n }, () => rng.normal() * s));

describe('reward model loss (Bradley–Terry, margin, centring)', () => {
  for (const [name, coef, withMargin] of [
    ['plain', 0, false],
    ['margin', 0, true],
    ['margin + centring 0.01', 0.01, true],
    ['centring 0.5', 0.5, false],
  ] as const) {
    it(`${name}: value and gradients match the float64 formula`, async () => {
      const rc = draw(6, 1.5),
        rr = draw(6, 1.5),
        m = withMargin ? f32([0, 0.5, 1, 2, -0.3, 0.25]) : [0, 0, 0, 0, 0, 0];
      const tc = vec(rc),
        tr = vec(rr);
      const l = tidy(() => {
        const l = bradleyTerryLoss(tc, tr, withMargin ? m : null, coef);
        backward(l);
        return l;
      });
      const want = btRef(rc, rr, m, coef);
      expect(Math.abs((await l.item()) - want)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want)));
      const gc = numGrad((x) => btRef(x, rr, m, coef), rc),
        gr = numGrad((x) => btRef(rc, x, m, coef), rr);
      const got = [...(await tc.grad!.data()), ...(await tr.grad!.data())];
      [...gc, ...gr].forEach((g, i) => expect(Math.abs(got[i]! - g), `d/d${i}`).toBeLessThan(1e-5));
    });
  }

  it('the margin and the centring term change the loss the way the formula says', async () => {
    const rc = [1, 2],
      rr = [0, 0.5];
    const v = (m: number[] | null, coef: number) => tidy(() => bradleyTerryLoss(vec(rc), vec(rr), m, coef)).item();
    expect(await v([1, 1.5], 0)).toBeGreaterThan(await v(null, 0)); // a required margin makes the same rewards worse
    expect(Math.abs((await v([1, 1.5], 0)) - Math.log(2))).toBeLessThan(1e-6); // rc − rr − m = 0: −log σ(0)
    expect((await v(null, 0.01)) - (await v(null, 0))).toBeCloseTo(0.01 * mean([1, 6.25]), 6);
    expect(() => bradleyTerryLoss(vec([1]), vec([1, 2]), null, 0)).toThrow(/1 chosen and 2 rejected/);
  });
});

describe('DPO-family losses', () => {
  const cases: [DpoLossType, number, number][] = [
    ['sigmoid', 0.1, 0],
    ['sigmoid', 0.5, 0.1],
    ['robust', 0.1, 0.2],
    ['hinge', 0.5, 0],
    ['ipo', 0.1, 0],
    ['ipo', 1, 0],
  ];
  for (const [type, beta, eps] of cases) {
    it(`${type} (β ${beta}, ε ${eps}): value and policy gradients match the float64 formula`, async () => {
      const pc = draw(8, 4),
        pr = draw(8, 4),
        rc = draw(8, 4),
        rr = draw(8, 4);
      if (type === 'hinge') {
        // keep every pair away from the kink (1 − βx = 0), where the derivative jumps
        for (let i = 0; i < 8; i++) {
          const z = 1 - beta * (pc[i]! - pr[i]! - (rc[i]! - rr[i]!));
          if (Math.abs(z) < 0.05) pc[i] = Math.fround(pc[i]! + 1);
        }
      }
      const tc = vec(pc),
        tr = vec(pr);
      const l = tidy(() => {
        const l = dpoFamilyLoss(tc, tr, rc, rr, { beta, lossType: type, labelSmoothing: eps });
        backward(l);
        return l;
      });
      const want = dpoRef(pc, pr, rc, rr, type, beta, eps);
      expect(Math.abs((await l.item()) - want)).toBeLessThan(2e-6 * Math.max(1, Math.abs(want)));
      const gc = numGrad((x) => dpoRef(x, pr, rc, rr, type, beta, eps), pc),
        gr = numGrad((x) => dpoRef(pc, x, rc, rr, type, beta, eps), pr);
      const got = [...(await tc.grad!.data()), ...(await tr.grad!.data())];
      [...gc, ...gr].forEach((g, i) =>
        expect(Math.abs(got[i]! - g), `d/d${i}`).toBeLessThan(2e-5 * Math.max(1, Math.abs(g))),
      );
    });
  }

  it('policy = reference: sigmoid gives ln 2, hinge 1, IPO 1/(4β²); hinge is flat past the margin', async () => {
    const z = [-3, -7],
      one = (type: DpoLossType, beta: number) =>
        tidy(() =>
          dpoFamilyLoss(vec(z), vec([-5, -2]), z, [-5, -2], { beta, lossType: type, labelSmoothing: 0 }),
        ).item();
    expect(await one('sigmoid', 0.1)).toBeCloseTo(Math.LN2, 6);
    expect(await one('hinge', 0.1)).toBeCloseTo(1, 6);
    expect(await one('ipo', 0.5)).toBeCloseTo(1, 6);
    const tc = vec([10]),
      tr = vec([0]);
    const l = tidy(() => {
      const l = dpoFamilyLoss(tc, tr, [0], [0], { beta: 0.5, lossType: 'hinge', labelSmoothing: 0 });
      backward(l);
      return l;
    });
    expect(await l.item()).toBe(0);
    expect(Array.from(await tc.grad!.data())).toEqual([0]);
  });

  it('bad β and ε are named errors', () => {
    expect(() =>
      dpoFamilyLoss(vec([1]), vec([0]), [0], [0], { beta: 0, lossType: 'sigmoid', labelSmoothing: 0 }),
    ).toThrow(/beta: must be > 0/);
    expect(() =>
      dpoFamilyLoss(vec([1]), vec([0]), [0], [0], { beta: 0.1, lossType: 'robust', labelSmoothing: 0.5 }),
    ).toThrow(/labelSmoothing: must be in \[0, 0.5\)/);
  });
});

describe('preference statistics', () => {
  it('accuracy, margins and the reward-vs-length correlation', () => {
    const s = new PrefStats();
    s.add([2, 1, 0], [1, 3, -1], {
      lengths: [
        [5, 7, 3],
        [4, 9, 2],
      ],
    });
    const m = statMetrics(s, 'eval_', 'reward');
    expect(m['eval_accuracy']).toBeCloseTo(2 / 3, 12);
    expect(m['eval_rewards/margins']).toBeCloseTo((3 - 3) / 3, 12);
    expect(m['eval_rewards/chosen']).toBeCloseTo(1, 12);
    // rewards 2,1,1,3,0,-1 against lengths 5,4,7,9,3,2
    expect(m['eval_reward_length_correlation']).toBeCloseTo(pearson([2, 1, 1, 3, 0, -1], [5, 4, 7, 9, 3, 2]), 12);
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [3, 2, 1])).toBeNaN();
    expect(statMetrics(new PrefStats(), '', 'dpo')).toEqual({});
  });
});
