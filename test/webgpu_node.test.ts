/**
 * The webgpu backend in Node, through the optional `webgpu` package (Dawn): the kernel conformance suite
 * (./conformance_suite.ts) and the Hugging Face parity checks (./hf_parity_suite.ts), the same checks ref and wasm
 * pass, on whatever adapter Dawn offers; and `llmts train --backend webgpu` for three steps of a tiny model, whose
 * losses must be the wasm run's to 1e-5 (relative; f32 on both, summed in other orders). Without a GPU that is Chromium's SwiftShader (Vulkan on the CPU), found at
 * /usr/lib/chromium/vk_swiftshader_icd.json (src/backend/webgpu/node_gpu.ts): correctness, not speed.
 *
 * Skipped, with the reason printed, where there is no adapter (no `webgpu` package, no libvulkan1, no chromium);
 * LLMTS_REQUIRE_WEBGPU=1 makes that a failure.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { createWebGpuBackend } from '../src/backend/webgpu/backend.js';
import { isSoftwareAdapter } from '../src/backend/webgpu/device.js';
import { SWIFTSHADER_ICD, vulkanEnvFor } from '../src/backend/webgpu/node_gpu.js';
import { cases, generate, ref64, runOn, worst } from './conformance_cases.js';
import { describeConformance } from './conformance_suite.js';
import { ensureCliBuilt, fixtureDirs } from './helpers.js';
import { describeHfParity } from './hf_parity_suite.js';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { generate as generateText } from '../src/generate/engine.js';
import { loadModel } from '../src/model/hf/folder.js';
import { Rng } from '../src/util/rng.js';

const REQUIRE = process.env['LLMTS_REQUIRE_WEBGPU'] === '1';
const envBefore = { vk: process.env['VK_ADD_DRIVER_FILES'], xdg: process.env['XDG_RUNTIME_DIR'] };

let be: WebGpuBackend | null = null;
let why = '';
try {
  be = await createWebGpuBackend();
  console.info(`webgpu in Node: ${be.describe()}`);
} catch (e) {
  why = (e as Error).message;
  if (REQUIRE) throw new Error(`${why}, and LLMTS_REQUIRE_WEBGPU=1`);
  console.warn(`webgpu in Node: ${why}: skipped`);
}
afterAll(() => be?.dispose());

describe('webgpu in Node: finding an adapter', () => {
  it('adds SwiftShader only on Linux, only where the environment names no Vulkan driver, only if installed', () => {
    const yes = () => true,
      no = () => false;
    expect(vulkanEnvFor({}, 'linux', yes)).toEqual({ addDriver: SWIFTSHADER_ICD, needsXdg: true });
    expect(vulkanEnvFor({ XDG_RUNTIME_DIR: '/run/user/1' }, 'linux', no)).toEqual({ addDriver: null, needsXdg: false });
    for (const k of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES'])
      expect(vulkanEnvFor({ [k]: '/x.json' }, 'linux', yes).addDriver, k).toBeNull();
    expect(vulkanEnvFor({}, 'darwin', yes)).toEqual({ addDriver: null, needsXdg: false });
  });

  it('tells software adapters from GPUs', () => {
    const adapter = (info: object, isFallbackAdapter?: boolean) =>
      ({ limits: {}, features: new Set(), info, isFallbackAdapter, requestDevice: async () => null }) as never;
    expect(isSoftwareAdapter(adapter({ vendor: 'google', architecture: 'swiftshader' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'nvidia', isFallbackAdapter: true }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'x' }, true))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }))).toBe(
      false,
    );
  });

  it('starts a device, names its adapter, and puts the environment back', (ctx) => {
    if (!be) return ctx.skip(why);
    expect(be.describe()).toMatch(/^webgpu \(.+; \d+ kernels native/);
    if (/swiftshader/i.test(be.describe())) expect(be.software && be.describe()).toMatch(/, software;/);
    expect(process.env['VK_ADD_DRIVER_FILES']).toBe(envBefore.vk);
    expect(process.env['XDG_RUNTIME_DIR']).toBe(envBefore.xdg);
  });
});

describeConformance({ label: 'webgpu (Node)', make: () => createWebGpuBackend(), complete: true, optional: true });

// issue 13's kernels run in WGSL, not as host steps on ref (the conformance suite above would pass either way)
describe('webgpu in Node: the decode kernels run on the device', () => {
  const kernels = [
    'swiglu_fused',
    'geglu_fused',
    'rope_qkv',
    'rope_qkv_cache',
    'matmul_q8',
    'matmul_q4k',
    'matmul_bf16',
    'embedding_q8',
    'embedding_q4k',
    'embedding_bf16',
  ];
  it.for(kernels)('%s: native, no host step, ref within tolerance', async (k, ctx) => {
    if (!be) return ctx.skip(why);
    const c = cases().find((x) => x.kernel === k)!;
    const rng = new Rng(5);
    let ins = c.inputs.map((s) => generate(s, rng));
    if (c.prep) ins = await c.prep(ins);
    const inits = c.outputs.map((s) => (s.gen ? generate(s, rng) : null));
    const before = { ...be.counts };
    const got = await runOn(be, c, ins, inits, false);
    expect(be.counts.native - before.native).toBe(1);
    expect(be.counts.hostSteps - before.hostSteps).toBe(0);
    const want = await runOn(ref64, c, ins, inits, true);
    for (let o = 0; o < want.length; o++)
      expect(worst(got[o]!, want[o]!, false).ratio, `output ${o}`).toBeLessThanOrEqual(1);
  });
});

describe('webgpu in Node: sample', () => {
  // greedy on the device (ids exact, log-probabilities within tolerance); top-p: the candidates selected on the device
  // (one native call), then one host step, exact
  it.for([
    ['greedy', true],
    ['top-p', false],
  ] as const)('%s: on the device = %s, ref within tolerance', async ([, device], ctx) => {
    if (!be) return ctx.skip(why);
    const c = cases().find(
      (x) =>
        x.kernel === 'sample' &&
        x.inputs[0]!.shape[2] === 5000 &&
        x.attrs?.['temperature'] === (device ? 0 : 1) &&
        x.attrs?.['topP'] === (device ? undefined : 0.9),
    )!;
    const rng = new Rng(9);
    const ins = c.inputs.map((s) => generate(s, rng));
    const before = { ...be.counts };
    const got = await runOn(be, c, ins, [null, null], false);
    expect(be.counts.native - before.native).toBe(1);
    expect(be.counts.hostSteps - before.hostSteps).toBe(device ? 0 : 1);
    const want = await runOn(ref64, c, ins, [null, null], true);
    expect([...got[0]!]).toEqual([...want[0]!]);
    expect(worst(got[1]!, want[1]!, false).ratio).toBeLessThanOrEqual(1);
  });
});

// decoding on the device: greedy generation takes no host step at all (the KV cache, the fused decode kernels and the
// sample kernel all run in WGSL); seeded top-p sampling draws ref's ids (ref's sampler on the read-back logits)
describe('webgpu in Node: generation', () => {
  const llama = fixtureDirs().find((d) => path.basename(d) === 'llama-tiny');
  it.for([
    ['greedy', { temperature: 0 }],
    ['top-p 0.9, seeded', { temperature: 0.9, topP: 0.9, seed: 7 }],
  ] as const)('%s: the ids of ref, host steps only when sampling', async ([, opts], ctx) => {
    if (!be) return ctx.skip(why);
    if (!llama) return ctx.skip('no llama-tiny fixture');
    const prompt = [1, 5, 9, 2];
    const run = async (backend: Backend) => {
      const model = await loadModel(llama, { backend });
      const r = await generateText(model, [prompt], { ...opts, maxTokens: 6 });
      return r.choices[0]!.ids;
    };
    const want = await run(getBackend('ref'));
    const before = { ...be.counts };
    const got = await run(be);
    expect(got).toEqual(want);
    const hostSteps = be.counts.hostSteps - before.hostSteps;
    if (opts.temperature === 0) expect(hostSteps).toBe(0);
    else expect(hostSteps).toBeGreaterThan(0);
  });
});

if (be) describeHfParity('webgpu (Node)', be);
else describe.skip(`Hugging Face parity on webgpu (Node): ${why}`, () => it('skipped', () => {}));

describe('llmts train --backend webgpu', () => {
  it("three steps of a tiny model: the wasm run's losses to 1e-5", (ctx) => {
    if (!be) return ctx.skip(why);
    ensureCliBuilt();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-webgpu-train-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'corpus.txt'),
        fs.readFileSync(path.join(import.meta.dirname, '..', 'data', 'tinyshakespeare.txt'), 'utf8').slice(0, 20000),
      );
      const losses = (backend: string): number[] => {
        const r = spawnSync(
          process.execPath,
          [
            path.join(import.meta.dirname, '..', 'bin', 'llmts.js'),
            'train',
            'corpus.txt',
            ...['--tokenizer=char', '--nLayer=1', '--nEmbd=16', '--nHead=2', '--blockSize=16', '--batchSize=2'],
            ...['--evalBatches=1', '--finalEvalBatches=1', '--sampleTokens=4', '--maxSteps=3', '--report=false'],
            `--backend=${backend}`,
            `--name=${backend}`,
          ],
          { cwd: dir, encoding: 'utf8', timeout: 100_000, env: { ...process.env, NO_COLOR: '1' } },
        );
        expect(r.status, `${backend}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain(`backend ${backend} (`);
        return fs
          .readFileSync(path.join(dir, 'runs', backend, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { type: string; loss?: number })
          .filter((m) => m.type === 'step')
          .map((m) => m.loss!);
      };
      const want = losses('wasm'),
        got = losses('webgpu');
      console.info(`train losses: webgpu ${got.join(' ')}; wasm ${want.join(' ')}`);
      expect(got).toHaveLength(3);
      got.forEach((l, i) => expect(Math.abs(l - want[i]!) / want[i]!, `step ${i + 1}`).toBeLessThan(1e-5));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
