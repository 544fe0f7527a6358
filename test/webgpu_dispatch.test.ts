/**
 * How the webgpu backend records dispatches (src/backend/webgpu/core.ts), in Node through Dawn (SwiftShader where
 * there is no GPU; skipped, saying why, where Dawn finds no adapter, as in ./webgpu_node.test.ts;
 * LLMTS_REQUIRE_WEBGPU=1 makes that a failure):
 *  - the uniform ring: dispatches recorded into one command buffer keep their own parameters, past the ring's size
 *    (a submit midway, then a ring twice as large) and with parameter blocks of more than one 256-byte slot;
 *  - the bind group cache: a steady training loop creates no bind group after its first step, with losses equal
 *    bit for bit to a run without the pool (whose buffers, new every step, never meet a cached group); a pooled
 *    buffer handed to another tensor gives that tensor's results; a destroyed buffer's groups leave the cache;
 *  - a host write while work is recorded is ordered after it without a submit.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceBuffer } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { type GpuBuf, type GpuContext, Params, storage } from '../src/backend/webgpu/core.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { shiftTargets } from '../src/model/model.js';
import { AdamW } from '../src/optim/adamw.js';
import { backward } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu dispatch');
const make = gpu.make;
const be = await make();

/** The backend's GpuContext (private: these tests look at its caches). */
const ctxOf = (b: WebGpuBackend) => (b as unknown as { ctx: GpuContext }).ctx;
/** Bind groups in the context's cache that bind `buf` as a storage buffer (keys: `layout:uniform:slots,id,id…`). */
function groupsNaming(b: WebGpuBackend, buf: DeviceBuffer): number {
  const c = ctxOf(b) as unknown as { groups: Map<string, unknown>; ids: WeakMap<object, number> };
  const id = c.ids.get((buf as GpuBuf).gpu);
  return [...c.groups.keys()].filter((k) => k.split(',').slice(1).includes(String(id))).length;
}
const scale = (b: WebGpuBackend, x: DeviceBuffer, y: DeviceBuffer, n: number, alpha: number, beta = 0) =>
  b.run('scale', [{ buf: x, shape: [n] }], [{ buf: y, shape: [n] }], { alpha, beta });

describe('webgpu dispatch: the uniform ring', () => {
  it('1500 dispatches in one go, each with its own parameters: one submit midway, then a larger ring', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const n = 40;
    const bufs = [be.alloc(n, 'f32'), be.alloc(n, 'f32')];
    const x0 = Float32Array.from({ length: n }, (_, i) => i);
    for (let round = 0; round < 2; round++) {
      be.write(bufs[0]!, x0);
      await be.sync();
      const s0 = be.stats().submits;
      // x ← x + β_k, ping-ponging between the two buffers; β_k = k mod 7 (exact in f32)
      let sum = 0;
      for (let k = 0; k < 1500; k++) {
        scale(be, bufs[k % 2]!, bufs[(k + 1) % 2]!, n, 1, k % 7);
        sum += k % 7;
      }
      // the first ring (1024 slots) fills once and is submitted; the second (2048) holds all 1500
      expect(be.stats().submits - s0).toBe(round === 0 ? 1 : 0);
      const got = await be.read(bufs[0]!);
      expect(Array.from(got.subarray(0, n))).toEqual(Array.from(x0, (v) => v + sum));
    }
    for (const b of bufs) be.free(b);
  });

  it('parameter blocks of more than one slot (over 64 words), between one-slot ones in one command buffer', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const c = ctxOf(be);
    // Y[i] = parameter word 1 + i (as f32) for i < parameter word 0
    const code = `${storage(1, 'Y', 'f32', true)}
@compute @workgroup_size(256) fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid < pu(0u)) { Y[lid] = pf(1u + lid); }
}`;
    const sizes = [3, 100, 5, 200, 63];
    const ys = sizes.map((m) => be.alloc(m, 'f32'));
    const want = sizes.map((m, k) => Array.from({ length: m }, (_, i) => 1000 * k + i + 0.5));
    await be.sync();
    const s0 = be.stats().submits;
    sizes.forEach((m, k) => c.dispatch(code, new Params().u32(m).f32(...want[k]!), [(ys[k] as GpuBuf).gpu], [1]));
    expect(be.stats().submits).toBe(s0);
    for (let k = 0; k < sizes.length; k++) expect(Array.from(await be.read(ys[k]!))).toEqual(want[k]);
    for (const y of ys) be.free(y);
  });

  it('a host write while work is recorded: ordered after that work, without a submit', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const n = 300;
    const x = be.alloc(n, 'f32'),
      y = be.alloc(n, 'f32'),
      z = be.alloc(n, 'f32');
    be.write(x, new Float32Array(n).fill(1));
    await be.sync();
    const s0 = be.stats().submits;
    scale(be, x, y, n, 2); // y = 2 (reads x = 1)
    be.write(x, new Float32Array(n).fill(10), 0); // after it: x = 10
    be.write(x, Float32Array.of(7, 8), 5); // part of x
    scale(be, x, z, n, 3); // z = 3x
    expect(be.stats().submits).toBe(s0);
    const [gy, gz] = [await be.read(y), await be.read(z)];
    expect(Array.from(new Set(gy))).toEqual([2]);
    expect(Array.from(gz.subarray(0, 8))).toEqual([30, 30, 30, 30, 30, 21, 24, 30]);
    expect(gz[n - 1]).toBe(30);
    for (const b of [x, y, z]) be.free(b);
  });
});

