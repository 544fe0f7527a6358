/**
 * PPO end to end on a tiny SFT policy ("color <c>" → "I like <c>.") and a test reward model whose head favours
 * "I like red." (test/ppo_helpers.ts):
 * - sampling and scoring are one distribution: replies drawn at temperature T have the frequencies exp(scored
 *   log-probs under logits / T) (and not those under logits / 1: the check can fail); a policy scored against a
 *   second copy of itself has per-token KL exactly 0; against another reference the mean KL over rollouts is ≥ 0,
 *   k1 and k3 agreeing;
 * - PPO raises the reward model's score within seconds, the first batch's KL exactly 0, the run's mean KL ≥ −0.05;
 *   metrics.jsonl has TRL's names; the checkpoint is a causal-LM folder with its chat template, a value model and
 *   the PPO state;
 * - a run stopped mid-batch (value head on the policy, k3, adaptive β) and resumed takes bit-for-bit the steps of an
 *   uninterrupted one;
 * - bad prompt rows are named by file and line, or skipped and counted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PPO_STATE, ppo, VALUE_MODEL_DIR } from '../src/align/ppo.js';
import { buildPpoConfig, type PpoConfig } from '../src/align/ppo_settings.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { klPerToken } from '../src/align/rl_math.js';
import { readPrompts } from '../src/align/rl_prompts.js';
import { engineReplySampler, replyLogprobs, scoreRollouts } from '../src/align/rollout.js';
import { getBackend } from '../src/backend/registry.js';
import { chatmlTemplate } from '../src/chat/template.js';
import { TrlRowError } from '../src/data/trl.js';
import { loadModel, loadRewardModel } from '../src/model/hf/folder.js';
import { noGrad } from '../src/tensor/tensor.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { makeProbeRewardModel, makeSftPolicy, promptRows, quiet } from './ppo_helpers.js';
import { writeJsonl } from './sft_helpers.js';

let tmp = '',
  sftDir = '',
  rmDir = '',
  prompts = '';
const backend = getBackend('ref');

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-ppo-'));
  sftDir = await makeSftPolicy(tmp);
  const probe = await makeProbeRewardModel(sftDir, path.join(tmp, 'rm'));
  expect(probe.accuracy).toBeGreaterThan(0.7); // the test reward model does prefer "I like red." (mostly: a linear probe)
  rmDir = probe.dir;
  prompts = writeJsonl(path.join(tmp, 'prompts.jsonl'), promptRows(40));
}, 60000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cfg = (o: Partial<PpoConfig>) =>
  buildPpoConfig({
    preset: 'tiny',
    overrides: {
      model: sftDir,
      rewardModel: rmDir,
      data: [prompts],
      outDir: path.join(tmp, 'runs'),
      backend: 'ref',
      quiet: true,
      ...o,
    },
  });
const steps = (dir: string) =>
  readMetrics(path.join(dir, 'metrics.jsonl')).filter((x) => x.type === 'step') as unknown as Record<string, number>[];

/** The ChatML ids of "color <c>" through the generation prompt, then `start` of the reply. */
async function promptIds(c: string, start = ''): Promise<number[]> {
  const tok = await loadTokenizer(sftDir);
  const t = chatmlTemplate().render([{ role: 'user', content: `color ${c}` }], { addGenerationPrompt: true });
  return tok.encode(t + start, { allowed: 'all' });
}

describe('prompt-only rows', () => {
  it('conversational prompts end at the generation prompt, plain ones are the text; other fields are noted, long prompts dropped', async () => {
    const tok = await loadTokenizer(sftDir);
    const encode = (t: string) => tok.encode(t, { allowed: 'all' });
    const f = writeJsonl(path.join(tmp, 'mixed.jsonl'), [
      { prompt: [{ role: 'user', content: 'color red' }] },
      { prompt: 'color blue\n', completion: 'I like blue.' },
      { prompt: 'color '.repeat(40) },
    ]);
    const lines: string[] = [];
    const r = readPrompts([f], chatmlTemplate(), encode, {
      badRows: 'error',
      maxPromptLength: 30,
      log: (s) => lines.push(s),
    });
    expect(r.prompts.map((p) => p.ids)).toEqual([await promptIds('red'), encode('color blue\n')]);
    expect(r.prompts[0]!.text.endsWith('<|im_start|>assistant\n')).toBe(true);
    expect(r).toMatchObject({ dropped: 1, skipped: 0, form: 'mixed' });
    expect(lines.join('\n')).toMatch(/"completion" \(1 row\)/);
    expect(lines.join('\n')).toMatch(/1 prompt longer than 30 tokens dropped/);
  });
});

