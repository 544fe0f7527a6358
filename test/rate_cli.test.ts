/**
 * `llmts rate` and `llmts align data` as a user runs them (`node bin/llmts.js …`, dist/ rebuilt when src/ is newer).
 * The feedback is read back with the TRL reader the trainers use, and checked against the rater's own scores and
 * verdicts computed in this process; bad rows and a crashing rater are one line naming the file, with no stack.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedOracle, loadOracle } from '../src/align/oracle.js';
import { getTask } from '../src/align/tasks/index.js';
import {
  type PreferenceRow,
  type RankingRow,
  readTrlDataset,
  type TrlMessage,
  type UnpairedPreferenceRow,
} from '../src/data/trl.js';
import { ensureCliBuilt } from './helpers.js';

const ROOT = path.resolve('.');
const BIN = path.join(ROOT, 'bin', 'llmts.js');
const SOTU = path.join(ROOT, 'raters', 'sotu-desk.mjs');
let tmp = '';
let oracle: LoadedOracle;

function llmts(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Sampled replies to held-out prompts: right, wrong, long, cut off, gibberish; some prompts with equal replies. */
interface Sample {
  prompt: TrlMessage[];
  completions: string[];
  finish_reasons: ('stop' | 'length')[];
}
function samples(): Sample[] {
  return getTask('sotu-desk')
    .items('heldout')
    .slice(0, 24)
    .map((item, k) => {
      if (k === 5) return { prompt: item.prompt, completions: ['Same.', 'Same.'], finish_reasons: ['stop', 'stop'] };
      return {
        prompt: item.prompt,
        completions: [
          'Abraham Lincoln.',
          'He was a Republican.',
          `I think it might have been ${['1861', 'eight', 'Whig'][k % 3]}, but please check this with a better source than me.`,
          'xqzt bbbbbbb.',
        ],
        finish_reasons: ['stop', k % 2 ? 'length' : 'stop', 'stop', 'stop'],
      };
    });
}
const text = (t: string | TrlMessage[]): string => (typeof t === 'string' ? t : t.at(-1)!.content);

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-rate-cli-'));
  fs.writeFileSync(
    path.join(tmp, 'samples.jsonl'),
    samples()
      .map((s) => JSON.stringify(s) + '\n')
      .join(''),
  );
  oracle = await loadOracle(SOTU);
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('llmts rate', () => {
  const S = samples();
  const meta = (s: Sample, k: number) => ({ finishReason: s.finish_reasons[k]! });

  it('ranking: replies ordered by score, best first; a prompt whose replies all tie is skipped and counted', async () => {
    const r = llmts(['rate', '--oracle', SOTU, 'samples.jsonl', '-o', 'ranking.jsonl']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/rate: 24\/24 prompts/);
    expect(r.err).toMatch(
      /sotu-desk-concise-correct: 24 prompts, 94 replies .* → 23 ranked prompts \(1 prompts whose replies all scored the same skipped\)/,
    );
    const d = readTrlDataset<'ranking'>(path.join(tmp, 'ranking.jsonl'), { expect: ['ranking'] });
    expect(d.form).toBe('conversational');
    expect(d.rows.length).toBe(23);
    const kept = S.filter((_, k) => k !== 5);
    for (const [n, row] of (d.rows as RankingRow[]).entries()) {
      const s = kept[n]!;
      expect(row.prompt).toEqual(s.prompt);
      expect(row.completions.map(text)).toEqual(s.completions);
      const scores = await Promise.all(s.completions.map((c, k) => oracle.score(s.prompt, c, meta(s, k))));
      const byRank = row.ranking.map((k) => scores[k]!);
      for (let i = 1; i < byRank.length; i++) expect(byRank[i - 1]!).toBeGreaterThanOrEqual(byRank[i]!);
    }
  });

  it('preference: every pair compare does not tie, margin = score difference; stdout equals the -o file', async () => {
    const r = llmts(['rate', '--oracle', SOTU, 'samples.jsonl', '--type', 'preference']);
    expect(r.code, r.err).toBe(0);
    const r2 = llmts(['rate', '--oracle', SOTU, 'samples.jsonl', '--type=preference', '-o', 'prefs.jsonl']);
    expect(r2.code, r2.err).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'prefs.jsonl'), 'utf8')).toBe(r.out);
    const rows = readTrlDataset<'preference'>(path.join(tmp, 'prefs.jsonl'), { expect: ['preference'] })
      .rows as PreferenceRow[];
    let want = 0,
      ties = 0;
    for (const s of S)
      for (let i = 0; i < s.completions.length; i++)
        for (let j = i + 1; j < s.completions.length; j++) {
          const v = await oracle.compare(s.prompt, s.completions[i]!, s.completions[j]!, {
            a: meta(s, i),
            b: meta(s, j),
          });
          if (v === 'tie') ties++;
          else want++;
        }
    expect(rows.length).toBe(want);
    expect(r.err).toContain(`→ ${want} preference pairs (${ties} tied pairs skipped)`);
    for (const row of rows) {
      const s = S.find((x) => JSON.stringify(x.prompt) === JSON.stringify(row.prompt))!;
      const sc = async (c: string) => oracle.score(s.prompt, c, meta(s, s.completions.indexOf(c)));
      const d = (await sc(text(row.chosen))) - (await sc(text(row.rejected)));
      expect(d).toBeGreaterThanOrEqual(0.05);
      expect(row.margin).toBeCloseTo(d, 12);
    }
  });

  it("kto: thumbs up above the prompt's mean score, down below, a reply at it skipped; --threshold sets the cut", async () => {
    const r = llmts(['rate', '--oracle', SOTU, 'samples.jsonl', '--type', 'kto', '-o', 'kto.jsonl']);
    expect(r.code, r.err).toBe(0);
    const rows = readTrlDataset<'unpaired_preference'>(path.join(tmp, 'kto.jsonl'), { expect: ['unpaired_preference'] })
      .rows as UnpairedPreferenceRow[];
    let n = 0;
    for (const s of S) {
      const scores = await Promise.all(s.completions.map((c, k) => oracle.score(s.prompt, c, meta(s, k))));
      const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
      for (const [k, c] of s.completions.entries()) {
        if (Math.abs(scores[k]! - mean) < 1e-9) continue;
        const row = rows[n++]!;
        expect(text(row.completion)).toBe(c);
        expect(row.label).toBe(scores[k]! > mean);
      }
    }
    expect(rows.length).toBe(n);
    const t = llmts(['rate', '--oracle', SOTU, 'samples.jsonl', '--type', 'kto', '--threshold', '0.25']);
    expect(t.code, t.err).toBe(0);
    const labels = t.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).label as boolean);
    expect(labels.length).toBe(94);
    expect(labels.filter((x) => x).length).toBeGreaterThan(0);
    expect(labels.filter((x) => !x).length).toBeGreaterThan(0);
  });

  it('bad input: a bad row names the file and line; a crashing rater names the rater; no stack traces', () => {
    fs.writeFileSync(
      path.join(tmp, 'bad.jsonl'),
      `${JSON.stringify(S[0])}\n${JSON.stringify({ prompt: S[1]!.prompt, completions: ['a', 'b'], finish_reasons: ['stop'] })}\n`,
    );
    const bad = llmts(['rate', '--oracle', SOTU, 'bad.jsonl']);
    expect(bad.code).toBe(1);
    expect(bad.err.trim()).toBe(
      'llmts rate: bad.jsonl [line 2]: finish_reasons: expected a list of 2 "stop"/"length", got ["stop"]',
    );
    fs.writeFileSync(
      path.join(tmp, 'dies.mjs'),
      `export const makeOracle = () => ({ name: 'd', score: () => process.exit(9), compare: () => 'a' });`,
    );
    const dies = llmts(['rate', '--oracle', 'dies.mjs', 'samples.jsonl']);
    expect(dies.code).toBe(1);
    expect(dies.err).toMatch(
      /^llmts rate: rater dies\.mjs: the rater process exited \(code 9\) while answering score$/m,
    );
    expect(dies.err).not.toMatch(/\n\s+at /);
    const missing = llmts(['rate', '--oracle', 'nope.mjs', 'samples.jsonl']);
    expect(missing.err.trim()).toBe('llmts rate: rater nope.mjs: no such file');
    const noFile = llmts(['rate', '--oracle', SOTU, 'none.jsonl']);
    expect(noFile.err.trim()).toBe('llmts rate: none.jsonl: no such file');
    const type = llmts(['rate', '--oracle', SOTU, 'samples.jsonl', '--type', 'pairs']);
    expect(type.code).not.toBe(0);
    expect(type.err).toMatch(/Allowed choices are ranking, preference, kto/);
  });

  it('--help prints the options and runs nothing', () => {
    const r = llmts(['rate', '--help']);
    expect(r.code).toBe(0);
    for (const o of ['--oracle', '--type', '--seed', '--threshold', '--timeout', '-o, --output'])
      expect(r.out).toContain(o);
    expect(llmts(['--help']).out).toMatch(/rate\s+rate sampled replies/);
  });
});

