/**
 * The bad-input suite (issue 16): every case runs the real CLI (`node bin/llmts.js`, which imports dist/) as a
 * subprocess under a time limit, and checks the exit code, that stderr holds a named one-line error and no stack
 * trace, and what is on disk afterwards (the last good checkpoint intact, no leftover temp folders, no empty run
 * folders). Models are tiny (1 layer × 16 wide, a character tokenizer, a 20 KB corpus) so the suite stays fast.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../src/formats/safetensors.js';
import { ensureCliBuilt } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'llmts.js');
const TINY = [
  '--tokenizer=char',
  '--nLayer=1',
  '--nEmbd=16',
  '--nHead=2',
  '--blockSize=16',
  '--batchSize=2',
  '--evalBatches=1',
  '--finalEvalBatches=1',
  '--sampleTokens=4',
];

let tmp = '';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run the CLI (or a shell line, when `shell`) in `tmp`, killed after `limitMs`. */
function cli(args: string[], limitMs = 30_000): Ran {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: tmp,
    encoding: 'utf8',
    timeout: limitMs,
    maxBuffer: 64 << 20,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

function sh(line: string, limitMs = 30_000): Ran {
  const t0 = Date.now();
  const r = spawnSync('bash', ['-c', line], {
    cwd: tmp,
    encoding: 'utf8',
    timeout: limitMs,
    env: { ...process.env, NO_COLOR: '1', LLMTS: `${process.execPath} ${BIN}` },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** A clean failure: the exit code, a named `llmts <cmd>: …` line matching `msg`, and no stack trace. */
function expectNamedError(r: Ran, cmd: string, msg: RegExp, code = 1): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(new RegExp(`^llmts ${cmd}: `, 'm'));
  expect(r.stderr).toMatch(msg);
  expectNoStack(r.stderr);
}

function expectNoStack(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at .+(:\d+:\d+\)?|<anonymous>)$/m);
  expect(stderr).not.toMatch(/node:internal|Unhandled 'error' event|EPIPE|RangeError|TypeError/);
}

/** Hidden temp folders that a checkpoint save leaves when it dies. */
function leftovers(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => /^\.checkpoint\.(building|old)-/.test(n)) : [];
}

function md5s(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort())
    out[f] = crypto
      .createHash('md5')
      .update(fs.readFileSync(path.join(dir, f)))
      .digest('hex');
  return out;
}

/** Overwrite every tensor of a safetensors file whose name matches `which` with NaN. */
async function poison(file: string, which: RegExp): Promise<void> {
  const st = await readSafetensors(file);
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of st.tensors) {
    const d = Float32Array.from(t.data as Float32Array);
    if (which.test(k)) d.fill(NaN);
    out[k] = { shape: [...t.shape], data: d };
  }
  await writeSafetensors(file, out);
}

/** A trained base run (4 steps, checkpoint every 2) copied fresh for each case that changes it. */
function freshRun(name: string): string {
  const dst = path.join(tmp, 'runs', name);
  fs.cpSync(path.join(tmp, 'base'), dst, { recursive: true });
  return dst;
}

