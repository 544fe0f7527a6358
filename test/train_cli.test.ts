/**
 * `llmts train` (and a `generate` error) as a user runs them: `node bin/llmts.js …` in a separate process, from a
 * folder outside the package. bin/llmts.js runs dist/, so dist/ is rebuilt first when src/ is newer.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../src/train/metrics.js';
import { Rng } from '../src/util/rng.js';
import { ensureCliBuilt } from './helpers.js';

const ROOT = path.resolve('.');
const BIN = path.join(ROOT, 'bin', 'llmts.js');
let tmp = '';

/** Newest modification time under a folder. */

/** Run `node bin/llmts.js args` in `tmp`; stdout and stderr go to one file, in the order they were written, as on a terminal. */
function llmts(args: string[]): { code: number; out: string } {
  const file = path.join(tmp, `out-${process.hrtime.bigint()}.txt`);
  const fd = fs.openSync(file, 'w');
  try {
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, stdio: ['ignore', fd, fd], timeout: 120_000 });
    return { code: r.status ?? -1, out: fs.readFileSync(file, 'utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

/** A tiny char-level run on `corpus.txt`. */
const tiny = (name: string, ...more: string[]) => [
  'train',
  'corpus.txt',
  '--tokenizer=char',
  '--nLayer=1',
  '--nHead=2',
  '--nEmbd=16',
  '--blockSize=16',
  '--batchSize=4',
  '--maxSteps=3',
  '--evalBatches=1',
  '--finalEvalBatches=0',
  '--sampleTokens=4',
  '--samplePrompts=the',
  '--backend=ref',
  '--outDir=out',
  `--name=${name}`,
  ...more,
];

beforeAll(() => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-train-cli-'));
  const words = ['the', 'people', 'of', 'states', 'congress', 'shall', 'and', 'we', 'have', 'a', 'nation'];
  const rng = new Rng(5);
  fs.writeFileSync(
    path.join(tmp, 'corpus.txt'),
    Array.from({ length: 3000 }, () => words[rng.int(words.length)]).join(' ') + '\n',
  );
}, 300_000);
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('llmts train on the command line', () => {
  it('--quiet prints no per-step lines; --report=false writes no report; the cache goes under --outDir; Next: commands run here', () => {
    const r = llmts(tiny('q', '--quiet=true', '--report=false', '--logInterval=1'));
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(/^step \d+\/\d+/m); // no per-step lines …
    expect(r.out).toMatch(/^step 3: val loss/m); // … evaluations still print
    expect(fs.existsSync(path.join(tmp, 'out', 'q', 'report.html'))).toBe(false);
    expect(r.out).not.toMatch(/^report:/m);
    expect(fs.existsSync(path.join(tmp, 'out', '.cache'))).toBe(true);
    expect(fs.existsSync(path.join(tmp, 'runs'))).toBe(false);
    // the hint's command works from where it was printed (llmts is not on PATH here)
    const hint = /^ {2}(.+) generate (\S+) "the"/m.exec(r.out);
    expect(hint, r.out).not.toBeNull();
    const g = spawnSync('sh', ['-c', `${hint![1]} generate ${hint![2]} the --max-tokens 2 --backend ref`], {
      cwd: tmp,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(g.status, g.stderr).toBe(0);
    expect(g.stdout.startsWith('the')).toBe(true);
  });

  it('console and metrics.jsonl count steps the same way; console and report give the same training time', () => {
    const r = llmts(tiny('v', '--logInterval=1'));
    expect(r.code, r.out).toBe(0);
    const consoleSteps = [...r.out.matchAll(/^step (\d+)\/3 \|/gm)].map((m) => Number(m[1]));
    expect(consoleSteps).toEqual([1, 2, 3]);
    const logged = readMetrics(path.join(tmp, 'out', 'v', 'metrics.jsonl'));
    expect(logged.filter((x) => x.type === 'step').map((x) => x.step)).toEqual(consoleSteps);
    expect(logged.find((x) => x.type === 'eval')!.step).toBe(3);
    const time = /after 3 steps \((\S+) of training\)/.exec(r.out)?.[1];
    expect(time, r.out).toBeDefined();
    const cell = () =>
      /<th>training time<\/th><td>([^<]*)<\/td>/.exec(
        fs.readFileSync(path.join(tmp, 'out', 'v', 'report.html'), 'utf8'),
      )?.[1];
    expect(cell()).toBe(time);
    // --report-only rewrites the report of a run (from its files), with the same figure
    fs.rmSync(path.join(tmp, 'out', 'v', 'report.html'));
    const again = llmts(['train', '--report-only', 'out/v']);
    expect(again.code, again.out).toBe(0);
    expect(cell()).toBe(time);
  });

  it('--report is the true/false setting: a run folder after it is an error pointing to --report-only', () => {
    fs.mkdirSync(path.join(tmp, 'out', 'x'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'out', 'x', 'metrics.jsonl'), '');
    const r = llmts(['train', '--report', 'out/x']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/llmts train: report: .*--report-only out\/x/);
    const bad = llmts(['train', '--report=sometimes']);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/report: expected true or false, got "sometimes"/);
    expect(llmts(['train', '--help']).out).toMatch(/--report-only runs\/NAME/);
  });

  it('an error after streamed text starts on its own line', () => {
    if (!fs.existsSync(path.join(tmp, 'out', 'q', 'checkpoint'))) llmts(tiny('q', '--quiet'));
    const r = llmts(['generate', 'out/q/checkpoint', 'the', '--max-tokens=-1', '--backend', 'ref']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/(^|\n)the\nllmts generate: maxTokens:/);
  });
});
