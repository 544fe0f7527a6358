/**
 * The backend contract (docs/BACKENDS.md): one validator for every kernel call, with named errors; supports(op,
 * dtypes); the host-step queue's ordering; and the GPU-shaped `async-test` backend of ./async_backend.ts (no
 * readSync, six kernels, everything else on ref through enqueueHost) training one AdamW step and decoding greedily
 * exactly as ref does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, DType, View } from '../src/backend/backend.js';
import { runKernel } from '../src/backend/dispatch.js';
import { HostStepQueue } from '../src/backend/host_queue.js';
import { getBackend, initBackend } from '../src/backend/registry.js';
import { validateKernelCall } from '../src/backend/validate.js';
import { generate } from '../src/generate/engine.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { shiftTargets } from '../src/model/model.js';
import { AdamW } from '../src/optim/adamw.js';
import { backward } from '../src/tensor/autograd.js';
import { BackendError, ConfigError, ShapeError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { AsyncTestBackend } from './async_backend.js';
import { relErr } from './helpers.js';

/** A view of a fresh zeroed buffer on `be` (a fake buffer when no backend is given: the validator needs no memory). */
function v(shape: number[], dtype: DType = 'f32', be?: Backend): View {
  const n = shape.reduce((a, b) => a * b, 1);
  return { buf: be ? be.alloc(n, dtype) : { backend: 'none', length: n, dtype }, shape };
}

