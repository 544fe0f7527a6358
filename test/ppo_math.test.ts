/**
 * PPO's arithmetic against float64 definitions written here from the papers, independently of src/align/rl_math.ts:
 * GAE as the explicit sum A_t = Σ_l (γλ)^l δ_{t+l} (Schulman et al. 2016, eq. 16), whitening, the k1 / k3 KL
 * estimators (unbiased for KL(π‖π_ref) by Monte Carlo on categorical distributions; k3 never negative), the adaptive
 * KL controller (Ziegler et al. 2019), the clipped surrogate (Schulman et al. 2017, eq. 7) and the clipped value loss
 * as TRL aggregates them (means over reply tokens, vf_coef), with the loss tensor's gradient checked against central
 * finite differences of the float64 definition; and a batch's rewards / advantages / TRL metrics.
 */
import { describe, expect, it } from 'vitest';
import { ppoLoss, prepareBatch } from '../src/align/ppo_objective.js';
import {
  AdaptiveKlController,
  FixedKlController,
  gae,
  klPerToken,
  meanVar,
  shapedRewards,
  whiten,
} from '../src/align/rl_math.js';
import type { Rollout } from '../src/align/rollout.js';
import { getBackend } from '../src/backend/registry.js';
import { backward } from '../src/tensor/autograd.js';
import { tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';

const ref = getBackend('ref');

describe('GAE', () => {
  it('equals the explicit discounted sum of TD errors, with V after the last token 0', () => {
    const rng = new Rng(1);
    for (const [gamma, lambda] of [
      [1, 0.95],
      [0.9, 0.5],
      [1, 1],
      [0.99, 0],
    ] as const) {
      const n = 7;
      const r = Array.from({ length: n }, () => rng.normal());
      const v = Array.from({ length: n }, () => rng.normal());
      const delta = r.map((x, t) => x + gamma * (t + 1 < n ? v[t + 1]! : 0) - v[t]!);
      const want = delta.map((_, t) => {
        let s = 0;
        for (let l = 0; t + l < n; l++) s += (gamma * lambda) ** l * delta[t + l]!;
        return s;
      });
      const got = gae(r, v, gamma, lambda);
      for (let t = 0; t < n; t++) {
        expect(got.advantages[t]).toBeCloseTo(want[t]!, 12);
        expect(got.returns[t]).toBeCloseTo(want[t]! + v[t]!, 12);
      }
      // γ = λ = 1: the advantage is the reward-to-go minus the value
      if (gamma === 1 && lambda === 1)
        for (let t = 0; t < n; t++)
          expect(got.advantages[t]).toBeCloseTo(r.slice(t).reduce((a, b) => a + b, 0) - v[t]!, 12);
    }
  });
});

describe('whitening', () => {
  it('over every token of the batch: mean 0, unbiased variance 1; meanVar as the textbook formulas', () => {
    const rows = [
      [1, 2, 3],
      [10, -4],
      [0.5, 0.25, 7, 9],
    ];
    const flat = rows.flat();
    const mu = flat.reduce((a, b) => a + b, 0) / flat.length;
    const varU = flat.reduce((a, b) => a + (b - mu) ** 2, 0) / (flat.length - 1);
    const mv = meanVar(rows);
    expect(mv.mean).toBeCloseTo(mu, 12);
    expect(mv.variance).toBeCloseTo(varU, 12);
    const w = whiten(rows).flatMap((r) => [...r]);
    w.forEach((x, i) => expect(x).toBeCloseTo((flat[i]! - mu) / Math.sqrt(varU + 1e-8), 12));
    const m2 = meanVar([w]);
    expect(m2.mean).toBeCloseTo(0, 12);
    expect(m2.variance).toBeCloseTo(1, 6);
    expect(whiten(rows, false)[0]![0]).toBeCloseTo((1 - mu) / Math.sqrt(varU + 1e-8) + mu, 12);
  });
});

describe('KL estimators', () => {
  const softmax = (z: number[]) => {
    const m = Math.max(...z);
    const e = z.map((x) => Math.exp(x - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };

  it('k1 is log π − log π_ref; k3 is (r − 1) − log r ≥ 0; both are 0 for a policy against itself', () => {
    const lp = [-0.1, -2.3, -0.7],
      rl = [-0.4, -2.0, -0.7];
    const k1 = klPerToken(lp, rl, 'k1'),
      k3 = klPerToken(lp, rl, 'k3');
    lp.forEach((x, i) => {
      expect(k1[i]).toBeCloseTo(x - rl[i]!, 14);
      const r = Math.exp(rl[i]! - x);
      expect(k3[i]).toBeCloseTo(r - 1 - Math.log(r), 14);
      expect(k3[i]).toBeGreaterThanOrEqual(0);
    });
    expect([...klPerToken(lp, lp, 'k1')]).toEqual([0, 0, 0]);
    expect([...klPerToken(lp, lp, 'k3')]).toEqual([0, 0, 0]);
  });

  it('are unbiased: their means over tokens sampled from π approach KL(π‖π_ref) = Σ π log(π/π_ref)', () => {
    const rng = new Rng(4);
    const p = softmax(Array.from({ length: 6 }, () => rng.normal()));
    const q = softmax(Array.from({ length: 6 }, () => rng.normal()));
    const exact = p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0);
    const N = 200000;
    const lp: number[] = [],
      lq: number[] = [];
    for (let n = 0; n < N; n++) {
      let u = rng.random(),
        i = 0;
      while (i < 5 && u >= p[i]!) u -= p[i++]!;
      lp.push(Math.log(p[i]!));
      lq.push(Math.log(q[i]!));
    }
    const mean = (a: Float64Array) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(exact).toBeGreaterThan(0.1);
    expect(Math.abs(mean(klPerToken(lp, lq, 'k1')) - exact)).toBeLessThan(0.02);
    expect(Math.abs(mean(klPerToken(lp, lq, 'k3')) - exact)).toBeLessThan(0.02);
  });
});

describe('KL controllers', () => {
  it('adaptive: β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon); fixed: β stays', () => {
    const c = new AdaptiveKlController(0.2, 6, 10000);
    let beta = 0.2;
    for (const kl of [12, 6, 0, 5.4, 100]) {
      c.update(kl, 512);
      beta *= 1 + (Math.min(0.2, Math.max(-0.2, kl / 6 - 1)) * 512) / 10000;
      expect(c.value).toBeCloseTo(beta, 14);
    }
    expect(c.value).not.toBe(0.2);
    const f = new FixedKlController(0.05);
    f.update();
    expect(f.value).toBe(0.05);
    expect(() => new AdaptiveKlController(0.1, 0, 1)).toThrow(/target/);
  });
});

/** TRL's loss from the definitions: masked means over the minibatch's reply tokens. */
function lossDef(
  lp: ArrayLike<number>,
  v: ArrayLike<number>,
  A: number[],
  old: number[],
  vold: number[],
  R: number[],
  eps: number,
  epsV: number,
  vfCoef: number,
): number {
  const n = A.length;
  let pg = 0,
    vf = 0;
  for (let t = 0; t < n; t++) {
    const ratio = Math.exp(lp[t]! - old[t]!);
    pg += Math.max(-A[t]! * ratio, -A[t]! * Math.min(Math.max(ratio, 1 - eps), 1 + eps));
    const vc = Math.min(Math.max(v[t]!, vold[t]! - epsV), vold[t]! + epsV);
    vf += Math.max((v[t]! - R[t]!) ** 2, (vc - R[t]!) ** 2);
  }
  return pg / n + vfCoef * 0.5 * (vf / n);
}

describe('clipped policy and value losses', () => {
  it('value and gradient equal the float64 definition (finite differences), clipped tokens included', async () => {
    const rng = new Rng(11);
    const n = 24;
    const old = Array.from({ length: n }, () => -1 - rng.random());
    const lp0 = old.map((x) => x + 0.5 * rng.normal()); // ratios well outside [0.8, 1.2] for many tokens
    const A = Array.from({ length: n }, () => rng.normal());
    const vold = Array.from({ length: n }, () => rng.normal());
    const v0 = vold.map((x) => x + 0.6 * rng.normal());
    const R = Array.from({ length: n }, () => rng.normal());
    const o = { cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1 };
    const lpT = tensor(Float64Array.from(lp0), [n], { backend: ref, requiresGrad: true });
    const vT = tensor(Float64Array.from(v0), [n], { backend: ref, requiresGrad: true });
    const { loss, stats } = ppoLoss(lpT, vT, { advantages: A, oldLogprobs: old, oldValues: vold, returns: R }, o);
    const want = lossDef(lp0, v0, A, old, vold, R, 0.2, 0.2, 0.1);
    expect(await loss.item()).toBeCloseTo(want, 12);
    // some tokens clipped, some not, on both losses: every branch is exercised
    expect(stats['policy/clipfrac_avg']).toBeGreaterThan(0.1);
    expect(stats['policy/clipfrac_avg']).toBeLessThan(0.9);
    expect(stats['val/clipfrac_avg']).toBeGreaterThan(0.1);
    expect(stats['val/clipfrac_avg']).toBeLessThan(0.9);
    const ratios = lp0.map((x, t) => Math.exp(x - old[t]!));
    expect(stats['val/ratio']).toBeCloseTo(ratios.reduce((a, b) => a + b, 0) / n, 12);
    expect(stats['policy/approxkl_avg']).toBeCloseTo(lp0.reduce((s, x, t) => s + 0.5 * (x - old[t]!) ** 2, 0) / n, 12);
    backward(loss);
    const gl = await lpT.grad!.data(),
      gv = await vT.grad!.data();
    const h = 1e-6;
    for (let t = 0; t < n; t++) {
      const up = [...lp0],
        dn = [...lp0];
      up[t]! += h;
      dn[t]! -= h;
      const fd =
        (lossDef(up, v0, A, old, vold, R, 0.2, 0.2, 0.1) - lossDef(dn, v0, A, old, vold, R, 0.2, 0.2, 0.1)) / (2 * h);
      expect(gl[t]).toBeCloseTo(fd, 6);
      const vu = [...v0],
        vd = [...v0];
      vu[t]! += h;
      vd[t]! -= h;
      const fdv =
        (lossDef(lp0, vu, A, old, vold, R, 0.2, 0.2, 0.1) - lossDef(lp0, vd, A, old, vold, R, 0.2, 0.2, 0.1)) / (2 * h);
      expect(gv[t]).toBeCloseTo(fdv, 6);
    }
  });

  it('at the first step (new = old log-probs, V = V_old) the ratio is 1, nothing clips and the loss is −mean(A) + value term', async () => {
    const A = [0.5, -1, 2],
      old = [-1, -2, -0.5],
      vold = [0.1, 0.2, 0.3],
      R = [1, 0, -1];
    const { loss, stats } = ppoLoss(
      tensor(Float64Array.from(old), [3], { backend: ref }),
      tensor(Float64Array.from(vold), [3], { backend: ref }),
      { advantages: A, oldLogprobs: old, oldValues: vold, returns: R },
      { cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1 },
    );
    expect(stats['val/ratio']).toBe(1);
    expect(stats['policy/clipfrac_avg']).toBe(0);
    expect(stats['policy/approxkl_avg']).toBe(0);
    const vterm = (0.1 * 0.5 * vold.reduce((s, v, t) => s + (v - R[t]!) ** 2, 0)) / 3;
    expect(await loss.item()).toBeCloseTo(-(0.5 - 1 + 2) / 3 + vterm, 12);
  });
});

describe('a batch of rollouts', () => {
  const roll = (o: Partial<Rollout>): Rollout => ({
    prompt: [1],
    reply: [5, 6, 7],
    promptIndex: 0,
    ended: true,
    logprobs: [-1, -2, -0.5],
    refLogprobs: [-1.5, -1.5, -0.5],
    values: [0.2, 0.1, 0.4],
    score: 1.5,
    ...o,
  });

  it('rewards are −β·kl per token with the score (minus the EOS penalty) at the last; advantages whitened GAE; TRL metrics', () => {
    const rs = [
      roll({}),
      roll({
        ended: false,
        score: 0.5,
        reply: [5, 6],
        logprobs: [-0.3, -0.2],
        refLogprobs: [-0.2, -0.6],
        values: [0, 1],
      }),
    ];
    const o = {
      klCoef: 0.1,
      klEstimator: 'k1' as const,
      gamma: 1,
      lam: 0.95,
      missingEosPenalty: 2,
      whitenAdvantages: true,
    };
    const b = prepareBatch(3, rs, o);
    const kl0 = [0.5, -0.5, 0],
      kl1 = [-0.1, 0.4];
    const r0 = shapedRewards(kl0, 0.1, 1.5),
      r1 = shapedRewards(kl1, 0.1, 0.5 - 2);
    expect([...r0]).toEqual([-0.05, 0.05, -0 + 1.5]);
    expect(r1[1]).toBeCloseTo(-0.04 - 1.5, 14);
    const g0 = gae(r0, rs[0]!.values, 1, 0.95),
      g1 = gae(r1, rs[1]!.values, 1, 0.95);
    const w = whiten([g0.advantages, g1.advantages]);
    expect(b.advantages[0]![2]).toBeCloseTo(w[0]![2]!, 12);
    expect(b.advantages[1]![0]).toBeCloseTo(w[1]![0]!, 12);
    expect(b.returns[1]![1]).toBeCloseTo(g1.returns[1]!, 12);
    expect(b.stats['objective/kl']).toBeCloseTo((0 + 0.3) / 2, 12);
    expect(b.stats['objective/scores']).toBeCloseTo((1.5 + 0.5 - 2) / 2, 12);
    expect(b.stats['objective/non_score_reward']).toBeCloseTo(-0.1 * 0.15, 12);
    expect(b.stats['objective/rlhf_reward']).toBeCloseTo(-0.015 + 0, 12);
    expect(b.stats['objective/entropy']).toBeCloseTo((3.5 + 0.5) / 2, 12);
    expect(b.stats['val/num_eos_tokens']).toBe(1);
    expect(b.stats['eos_rate']).toBe(0.5);
    expect(b.stats['reply_length']).toBe(2.5);
    expect(b.stats['objective/kl_coef']).toBe(0.1);
    expect(b.meanKl).toBeCloseTo(0.15, 12);
  });
});
