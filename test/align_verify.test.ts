/**
 * `llmts align verify` in QUICK mode on sotu-desk with its public rater (raters/sotu-desk.mjs): the figures the issue
 * names are there and in range, the same seed gives the same figures (the timings aside; the second run takes SFT
 * from the cache), the feedback the trainers read is what the rater said and the flipped control file is that
 * feedback with about half of its pairs swapped (and nothing else changed), and a rater that prefers nothing is
 * refused by name. The pipeline runs QUICK with one further DPO β, so the curves are there too: PPO's checkpoints
 * along the run (the last one the final policy's figures), DPO at each β (the main one's figures among them), the
 * reward model's calibration on its held-out pairs (its bins account for every pair in both orders, and agree with
 * its accuracy). The label-flip helper and the calibration figure are checked on their own.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raterFile } from '../src/align/tasks/task.js';
import {
  alignVerify,
  flipPreferences,
  accuracyByMargin,
  rmCalibration,
  spread,
  TIMING_FIELDS,
  type VerifyFigures,
} from '../src/align/verify.js';
import { QUICK, type VerifySettings } from '../src/align/verify_settings.js';
import type { PreferenceRow } from '../src/data/trl.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { ensureCliBuilt } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-verify-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = () => {};
/** QUICK with one further DPO β (QUICK itself has none, to stay quick). */
const settings: VerifySettings = { ...QUICK, dpo: { ...QUICK.dpo, extraBetas: [0.5] } };

const KEYS = [
  'rm_accuracy',
  'ppo_win_rate',
  'ppo_win_rate_ci_low',
  'ppo_kl',
  'dpo_win_rate',
  'dpo_kl',
  'bon_win_rate',
  'aa_win_rate',
  'shuffled_ppo_win_rate',
  'shuffled_rm_accuracy',
  'distinct_ratio',
  'eos_rate',
  'wall_s',
] as const;

const withoutTimings = (f: VerifyFigures) => {
  const o: Record<string, unknown> = { ...f };
  for (const k of TIMING_FIELDS) delete o[k];
  return o;
};

