/**
 * `llmts reward` and `llmts dpo` as a user runs them: `node bin/llmts.js …` in a separate process (dist/ rebuilt
 * first when src/ is newer): a short run of each writes metrics.jsonl with TRL's names, report.html and a checkpoint
 * (a reward model that loadRewardModel loads; a causal LM that `llmts chat` talks to); a bad row is one line naming
 * file and line, with no stack trace; --help lists the settings and the presets.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRewardModel } from '../src/model/hf/folder.js';
import { readMetrics } from '../src/train/metrics.js';
import { prefRows } from './prefs_helpers.js';
import { makeTinyModel, writeJsonl } from './sft_helpers.js';
import { ensureCliBuilt } from './helpers.js';

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
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-prefs-cli-'));
  await makeTinyModel(path.join(tmp, 'base'));
  writeJsonl(path.join(tmp, 'prefs.jsonl'), prefRows(40, 1));
  writeJsonl(path.join(tmp, 'plain.jsonl'), prefRows(40, 1, { plain: true }));
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const metrics = (run: string) =>
  readMetrics(path.join(tmp, 'out', run, 'metrics.jsonl')) as unknown as Record<string, unknown>[];

describe('llmts reward and llmts dpo on the command line', () => {
  it('reward: a short run with TRL metrics, a report and a *ForSequenceClassification checkpoint', async () => {
    const r = llmts([
      'reward',
      'base',
      'prefs.jsonl',
      '--preset=tiny',
      '--max_steps=3',
      '--backend=ref',
      '--outDir=out',
      '--name=rm',
      '--center_rewards_coefficient=0.05',
    ]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(
      /^data: preference \(conversational\) rows → 36 training pairs \(36 prompts\) \/ 4 held-out pairs \(4 prompts\)/m,
    );
    expect(r.out).toMatch(/^step 3\/3/m);
    expect(r.out).toMatch(/Reward-model training finished after 3 of 3 steps.*held-out accuracy/);
    const recs = metrics('rm');
    const last = recs.filter((x) => x['type'] === 'step').pop()!;
    for (const k of [
      'loss',
      'learning_rate',
      'grad_norm',
      'epoch',
      'num_tokens',
      'accuracy',
      'rewards/chosen',
      'rewards/rejected',
      'rewards/margins',
    ])
      expect(typeof last[k], k).toBe('number');
    const ev = recs.find((x) => x['type'] === 'eval')!;
    for (const k of ['eval_loss', 'eval_accuracy', 'eval_rewards/margins']) expect(typeof ev[k], k).toBe('number');
    const html = fs.readFileSync(path.join(tmp, 'out', 'rm', 'report.html'), 'utf8'); // a chart for every term
    for (const t of [
      'accuracy',
      'rewards/chosen',
      'rewards/rejected',
      'rewards/margins',
      'eval_accuracy (evaluation)',
      'eval_rewards/margins (evaluation)',
    ])
      expect(html, t).toContain(`"${t}"`);
    const state = JSON.parse(fs.readFileSync(path.join(tmp, 'out', 'rm', 'checkpoint', 'trainer_state.json'), 'utf8'));
    expect(state.config.centerRewardsCoefficient).toBe(0.05);
    const rm = await loadRewardModel(path.join(tmp, 'out', 'rm', 'checkpoint'));
    expect(rm.params.get('score.weight')!.shape).toEqual([1, rm.config.hiddenSize]);
    const more = llmts(['reward', '--resume=out/rm', '--max_steps=4']);
    expect(more.code, more.out + more.err).toBe(0);
    expect(more.out).toMatch(/resuming .*rm at step 3 of 4/);
    expect(
      metrics('rm')
        .filter((x) => x['type'] === 'step')
        .map((x) => x['step']),
    ).toEqual([1, 2, 3, 4]);
  });

  it('dpo: plain rows, a short run with TRL metrics, a checkpoint that llmts chat talks to, then --resume', () => {
    const r = llmts([
      'dpo',
      'base',
      'plain.jsonl',
      '--preset=tiny',
      '--max_steps=3',
      '--backend=ref',
      '--outDir=out',
      '--name=dpo',
      '--loss_type=ipo',
      '--beta=0.5',
    ]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^data: preference \(plain\) rows → 36 training pairs/m);
    expect(r.out).toMatch(/DPO finished after 3 of 3 steps/);
    const last = metrics('dpo')
      .filter((x) => x['type'] === 'step')
      .pop()!;
    for (const k of [
      'loss',
      'rewards/chosen',
      'rewards/rejected',
      'rewards/accuracies',
      'rewards/margins',
      'logps/chosen',
      'logps/rejected',
    ])
      expect(typeof last[k], k).toBe('number');
    const chat = llmts(
      ['chat', path.join('out', 'dpo', 'checkpoint'), '--backend', 'ref', '--max-tokens', '4', '--temperature', '0'],
      'color red\n',
    );
    expect(chat.code, chat.out + chat.err).toBe(0);
    const more = llmts(['dpo', '--resume=out/dpo', '--max_steps=5']);
    expect(more.code, more.out + more.err).toBe(0);
    expect(more.out).toMatch(/resuming .*dpo at step 3 of 5/);
    expect(more.out).toMatch(/DPO finished after 5 of 5 steps/);
  });

  it('a bad row is one line naming file and line; --help lists settings and presets', () => {
    writeJsonl(path.join(tmp, 'bad.jsonl'), [
      ...prefRows(3, 1),
      { prompt: [{ role: 'user', content: 'x' }], chosen: [{ role: 'assistant', content: 'y' }], rejected: 3 },
    ]);
    const r = llmts(['dpo', 'base', 'bad.jsonl', '--preset=tiny', '--backend=ref', '--outDir=out', '--name=bad']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/llmts dpo: .*bad\.jsonl.*line 4.*rejected/);
    expect(r.err).not.toMatch(/\n\s+at /);
    for (const cmd of ['reward', 'dpo']) {
      const h = llmts([cmd, '--help']);
      expect(h.code).toBe(0);
      expect(h.out).toMatch(/tiny +tests and smoke runs/);
      expect(h.out).toMatch(cmd === 'reward' ? /centerRewardsCoefficient/ : /lossType/);
    }
    expect(llmts(['--help']).out).toMatch(/reward .*\n.*dpo /);
  });
});