describe('rollouts: sampling and scoring are one distribution', () => {
  it('sampled frequencies match exp(scored log-probs) under logits / T, not under logits / 1', async () => {
    const policy = await loadModel(sftDir, { backend });
    const p = await promptIds('blue', 'I like');
    const N = 600,
      T = 0.7;
    const rs = await engineReplySampler(policy).sample(
      Array.from({ length: N }, () => p),
      { maxTokens: 1, temperature: T, stopTokens: [], seed: 3 },
    );
    const items = rs.map((r) => ({ prompt: p, reply: r.ids }));
    const lp = await noGrad(() => replyLogprobs(policy, items.slice(0, 1), T)).data();
    expect(lp.length).toBe(1);
    const count = new Map<number, number>();
    for (const r of rs) count.set(r.ids[0]!, (count.get(r.ids[0]!) ?? 0) + 1);
    // every token the policy gives ≥ 2 % at temperature `temp`, and the rest as one bin: the largest deviation of the
    // observed frequency from the scored probability, in standard errors
    const V = policy.config.vocabSize;
    const worst = async (temp: number) => {
      const all = Array.from({ length: V }, (_, id) => ({ prompt: p, reply: [id] }));
      const q = Array.from(await noGrad(() => replyLogprobs(policy, all, temp)).data(), Math.exp);
      const bins = [...q.keys()].filter((id) => q[id]! >= 0.02);
      const rest = 1 - bins.reduce((s, id) => s + q[id]!, 0);
      const restN = N - bins.reduce((s, id) => s + (count.get(id) ?? 0), 0);
      const z = (f: number, pr: number) => Math.abs(f - pr) / Math.sqrt(Math.max(pr * (1 - pr), 1e-6) / N);
      return Math.max(z(restN / N, rest), ...bins.map((id) => z((count.get(id) ?? 0) / N, q[id]!)));
    };
    expect(count.size).toBeGreaterThan(1); // a real choice at this position
    expect(await worst(T)).toBeLessThan(4.5); // within 4.5 standard errors for every token drawn
    expect(await worst(1)).toBeGreaterThan(6); // scoring at another temperature is caught
  });

  it('KL of the policy against a copy of itself is exactly 0 per token; against another reference ≥ 0 on average', async () => {
    const policy = await loadModel(sftDir, { backend });
    const copy = await loadModel(sftDir, { backend });
    const base = await loadModel(path.join(tmp, 'base'), { backend });
    const reward = await loadRewardModel(rmDir, { backend });
    const p = await promptIds('green');
    const rs = await engineReplySampler(policy).sample(
      Array.from({ length: 64 }, () => p),
      { maxTokens: 8, temperature: 1, stopTokens: [], seed: 9 },
    );
    const items = rs.map((r) => ({ prompt: p, reply: r.ids, ended: r.ended, promptIndex: 0 }));
    const self = await scoreRollouts({ policy, reference: copy, value: reward, reward }, items, 1);
    for (const r of self) expect([...klPerToken(r.logprobs, r.refLogprobs, 'k1')].every((x) => x === 0)).toBe(true);
    const other = await scoreRollouts({ policy, reference: base, value: reward, reward }, items, 1);
    const k1 = other.map((r) => klPerToken(r.logprobs, r.refLogprobs, 'k1').reduce((a, b) => a + b, 0));
    const k3 = other.map((r) => klPerToken(r.logprobs, r.refLogprobs, 'k3').reduce((a, b) => a + b, 0));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(k1)).toBeGreaterThan(0.5);
    expect(Math.min(...k3)).toBeGreaterThanOrEqual(0);
    expect(Math.abs(mean(k1) - mean(k3)) / mean(k1)).toBeLessThan(0.5); // two unbiased estimates of one KL
  });
});

