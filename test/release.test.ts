// Trainers free what they held when they end (releaseRun, src/train/recipe.ts): the optimizer's moments and the
// parameters of every model they trained or scored with. Without it, runs one after another in one process (`align
// verify`: SFT → reward model → PPO → DPO …) piled up WebAssembly memory until a 128-wide model hit the 4 GiB heap.
// Checked on the wasm backend's allocator: a second identical run leaves the heap where the first left it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpo } from '../src/align/dpo.js';
import { buildDpoConfig } from '../src/align/dpo_settings.js';
import { sft } from '../src/align/sft.js';
import { buildSftConfig } from '../src/align/sft_settings.js';
import { getBackend } from '../src/backend/registry.js';
import { quiet } from './ppo_helpers.js';
import { colorRows, makeTinyModel, writeJsonl } from './sft_helpers.js';

let tmp: string;
let base: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-release-'));
  base = path.join(tmp, 'base');
  await makeTinyModel(base, { nEmbd: 64 });
}, 60_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const inUse = () => getBackend('wasm').memory().inUse;

describe('a finished run frees its models and optimizer state', () => {
  it('SFT then DPO, twice in one process: the second pair leaves the wasm heap where the first left it', async () => {
    const sftData = writeJsonl(path.join(tmp, 'sft.jsonl'), colorRows(32));
    const prefs = writeJsonl(
      path.join(tmp, 'prefs.jsonl'),
      colorRows(16).map((r) => ({
        prompt: [r.messages[0]],
        chosen: [r.messages[1]],
        rejected: [{ role: 'assistant', content: 'no.' }],
      })),
    );
    const runPair = async (k: number) => {
      const s = await sft({
        ...quiet,
        config: buildSftConfig({
          preset: 'tiny',
          overrides: {
            model: base,
            data: [sftData],
            outDir: path.join(tmp, 'runs'),
            name: `sft-${k}`,
            backend: 'wasm',
            quiet: true,
            maxSteps: 3,
          },
        }),
      });
      await dpo({
        ...quiet,
        config: buildDpoConfig({
          preset: 'tiny',
          overrides: {
            model: s.checkpointDir,
            data: [prefs],
            outDir: path.join(tmp, 'runs'),
            name: `dpo-${k}`,
            backend: 'wasm',
            quiet: true,
            maxSteps: 3,
          },
        }),
      });
      return inUse();
    };
    const first = await runPair(1);
    const second = await runPair(2);
    const third = await runPair(3);
    // the model's parameters alone are ~0.4 MB; each SFT + DPO pair held ~5× that (policy, grads, AdamW m and v)
    expect(Math.abs(second - first)).toBeLessThan(64 * 1024);
    expect(Math.abs(third - second)).toBeLessThan(64 * 1024);
  }, 120_000);
});
