/**
 * The tensor-core kernels (src/backend/webgpu/matmul_tc_wgsl.ts) through Dawn's own compiler and validation, without
 * a GPU: Dawn's null backend (`create(['backend=null', 'enable-dawn-features=allow_unsafe_apis'])` in the `webgpu`
 * package) offers shader-f16, subgroups and chromium-experimental-subgroup-matrix, compiles WGSL with the same tint
 * front end a GPU's Dawn uses, and validates pipelines, bind groups and dispatches as a GPU's device does — but runs
 * no shader (reads give zeros). SwiftShader offers none of those features, so this is the only place here where the
 * real subgroup-matrix spelling meets the real compiler:
 *
 *  - every product kernel (both spellings, with and without bias / accumulate) and both cast kernels compile and make
 *    pipelines; the 'template' spelling without a single message, the 'bool' one with only deprecation warnings
 *    (why SPELLINGS tries 'template' first); a misspelling is refused (so the check can fail);
 *  - the backend on that device: its self-check compiles the first spelling and is then turned off by the cast check
 *    (zeros: no shader ran), never a wrong "on";
 *  - the self-check's products through the backend's tensor-core path (every layout, alpha, bias, accumulate,
 *    batched, shared operand, ragged) and two training steps of a small GPT on the f16 path, forward and backward,
 *    record and submit without a validation error (bind group layouts against `array<f16>` bindings, binding sizes of
 *    the padded scratch, the grid); with the workgroup Dawn refuses (32 < the null adapter's 128-wide subgroups) the
 *    same call is a named device error.
 * The null adapter's subgroups are 4–128 wide; Dawn wants a subgroup-matrix kernel's workgroup to be a multiple of the
 * widest, so these tests set tensorCoreMatmul.wg to 128 (NVIDIA: 32, the default). Skipped where `webgpu` does not load.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { withPrelude } from '../src/backend/webgpu/core.js';
import { createWebGpuBackend, type WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { castShader, SPELLINGS, tensorCoreMatmul, tensorCoreShader } from '../src/backend/webgpu/matmul_tc_wgsl.js';
import { loadNodeWebGpu } from '../src/backend/webgpu/node_gpu.js';
import {
  TC_CHECKS,
  TC_FEATURES,
  type TcCheck,
  type TcCheckData,
  tcCheckData,
} from '../src/backend/webgpu/tensor_cores.js';
import type { GpuLike } from '../src/backend/webgpu/types.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { shiftTargets } from '../src/model/model.js';
import { AdamW } from '../src/optim/adamw.js';
import { backward } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { smallModelConfig } from './helpers.js';

interface Messages {
  messages: readonly { type: string; message: string }[];
}
interface RawDevice {
  features: ReadonlySet<string>;
  createShaderModule(d: { code: string }): { getCompilationInfo(): Promise<Messages> };
  createComputePipelineAsync(d: unknown): Promise<unknown>;
  pushErrorScope(f: string): void;
  popErrorScope(): Promise<{ message: string } | null>;
  destroy(): void;
}

type Runner = (c: TcCheck, d: TcCheckData, path: { tc: 'template' }) => Promise<Float32Array>;

async function nullGpu(): Promise<{ gpu: GpuLike; why: string } | { gpu: null; why: string }> {
  try {
    const m = await loadNodeWebGpu();
    const gpu = m.create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
    const a = await gpu.requestAdapter();
    if (!a) return { gpu: null, why: "Dawn's null backend gave no adapter" };
    if (!TC_FEATURES.every((f) => a.features.has(f)))
      return { gpu: null, why: `Dawn's null adapter lacks ${TC_FEATURES.filter((f) => !a.features.has(f))}` };
    return { gpu, why: '' };
  } catch (e) {
    return { gpu: null, why: (e as Error).message.split('\n')[0]! };
  }
}

const found = await nullGpu();
if (!found.gpu) console.warn(`webgpu tensor cores on Dawn's null backend: skipped (${found.why})`);
const NULL_WG = 128;

describe.skipIf(!found.gpu)("tensor-core kernels through Dawn's compiler (null backend)", () => {
  const gpu = found.gpu!;
  const made: { destroy?: () => void; dispose?: () => void }[] = [];
  afterAll(() => {
    for (const m of made) m.dispose ? m.dispose() : m.destroy?.();
  });

  async function rawDevice(): Promise<RawDevice> {
    const a = (await gpu.requestAdapter())!;
    const d = (await a.requestDevice({ requiredFeatures: [...TC_FEATURES] })) as unknown as RawDevice;
    made.push(d);
    return d;
  }

  /** Compile `code` (prelude added) and make its pipeline: the compiler's messages and the pipeline's refusal. */
  async function compile(d: RawDevice, code: string): Promise<{ messages: string[]; refused: string | null }> {
    d.pushErrorScope('validation');
    const m = d.createShaderModule({ code: withPrelude(code, 4) });
    const info = await m.getCompilationInfo();
    let refused: string | null = null;
    try {
      await d.createComputePipelineAsync({ layout: 'auto', compute: { module: m, entryPoint: 'main' } });
    } catch (e) {
      refused = (e as Error).message;
    }
    const scoped = await d.popErrorScope();
    return {
      messages: info.messages.map((x) => `${x.type}: ${x.message}`),
      refused: refused ?? scoped?.message ?? null,
    };
  }

  it("every product kernel compiles in both spellings; 'template' without a message, 'bool' only deprecated", async () => {
    const d = await rawDevice();
    expect([...d.features]).toEqual(expect.arrayContaining([...TC_FEATURES]));
    expect(SPELLINGS[0]).toBe('template');
    for (const bias of [false, true])
      for (const acc of [false, true]) {
        const t = await compile(d, tensorCoreShader('template', 4, 4, bias, acc, NULL_WG));
        expect(t).toEqual({ messages: [], refused: null });
      }
    // one 'bool' kernel (Dawn prints its warnings on stderr): compiles, every message a deprecation warning
    const b = await compile(d, tensorCoreShader('bool', 1, 1, true, true, NULL_WG));
    expect(b.refused).toBe(null);
    expect(b.messages.length).toBeGreaterThan(0);
    for (const m of b.messages) expect(m).toBe('warning: use of deprecated builtin');
    for (const trans of [false, true])
      expect(await compile(d, castShader(trans))).toEqual({ messages: [], refused: null });
  });

  it('a misspelt load is refused, and a workgroup narrower than the widest subgroup makes no pipeline', async () => {
    const d = await rawDevice();
    const good = tensorCoreShader('template', 2, 2, false, false, NULL_WG);
    const bad = await compile(d, good.replaceAll(', row_major>', ', rowmajor>'));
    expect(bad.messages.some((m) => m.startsWith('error:'))).toBe(true);
    expect(bad.refused).toMatch(/.+/);
    const narrow = await compile(d, tensorCoreShader('template', 2, 2, false, false, 32));
    expect(narrow.messages).toEqual([]);
    expect(narrow.refused).toMatch(/workgroup_size \(32\) must be a multiple of the device maxSubgroupSize \(128\)/);
  });

  describe('the backend on the null device', () => {
    const saved = { ...tensorCoreMatmul };
    afterAll(() => Object.assign(tensorCoreMatmul, saved));

    async function backend(): Promise<WebGpuBackend> {
      const be = await createWebGpuBackend({ gpu, matmulPrecision: 'f16' });
      made.push(be);
      return be;
    }

    it('no f16 16×16×16 configuration listed (the null adapter lists none): absent, saying so', async () => {
      const be = await backend();
      expect(be.tensorCores.status).toBe('absent');
      expect(be.tensorCores.reason).toContain('include no f16 → f32 16×16×16 (none)');
    });

    it("the self-check compiles 'template', then the cast check (zeros: nothing ran) turns it off", async () => {
      tensorCoreMatmul.wg = NULL_WG;
      try {
        const be = await backend();
        const s = await be.checkTensorCores(
          [...TC_FEATURES],
          [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }],
        );
        expect(s.status).toBe('off');
        expect(s.reason).toMatch(/^cast kernel: /);
      } finally {
        tensorCoreMatmul.wg = saved.wg;
      }
    });

    it('every product of the self-check (layouts, alpha, bias, accumulate, ragged, batched, shared) records and submits without a device error', async () => {
      tensorCoreMatmul.wg = NULL_WG;
      const be = await backend();
      // the self-check's own runner: the tensor-core path forced for one product, read back (throws if not taken)
      const run = (be as unknown as { tcCheckRun: Runner }).tcCheckRun.bind(be);
      try {
        for (const c of TC_CHECKS) {
          const got = await run(c, tcCheckData(c), { tc: 'template' });
          expect(got.length).toBe(c.batches * c.M * c.N);
        }
        expect(be.tensorCoreCalls).toBe(TC_CHECKS.length);
        // the same product with the workgroup Dawn refuses here: a named device error, not silence
        tensorCoreMatmul.wg = 32;
        const c = TC_CHECKS[0]!;
        await expect(run(c, tcCheckData(c), { tc: 'template' })).rejects.toThrow(
          /webgpu backend: device error: [\s\S]*maxSubgroupSize/,
        );
      } finally {
        tensorCoreMatmul.wg = saved.wg;
      }
    });

    it('a training step of a small GPT on the f16 path, tensor cores forced on: its products through them, no device error', async () => {
      tensorCoreMatmul.wg = NULL_WG;
      const be = await backend();
      be.tensorCores = { status: 'on', spelling: 'template', reason: 'forced by the test' };
      try {
        const C = 64,
          V = 128,
          B = 4,
          T = 64;
        const cfg: ModelConfig = smallModelConfig('gpt2', {
          hiddenSize: C,
          vocabSize: V,
          numLayers: 2,
          maxPositions: T,
        });
        const model = initModel(cfg, new Rng(3), { backend: be });
        const opt = new AdamW(model.params, { lr: 1e-3 });
        const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 11) % V);
        for (let s = 0; s < 2; s++) {
          const l = tidy(() => {
            const l = model.loss(ids, shiftTargets(ids, B, T), B, T);
            backward(l);
            return l;
          });
          await l.item(); // zeros on the null device: only that it ran without a device error matters
          l.dispose();
          opt.step({ gradScale: 1 });
          opt.zeroGrad();
          await be.sync();
        }
        // forward (qkv, projection, MLP, head) and backward (both operands' gradients) products, every step
        expect(be.tensorCoreCalls).toBeGreaterThanOrEqual(2 * 2 * (2 * 4 + 1));
        opt.dispose();
        for (const p of model.params.values()) p.dispose();
      } finally {
        tensorCoreMatmul.wg = saved.wg;
      }
    });
  });
});