const config: ModelConfig = {
  family: 'llama',
  vocabSize: 64,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  intermediateSize: 64,
  maxPositions: 32,
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

/** `steps` training steps of a tiny Llama: losses, and bind groups created per step. */
async function train(backend: WebGpuBackend, steps: number): Promise<{ losses: number[]; groups: number[] }> {
  const model = initModel(config, new Rng(4), { std: 0.2, backend });
  const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0.1 });
  const B = 2,
    T = 12;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + ((i * i) % 7)) % config.vocabSize);
  const losses: number[] = [],
    groups: number[] = [];
  for (let s = 0; s < steps; s++) {
    const before = backend.stats().bindGroupsCreated;
    const l = tidy(() => {
      const l = model.loss(ids, shiftTargets(ids, B, T), B, T);
      backward(l);
      return l;
    });
    opt.step({ gradScale: 1 });
    opt.zeroGrad();
    losses.push(await l.item());
    l.dispose();
    await backend.sync();
    groups.push(backend.stats().bindGroupsCreated - before);
  }
  opt.dispose();
  for (const p of model.params.values()) p.dispose();
  return { losses, groups };
}

describe('webgpu dispatch: the bind group cache', () => {
  it('a steady training loop creates no bind group after its first step; losses equal a run without the pool', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const off = await make({ pool: false });
    if (!off) return ctx.skip(gpu.why);
    const on = await train(be, 5);
    const without = await train(off, 5);
    console.info(`bind groups created per step: pool on ${on.groups.join(' ')}; pool off ${without.groups.join(' ')}`);
    expect(on.losses).toEqual(without.losses);
    expect(on.losses[4]!).toBeLessThan(on.losses[0]!);
    expect(on.groups.slice(1)).toEqual([0, 0, 0, 0]);
    expect(Math.min(...without.groups)).toBeGreaterThan(20); // new buffers every step: new groups
  });

  it('a pooled buffer handed to another tensor: its cached group serves that tensor, results right', async (ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const n = 70;
    await be.sync();
    be.emptyCache();
    const gpus = new Set<unknown>();
    const created: number[] = [];
    for (let round = 0; round < 4; round++) {
      // odd rounds take y first: the pool hands out the earliest made idle buffer, so x and y swap buffers
      const [x, y] =
        round % 2 ? [be.alloc(n, 'f32'), be.alloc(n, 'f32')].reverse() : [be.alloc(n, 'f32'), be.alloc(n, 'f32')];
      gpus.add((x as GpuBuf).gpu).add((y as GpuBuf).gpu);
      be.write(
        x,
        Float32Array.from({ length: n }, (_, i) => i + round),
      );
      const g0 = be.stats().bindGroupsCreated;
      scale(be, x, y, n, round + 2);
      created.push(be.stats().bindGroupsCreated - g0);
      const got = await be.read(y);
      expect(got[0]).toBe(round * (round + 2));
      expect(got[n - 1]).toBe((n - 1 + round) * (round + 2));
      be.free(x);
      be.free(y);
      await be.sync();
    }
    // two GPU buffers, taken in turn in either role: each (x, y) order's group made once, then found in the cache
    expect(gpus.size).toBe(2);
    expect(created).toEqual([1, 1, 0, 0]);
  });

  it("a destroyed buffer's bind groups leave the cache (no pool; and emptyCache with it)", async (ctx) => {
    const off = await make({ pool: false });
    if (!off || !be) return ctx.skip(gpu.why);
    for (const [b, drop] of [
      [off, () => {}],
      [be, () => be.emptyCache()],
    ] as const) {
      const n = 50;
      const x = b.alloc(n, 'f32'),
        y = b.alloc(n, 'f32');
      b.write(x, new Float32Array(n).fill(2));
      scale(b, x, y, n, 4);
      expect((await b.read(y))[n - 1]).toBe(8);
      expect([groupsNaming(b, x), groupsNaming(b, y)]).toEqual([1, 1]);
      b.free(x);
      b.free(y);
      await b.sync();
      drop();
      expect([groupsNaming(b, x), groupsNaming(b, y)]).toEqual([0, 0]);
      // new buffers (maybe where the old ones were), new groups, right results and no device error
      const u = b.alloc(n, 'f32'),
        v = b.alloc(n, 'f32');
      b.write(u, new Float32Array(n).fill(3));
      scale(b, u, v, n, 5);
      expect((await b.read(v))[0]).toBe(15);
      b.free(u);
      b.free(v);
      await b.sync();
    }
  });
});
