/**
 * Preference training against transformers/TRL references (test/fixtures/rlhf, see its README):
 * - reward-llama-tiny: LlamaForSequenceClassification (score head, reward at the last token) — rewards, the
 *   Bradley–Terry loss and every parameter's gradient;
 * - dpo-llama-tiny: TRL's sigmoid DPO loss (β 0.1) of a policy against a frozen reference — per-pair log-probabilities,
 *   implicit rewards, the loss and every policy gradient.
 * On every backend available. Plus the ragged-batch path (mixed lengths in any order = one at a time).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../src/formats/safetensors.js';
import { fromHfConfig } from '../src/model/hf/config.js';
import { loadConfig, loadModel } from '../src/model/hf/folder.js';
import { RewardModel, SCORE_WEIGHT } from '../src/model/reward.js';
import { sequenceLogProbs } from '../src/model/losses.js';
import { initModel } from '../src/model/init.js';
import { dpoLoss } from '../src/rlhf/dpo.js';
import { backward } from '../src/tensor/autograd.js';
import { tensor, tidy, type Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { FIXTURES, HF_FIXTURES, relErr, testBackends } from './helpers.js';

const RLHF = path.join(FIXTURES, 'rlhf');
const REWARD = path.join(RLHF, 'reward-llama-tiny');
const DPO = path.join(RLHF, 'dpo-llama-tiny');
const LLAMA = path.join(HF_FIXTURES, 'llama-tiny');
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

const all = await testBackends();

describe.each(all.map((b) => [b.name, b] as const))('preference training on %s', (_n, backend) => {
  async function rewardModel(): Promise<RewardModel> {
    const config = fromHfConfig(readJson(path.join(REWARD, 'config.json')), path.join(REWARD, 'config.json'));
    const file = await readSafetensors(path.join(REWARD, 'model.safetensors'));
    const params = new Map<string, Tensor>();
    for (const [name, t] of file.tensors)
      params.set(name, tensor(t.data, t.shape, { backend, requiresGrad: true, name }));
    return new RewardModel(config, params);
  }

  it('reward model: rewards, Bradley–Terry loss and every gradient match transformers', async () => {
    const ref = readJson(path.join(REWARD, 'reference.json'));
    const rm = await rewardModel();
    const chosen = ref.pairs.map((p: { chosen: number[] }) => p.chosen),
      rejected = ref.pairs.map((p: { rejected: number[] }) => p.rejected);
    const { loss, rc, rr } = tidy(() => {
      const out = rm.preferenceLoss(chosen, rejected);
      backward(out.loss);
      return { loss: out.loss, rc: out.chosen, rr: out.rejected };
    });
    expect(relErr(await rc.data(), ref.rewards_chosen)).toBeLessThan(1e-5);
    expect(relErr(await rr.data(), ref.rewards_rejected)).toBeLessThan(1e-5);
    expect(Math.abs((await loss.item()) - ref.loss)).toBeLessThan(1e-5 * Math.abs(ref.loss));
    const grads = (await readSafetensors(path.join(REWARD, 'grads.safetensors'))).tensors;
    expect(grads.size).toBe(rm.params.size);
    for (const [name, want] of grads) {
      const g = rm.params.get(name)?.grad;
      expect(g, name).toBeDefined();
      expect(relErr(await g!.data(), want.data), name).toBeLessThan(1e-4);
    }
  });

  it('rewards of mixed-length sequences in any order equal one at a time', async () => {
    const rm = await rewardModel();
    const seqs = [[5, 6, 7], [9, 1], [3, 4, 8], [2], [7, 7]];
    const together = await tidy(() => rm.rewards(seqs)).data();
    for (let i = 0; i < seqs.length; i++) {
      const alone = await tidy(() => rm.rewards([seqs[i]!])).data();
      expect(Math.abs(together[i]! - alone[0]!)).toBeLessThan(1e-5);
    }
  });

  it('a reward head on a language model shares its body and refuses a wrong score shape', async () => {
    const lm = await loadModel(LLAMA, { backend });
    const rm = RewardModel.fromCausalLM(lm, new Rng(3));
    expect(rm.params.get('model.norm.weight')).toBe(lm.params.get('model.norm.weight'));
    expect(rm.params.has('lm_head.weight')).toBe(false);
    expect(rm.params.get(SCORE_WEIGHT)!.shape).toEqual([1, lm.config.hiddenSize]);
    const bad = new Map(lm.params);
    bad.set(SCORE_WEIGHT, tensor(new Float32Array(2 * lm.config.hiddenSize), [2, lm.config.hiddenSize], { backend }));
    expect(() => new RewardModel(lm.config, bad)).toThrow(/score\.weight: shape \[2,64\]/);
    expect(() => new RewardModel(lm.config, new Map(lm.params))).toThrow(/score head/);
  });

  it('DPO: log-probabilities, implicit rewards, loss and every policy gradient match TRL', async () => {
    const ref = readJson(path.join(DPO, 'reference.json'));
    const reference = await loadModel(LLAMA, { backend });
    const policy = await loadModel(LLAMA, { backend });
    const stepped = (await readSafetensors(path.join(LLAMA, 'reference_adamw_step.safetensors'))).tensors;
    for (const [name, t] of stepped)
      policy.params.get(name)!.backend.write(policy.params.get(name)!.buf, t.data as Float32Array);
    for (const p of policy.params.values()) p.requiresGrad = true;

    const pairs = ref.pairs as { prompt: number[]; chosen: number[]; rejected: number[] }[];
    const logps = await tidy(() =>
      sequenceLogProbs(
        policy,
        [...pairs.map((p) => p.prompt), ...pairs.map((p) => p.prompt)],
        [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)],
      ),
    ).data();
    const P = pairs.length;
    ref.per_pair.forEach((r: Record<string, number>, i: number) => {
      expect(Math.abs(logps[i]! - r['policy_chosen_logp']!)).toBeLessThan(1e-4);
      expect(Math.abs(logps[P + i]! - r['policy_rejected_logp']!)).toBeLessThan(1e-4);
    });

    const { loss, rc, rr } = tidy(() => {
      const out = dpoLoss(policy, reference, pairs, ref.beta);
      backward(out.loss);
      return { loss: out.loss, rc: out.rewardsChosen, rr: out.rewardsRejected };
    });
    expect(Math.abs((await loss.item()) - ref.loss)).toBeLessThan(1e-5);
    expect(
      relErr(
        await rc.data(),
        ref.per_pair.map((r: Record<string, number>) => r['reward_chosen']),
      ),
    ).toBeLessThan(1e-3);
    expect(
      relErr(
        await rr.data(),
        ref.per_pair.map((r: Record<string, number>) => r['reward_rejected']),
      ),
    ).toBeLessThan(1e-3);
    for (const p of reference.params.values()) expect(p.grad).toBeFalsy();
    const grads = (await readSafetensors(path.join(DPO, 'policy_grads.safetensors'))).tensors;
    for (const [name, want] of grads) {
      const g = policy.params.get(name)?.grad;
      expect(g, name).toBeDefined();
      expect(relErr(await g!.data(), want.data), name).toBeLessThan(1e-4);
    }
  });

  it('sequence log-probabilities: named errors for empty prompts and mismatched lists', async () => {
    const lm = initModel(await loadConfig(LLAMA), new Rng(1), { backend });
    expect(() => sequenceLogProbs(lm, [[]], [[1]])).toThrow(/prompt 0 is empty/);
    expect(() => sequenceLogProbs(lm, [[1]], [])).toThrow(/1 prompts but 0 completions/);
  });
});

describe('reward model folders', () => {
  it('load (transformers layout), save as *ForSequenceClassification, reload bit for bit', async () => {
    const { loadRewardModel, saveRewardModel, loadModel: loadLm } = await import('../src/model/hf/folder.js');
    const ref = readJson(path.join(REWARD, 'reference.json'));
    const rm = await loadRewardModel(REWARD);
    const r = await tidy(() => rm.rewards(ref.pairs.map((p: { chosen: number[] }) => p.chosen))).data();
    expect(relErr(r, ref.rewards_chosen)).toBeLessThan(1e-5);
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'llmts-rm-'));
    try {
      await saveRewardModel(rm, path.join(dir, 'rm'));
      const cfg = readJson(path.join(dir, 'rm', 'config.json'));
      expect(cfg.architectures).toEqual(['LlamaForSequenceClassification']);
      expect(cfg.id2label).toEqual({ '0': 'LABEL_0' });
      expect(fs.existsSync(path.join(dir, 'rm', 'generation_config.json'))).toBe(false);
      const back = await loadRewardModel(path.join(dir, 'rm'));
      for (const [name, p] of rm.params) expect(await back.params.get(name)!.data(), name).toEqual(await p.data());
      // a reward folder is not a language model, and a language model is not a reward model: named errors
      await expect(loadLm(path.join(dir, 'rm'))).rejects.toThrow(/reward model .*loadRewardModel/);
      await expect(loadRewardModel(LLAMA)).rejects.toThrow(/score\.weight' is missing: this is not a reward model/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
