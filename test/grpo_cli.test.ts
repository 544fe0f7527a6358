/**
 * `llmts grpo` as a user runs it: `node bin/llmts.js grpo …` in a separate process (dist/ rebuilt first when src/
 * is newer), on a tiny model with a reward function module: a short run writes metrics.jsonl with TRL's GRPO names
 * and a checkpoint with grpo_state.json; --resume continues it (an rloo run is refused); several reward functions
 * are summed with their weights, each one a metric; settings that cannot make whole groups are one line naming the
 * setting; --help lists GRPO's settings and presets.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/train/metrics.js';
import { ensureCliBuilt } from './helpers.js';
import { promptRows } from './ppo_helpers.js';
import { makeTinyModel, writeJsonl } from './sft_helpers.js';

const BIN = path.resolve('bin', 'llmts.js');
let tmp = '';

function llmts(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-grpo-cli-'));
  await makeTinyModel(path.join(tmp, 'base'));
  writeJsonl(path.join(tmp, 'prompts.jsonl'), promptRows(20));
  // a verifiable reward: 1 when the reply names the colour the user asked about
  fs.writeFileSync(
    path.join(tmp, 'short.mjs'),
    'export const reward = (prompt, reply) => (reply.length < 12 ? 1 : 0);\n',
  );
  fs.writeFileSync(
    path.join(tmp, 'colour.mjs'),
    'export function reward(prompt, reply) {\n  const c = prompt.at(-1).content.split(" ")[1];\n  return reply.includes(c) ? 1 : 0;\n}\n',
  );
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const run = (name: string, extra: string[]) =>
  llmts([
    'grpo',
    'base',
    'prompts.jsonl',
    '--preset=tiny',
    '--reward=colour.mjs',
    '--backend=ref',
    '--outDir=out',
    `--name=${name}`,
    ...extra,
  ]);

describe('llmts grpo on the command line', () => {
  it('a short run with TRL metrics and a checkpoint; --resume continues it', () => {
    const r = run('fn', ['--total_episodes=16', '--beta=0.04', '--loss_type=grpo']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/2 batches of 2 prompts × 4 replies, 2 epochs of 2 minibatches/);
    expect(r.out).toMatch(/GRPO finished after 8 of 8 steps .*; last batch: score [0-9.]+, KL -?[0-9.]+ nats/);
    const steps = (
      readMetrics(path.join(tmp, 'out', 'fn', 'metrics.jsonl')) as unknown as Record<string, unknown>[]
    ).filter((x) => x['type'] === 'step');
    for (const k of [
      'reward',
      'reward_std',
      'frac_reward_zero_std',
      'completions/mean_length',
      'completions/clipped_ratio',
      'kl',
      'clip_ratio/low_mean',
      'clip_ratio/high_mean',
      'clip_ratio/region_mean',
    ])
      expect(typeof steps.at(-1)![k], k).toBe('number');
    // the first minibatch is scored against the policy it was sampled from: no ratio is clipped, KL exactly 0
    expect(steps[0]!['clip_ratio/region_mean']).toBe(0);
    expect(steps[0]!['kl']).toBe(0);
    expect(fs.existsSync(path.join(tmp, 'out', 'fn', 'checkpoint', 'grpo_state.json'))).toBe(true);
    const more = llmts(['grpo', '--resume=out/fn', '--total_episodes=24']);
    expect(more.code, more.out + more.err).toBe(0);
    expect(more.out).toMatch(/resuming .*fn at step 8 of 12/);
    expect(more.out).toMatch(/GRPO finished after 12 of 12 steps/);
    const other = llmts(['rloo', '--resume=out/fn']);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/not an rloo run: resume it with its own command/);
  });

  it('several reward functions are summed with their weights; each one is a metric', () => {
    const r = run('two', ['--total_episodes=8', '--reward=colour.mjs,short.mjs', '--reward_weights=1,0.5']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/reward colour\.mjs \(colour\.mjs, weight 1\) \+ short\.mjs \(short\.mjs, weight 0\.5\)/);
    const steps = (
      readMetrics(path.join(tmp, 'out', 'two', 'metrics.jsonl')) as unknown as Record<string, number>[]
    ).filter((x) => (x['type'] as unknown) === 'step');
    const s = steps[0]!;
    for (const k of [
      'rewards/colour.mjs/mean',
      'rewards/colour.mjs/std',
      'rewards/short.mjs/mean',
      'rewards/short.mjs/std',
    ])
      expect(typeof s[k], k).toBe('number');
    // the batch's reward is the weighted sum of the functions' means
    expect(s['reward']).toBeCloseTo(s['rewards/colour.mjs/mean']! + 0.5 * s['rewards/short.mjs/mean']!, 12);
    const bad = run('bad', ['--reward=colour.mjs,short.mjs', '--rewardWeights=1']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/rewardWeights: one weight per reward \(2 functions: 2\), got 1 weight/);
  });

  it('settings that cannot make whole groups are one line naming the setting; --help lists settings and presets', () => {
    for (const [extra, why] of [
      [['--numGenerations=3'], /batchSize: must be a multiple of numGenerations \(3\)/],
      [['--epsilon=0.2', '--epsilonHigh=0.1'], /epsilonHigh: the upper clip must be ≥ epsilon/],
      [['--loss_type=ppo'], /lossType/],
    ] as const) {
      const r = run('bad', [...extra]);
      expect(r.code, r.out + r.err).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(why);
    }
    const h = llmts(['grpo', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/tiny +tests and smoke runs/);
    for (const k of ['numGenerations', 'beta', 'epsilonHigh', 'lossType', 'scaleRewards', 'reward', 'rewardModel'])
      expect(h.out).toContain(k);
    expect(llmts(['--help']).out).toMatch(/grpo +align a fine-tuned model to a reward function with GRPO/);
  });
});
