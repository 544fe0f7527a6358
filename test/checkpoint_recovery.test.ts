/**
 * Resumed state is input like any other (issue 16): trainer_state.json fields are validated with the file and field
 * named, and a checkpoint folder left half-swapped by `kill -9` is recovered (`.checkpoint.old-*` renamed back,
 * `.checkpoint.building-*` removed) before --resume looks for it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readTrainerState, recoverCheckpointDir, resolveCheckpointDir } from '../src/train/checkpoint.js';
import { FileFormatError } from '../src/util/errors.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-ck-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const valid = {
  version: 1,
  step: 4,
  seed: 1,
  optimizerStep: 4,
  tokensSeen: 64,
  trainSeconds: 1.5,
  evals: [],
  recentLosses: [1, 2],
  bestValLoss: null,
  bestValStep: null,
  batcher: { rng: { hi: 1, lo: 2, spare: null }, drawn: 4 },
  config: { maxSteps: 10 },
};

function write(folder: string, state: unknown): void {
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, 'trainer_state.json'), JSON.stringify(state));
}

describe('trainer_state.json validation', () => {
  it('accepts a valid state', () => {
    write(dir, valid);
    expect(readTrainerState(dir).step).toBe(4);
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['negative step', { step: -5 }, /\[step\]: expected a whole number ≥ 0, got -5/],
    ['fractional step', { step: 2.5, optimizerStep: 2.5 }, /\[step\]/],
    ['optimizer step out of line', { optimizerStep: 7 }, /\[optimizerStep\]: expected the same as step \(4\)/],
    ['negative tokens', { tokensSeen: -1 }, /\[tokensSeen\]/],
    ['NaN-ish seconds', { trainSeconds: 'soon' }, /\[trainSeconds\]/],
    ['batcher position', { batcher: { rng: { hi: 1, lo: 2, spare: null }, drawn: -3 } }, /\[batcher\.drawn\]/],
    ['batcher rng', { batcher: { rng: 'x', drawn: 3 } }, /\[batcher\.rng\]/],
    ['evals', { evals: {} }, /\[evals\]: expected a list/],
    ['best loss', { bestValLoss: 'low' }, /\[bestValLoss\]/],
    ['config', { config: [1] }, /\[config\]: expected an object/],
  ];
  for (const [what, change, msg] of cases) {
    it(`refuses ${what}, naming the file and field`, () => {
      write(dir, { ...valid, ...change });
      let err: unknown;
      try {
        readTrainerState(dir);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FileFormatError);
      expect((err as Error).message).toMatch(/trainer_state\.json/);
      expect((err as Error).message).toMatch(msg);
    });
  }
});

describe('checkpoint recovery after kill -9', () => {
  it('restores checkpoint/ from the newest complete .checkpoint.old-* and removes the rest', () => {
    const run = path.join(dir, 'run');
    write(path.join(run, '.checkpoint.old-1-1-a'), { ...valid, step: 2 });
    write(path.join(run, '.checkpoint.old-1-2-b'), { ...valid, step: 4 });
    const t = Date.now() / 1000;
    fs.utimesSync(path.join(run, '.checkpoint.old-1-1-a', 'trainer_state.json'), t - 100, t - 100);
    fs.mkdirSync(path.join(run, '.checkpoint.building-1-3-c'));
    const ck = resolveCheckpointDir(run);
    expect(ck).toBe(path.join(run, 'checkpoint'));
    expect(readTrainerState(ck).step).toBe(4);
    expect(fs.readdirSync(run)).toEqual(['checkpoint']);
  });

  it('keeps a whole checkpoint/ and only removes leftovers beside it', () => {
    const run = path.join(dir, 'run');
    write(path.join(run, 'checkpoint'), valid);
    write(path.join(run, '.checkpoint.old-1-1-a'), { ...valid, step: 2 });
    fs.mkdirSync(path.join(run, '.checkpoint.building-1-3-c'));
    const done = recoverCheckpointDir(path.join(run, 'checkpoint'));
    expect(done).toHaveLength(1); // the building folder; the old one is removed without a word
    expect(fs.readdirSync(run)).toEqual(['checkpoint']);
    expect(readTrainerState(path.join(run, 'checkpoint')).step).toBe(4);
  });

  it('with nothing to recover: the named E_NO_CHECKPOINT error', () => {
    fs.mkdirSync(path.join(dir, 'empty'));
    expect(() => resolveCheckpointDir(path.join(dir, 'empty'))).toThrow(/no trainer_state\.json here/);
  });
});
