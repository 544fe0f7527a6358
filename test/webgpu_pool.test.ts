/**
 * The webgpu backend's buffer pool (src/backend/webgpu/buffer_pool.ts), in Node through Dawn (SwiftShader where there
 * is no GPU; skipped, saying why, where Dawn finds no adapter, as in ./webgpu_node.test.ts; LLMTS_REQUIRE_WEBGPU=1
 * makes that a failure):
 *  - a few training steps of a tiny model give bit-identical losses with the pool on and off, and from the third step
 *    on a step makes no new GPU buffer with the pool (it makes dozens without: every tensor);
 *  - the hazard: a buffer freed while unsubmitted work reads it is handed out again (a tensor's storage) but not
 *    overwritten before that work has read it; dispatches recorded together keep their own parameters;
 *  - out of memory: past maxBufferSize or a memory budget, OutOfMemoryError names the bytes asked, in use, pooled
 *    and the limit; past the budget the pool is emptied and the allocation tried once more first.
 */
import { describe, expect, it } from 'vitest';
import { sizeClass } from '../src/backend/webgpu/buffer_pool.js';
import type { GpuBuf } from '../src/backend/webgpu/core.js';
import { createWebGpuBackend, WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { requestWebGpuDevice } from '../src/backend/webgpu/device.js';
import type { GpuDeviceLike } from '../src/backend/webgpu/types.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { shiftTargets } from '../src/model/model.js';
import { AdamW } from '../src/optim/adamw.js';
import { gradNorm } from '../src/optim/clip.js';
import { backward } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/tensor.js';
import { OutOfMemoryError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu pool');
const make = gpu.make;
const be = await make();

describe('buffer pool size classes', () => {
  it('256 B steps below 1 MiB, 1/8 power-of-two steps from 1 MiB', () => {
    expect(sizeClass(4)).toBe(256);
    expect(sizeClass(256)).toBe(256);
    expect(sizeClass(257)).toBe(512);
    expect(sizeClass(2 ** 20 - 1)).toBe(2 ** 20);
    expect(sizeClass(2 ** 20 + 1)).toBe(2 ** 20 + 2 ** 17);
    expect(sizeClass(3 * 2 ** 20)).toBe(3 * 2 ** 20); // 1.5 × 2 MiB: a step
    expect(sizeClass(3 * 2 ** 20 + 1)).toBe(3 * 2 ** 20 + 2 ** 18);
    for (let b = 1; b < 2 ** 26; b = Math.ceil(b * 1.37)) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      expect(c % 256).toBe(0);
      if (b >= 2 ** 20) expect(c / b).toBeLessThanOrEqual(1.125);
    }
  });
});

const config: ModelConfig = {
  family: 'gpt2',
  vocabSize: 65,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 4,
  headDim: 8,
  intermediateSize: 128,
  maxPositions: 32,
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: true,
  attentionBias: true,
  attentionOutBias: true,
  mlpBias: true,
  dropout: 0,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
};

/** `steps` training steps (forward, backward, gradient norm, AdamW) of the tiny model: losses, buffers made per step. */
async function train(backend: WebGpuBackend, steps: number): Promise<{ losses: number[]; created: number[] }> {
  const model = initModel(config, new Rng(3), { std: 0.2, backend });
  const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0.1 });
  const B = 2,
    T = 16;
  const losses: number[] = [],
    created: number[] = [];
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + ((i * i) % 5)) % config.vocabSize); // one batch, learnt
  for (let s = 0; s < steps; s++) {
    const before = backend.stats().buffersCreated;
    const l = tidy(() => {
      const l = model.loss(ids, shiftTargets(ids, B, T), B, T);
      backward(l);
      return l;
    });
    losses.push(await l.item());
    l.dispose();
    await gradNorm(model.params);
    opt.step({ gradScale: 1 });
    opt.zeroGrad();
    await backend.sync();
    created.push(backend.stats().buffersCreated - before);
  }
  opt.dispose();
  for (const p of model.params.values()) p.dispose();
  return { losses, created };
}