describe('llmts align data', () => {
  it("writes a task's held-out prompts and its train demonstrations as TRL JSONL", () => {
    const p = llmts([
      'align',
      'data',
      '--task',
      'sotu-desk',
      '--split',
      'heldout',
      '--kind',
      'prompts',
      '-o',
      'held.jsonl',
    ]);
    expect(p.code, p.err).toBe(0);
    expect(p.err).toContain('align data: sotu-desk, heldout split: 420 prompts → held.jsonl');
    const lines = fs.readFileSync(path.join(tmp, 'held.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).prompt)).toEqual(
      getTask('sotu-desk')
        .items('heldout')
        .map((i) => i.prompt),
    );
    const s = llmts(['align', 'data', '--task', 'arithmetic', '--kind', 'sft', '-o', 'sft.jsonl']);
    expect(s.code, s.err).toBe(0);
    const d = readTrlDataset(path.join(tmp, 'sft.jsonl'), { expect: ['language_modeling'] });
    expect(d.form).toBe('conversational');
    expect(d.rows.length).toBe(getTask('arithmetic').items('train').length);
    const h = llmts(['align', 'data', '--task', 'arithmetic', '--split', 'heldout', '--kind', 'sft']);
    expect(h.code).toBe(1);
    expect(h.err.trim()).toBe(
      'llmts align: --split: held-out prompts have no demonstrations (they are for evaluation only); use --split train',
    );
    expect(llmts(['align', 'data', '--help']).out).toContain('shakespeare-turns');
  });
});
