/** Test helpers: where the fixtures are (inside the repository), and relative-error comparisons. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it, type TestContext } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

/** The reference fixtures the suite needs (test/fixtures: hf, training, rlhf), or `$LLMTS_FIXTURES`. */
export const FIXTURES = process.env['LLMTS_FIXTURES'] ?? path.join(import.meta.dirname, 'fixtures');
/** Hugging Face parity cases: every sub-folder with a config.json; `$HF_FIXTURES` points at another folder. */
export const HF_FIXTURES = process.env['HF_FIXTURES'] ?? path.join(FIXTURES, 'hf');
/** The shipped tinyshakespeare text (data/ at the repository root, also in the npm package). */
export const SHAKESPEARE = path.join(import.meta.dirname, '..', 'data', 'tinyshakespeare.txt');

/** The user pointed the suite at fixtures of their own ($HF_FIXTURES or $LLMTS_FIXTURES), which may hold fewer cases. */
export const FIXTURES_ELSEWHERE =
  process.env['HF_FIXTURES'] !== undefined || process.env['LLMTS_FIXTURES'] !== undefined;
const WHERE =
  process.env['HF_FIXTURES'] !== undefined
    ? '$HF_FIXTURES'
    : process.env['LLMTS_FIXTURES'] !== undefined
      ? '$LLMTS_FIXTURES'
      : 'test/fixtures';

/**
 * Inside a test that needs fixtures: the shipped ones (test/fixtures) must be there, so finding none fails the test;
 * fixtures the user pointed elsewhere may lack them, and then the test is reported as skipped, saying why.
 */
export function needFixtures(ctx: TestContext, found: number, what = 'Hugging Face fixture folders'): void {
  if (found > 0) return;
  if (FIXTURES_ELSEWHERE) ctx.skip(`no ${what} in ${WHERE}`);
  expect.fail(`no ${what} in ${WHERE}`);
}

/** The test a fixture-driven file starts with: it fails, or is skipped with the reason, when there are none. */
export function itFindsFixtures(found: number, what = 'Hugging Face fixture folders'): void {
  it(`finds ${what}`, (ctx) => {
    needFixtures(ctx, found, what);
    expect(found).toBeGreaterThan(0);
  });
}

/** Sub-folders of the HF fixtures folder (each is one test case). */
export function fixtureDirs(root = HF_FIXTURES): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, d.name, 'config.json')))
    .map((d) => path.join(root, d.name));
}

/** ‖a − b‖ / ‖b‖ (with ‖b‖ floored so all-zero references compare absolutely). */
/** A tokenizer of the 256 single bytes (id = byte), as the GGUF tests write into their files. */
export function byteTokenizer(): Tokenizer {
  return new Tokenizer({ tokenBytes: Array.from({ length: 256 }, (_, i) => new Uint8Array([i])), merges: [] });
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
}

/**
 * The backends every cross-backend suite runs on: ref, and wasm (built by `npm ci`). A wasm backend that fails to
 * start is a test failure, not a silent skip — set LLMTS_TEST_BACKENDS=ref to run the oracle alone on purpose, or a
 * comma list of registered names (LLMTS_TEST_BACKENDS=ref,async-test) to run these suites on a new backend.
 */
export async function testBackends(): Promise<import('../src/backend/backend.js').Backend[]> {
  const { getBackend, initBackend } = await import('../src/backend/registry.js');
  const names = (process.env['LLMTS_TEST_BACKENDS'] ?? 'ref,wasm')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n);
  if (names.includes('async-test')) await import('./async_backend.js'); // registers it
  const list = [getBackend('ref')];
  for (const n of names) if (n !== 'ref') list.push(await initBackend(n, { setDefault: false }));
  return list;
}

/** Newest modification time of the files below `dir` (the AssemblyScript sources are built apart, by build:wasm). */
function newestMtime(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? (e.name === 'assembly' ? 0 : newestMtime(p)) : fs.statSync(p).mtimeMs);
  }
  return t;
}

/** The CLI runs from dist/ (bin/llmts.js): compile src/ first when a source file is newer than dist/cli/main.js. */
export function ensureCliBuilt(): void {
  const root = path.join(import.meta.dirname, '..');
  const main = path.join(root, 'dist', 'cli', 'main.js');
  if (fs.existsSync(main) && newestMtime(path.join(root, 'src')) <= fs.statSync(main).mtimeMs) return;
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building dist/ for the CLI tests failed:\n${r.stdout}${r.stderr}`);
}

/**
 * A small ModelConfig of `family` for tests: GPT-2's block (biases, tied head, GELU MLP of 4·C) or Llama's (no
 * biases, SwiGLU of `intermediateSize`, grouped keys/values: half the heads), dropout 0, then `over` on top.
 */
export function smallModelConfig(
  family: 'gpt2' | 'llama',
  over: Partial<import('../src/model/config.js').ModelConfig> = {},
): import('../src/model/config.js').ModelConfig {
  const C = over.hiddenSize ?? 32,
    H = over.numHeads ?? 4;
  const gpt2 = family === 'gpt2';
  return {
    family,
    vocabSize: 96,
    hiddenSize: C,
    numLayers: 3,
    numHeads: H,
    numKvHeads: gpt2 ? H : H / 2,
    headDim: C / H,
    intermediateSize: gpt2 ? 4 * C : (5 * C) / 2,
    maxPositions: 32,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: gpt2,
    attentionBias: gpt2,
    attentionOutBias: gpt2,
    mlpBias: gpt2,
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
    ...over,
  };
}

/** Record the T of every forward `model` runs from now on (the model's forward is wrapped). */
export function countForwards(model: import('../src/model/model.js').CausalLM): number[] {
  const seen: number[] = [];
  const f = model.forward.bind(model);
  model.forward = (ids, B, T, opts) => {
    seen.push(T);
    return f(ids, B, T, opts);
  };
  return seen;
}

/** Run a CLI main in process, capturing what it writes to stdout and stderr. */
export async function captureOutput(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const { vi } = await import('vitest');
  let out = '',
    err = '';
  const o = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await fn();
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}