describe('webgpu buffer pool: training', () => {
  it('the same losses with the pool on and off; no new GPU buffer per step after the second', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const off = await make({ pool: false });
    if (!off) return ctx.skip(gpu.why);
    const on = await train(be, 5);
    const without = await train(off, 5);
    console.info(
      `createBuffer calls per step, tiny model: pool on ${on.created.join(' ')}; pool off ${without.created.join(' ')}; ` +
        `losses ${on.losses.join(' ')}`,
    );
    expect(on.losses).toEqual(without.losses); // bit-identical: the same kernels on the same data
    expect(on.losses[4]!).toBeLessThan(on.losses[0]!); // it trained
    expect(on.created.slice(2)).toEqual([0, 0, 0]);
    expect(Math.min(...without.created)).toBeGreaterThan(50); // every tensor and scratch buffer of the step
    expect(be.memory().pooled).toBeGreaterThan(0);
    expect(off.memory().pooled).toBe(0);
    expect(off.stats().poolHits).toBe(0);
    // emptyCache gives the pool's buffers back to the device
    const pooled = be.memory().pooled;
    expect(be.emptyCache()).toBe(pooled);
    expect(be.memory().pooled).toBe(0);
  });
});

describe('webgpu buffer pool: a freed buffer is not overwritten before the work reading it has run', () => {
  it('storage: a dispatch reading A (unsubmitted), free A, alloc and write the same size: the result is from A', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    await be.sync();
    be.emptyCache(); // so that the only idle buffer of A's class below is A's
    const n = 1000;
    const a = be.alloc(n, 'f32'),
      o = be.alloc(n, 'f32');
    be.write(
      a,
      Float32Array.from({ length: n }, (_, i) => i),
    );
    await be.sync(); // A's data is on the device, nothing recorded
    const submits = be.stats().submits;
    be.run('scale', [{ buf: a, shape: [n] }], [{ buf: o, shape: [n] }], { alpha: 2 }); // recorded, not submitted
    expect(be.stats().submits).toBe(submits);
    be.free(a);
    const c = be.alloc(n, 'f32');
    // A tensor's storage is back in the pool at once (src/backend/webgpu/core.ts `hostWritten`): C gets A's buffer,
    // and the host write into it goes through a staging buffer and a copy recorded after the scale, so the scale still
    // reads A's values
    expect((c as GpuBuf).gpu).toBe((a as GpuBuf).gpu);
    be.write(c, new Float32Array(n).fill(-5));
    const got = await be.read(o);
    expect(Array.from(got.subarray(0, 4))).toEqual([0, 2, 4, 6]);
    expect(got[n - 1]).toBe(2 * (n - 1));
    expect(Array.from((await be.read(c)).subarray(0, 2))).toEqual([-5, -5]);
    for (const b of [c, o]) be.free(b);
  });

  it('upload staging (written by queue writes) waits for the submit: two host writes recorded together keep their own', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const n = 500;
    const x = be.alloc(n, 'f32'),
      y = be.alloc(n, 'f32'),
      a = be.alloc(n, 'f32'),
      b = be.alloc(n, 'f32');
    await be.sync();
    be.run('scale', [{ buf: x, shape: [n] }], [{ buf: y, shape: [n] }], { alpha: 2 }); // an encoder is open
    be.write(a, new Float32Array(n).fill(3)); // staged, a copy recorded; the staging buffer released
    be.write(b, new Float32Array(n).fill(7)); // must not take (and queue-write) the first staging buffer
    expect((await be.read(a))[n - 1]).toBe(3);
    expect((await be.read(b))[n - 1]).toBe(7);
    for (const t of [x, y, a, b]) be.free(t);
  });

  it('parameters: dispatches recorded together keep their own (each its slot of the uniform ring)', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const n = 64;
    const x = be.alloc(n, 'f32'),
      ys = [0, 1, 2, 3].map(() => be.alloc(n, 'f32'));
    be.write(x, new Float32Array(n).fill(1));
    await be.sync(); // the ring was written for the last command buffer: each dispatch below must get its own slot
    const submits = be.stats().submits;
    ys.forEach((y, k) => be.run('scale', [{ buf: x, shape: [n] }], [{ buf: y, shape: [n] }], { alpha: k + 2 }));
    expect(be.stats().submits).toBe(submits);
    for (let k = 0; k < ys.length; k++) expect((await be.read(ys[k]!))[n - 1]).toBe(k + 2);
    for (const b of [x, ...ys]) be.free(b);
  });
});

