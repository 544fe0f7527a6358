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
import { KVCache } from '../src/model/kv_cache.js';
import { keep, tensor, tidy } from '../src/tensor/tensor.js';
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

describe('a KV cache frees the buffers it replaces', () => {
  // keepRows (finished rows dropped mid-batch) and reserve (a prompt cache growing) used to leave the replaced
  // buffers alive through views never freed: ~250 MiB per 800 sampled replies in align verify, until a run hit 4 GiB
  it('keepRows and reserve, then dispose: the heap is back where it started', async () => {
    const b = getBackend('wasm');
    const D = 8,
      Hkv = 2;
    const kv = (B: number, T: number, x: number) =>
      tensor(new Float32Array(B * T * Hkv * D).fill(x), [B, T, Hkv, D], { backend: b });
    const before = inUse();
    const c = new KVCache(2, 4, 16);
    for (let l = 0; l < 2; l++)
      tidy(() => {
        c.append(l, kv(4, 3, l + 1), kv(4, 3, -(l + 1)));
      });
    c.advance(3);
    c.keepRows([1, 3]);
    expect(c.batch).toBe(2);
    const [k] = tidy(() => c.append(0, kv(2, 1, 5), kv(2, 1, 6)).map((t) => keep(t)));
    expect(Array.from((await k!.data()).subarray(0, 4))).toEqual([1, 1, 1, 1]); // row 1's first cached key
    k!.dispose();
    c.dispose();
    expect(inUse()).toBe(before);

    const one = new KVCache(1, 1, 4);
    tidy(() => {
      one.append(0, kv(1, 2, 7), kv(1, 2, 8));
    });
    one.advance(2);
    one.reserve(12);
    expect(one.maxLen).toBe(12);
    one.dispose();
    expect(inUse()).toBe(before);
  });
});
