/**
 * RLOO (Ahmadian et al. 2024; TRL RLOOTrainer), against float64 definitions written from the paper's formulas:
 * - the leave-one-out advantage A_i = R_i − 1/(k−1)·Σ_{j≠i} R_j (a sum over the others, not the vectorised
 *   (Σ − R_i)/(k−1) of the code), with R_i = s_i − β·Σ_t (log π − log π_ref) and the missing-EOS penalty;
 * - the clipped sequence-level loss mean_i max(−A_i·ρ_i, −A_i·clip(ρ_i, 1 ± ε)), ρ_i = exp(Σ_t log π − Σ_t log π_old):
 *   its value, and its gradient by central differences in float64 (the loss builds its own tensor rule);
 * - sampling and scoring agree: the batched KV-cached sampler draws exactly the engine's replies for a seed; a
 *   policy scored against a copy of itself has KL exactly 0;
 * - end to end on a toy arithmetic task (test/rloo_helpers.ts): held-out exact match rises well above the SFT
 *   model's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchReplySampler } from '../src/align/batch_sampler.js';
import { rloo } from '../src/align/rloo.js';
import {
  normalizeAdvantages,
  prepareRlooBatch,
  type RlooRollout,
  rlooAdvantages,
  rlooLoss,
} from '../src/align/rloo_objective.js';
import { buildRlooConfig } from '../src/align/rloo_settings.js';
import { engineReplySampler, perItem, replyLogprobs } from '../src/align/rollout.js';
import { getBackend } from '../src/backend/registry.js';
import { loadModel } from '../src/model/hf/folder.js';
import { backward } from '../src/tensor/autograd.js';
import { noGrad, tensor, tidy } from '../src/tensor/tensor.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { exactMatchRate, makeToyArithmetic, type ToyArithmetic } from './rloo_helpers.js';
import { quiet } from './ppo_helpers.js';

const ref = getBackend('ref');

/** The paper's A_i, written as a sum over the other replies. */
function looDefinition(r: readonly number[], k: number): number[] {
  return r.map((ri, i) => {
    const g = Math.floor(i / k) * k;
    let others = 0;
    for (let j = g; j < g + k; j++) if (j !== i) others += r[j]!;
    return ri - others / (k - 1);
  });
}