describe('align verify (quick)', () => {
  const oracle = raterFile('sotu-desk');
  let first: Awaited<ReturnType<typeof alignVerify>>;

  it('runs the pipeline and reports every figure', async () => {
    first = await alignVerify({
      task: 'sotu-desk',
      oracle,
      seed: 3,
      quick: true,
      settings,
      out: path.join(tmp, 'a'),
      cacheDir: path.join(tmp, 'sft-cache'),
      log: quiet,
    });
    const f = first.figures;
    for (const k of KEYS) expect(typeof f[k], k).toBe('number');
    for (const k of KEYS)
      if (k !== 'ppo_kl' && k !== 'dpo_kl' && k !== 'wall_s') expect(f[k], k).toBeGreaterThanOrEqual(0);
    for (const k of ['rm_accuracy', 'ppo_win_rate', 'dpo_win_rate', 'bon_win_rate', 'aa_win_rate', 'eos_rate'] as const)
      expect(f[k], k).toBeLessThanOrEqual(1);
    expect(f.ppo_win_rate_ci_low).toBeLessThanOrEqual(f.ppo_win_rate);
    // KL of a policy from SFT estimated on its own samples: non-negative in expectation, so not far below 0
    expect(f.ppo_kl).toBeGreaterThan(-0.5);
    expect(f.oracle).toBe('sotu-desk-concise-correct');
    expect(f.sft_cached).toBe(false);
    expect(Object.keys(f.seconds)).toEqual([
      'sft',
      'sample',
      'rate',
      'reward',
      'ppo',
      'dpo',
      'controls',
      'dpo_betas',
      'evaluate',
    ]);
    expect(Object.keys(f.policies).sort()).toEqual(['bon', 'dpo', 'ppo', 'ppo_flipped', 'sft', 'sft_aa']);
    expect(f.heldout_prompts).toBeGreaterThan(10);
    expect(JSON.parse(fs.readFileSync(first.jsonPath, 'utf8'))).toEqual(f);
    const html = fs.readFileSync(first.reportPath, 'utf8');
    expect(html).toContain('Controls');
    expect(html).toContain('objective/kl');
    expect(html).toContain('Reward model calibration');
    expect(html).toContain('PPO checkpoints');
    expect(first.table.length).toBeGreaterThan(0);
  });

  it('reports the curves: PPO checkpoints, DPO at each β, the reward model’s calibration', () => {
    const f = first.figures;
    // PPO: QUICK takes 2 batches × 2 minibatches = 4 steps, checkpointed every ⌈4 / curvePoints⌉ = 2
    expect(QUICK.ppo.curvePoints).toBe(2);
    expect(f.ppo_curve.map((c) => c.step)).toEqual([2, 4]);
    const kept = path.join(tmp, 'a', 'ppo-curve', 'step-000002');
    expect(fs.existsSync(path.join(kept, 'model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(kept, 'optimizer.safetensors'))).toBe(false); // the policy alone is kept
    expect(fs.readdirSync(path.join(tmp, 'a', 'ppo-curve'))).toEqual(['step-000002']); // the last is the run's own
    const last = f.ppo_curve[1]!;
    expect([last.win_rate, last.kl, last.win_rate_ci_low]).toEqual([f.ppo_win_rate, f.ppo_kl, f.ppo_win_rate_ci_low]);
    for (const c of [...f.ppo_curve, ...f.dpo_betas]) {
      expect(c.sqrt_kl).toBe(Math.sqrt(Math.max(0, c.kl)));
      expect(c.win_rate).toBeGreaterThanOrEqual(c.win_rate_ci_low);
      expect(c.win_rate).toBeLessThanOrEqual(c.win_rate_ci_high);
      expect(c.kl).toBeGreaterThan(-0.5);
    }
    // DPO: the main β's figures and the further one's, by β
    expect(f.dpo_betas.map((d) => d.beta)).toEqual([0.1, 0.5]);
    const main = f.dpo_betas[0]!;
    expect([main.win_rate, main.kl, main.rewards_accuracy]).toEqual([f.dpo_win_rate, f.dpo_kl, f.dpo_rewards_accuracy]);
    expect(f.dpo_betas[1]!.rewards_accuracy).toBeGreaterThanOrEqual(0);
    expect(fs.existsSync(path.join(tmp, 'a', 'dpo-beta0.5'))).toBe(true);
    // calibration: every held-out pair twice (once as 1, once as 0), mirrored bins; its accuracy is the trainer's
    const cal = f.rm_calibration;
    expect(cal.pairs).toBeGreaterThan(0);
    expect(cal.bins.reduce((n, b) => n + b.n, 0)).toBe(2 * cal.pairs);
    expect(cal.bins.reduce((n, b) => n + b.n * b.freq, 0)).toBeCloseTo(cal.pairs, 9);
    for (const b of cal.bins) {
      expect(b.p_mean).toBeGreaterThanOrEqual(b.low);
      expect(b.p_mean).toBeLessThanOrEqual(b.high);
    }
    expect(cal.ece).toBeGreaterThanOrEqual(0);
    expect(cal.ece).toBeLessThanOrEqual(1);
    // by margin: the same pairs, the same accuracy overall, weakest preferences first
    const byM = f.rm_accuracy_by_margin;
    expect(byM.reduce((n, g) => n + g.n, 0)).toBe(cal.pairs);
    expect(byM.reduce((n, g) => n + g.n * g.accuracy, 0)).toBeCloseTo(cal.pairs * cal.accuracy, 9);
    for (let i = 1; i < byM.length; i++) expect(byM[i]!.low).toBeGreaterThan(byM[i - 1]!.high);
    expect(cal.accuracy).toBeCloseTo(f.rm_accuracy, 9);
  });

  it('the trainers read the rater’s feedback; the flipped file swaps about half the pairs and nothing else', () => {
    const read = (f: string) =>
      fs
        .readFileSync(path.join(tmp, 'a', f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as PreferenceRow);
    const fb = read('feedback.jsonl'),
      fl = read('feedback-flipped.jsonl');
    expect(fb.length).toBe(first.figures.pairs);
    expect(fl.length).toBe(fb.length);
    let swapped = 0;
    fb.forEach((r, i) => {
      const s = fl[i]!;
      expect(s.prompt).toEqual(r.prompt);
      if (JSON.stringify(s.chosen) === JSON.stringify(r.chosen)) expect(s.rejected).toEqual(r.rejected);
      else {
        expect(s.chosen).toEqual(r.rejected);
        expect(s.rejected).toEqual(r.chosen);
        swapped++;
      }
    });
    // Binomial(n, ½): within 4 standard deviations
    const n = fb.length;
    expect(Math.abs(swapped - n / 2)).toBeLessThanOrEqual(4 * Math.sqrt(n / 4) + 1);
    expect(swapped).toBeGreaterThan(0);
  });

  it('the same seed gives the same figures (SFT from the cache)', async () => {
    const again = await alignVerify({
      task: 'sotu-desk',
      oracle,
      seed: 3,
      quick: true,
      settings,
      out: path.join(tmp, 'b'),
      cacheDir: path.join(tmp, 'sft-cache'),
      log: quiet,
    });
    expect(again.figures.sft_cached).toBe(true);
    expect(JSON.stringify(withoutTimings(again.figures))).toBe(JSON.stringify(withoutTimings(first.figures)));
    expect(again.table).toEqual(first.table);
    expect(fs.readFileSync(path.join(tmp, 'b', 'feedback.jsonl'), 'utf8')).toBe(
      fs.readFileSync(path.join(tmp, 'a', 'feedback.jsonl'), 'utf8'),
    );
  });

  it('a rater that prefers nothing (every pair a tie) is refused by name', async () => {
    const tie = path.join(tmp, 'tie.mjs');
    fs.writeFileSync(
      tie,
      "export function makeOracle() { return { name: 'tie', score: () => 0, compare: () => 'tie' }; }\n",
    );
    const run = alignVerify({
      task: 'sotu-desk',
      oracle: tie,
      seed: 3,
      quick: true,
      out: path.join(tmp, 'c'),
      cacheDir: path.join(tmp, 'sft-cache'),
      log: quiet,
    });
    await expect(run).rejects.toThrow(ConfigError);
    await expect(run).rejects.toThrow(/--oracle.*0 non-tied pairs/);
  });
});

describe('llmts align verify', () => {
  beforeAll(() => ensureCliBuilt());
  const llmts = (args: string[]) => {
    const r = spawnSync(process.execPath, [path.resolve('bin', 'llmts.js'), 'align', 'verify', ...args], {
      cwd: tmp,
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  };

  it('--json prints one JSON object with the figures (SFT from the cache next to --out)', () => {
    const r = llmts(['--task', 'sotu-desk', '--seed', '3', '--quick', '--json', '--out', 'cli']);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const f = JSON.parse(lines[0]!) as VerifyFigures;
    for (const k of KEYS) expect(typeof f[k], k).toBe('number');
    expect(f.sft_cached).toBe(true);
    expect(r.err).toContain('align verify: evaluate done');
  });

  it('refuses a bad seed and an unknown task by name', () => {
    const s = llmts(['--task', 'sotu-desk', '--seed', 'x']);
    expect(s.code).not.toBe(0);
    expect(s.err).toContain('--seed');
    const t = llmts(['--task', 'nope']);
    expect(t.code).not.toBe(0);
    expect(t.err).toContain('nope');
  });
});

describe('flipPreferences', () => {
  const rows: PreferenceRow[] = Array.from({ length: 2000 }, (_, i) => ({
    prompt: [{ role: 'user', content: `q${i}` }],
    chosen: [{ role: 'assistant', content: `good ${i}` }],
    rejected: [{ role: 'assistant', content: `bad ${i}` }],
    margin: i,
  }));

  it('swaps chosen and rejected with probability p, keeping the margin', () => {
    const { rows: out, flipped } = flipPreferences(rows, new Rng(7));
    const n = flipped.filter(Boolean).length;
    expect(Math.abs(n - 1000)).toBeLessThan(4 * Math.sqrt(500)); // Binomial(2000, ½), 4 σ
    out.forEach((r, i) => {
      const [c, w] = flipped[i] ? ['bad', 'good'] : ['good', 'bad'];
      expect((r.chosen[0] as { content: string }).content).toBe(`${c} ${i}`);
      expect((r.rejected[0] as { content: string }).content).toBe(`${w} ${i}`);
      expect(r.margin).toBe(i);
    });
    expect(flipPreferences(rows, new Rng(7), 0).flipped.some(Boolean)).toBe(false);
    expect(flipPreferences(rows, new Rng(7), 1).flipped.every(Boolean)).toBe(true);
  });

  it('rmCalibration counts each pair in both orders (worked by hand)', () => {
    // σ(2) = 0.881 and σ(−1) = 0.269 with outcome 1; their mirrors 0.119 and 0.731 with outcome 0
    const s = (x: number) => 1 / (1 + Math.exp(-x));
    const c = rmCalibration([2, 0], [0, 1], 2);
    expect(c.pairs).toBe(2);
    expect(c.accuracy).toBe(0.5);
    expect(c.bins.map((b) => b.n)).toEqual([2, 2]);
    expect(c.bins[0]!.p_mean).toBeCloseTo((s(-1) + s(-2)) / 2, 12);
    expect(c.bins[0]!.freq).toBe(0.5);
    expect(c.bins[1]!.p_mean).toBeCloseTo((s(2) + s(1)) / 2, 12);
    expect(c.bins[1]!.freq).toBe(0.5);
    expect(c.ece).toBeCloseTo(0.5 * Math.abs((s(-1) + s(-2)) / 2 - 0.5) + 0.5 * Math.abs((s(2) + s(1)) / 2 - 0.5), 12);
    // a perfectly separating, confident model: all mass in the extreme bins, ECE near 0; empty bins left out
    const sure = rmCalibration([20, 20], [0, 0], 10);
    expect(sure.bins.map((b) => [b.low, b.n, b.freq])).toEqual([
      [0, 2, 0],
      [0.9, 2, 1],
    ]);
    expect(sure.ece).toBeLessThan(1e-8);
  });

  it('accuracyByMargin groups pairs by margin, never splitting one (worked by hand)', () => {
    // margins 3 1 2 1 0.5 1 2: sorted 0.5 1 1 1 2 2 3; groups of ⌈7/3⌉ = 3 → [0.5 1 1] would split the 1s → [0.5 1 1 1]
    const m = [3, 1, 2, 1, 0.5, 1, 2];
    const right = [true, false, true, true, true, false, false];
    const g = accuracyByMargin(
      right.map((r) => (r ? 1 : 0)),
      right.map(() => 0.5),
      m,
    );
    expect(g).toEqual([
      { low: 0.5, high: 1, n: 4, accuracy: 2 / 4 }, // ids 4 ✓, 1 ✗, 3 ✓, 5 ✗
      { low: 2, high: 3, n: 3, accuracy: 2 / 3 }, // ids 2 ✓, 6 ✗, 0 ✓
    ]);
    // one margin for all (a rater without margins: 0): one group; distinct margins: exact thirds
    expect(accuracyByMargin([1, 0, 1], [0, 1, 0], [0, 0, 0])).toEqual([{ low: 0, high: 0, n: 3, accuracy: 2 / 3 }]);
    expect(accuracyByMargin([1, 1, 0, 0, 1, 1], [0, 0, 1, 1, 0, 0], [6, 5, 4, 3, 2, 1]).map((x) => x.n)).toEqual([
      2, 2, 2,
    ]);
  });

  it('spread picks k items evenly, in order', () => {
    expect(spread([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 5)).toEqual([0, 2, 4, 6, 8]);
    expect(spread([1, 2], 5)).toEqual([1, 2]);
  });
});