describe('llmts ppo', () => {
  it('raises the reward within seconds on a KL leash; TRL metric names; the checkpoint chats and resumes', async () => {
    const r = await ppo({
      ...quiet,
      config: cfg({
        name: 'learn',
        totalEpisodes: 96,
        lr: 2e-3,
        minLr: 2e-3,
        responseLength: 12,
        missingEosPenalty: 0,
      }),
    });
    expect(r.reason).toBe('done');
    expect(r.steps).toBe(48); // 12 batches × 2 epochs × 2 minibatches
    const s = steps(r.runDir);
    const batches = s.filter((_, i) => i % 4 === 0); // one record per batch of rollouts
    const scores = batches.map((b) => b['objective/scores']!);
    const kls = batches.map((b) => b['objective/kl']!);
    expect(kls[0]).toBe(0); // the first batch is scored by a policy equal to the reference
    // each batch's KL is a k1 estimate over its 8 rollouts (standard error ~0.5 nats once the policy has moved at
    // this lr): one batch may dip below 0 by chance; the run's mean may not (the bar), nor may a batch by
    // more than that noise. A sampling/scoring mismatch shows as KL below 0 throughout (see the consistency tests)
    const meanKl = kls.reduce((a, b) => a + b, 0) / kls.length;
    expect(meanKl).toBeGreaterThanOrEqual(-0.05);
    for (const k of kls) expect(k).toBeGreaterThanOrEqual(-0.5);
    const first = scores[0]!,
      last = (scores.at(-1)! + scores.at(-2)! + scores.at(-3)!) / 3;
    expect(last).toBeGreaterThan(first + 0.5);
    for (const k of [
      'objective/kl',
      'objective/scores',
      'objective/rlhf_reward',
      'objective/non_score_reward',
      'objective/entropy',
      'objective/kl_coef',
      'policy/approxkl_avg',
      'policy/clipfrac_avg',
      'loss/policy_avg',
      'loss/value_avg',
      'val/clipfrac_avg',
      'val/ratio',
      'val/num_eos_tokens',
      'reply_length',
      'eos_rate',
      'episode',
      'learning_rate',
      'grad_norm',
    ])
      expect(Number.isFinite(s.at(-1)![k]), k).toBe(true);
    expect(s[0]!['val/ratio']).toBeCloseTo(1, 5); // the first minibatch: new log-probs = old ones
    // the checkpoint: a causal-LM folder with its chat template, the value model, the PPO state
    const ck = r.checkpointDir;
    expect(JSON.parse(fs.readFileSync(path.join(ck, 'tokenizer_config.json'), 'utf8')).chat_template).toContain(
      'im_start',
    );
    const vcfg = JSON.parse(fs.readFileSync(path.join(ck, VALUE_MODEL_DIR, 'config.json'), 'utf8'));
    expect(vcfg.architectures[0]).toMatch(/ForSequenceClassification$/);
    expect(JSON.parse(fs.readFileSync(path.join(ck, PPO_STATE), 'utf8')).klCoef).toBe(0.05);
    // measured again on the saved policy: its replies to held-out prompts score higher than the SFT model's
    const reward = await loadRewardModel(rmDir, { backend });
    const heldOut = await Promise.all(['red', 'blue', 'green', 'black'].map((c) => promptIds(c)));
    const imEnd = (await loadTokenizer(sftDir)).specialTokens.get('<|im_end|>')!;
    const meanScore = async (dir: string) => {
      const m = await loadModel(dir, { backend });
      const ps = Array.from({ length: 32 }, (_, i) => heldOut[i % 4]!);
      const rs = await engineReplySampler(m).sample(ps, {
        maxTokens: 12,
        temperature: 1,
        stopTokens: [imEnd],
        seed: 77,
      });
      const sc = await noGrad(() =>
        reward.rewards(rs.map((r, i) => [...ps[i]!, ...(r.ids.length ? r.ids : [imEnd])])),
      ).data();
      return Array.from(sc).reduce((a, b) => a + b, 0) / sc.length;
    };
    const before = await meanScore(sftDir),
      after = await meanScore(ck);
    expect(after).toBeGreaterThan(before + 1);
    expect(fs.existsSync(path.join(r.runDir, 'report.html'))).toBe(true);
  }, 60000);

  it('a run stopped mid-batch and resumed takes exactly the steps of an uninterrupted one (value head on the policy, k3, adaptive β)', async () => {
    const over = {
      totalEpisodes: 24,
      valueModel: 'policy' as const,
      klEstimator: 'k3' as const,
      targetKl: 0.5,
      horizon: 50,
      lr: 2e-3,
      minLr: 2e-4,
    };
    const full = await ppo({ ...quiet, config: cfg({ name: 'full', ...over }) });
    const strip = (d: string) =>
      readMetrics(path.join(d, 'metrics.jsonl')).map((x) => ({ ...x, tokensPerSec: 0, mfu: 0, elapsed: 0 }));
    // stopped mid-batch (batch 1, epoch 1: the batch of rollouts comes from the checkpoint), and at a batch boundary
    for (const at of [6, 4]) {
      const part = await ppo({ ...quiet, config: cfg({ name: `part${at}`, ...over }), haltAfterStep: at });
      expect(part.reason).toBe('interrupted');
      expect(part.steps).toBe(at);
      const rest = await ppo({ ...quiet, resume: part.runDir });
      expect(rest.reason).toBe('done');
      expect([...rest.losses.keys()]).toEqual(Array.from({ length: 12 - at }, (_, i) => at + i));
      for (let i = 0; i < 12; i++) expect((i < at ? part : rest).losses.get(i), `step ${i}`).toBe(full.losses.get(i));
      expect(strip(rest.runDir)).toEqual(strip(full.runDir));
    }
    const beta = steps(full.runDir).map((x) => x['objective/kl_coef']);
    expect(new Set(beta).size).toBeGreaterThan(1); // the adaptive controller moved β
  }, 60000);

  it('with usePeft: the adapters and the value head train (the body frozen, the reference the policy without adapters); exact resume', async () => {
    const over = {
      totalEpisodes: 24,
      valueModel: 'policy' as const,
      usePeft: true,
      loraR: 4,
      loraDropout: 0,
      lr: 5e-3,
      minLr: 5e-3,
    };
    const lines: string[] = [];
    const full = await ppo({ ...quiet, log: (l) => lines.push(l), config: cfg({ name: 'lora-full', ...over }) });
    expect(lines.join('\n')).toMatch(/^LoRA: r 4, α 32, dropout 0 on \d+ layers/m);
    const s = steps(full.runDir);
    expect(s[0]!['objective/kl']).toBe(0); // the adapters start at B = 0: the policy is its reference
    expect(s.at(-1)!['objective/kl']).not.toBe(0); // and they moved
    const ck = path.join(full.runDir, 'checkpoint');
    expect(fs.existsSync(path.join(ck, 'adapter_model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(ck, 'model.safetensors'))).toBe(false);
    const moments = (await readSafetensors(path.join(ck, 'optimizer.safetensors'))).tensors;
    const names = [...moments.keys()].map((k) => k.replace(/\.exp_avg(_sq)?$/, ''));
    expect(names.every((n) => /\.lora_[AB]\.weight$/.test(n) || n === 'value/score.weight')).toBe(true);
    expect(names).toContain('value/score.weight');
    const part = await ppo({ ...quiet, config: cfg({ name: 'lora-part', ...over }), haltAfterStep: 6 });
    const rest = await ppo({ ...quiet, resume: part.runDir });
    for (let i = 0; i < 12; i++) expect((i < 6 ? part : rest).losses.get(i), `step ${i}`).toBe(full.losses.get(i));
  }, 60000);

  it('a bad prompt row stops the run naming file and line; badRows=skip counts it', async () => {
    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(
      bad,
      [...promptRows(5).map((r) => JSON.stringify(r)), '{"prompt": 3}', JSON.stringify({ completion: 'x' })].join(
        '\n',
      ) + '\n',
    );
    await expect(ppo({ ...quiet, config: cfg({ name: 'bad', data: [bad] }) })).rejects.toSatisfy(
      (x: unknown) => x instanceof TrlRowError && x.line === 6 && /prompt/.test(x.message) && x.message.includes(bad),
    );
    const r = await ppo({
      ...quiet,
      config: cfg({ name: 'skip', data: [bad], badRows: 'skip', totalEpisodes: 8, ppoEpochs: 1 }),
    });
    expect(r.data).toEqual({ trainPrompts: 4, evalPrompts: 1, skippedRows: 2, dropped: 0 });
  }, 30000);
});