describe('validateKernelCall: one validator, named errors', () => {
  it('names the kernel, the operand and what was expected', () => {
    expect(() => validateKernelCall('matmul', [v([3, 5]), v([4, 7])], [v([3, 7])])).toThrow(
      /matmul: input b \[4, 7\] must be \[K = 5, N = 7\]/,
    );
    expect(() =>
      validateKernelCall('layernorm', [v([2, 8]), v([8]), v([7])], [v([2, 8]), v([2]), v([2])], { eps: 1e-5 }),
    ).toThrow(/layernorm: input b \[7\] must hold C = 8/);
    expect(() =>
      validateKernelCall(
        'attention',
        [v([1, 2, 3, 4]), v([1, 5, 2, 4]), v([1, 5, 2, 4])],
        [v([1, 2, 3, 4]), v([1, 3, 2])],
        { scale: 1 },
      ),
    ).toThrow(/attention: input k \[1, 5, 2, 4\] must be \[B = 1, S, Hkv, D = 4\] with Hq = 3 a multiple of Hkv/);
    expect(() => validateKernelCall('concat', [v([2, 3]), v([3, 3])], [v([5, 4])], { axis: 0 })).toThrow(ShapeError);
    expect(() =>
      validateKernelCall('adamw', [v([4])], [v([4]), v([4])], {
        lr: 1,
        beta1: 0.9,
        beta2: 0.9,
        eps: 0,
        weightDecay: 0,
        step: 1,
      }),
    ).toThrow(/adamw: 1 inputs need 3 outputs \(param, m, v each\), got 2/);
    expect(() => validateKernelCall('write_at', [v([5])], [v([8])], { offset: 4 })).toThrow(
      /write_at: 5 elements at offset 4 do not fit/,
    );
  });

  it('checks counts, dtypes, ranks and attributes', () => {
    expect(() => validateKernelCall('softmax_backward', [v([2, 3])], [v([2, 3])])).toThrow(
      /softmax_backward: needs 2 inputs \(y, dy\), got 1/,
    );
    expect(() => validateKernelCall('embedding', [v([5, 4]), v([3], 'f32')], [v([3, 4])])).toThrow(
      /embedding: input ids is f32, expected i32/,
    );
    expect(() => validateKernelCall('add', [v([3]), v([3], 'f64')], [v([3])])).toThrow(
      /add: float operands mix f32 and f64/,
    );
    expect(() => validateKernelCall('write_at', [v([2], 'i32')], [v([8])], { offset: 0 })).toThrow(
      /write_at: operands mix i32 and f32/,
    );
    expect(() => validateKernelCall('rope', [v([2, 3, 4])], [v([2, 3, 4])], { theta: 1e4 })).toThrow(
      /rope: input x \[2, 3, 4\] must have rank 4/,
    );
    const err = (() => {
      try {
        validateKernelCall('layernorm', [v([2, 8]), v([8]), v([8])], [v([2, 8]), v([2]), v([2])], {
          eps: 1e-5,
          epsilon: 1,
        });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/layernorm: unknown kernel attribute/);
    expect(() => validateKernelCall('layernorm', [v([2, 8]), v([8]), v([8])], [v([2, 8]), v([2]), v([2])])).toThrow(
      /layernorm: kernel attribute is required/,
    );
    expect(() => validateKernelCall('dropout', [v([4])], [v([4])], { p: 1.5, seed: 1 })).toThrow(
      /dropout: kernel attribute 1.5 outside \[0, 1\]/,
    );
    expect(() => validateKernelCall('no_such_kernel', [], [])).toThrow(BackendError);
    // valid calls pass
    validateKernelCall('matmul', [v([2, 3, 5]), v([7, 5]), v([7])], [v([2, 3, 7])], { transB: true });
    validateKernelCall('sample', [v([2, 9])], [v([2], 'i32'), v([2, 2])], { temperature: 0, u: [0, 0] });
  });

  it('every backend checks in run, before touching memory', async () => {
    const backends: Backend[] = [
      getBackend('ref'),
      await initBackend('wasm', { setDefault: false }),
      new AsyncTestBackend(),
    ];
    for (const be of backends) {
      const out = v([2, 2], 'f32', be);
      be.write(out.buf, Float32Array.of(1, 2, 3, 4));
      // add is native everywhere; matmul native on ref/wasm and validated by dispatch before the async fallback
      expect(() => runKernel(be, 'add', [v([3], 'f32', be), v([2], 'f32', be)], [out]), be.name).toThrow(ShapeError);
      expect(() => runKernel(be, 'matmul', [v([2, 3], 'f32', be), v([2, 2], 'f32', be)], [out]), be.name).toThrow(
        /matmul: input b/,
      );
      expect(Array.from(await be.read(out.buf)), be.name).toEqual([1, 2, 3, 4]);
    }
  });
});

describe('supports(op, dtypes)', () => {
  it('says which kernels run natively for which input dtypes', async () => {
    const ref = getBackend('ref'),
      wasm = await initBackend('wasm', { setDefault: false }),
      gpu = new AsyncTestBackend();
    expect(ref.supports('matmul', ['f64', 'f64'])).toBe(true);
    expect(wasm.supports('matmul', ['f32', 'f32'])).toBe(true);
    expect(wasm.supports('matmul', ['f64', 'f64'])).toBe(false);
    expect(wasm.supports('no_such_kernel')).toBe(false);
    expect(gpu.supports('add', ['f32', 'f32'])).toBe(true);
    expect(gpu.supports('add', ['i32', 'i32'])).toBe(false);
    expect(gpu.supports('matmul')).toBe(false);
  });
});

describe('HostStepQueue', () => {
  it('runs device work at once until a host step is pending, then in order behind it', async () => {
    const q = new HostStepQueue(),
      log: string[] = [];
    q.device(() => log.push('a'));
    expect(log).toEqual(['a']);
    let release!: () => void;
    q.host(async () => {
      log.push('step start');
      await new Promise<void>((r) => (release = r));
      log.push('step end');
    });
    q.device(() => log.push('b'));
    expect(q.pending).toBe(true);
    const read = q.after(async () => log.push('read'));
    await new Promise((r) => setTimeout(r, 5));
    expect(log).toEqual(['a', 'step start']);
    release();
    await read;
    expect(log).toEqual(['a', 'step start', 'step end', 'b', 'read']);
    expect(q.pending).toBe(false);
    q.device(() => log.push('c'));
    expect(log.at(-1)).toBe('c');
  });

  it('keeps the first error of a step and rejects the next settle with it, once', async () => {
    const q = new HostStepQueue();
    q.host(async () => {
      throw new ShapeError('boom');
    });
    q.device(() => {
      throw new Error('second');
    });
    await expect(q.settled()).rejects.toThrow('boom');
    await expect(q.settled()).resolves.toBeUndefined();
  });
});

describe('a backend without readSync and with six kernels', () => {
  const config: ModelConfig = {
    family: 'llama',
    vocabSize: 61,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    intermediateSize: 48,
    maxPositions: 64,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    attentionBias: false,
    attentionOutBias: false,
    mlpBias: false,
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
  let gpu: AsyncTestBackend;
  beforeAll(() => {
    gpu = new AsyncTestBackend();
  });
  afterAll(() => gpu.dispose());

  // exact up to rounding: a backend without a kernel's accumulate mode adds the fresh gradient separately (grad_rules)
  it('trains: forward, backward and one AdamW step match ref', async () => {
    const results: { loss: number; grads: Float32Array[]; params: Float32Array[] }[] = [];
    const initial: Float32Array[] = [];
    for (const be of [getBackend('ref'), gpu]) {
      const model = initModel(config, new Rng(7), { std: 0.3, backend: be });
      if (!initial.length) for (const p of model.params.values()) initial.push((await p.data()) as Float32Array);
      const ids = Int32Array.from({ length: 2 * 9 }, (_, i) => (i * 17 + 3) % config.vocabSize);
      const loss = model.loss(ids, shiftTargets(ids, 2, 9), 2, 9);
      backward(loss);
      const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0.1 });
      const grads: Float32Array[] = [];
      for (const p of model.params.values()) grads.push((await p.grad!.data()) as Float32Array);
      opt.step({ gradScale: 0.5 });
      const params: Float32Array[] = [];
      for (const p of model.params.values()) params.push((await p.data()) as Float32Array);
      results.push({ loss: await loss.item(), grads, params });
      opt.dispose();
    }
    const [want, got] = results as [(typeof results)[0], (typeof results)[0]];
    expect(got.loss).toBe(want.loss);
    expect(got.grads.length).toBe(want.grads.length);
    got.grads.forEach((g, k) => expect(relErr(g, want.grads[k]!), `grad ${k}`).toBeLessThan(1e-6));
    got.params.forEach((p, k) => expect(relErr(p, want.params[k]!), `param ${k}`).toBeLessThan(1e-6));
    // the step moved every parameter (so matching params is not matching the initial ones)
    expect(want.params.every((p, k) => relErr(p, initial[k]!) > 1e-4)).toBe(true);
    expect(gpu.counts.native).toBeGreaterThan(0); // its own kernels ran…
    expect(gpu.counts.hostSteps).toBeGreaterThan(0); // …and the rest went to ref, including adamw
  });

  it('decodes greedily through the KV cache (write_at on ref) to the same ids as ref', async () => {
    const runs: number[][] = [];
    for (const be of [getBackend('ref'), gpu]) {
      const model = initModel(config, new Rng(11), { std: 0.8, backend: be });
      const r = await generate(model, [[1, 2, 3, 4]], { temperature: 0, maxTokens: 12 });
      runs.push(r.choices[0]!.ids);
    }
    expect(runs[0]!.length).toBe(12);
    expect(new Set(runs[0]).size).toBeGreaterThan(2); // not a degenerate repeat
    expect(runs[1]).toEqual(runs[0]);
  });
});