describe('RLOO arithmetic (float64 definitions)', () => {
  it('leave-one-out advantages, groups of k; k < 2 and ragged groups are named errors', () => {
    const rng = new Rng(1);
    for (const k of [2, 3, 4, 8]) {
      const r = Array.from({ length: k * 5 }, () => rng.normal() * 3);
      const got = rlooAdvantages(r, k);
      const want = looDefinition(r, k);
      got.forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 12));
      // each group's advantages sum to 0 (k·mean − Σ = 0): the baseline is unbiased and centres the group
      for (let g = 0; g < r.length; g += k) expect(got.slice(g, g + k).reduce((s, x) => s + x, 0)).toBeCloseTo(0, 10);
    }
    expect(Array.from(rlooAdvantages([1, 0], 2))).toEqual([1, -1]);
    expect(() => rlooAdvantages([1, 2, 3], 1)).toThrow(ConfigError);
    expect(() => rlooAdvantages([1, 2, 3], 2)).toThrow(/groups of k = 2/);
  });

  it('prepareRlooBatch: R = score − penalty − β·Σ KL (k1 and k3), advantages, normalisation, metrics', () => {
    const rng = new Rng(2);
    const k = 3,
      beta = 0.1,
      pen = 0.5;
    const rollouts: RlooRollout[] = Array.from({ length: 12 }, (_, i) => {
      const L = 1 + rng.int(5);
      return {
        prompt: [1, 2],
        reply: Array.from({ length: L }, () => 3),
        promptIndex: Math.floor(i / k),
        ended: rng.random() < 0.7,
        logprobs: Array.from({ length: L }, () => -rng.random() * 3),
        refLogprobs: Array.from({ length: L }, () => -rng.random() * 3),
        score: rng.normal(),
      };
    });
    for (const est of ['k1', 'k3'] as const) {
      const b = prepareRlooBatch(0, rollouts, {
        k,
        klCoef: beta,
        klEstimator: est,
        missingEosPenalty: pen,
        normalizeAdvantage: false,
      });
      const kl = rollouts.map((r) =>
        r.logprobs.reduce((s, lp, t) => {
          const d = lp - r.refLogprobs[t]!; // log π − log π_ref
          // k3 with r = π_ref/π: (r − 1) − log r
          return s + (est === 'k1' ? d : Math.exp(-d) - 1 + d);
        }, 0),
      );
      const R = rollouts.map((r, i) => r.score - (r.ended ? 0 : pen) - beta * kl[i]!);
      const want = looDefinition(R, k);
      b.advantages.forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 10));
      expect(b.stats['objective/kl']).toBeCloseTo(kl.reduce((s, x) => s + x, 0) / kl.length, 10);
      expect(b.stats['objective/rlhf_reward']).toBeCloseTo(R.reduce((s, x) => s + x, 0) / R.length, 10);
      expect(b.stats['eos_rate']).toBeCloseTo(rollouts.filter((r) => r.ended).length / 12, 12);
      const n = prepareRlooBatch(0, rollouts, {
        k,
        klCoef: beta,
        klEstimator: est,
        missingEosPenalty: pen,
        normalizeAdvantage: true,
      });
      const m = want.reduce((s, x) => s + x, 0) / want.length;
      const sd = Math.sqrt(want.reduce((s, x) => s + (x - m) ** 2, 0) / (want.length - 1));
      n.advantages.forEach((x, i) => expect(x).toBeCloseTo((want[i]! - m) / (sd + 1e-8), 8));
    }
    expect(Array.from(normalizeAdvantages([1, 3]))).toEqual([-1 / (Math.SQRT2 + 1e-8), 1 / (Math.SQRT2 + 1e-8)]);
    // k replies must share a prompt
    const mixed = rollouts.map((r, i) => ({ ...r, promptIndex: i }));
    expect(() =>
      prepareRlooBatch(0, mixed, { k, klCoef: 0, klEstimator: 'k1', missingEosPenalty: 0, normalizeAdvantage: false }),
    ).toThrow(/not k replies to one prompt/);
  });

  it('rlooLoss: the clipped sequence-level value, and its gradient by central differences (float64)', () => {
    const rng = new Rng(3);
    const lengths = [3, 1, 4, 2, 5, 2];
    const n = lengths.reduce((s, x) => s + x, 0);
    const lp = Float64Array.from({ length: n }, () => -rng.random() * 2);
    // old sums near the new ones: some ratios inside [1 − ε, 1 + ε], some outside on each side
    const sums = (v: ArrayLike<number>) => {
      let at = 0;
      return lengths.map((L) => {
        let s = 0;
        for (let t = 0; t < L; t++) s += v[at + t]!;
        at += L;
        return s;
      });
    };
    const shifts = [0.05, -0.05, 0.6, -0.6, 0.3, -0.3];
    const old = sums(lp).map((s, i) => s - shifts[i]!);
    const adv = [1.5, -0.7, 0.9, -1.2, -0.4, 2];
    const eps = 0.2;
    const definition = (v: ArrayLike<number>) => {
      const s = sums(v);
      let L = 0;
      s.forEach((si, i) => {
        const rho = Math.exp(si - old[i]!);
        const c = Math.min(1 + eps, Math.max(1 - eps, rho));
        L += Math.max(-adv[i]! * rho, -adv[i]! * c);
      });
      return L / lengths.length;
    };
    const x = tensor(lp, [n], { dtype: 'f64', backend: ref, requiresGrad: true });
    let value = 0;
    let clipfrac = 0;
    tidy(() => {
      const { loss, stats } = rlooLoss(x, lengths, adv, old, eps);
      value = loss.dataSync()[0]!;
      clipfrac = stats['policy/clipfrac_avg'];
      backward(loss);
      return [];
    });
    expect(value).toBeCloseTo(definition(lp), 12);
    expect(clipfrac).toBeGreaterThan(0);
    expect(clipfrac).toBeLessThan(1);
    const g = x.grad!.dataSync();
    const h = 1e-6;
    for (let j = 0; j < n; j++) {
      const v = Float64Array.from(lp);
      v[j] = lp[j]! + h;
      const up = definition(v);
      v[j] = lp[j]! - h;
      const down = definition(v);
      expect(g[j]!).toBeCloseTo((up - down) / (2 * h), 6);
    }
    // at the first step (new = old) the ratio is 1 and the loss is −mean(A)
    const same = noGrad(() => rlooLoss(tensor(lp, [n], { dtype: 'f64', backend: ref }), lengths, adv, sums(lp), eps));
    expect(same.loss.dataSync()[0]).toBeCloseTo(-adv.reduce((s, a) => s + a, 0) / adv.length, 12);
    expect(same.stats['val/ratio']).toBeCloseTo(1, 12);
    expect(same.stats['policy/clipfrac_avg']).toBe(0);
  });
});

