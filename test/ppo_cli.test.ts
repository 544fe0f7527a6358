/**
 * `llmts ppo` as a user runs it: `node bin/llmts.js ppo …` in a separate process (dist/ rebuilt first when src/ is
 * newer), on a tiny model and a reward model with a fresh score head: a short run writes metrics.jsonl with TRL's
 * names, report.html with a chart for every term and a checkpoint `llmts chat` talks to; --resume continues it;
 * Ctrl-C finishes the step, writes a checkpoint and says how to continue; a bad row is one line naming file and
 * line; --help lists the settings and the presets.
 */
import { spawn, spawnSync } from 'node:child_process';
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

function llmts(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: tmp,
    encoding: 'utf8',
    timeout: 120_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-ppo-cli-'));
  await makeTinyModel(path.join(tmp, 'base'));
  const rm = RewardModel.fromCausalLM(
    await loadModel(path.join(tmp, 'base'), { backend: getBackend('ref') }),
    new Rng(2),
    0.5,
  );
  await saveRewardModel(rm, path.join(tmp, 'rm'));
  writeJsonl(path.join(tmp, 'prompts.jsonl'), promptRows(20));
  writeJsonl(path.join(tmp, 'plain.jsonl'), promptRows(20, { plain: true }));
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const metrics = (run: string) =>
  readMetrics(path.join(tmp, 'out', run, 'metrics.jsonl')) as unknown as Record<string, unknown>[];

describe('llmts ppo on the command line', () => {
  it('a short run with TRL metrics, a report charting every term, a checkpoint llmts chat talks to; --resume', () => {
    const r = llmts([
      'ppo',
      'base',
      '--rewardModel',
      'rm',
      'prompts.jsonl',
      '--preset=tiny',
      '--total_episodes=16',
      '--backend=ref',
      '--outDir=out',
      '--name=ppo',
      '--kl_estimator=k3',
    ]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^data: conversational prompts → 18 training \/ 2 held-out/m);
    expect(r.out).toMatch(/^step 8\/8/m);
    expect(r.out).toMatch(
      /PPO finished after 8 of 8 steps .*; last batch: score -?[0-9.]+, KL -?[0-9.]+ nats, EOS \d+ %/,
    );
    const last = metrics('ppo')
      .filter((x) => x['type'] === 'step')
      .pop()!;
    const terms = [
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
    ];
    for (const k of terms) expect(typeof last[k], k).toBe('number');
    const html = fs.readFileSync(path.join(tmp, 'out', 'ppo', 'report.html'), 'utf8');
    for (const t of [...terms, 'eval_loss (evaluation)']) expect(html, t).toContain(`"${t}"`);
    const state = JSON.parse(fs.readFileSync(path.join(tmp, 'out', 'ppo', 'checkpoint', 'trainer_state.json'), 'utf8'));
    expect(state.config.klEstimator).toBe('k3');
    const chat = llmts(
      ['chat', path.join('out', 'ppo', 'checkpoint'), '--backend', 'ref', '--max-tokens', '4', '--temperature', '0'],
      'color red\n',
    );
    expect(chat.code, chat.out + chat.err).toBe(0);
    const more = llmts(['ppo', '--resume=out/ppo', '--total_episodes=24']);
    expect(more.code, more.out + more.err).toBe(0);
    expect(more.out).toMatch(/resuming .*ppo at step 8 of 12/);
    expect(more.out).toMatch(/PPO finished after 12 of 12 steps/);
  });

  it('Ctrl-C finishes the step, writes a checkpoint and says how to continue', async () => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'ppo',
        'base',
        '--rewardModel=rm',
        'plain.jsonl',
        '--preset=tiny',
        '--total_episodes=400',
        '--backend=ref',
        '--outDir=out',
        '--name=int',
      ],
      { cwd: tmp },
    );
    let out = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!sent && /^step 2\//m.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect(code, out).toBe(0);
    expect(out).toMatch(/PPO stopped after \d+ of 200 steps/);
    expect(out).toMatch(/Continue: .*ppo --resume=out[/\\]int/);
    expect(fs.existsSync(path.join(tmp, 'out', 'int', 'checkpoint', 'ppo_state.json'))).toBe(true);
  });

  it('a bad row is one line naming file and line; --help lists settings and presets', () => {
    fs.writeFileSync(path.join(tmp, 'bad.jsonl'), '{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": [{"role": "user"}]}\n');
    const r = llmts(['ppo', 'base', '--rewardModel=rm', 'bad.jsonl', '--preset=tiny', '--backend=ref', '--outDir=out']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/llmts ppo: .*bad\.jsonl.*line 3.*prompt\[0\]\.content/);
    expect(r.err).not.toMatch(/\n\s+at /);
    const noRm = llmts(['ppo', 'base', 'prompts.jsonl', '--backend=ref']);
    expect(noRm.code).toBe(1);
    expect(noRm.err).toMatch(/rewardModel: give the reward model folder/);
    const h = llmts(['ppo', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/tiny +tests and smoke runs/);
    for (const k of ['klCoef', 'klEstimator', 'targetKl', 'cliprangeValue', 'missingEosPenalty', 'valueModel'])
      expect(h.out).toContain(k);
    expect(llmts(['--help']).out).toMatch(/ppo +align a fine-tuned model to a reward model/);
  });
});