beforeAll(() => {
  ensureCliBuilt(); // the CLI runs from dist/
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-bad-'));
  const text = fs.readFileSync(path.join(ROOT, 'data', 'tinyshakespeare.txt'), 'utf8');
  fs.writeFileSync(path.join(tmp, 'corpus.txt'), text.slice(0, 20_000));
  fs.writeFileSync(path.join(tmp, 'afile'), 'not a folder\n');
  const r = cli(
    [
      'train',
      'corpus.txt',
      ...TINY,
      '--maxSteps=4',
      '--evalInterval=2',
      '--checkpointInterval=2',
      '--outDir=.',
      '--cacheDir=cache',
      '--name=base',
    ],
    60_000,
  );
  if (r.code !== 0) throw new Error(`base run failed:\n${r.stdout}\n${r.stderr}`);
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('bad input through the CLI: named errors, no stack traces, nothing broken on disk', () => {
  it('already handled: an unknown command, a missing corpus, a bad flag value', () => {
    const a = cli(['frobnicate']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown command 'frobnicate'/);
    expectNamedError(
      cli(['train', 'nope.txt', ...TINY, '--outDir=runs-missing']),
      'train',
      /'nope.txt' does not exist/,
    );
    expect(fs.readdirSync(path.join(tmp, 'runs-missing'))).toEqual([]); // no empty run folder left behind
    expectNamedError(cli(['train', 'corpus.txt', ...TINY, '--lr=1e6']), 'train', /lr: must be ≤ 10/);
  });

  it('tokenize --file on a large text prints every id without a stack overflow', () => {
    fs.writeFileSync(path.join(tmp, 'big.txt'), 'abcdefghij'.repeat(30_000)); // 300,000 ids: Math.max(...ids) overflowed
    const tok = cli(['tokenizer', 'train', 'corpus.txt', '--type', 'char', '--out', 'chartok']);
    expect(tok.code, tok.stderr).toBe(0);
    const r = cli(['tokenize', '--file', 'big.txt', '--tokenizer', 'chartok']);
    expect(r.code, r.stderr).toBe(0);
    expectNoStack(r.stderr);
    expect(r.stdout).toMatch(/^300000 tokens, 300000 bytes/m);
  });

  it('tokenize --file on a binary file reports the file size in bytes and the invalid UTF-8 it replaced', () => {
    const bin = Buffer.alloc(3000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 151 + 7) & 0xff;
    fs.writeFileSync(path.join(tmp, 'blob.bin'), bin);
    const r = cli(['tokenize', '--file', 'blob.bin', '--tokenizer', 'gpt2', '--count']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ 3000 bytes,/); // not the size of its U+FFFD-decoded text
    expect(r.stderr).toMatch(/warning: blob\.bin: \d+ bytes are not valid UTF-8/);
  });

  it('a loss that turns NaN stops with a named error, keeps the last good checkpoint, writes no bad one, still writes the report', async () => {
    const run = freshRun('nan');
    const ck = path.join(run, 'checkpoint');
    await poison(path.join(ck, 'model.safetensors'), /wte/);
    const before = md5s(ck);
    fs.rmSync(path.join(run, 'report.html'));
    const r = cli(['train', `--resume=${run}`, '--maxSteps=8', '--checkpointInterval=1']);
    expectNamedError(
      r,
      'train',
      /training diverged at step 5 \(loss NaN\); the last good checkpoint \(step 4\) is kept\. Try a lower learning rate/,
    );
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('llmts train:')),
    ).toHaveLength(1);
    expect(md5s(ck)).toEqual(before); // untouched: no checkpoint of the NaN step
    expect(leftovers(run)).toEqual([]);
    expect(fs.readFileSync(path.join(run, 'report.html'), 'utf8')).toMatch(/NaN/);
    // and `train --report-only` copes with the null loss in metrics.jsonl
    const rep = cli(['train', '--report-only', run]);
    expect(rep.code, rep.stderr).toBe(0);
    expectNoStack(rep.stderr);
  });

  it('a loss far above ln(vocab) gets a warning', () => {
    const r = cli([
      'train',
      'corpus.txt',
      ...TINY,
      '--maxSteps=6',
      '--lr=10',
      '--gradClip=0',
      '--warmupSteps=0',
      '--outDir=runs',
      '--cacheDir=cache',
      '--name=explode',
    ]);
    expect(`${r.stdout}${r.stderr}`).toMatch(/warning: the loss \([\d.]+\) is far above ln\(vocab\)/);
  });

  it('unwritable output paths: one named line, no hang', () => {
    expectNamedError(
      cli(['train', 'corpus.txt', ...TINY, '--maxSteps=2', '--outDir=afile/runs']),
      'train',
      /cannot mkdir .*afile\/runs: a part of the path is a file, not a folder \(ENOTDIR\)/,
    );
    expectNamedError(
      cli(['train', 'corpus.txt', ...TINY, '--maxSteps=2', '--outDir=runs', '--cacheDir=afile/cache']),
      'train',
      /ENOTDIR/,
    );
    expectNamedError(
      cli(['tokenizer', 'train', 'corpus.txt', '--vocab-size', '300', '--out', 'afile/tok']),
      'tokenizer',
      /ENOTDIR/,
    );
    const proc = cli(['tokenizer', 'train', 'corpus.txt', '--vocab-size', '300', '--out', '/proc/llmts-nope'], 20_000);
    expectNamedError(proc, 'tokenizer', /cannot mkdir \/proc\/llmts-nope/);
  });

  it('closing stdout ends train and generate quietly', () => {
    const t = sh(
      `$LLMTS train corpus.txt ${TINY.join(' ')} --maxSteps=400 --outDir=runs --cacheDir=cache --name=piped | head -1`,
    );
    expect(t.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expectNoStack(t.stderr);
    const run = path.join(tmp, 'runs', 'piped');
    // either stopped before the run folder held anything (and removed it) or stopped as on Ctrl-C, with a checkpoint
    if (fs.existsSync(run)) expect(fs.existsSync(path.join(run, 'checkpoint', 'trainer_state.json'))).toBe(true);
    const g = sh(`$LLMTS generate base/checkpoint "The" --max-tokens 200 | head -c 5`);
    expect(g.stdout).toHaveLength(5);
    expect(g.stdout.startsWith('The')).toBe(true);
    expectNoStack(g.stderr);
  });

  it('resume after kill -9: removes .checkpoint.building-*, restores checkpoint/ from .checkpoint.old-*', () => {
    const run = freshRun('killed');
    fs.mkdirSync(path.join(run, '.checkpoint.building-99999-1-x'));
    fs.writeFileSync(path.join(run, '.checkpoint.building-99999-1-x', 'model.safetensors'), 'half');
    fs.renameSync(path.join(run, 'checkpoint'), path.join(run, '.checkpoint.old-99999-2-y')); // died between the renames
    const r = cli(['train', `--resume=${run}`, '--maxSteps=6']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resuming .* at step 4 of 6/);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'checkpoint', 'trainer_state.json'), 'utf8')).step).toBe(6);
    expect(leftovers(run)).toEqual([]);
  });

  it('char-level: a one-line corpus trains (documents are joined with newlines); a prompt outside its alphabet is named at the start', () => {
    fs.writeFileSync(path.join(tmp, 'oneline.txt'), 'abcab cabba cab '.repeat(200));
    const ok = cli([
      'train',
      'oneline.txt',
      ...TINY,
      '--maxSteps=1',
      '--outDir=runs',
      '--name=oneline',
      '--samplePrompts=ab',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = cli([
      'train',
      'oneline.txt',
      ...TINY,
      '--maxSteps=1',
      '--outDir=runs',
      '--name=oneline2',
      '--samplePrompts=The',
    ]);
    expectNamedError(
      bad,
      'train',
      /samplePrompts: the prompt "The" cannot be encoded: character "T" .* is not in the character vocabulary/,
    );
  });

  it('a bare --resume finds a run whose checkpoint/ a kill left as .checkpoint.old-*', () => {
    const dst = path.join(tmp, 'runs-solo', 'solo');
    fs.cpSync(path.join(tmp, 'base'), dst, { recursive: true });
    fs.renameSync(path.join(dst, 'checkpoint'), path.join(dst, '.checkpoint.old-99999-3-z'));
    const r = cli(['train', '--resume', '--outDir=runs-solo', '--maxSteps=5']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resuming .* at step 4 of 5/);
    expect(leftovers(dst)).toEqual([]);
  });

  it('a hand-edited trainer_state.json is validated like any input', () => {
    const run = freshRun('edited');
    const f = path.join(run, 'checkpoint', 'trainer_state.json');
    const st = JSON.parse(fs.readFileSync(f, 'utf8'));
    fs.writeFileSync(f, JSON.stringify({ ...st, step: -5 }));
    expectNamedError(
      cli(['train', `--resume=${run}`]),
      'train',
      /trainer_state\.json \[step\]: expected a whole number ≥ 0, got -5/,
    );
    fs.writeFileSync(f, JSON.stringify(st));
    expectNamedError(
      cli(['train', `--resume=${run}`, '--maxSteps=2']),
      'train',
      /maxSteps: the run being resumed is already at step 4, past maxSteps = 2/,
    );
  });

  it('generation refuses NaN weights and a tokenizer that does not fit the model', async () => {
    const run = freshRun('nangen');
    const ck = path.join(run, 'checkpoint');
    await poison(path.join(ck, 'model.safetensors'), /wte/);
    const r = cli(['generate', ck, 'The', '--temperature', '0', '--max-tokens', '5']);
    expectNamedError(r, 'generate', /model\.safetensors \[transformer\.wte\.weight\]: holds NaN/);
    expect(r.stdout).toBe('');
    // a BPE model (vocabulary 300) with the character tokenizer (58 ids) in its folder
    const b = cli([
      'train',
      'corpus.txt',
      ...TINY.filter((a) => !a.startsWith('--tokenizer')),
      '--tokenizer=bpe',
      '--vocabSize=300',
      '--maxSteps=1',
      '--outDir=runs',
      '--cacheDir=cache',
      '--name=bpe',
    ]);
    expect(b.code, b.stderr).toBe(0);
    const bck = path.join(tmp, 'runs', 'bpe', 'checkpoint');
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(tmp, 'base', 'checkpoint', f), path.join(bck, f));
    expectNamedError(
      cli(['generate', bck, 'The', '--max-tokens', '5']),
      'generate',
      /tokenizer has \d+ ids but the model's vocabulary has 300/,
    );
  });

  it('generation_config.json sets the defaults: do_sample false is greedy, an invalid file is refused, the CLI says which', () => {
    const ck = path.join(freshRun('gencfg'), 'checkpoint');
    const t = cli(['generate', ck, 'The', '--max-tokens', '3']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(
      /sampling: temperature 0\.8, top-k 40; defaults from generation_config\.json \(do_sample: true\)/,
    );
    fs.writeFileSync(path.join(ck, 'generation_config.json'), JSON.stringify({ do_sample: false }));
    const g1 = cli(['generate', ck, 'The', '--max-tokens', '8', '--seed', '1']);
    const g2 = cli(['generate', ck, 'The', '--max-tokens', '8', '--seed', '2']);
    expect(g1.stderr).toMatch(/sampling: greedy; defaults from generation_config\.json/);
    expect(g1.stdout).toBe(g2.stdout); // greedy: the seed does not matter
    fs.writeFileSync(path.join(ck, 'generation_config.json'), '{"do_sample": tru');
    expectNamedError(cli(['generate', ck, 'The']), 'generate', /generation_config\.json: not valid JSON/);
    fs.writeFileSync(path.join(ck, 'generation_config.json'), JSON.stringify({ do_sample: true, top_k: 'forty' }));
    expectNamedError(
      cli(['generate', ck, 'The']),
      'generate',
      /generation_config\.json: top_k: expected a whole number ≥ 0, got "forty"/,
    );
  });

  it('tokenizer train refuses an empty or binary corpus (as train does) and reports Latin-1', () => {
    fs.writeFileSync(path.join(tmp, 'empty.txt'), '');
    fs.writeFileSync(path.join(tmp, 'nul.txt'), Buffer.from([0x41, 0, 0x42, 0, 0x43, 0]));
    expectNamedError(
      cli(['tokenizer', 'train', 'empty.txt', '--vocab-size', '300', '--out', 'tok-empty']),
      'tokenizer',
      /the corpus is empty/,
    );
    expectNamedError(cli(['train', 'empty.txt', ...TINY, '--outDir=runs']), 'train', /the corpus is empty/);
    expectNamedError(
      cli(['tokenizer', 'train', 'nul.txt', '--vocab-size', '300', '--out', 'tok-nul']),
      'tokenizer',
      /looks binary \(3 NUL bytes\)/,
    );
    expect(fs.existsSync(path.join(tmp, 'tok-empty'))).toBe(false);
    const latin1 = Buffer.from(`${'Le café est très bon. '.repeat(40)}`, 'latin1'); // é, è as single bytes
    fs.writeFileSync(path.join(tmp, 'latin1.txt'), Buffer.concat([Buffer.from('x'.repeat(20_000)), latin1]));
    const r = cli(['tokenizer', 'train', 'latin1.txt', '--vocab-size', '280', '--out', 'tok-latin1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: latin1\.txt: 80 bytes are not valid UTF-8/);
    const t = cli([
      'train',
      'latin1.txt',
      ...TINY,
      '--maxSteps=1',
      '--outDir=runs',
      '--name=latin1',
      '--samplePrompts=Le',
    ]);
    expect(t.code, t.stderr).toBe(0);
    expect(`${t.stdout}${t.stderr}`).toMatch(/warning: latin1\.txt: 80 bytes are not valid UTF-8/);
  });
});