describe('RLOO on a toy arithmetic task', () => {
  let tmp = '';
  let toy: ToyArithmetic;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-rloo-'));
    toy = await makeToyArithmetic(tmp);
  }, 120000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('the batched sampler draws the engine’s replies; a policy against itself has KL exactly 0', async () => {
    const policy = await loadModel(toy.sftDir, { backend: ref });
    const copy = await loadModel(toy.sftDir, { backend: ref });
    const prompts = toy.heldout.slice(0, 6).map((p) => p.ids);
    const o = { maxTokens: 6, temperature: 1, stopTokens: toy.stopTokens, seed: 11 };
    const a = await batchReplySampler(policy, 4).sample(prompts, o);
    const b = await engineReplySampler(policy).sample(prompts, o);
    expect(a).toEqual(b);
    const items = a.map((r, i) => ({ prompt: prompts[i]!, reply: r.ids.length ? r.ids : [toy.stopTokens[0]!] }));
    const lp = perItem(noGrad(() => replyLogprobs(policy, items, 1)).dataSync(), items);
    const rl = perItem(noGrad(() => replyLogprobs(copy, items, 1)).dataSync(), items);
    const rollouts: RlooRollout[] = items.map((x, i) => ({
      ...x,
      promptIndex: Math.floor(i / 2),
      ended: a[i]!.ended,
      logprobs: lp[i]!,
      refLogprobs: rl[i]!,
      score: 0,
    }));
    const batch = prepareRlooBatch(0, rollouts, {
      k: 2,
      klCoef: 0.1,
      klEstimator: 'k1',
      missingEosPenalty: 0,
      normalizeAdvantage: false,
    });
    expect(batch.stats['objective/kl']).toBe(0);
  });

  it('held-out exact match rises well above the SFT model’s', async () => {
    const before = await exactMatchRate(toy, toy.sftDir);
    const r = await rloo({
      ...quiet,
      config: buildRlooConfig({
        preset: 'tiny',
        overrides: {
          model: toy.sftDir,
          reward: [toy.rater],
          data: [toy.promptsFile],
          outDir: path.join(tmp, 'runs'),
          backend: 'wasm',
          quiet: true,
          ...toy.rloo,
        },
      }),
    });
    const after = await exactMatchRate(toy, r.checkpointDir);
    console.log(`toy arithmetic, held-out exact match: SFT ${before.toFixed(3)} → RLOO ${after.toFixed(3)}`);
    expect(before).toBeLessThan(0.75);
    expect(after).toBeGreaterThan(before + 0.2);
    expect(r.lastBatch!['objective/kl']).toBeGreaterThan(-0.05);
  }, 600000);
});
