/**
 * `llmts rloo` as a user runs it: `node bin/llmts.js rloo …` in a separate process (dist/ rebuilt first when src/
 * is newer), on a tiny model with a reward function module: a short run writes metrics.jsonl with TRL's names and a
 * checkpoint; --resume continues it; a reward model folder and a rater module work as rewards; a reward file of
 * the wrong shape, or none at all, is one line naming it; --help lists the settings and the presets.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { loadModel, saveRewardModel } from '../src/model/hf/folder.js';
import { RewardModel } from '../src/model/reward.js';
import { readMetrics } from '../src/train/metrics.js';
import { Rng } from '../src/util/rng.js';
import { ensureCliBuilt } from './helpers.js';
import { promptRows } from './ppo_helpers.js';
import { makeTinyModel, writeJsonl } from './sft_helpers.js';

const ROOT = path.resolve('.');
const BIN = path.join(ROOT, 'bin', 'llmts.js');
let tmp = '';

function llmts(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-rloo-cli-'));
  await makeTinyModel(path.join(tmp, 'base'));
  writeJsonl(path.join(tmp, 'prompts.jsonl'), promptRows(20));
  const rm = RewardModel.fromCausalLM(
    await loadModel(path.join(tmp, 'base'), { backend: getBackend('ref') }),
    new Rng(2),
    0.5,
  );
  await saveRewardModel(rm, path.join(tmp, 'rm'));
  // a verifiable reward: 1 when the reply names the colour the user asked about
  fs.writeFileSync(
    path.join(tmp, 'colour.mjs'),
    'export function reward(prompt, reply) {\n  const c = prompt.at(-1).content.split(" ")[1];\n  return reply.includes(c) ? 1 : 0;\n}\n',
  );
  fs.writeFileSync(path.join(tmp, 'nothing.mjs'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(tmp, 'nan.mjs'), 'export const reward = () => "high";\n');
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const run = (name: string, extra: string[]) =>
  llmts([
    'rloo',
    'base',
    'prompts.jsonl',
    '--preset=tiny',
    '--total_episodes=16',
    '--backend=ref',
    '--outDir=out',
    `--name=${name}`,
    ...extra,
  ]);

describe('llmts rloo on the command line', () => {
  it('a short run with TRL metrics and a checkpoint; --resume continues it', () => {
    const r = run('fn', ['--reward=colour.mjs', '--rloo_k=4']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^data: conversational prompts → 18 training \/ 2 held-out .*reward colour\.mjs/m);
    expect(r.out).toMatch(/2 batches of 2 prompts × 4 replies/);
    expect(r.out).toMatch(/RLOO finished after 8 of 8 steps .*; last batch: score [0-9.]+, KL -?[0-9.]+ nats/);
    const steps = (
      readMetrics(path.join(tmp, 'out', 'fn', 'metrics.jsonl')) as unknown as Record<string, unknown>[]
    ).filter((x) => x['type'] === 'step');
    const last = steps.at(-1)!;
    for (const k of [
      'objective/kl',
      'objective/scores',
      'objective/rlhf_reward',
      'objective/non_score_reward',
      'objective/entropy',
      'policy/approxkl_avg',
      'policy/clipfrac_avg',
      'loss/policy_avg',
      'val/ratio',
      'val/num_eos_tokens',
      'eos_rate',
      'reply_length',
    ])
      expect(typeof last[k], k).toBe('number');
    // the first batch is scored against the policy it was sampled from: KL exactly 0
    expect(steps[0]!['objective/kl']).toBe(0);
    expect(fs.existsSync(path.join(tmp, 'out', 'fn', 'checkpoint', 'rloo_state.json'))).toBe(true);
    const more = llmts(['rloo', '--resume=out/fn', '--total_episodes=24']);
    expect(more.code, more.out + more.err).toBe(0);
    expect(more.out).toMatch(/resuming .*fn at step 8 of 12/);
    expect(more.out).toMatch(/RLOO finished after 12 of 12 steps/);
  });

  it('a reward model folder is a reward too', () => {
    const r = run('rm', ['--rewardModel=rm', '--total_episodes=8']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/reward model rm/);
    expect(r.out).toMatch(/RLOO finished after 4 of 4 steps/);
  });

  it('a rater module (makeOracle) is a reward too', () => {
    const r = run('rater', [`--reward=${path.join(ROOT, 'raters', 'arithmetic.mjs')}`, '--total_episodes=8']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/reward arithmetic-exact-match/);
  });

  it('a bad reward file, or none, is one line naming it; --help lists settings and presets', () => {
    for (const [file, why] of [
      ['nothing.mjs', /exports neither/],
      ['nan.mjs', /reward returned "high", not a finite number/],
      ['missing.mjs', /no such file/],
    ] as const) {
      const r = run('bad', [`--reward=${file}`]);
      expect(r.code, r.out + r.err).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(new RegExp(`llmts rloo: reward function ${file.replace('.', '\\.')}: `));
      expect(r.err).toMatch(why);
    }
    const none = llmts(['rloo', 'base', 'prompts.jsonl', '--backend=ref']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/reward: give a reward function module/);
    const h = llmts(['rloo', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/tiny +tests and smoke runs/);
    expect(h.out).toMatch(/arithmetic +the O4 proof/);
    for (const k of ['rlooK', 'klCoef', 'cliprange', 'normalizeAdvantage', 'reward', 'rewardModel'])
      expect(h.out).toContain(k);
    expect(llmts(['--help']).out).toMatch(/rloo +align a fine-tuned model to a reward function with RLOO/);
  });
});