describe('webgpu buffer pool: out of memory', () => {
  it("past the device's maxBufferSize: OutOfMemoryError naming the bytes asked and the limit", (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const max = be.memory().limit;
    const n = Math.floor(max / 4) + 1;
    let err: unknown = null;
    try {
      be.alloc(n, 'f32');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    const e = err as OutOfMemoryError;
    expect(e.requestedBytes).toBe(n * 4);
    expect(e.limitBytes).toBe(max);
    expect(e.message).toContain(`(${n * 4} bytes;`);
    expect(e.message).toMatch(/in use, [\d.]+ MiB pooled, limit [\d.]+ MiB \(the device's maxBufferSize\)/);
  });

  it('past a memory budget: the pool is emptied and the allocation tried again, then OutOfMemoryError', async (ctx) => {
    const small = await make({ memoryBudget: 2 ** 20 });
    if (!small) return ctx.skip(gpu.why);
    expect(small.memory().limit).toBe(2 ** 20);
    const a = small.alloc(150_000, 'f32'); // 600,000 B: class 600,064
    small.free(a);
    await small.sync();
    expect(small.memory().pooled).toBeGreaterThanOrEqual(600_064);
    const b = small.alloc(175_000, 'f32'); // 700,000 B: does not fit beside the pooled buffer, fits once it is gone
    expect(small.memory().pooled).toBe(0);
    let err: unknown = null;
    try {
      small.alloc(175_000, 'f32');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    const e = err as OutOfMemoryError;
    expect(e.requestedBytes).toBe(700_000);
    expect(e.inUseBytes).toBe(700_000);
    expect(e.limitBytes).toBe(2 ** 20);
    expect(e.message).toContain('(700000 bytes; 0.7 MiB in use, 0.0 MiB pooled, limit 1.0 MiB (memoryBudget))');
    small.free(b);
    await small.sync();
    expect(small.alloc(175_000, 'f32')).toBeDefined(); // b's buffer, from the pool
  });

  it('a createBuffer the device refuses (reported later, by an error scope): the pool emptied, the next sync throws', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    // the real device, but its next out-of-memory scope reports an error (SwiftShader cannot be made to run out)
    const { device } = await requestWebGpuDevice();
    let refuse = false;
    const d = device as GpuDeviceLike;
    const wrapped: GpuDeviceLike = {
      queue: d.queue,
      limits: d.limits,
      lost: d.lost,
      createBuffer: (x) => d.createBuffer(x),
      createShaderModule: (x) => d.createShaderModule(x),
      createBindGroupLayout: (x) => d.createBindGroupLayout(x),
      createPipelineLayout: (x) => d.createPipelineLayout(x),
      createComputePipeline: (x) => d.createComputePipeline(x),
      createBindGroup: (x) => d.createBindGroup(x),
      createCommandEncoder: () => d.createCommandEncoder(),
      pushErrorScope: (f) => d.pushErrorScope(f),
      popErrorScope: async () => {
        const e = await d.popErrorScope();
        if (!refuse) return e;
        refuse = false;
        return { message: 'out of memory (test)' };
      },
      addEventListener: (t, fn) => d.addEventListener(t, fn),
      destroy: () => d.destroy(),
    };
    const g = new WebGpuBackend(wrapped, 'wrapped device', true);
    gpu.adopt(g);
    const a = g.alloc(1000, 'f32');
    g.free(a);
    await g.sync();
    expect(g.memory().pooled).toBe(4096);
    refuse = true;
    const b = g.alloc(300_000, 'f32'); // a new buffer (no idle one of its class): the device "refuses" it
    const asked = sizeClass(1_200_000); // what createBuffer was asked for: the request's size class
    expect(asked).toBe(1_310_720);
    const err = await g.sync().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as OutOfMemoryError).requestedBytes).toBe(asked);
    expect((err as OutOfMemoryError).pooledBytes).toBe(4096); // what the pool held, now released
    expect((err as Error).message).toMatch(
      /allocating 1\.3 MiB \(1310720 bytes; 1\.1 MiB in use, 0\.0 MiB pooled, limit .* \(not reached: the device refused createBuffer, and the pool was emptied\)\)/,
    );
    expect(g.memory().pooled).toBe(0);
    await expect(g.sync()).resolves.toBeUndefined(); // reported once
    g.free(b);
  });

  it('rejects a memory budget that is not a positive number', async () => {
    await expect(createWebGpuBackend({ memoryBudget: 0 })).rejects.toThrow(/memoryBudget must be a positive number/);
  });
});
