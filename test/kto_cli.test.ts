/**
 * `llmts kto` as a user runs it: `node bin/llmts.js kto …` in a separate process (dist/ rebuilt first when src/ is
 * newer): a short run on plain unpaired rows writes metrics.jsonl with TRL's KTO names, report.html and a checkpoint
 * that `llmts chat` talks to, then --resume continues it; a bad row is one line naming file, line and field, with no
 * stack trace; --help lists the settings and presets and runs nothing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/train/metrics.js';
import { ensureCliBuilt } from './helpers.js';
import { prefRows } from './prefs_helpers.js';
import { makeTinyModel, writeJsonl } from './sft_helpers.js';

const BIN = path.resolve('bin', 'llmts.js');
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

/** Plain unpaired rows: each prompt's '.' reply (thumbs up) and its '!' reply (thumbs down). */
function thumbs(n: number): Record<string, unknown>[] {
  return prefRows(n, 1, { plain: true }).flatMap((r) => [
    { prompt: r['prompt'], completion: r['chosen'], label: true },
    { prompt: r['prompt'], completion: r['rejected'], label: false },
  ]);
}

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-kto-cli-'));
  await makeTinyModel(path.join(tmp, 'base'));
  writeJsonl(path.join(tmp, 'thumbs.jsonl'), thumbs(20));
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('llmts kto on the command line', () => {
  it('a short run with TRL metrics, a report and a checkpoint llmts chat talks to, then --resume', () => {
    const r = llmts([
      'kto',
      'base',
      'thumbs.jsonl',
      '--preset=tiny',
      '--max_steps=3',
      '--backend=ref',
      '--outDir=out',
      '--name=kto',
      '--desirable_weight=1.2',
    ]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(
      /^data: unpaired_preference \(plain\) rows → 36 training rows \(18 desirable, 18 undesirable; 18 prompts, 5 fixed batches\) \/ 4 held-out rows/m,
    );
    expect(r.out).toMatch(/^reference: log-probabilities of 40 rows and their 40 KL pairs computed/m);
    expect(r.out).toMatch(/KTO finished after 3 of 3 steps.*held-out reward margin -?\d/);
    const recs = readMetrics(path.join(tmp, 'out', 'kto', 'metrics.jsonl')) as unknown as Record<string, unknown>[];
    const last = recs.filter((x) => x['type'] === 'step').pop()!;
    for (const k of [
      'loss',
      'learning_rate',
      'grad_norm',
      'rewards/chosen',
      'rewards/rejected',
      'rewards/margins',
      'logps/chosen',
      'logps/rejected',
      'kl',
      'count/chosen',
      'count/rejected',
    ])
      expect(typeof last[k], k).toBe('number');
    const ev = recs.find((x) => x['type'] === 'eval')!;
    for (const k of ['eval_loss', 'eval_kl', 'eval_rewards/margins']) expect(typeof ev[k], k).toBe('number');
    const html = fs.readFileSync(path.join(tmp, 'out', 'kto', 'report.html'), 'utf8');
    for (const t of ['kl', 'rewards/margins', 'eval_kl (evaluation)']) expect(html, t).toContain(`"${t}"`);
    const state = JSON.parse(fs.readFileSync(path.join(tmp, 'out', 'kto', 'checkpoint', 'trainer_state.json'), 'utf8'));
    expect(state.config.desirableWeight).toBe(1.2);
    const chat = llmts(
      ['chat', path.join('out', 'kto', 'checkpoint'), '--backend', 'ref', '--max-tokens', '4', '--temperature', '0'],
      'color red\n',
    );
    expect(chat.code, chat.out + chat.err).toBe(0);
    const more = llmts(['kto', '--resume=out/kto', '--max_steps=5']);
    expect(more.code, more.out + more.err).toBe(0);
    expect(more.out).toMatch(/resuming .*kto at step 3 of 5/);
    expect(more.out).toMatch(/KTO finished after 5 of 5 steps/);
  });

  it('a bad row is one line naming file, line and field; --help lists settings and presets', () => {
    writeJsonl(path.join(tmp, 'bad.jsonl'), [...thumbs(2), { prompt: 'x', completion: ' y', label: 1 }]);
    const r = llmts(['kto', 'base', 'bad.jsonl', '--preset=tiny', '--backend=ref', '--outDir=out', '--name=bad']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/llmts kto: .*bad\.jsonl.*line 5.*label/);
    expect(r.err).not.toMatch(/\n\s+at /);
    const one = llmts(['kto', 'base', 'thumbs.jsonl', '--batch_size=1', '--outDir=out']);
    expect(one.code).toBe(1);
    expect(one.err).toMatch(/batchSize.*≥ 2/);
    const h = llmts(['kto', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/tiny +tests and smoke runs/);
    expect(h.out).toMatch(/desirableWeight/);
    expect(h.out).toMatch(/undesirableWeight/);
    expect(fs.existsSync(path.join(tmp, 'runs'))).toBe(false); // --help ran nothing
    expect(llmts(['--help']).out).toMatch(/kto +align a fine-tuned model to unpaired thumbs/);
  });
});
