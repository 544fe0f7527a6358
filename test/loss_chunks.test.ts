// The model's loss in row chunks (src/model/model.ts `loss`, issue 13): where the logits (B·T, V) would be bigger
// than the backend's largest tensor (`Backend.maxTensorBytes`; webgpu: a kernel binds a tensor whole, ≤ 2 GiB − 4 on
// an H200, and GPT-2's logits at B16 T1024 are 3.3 GB), the head and the cross-entropy run on a few rows at a time.
// The loss and every gradient equal the unchunked ones — GPT-2 (tied head) and Llama (own head), ignored targets
// inside and across chunks, a last chunk shorter than the others — on ref, wasm and, where Dawn finds an adapter,
// webgpu; and webgpu refuses a tensor over its binding limit with a named error instead of a failed dispatch.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { backward } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/tensor.js';
import { OutOfMemoryError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { testBackends } from './helpers.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpus = webgpuMaker('loss_chunks');
const gpu = await gpus.make();
const backends: Backend[] = [...(await testBackends()).filter((b) => b.name !== 'async-test'), ...(gpu ? [gpu] : [])];

const V = 96;
function config(family: 'llama' | 'gpt2'): ModelConfig {
  return {
    family,
    vocabSize: V,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: family === 'llama' ? 2 : 4,
    headDim: 8,
    intermediateSize: family === 'llama' ? 48 : 128,
    maxPositions: 16,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: family === 'gpt2',
    attentionBias: family === 'gpt2',
    attentionOutBias: family === 'gpt2',
    mlpBias: family === 'gpt2',
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
}

/** Give `be` a largest tensor of `bytes` (undefined: its own), as an own property shadowing any getter. */
function capTensors(be: Backend, bytes: number | undefined): void {
  if (bytes === undefined) Reflect.deleteProperty(be, 'maxTensorBytes');
  else Object.defineProperty(be, 'maxTensorBytes', { value: bytes, configurable: true });
}
const capped = new Set<Backend>();
afterEach(() => {
  for (const be of capped) capTensors(be, undefined);
  capped.clear();
  vi.restoreAllMocks();
});

/** The loss, every parameter's gradient and how many cross_entropy kernels ran. */
async function lossAndGrads(be: Backend, family: 'llama' | 'gpt2', ids: Int32Array, targets: Int32Array, B: number) {
  const model = initModel(config(family), new Rng(11), { backend: be });
  const spy = vi.spyOn(be, 'run');
  const loss = tidy(() => {
    const l = model.loss(ids, targets, B, ids.length / B, { training: true });
    backward(l);
    return l;
  });
  const kernels = spy.mock.calls.filter((c) => c[0] === 'cross_entropy').length;
  spy.mockRestore();
  const grads = new Map<string, number[]>();
  for (const [name, p] of model.params) {
    expect(p.grad, name).not.toBeNull();
    grads.set(name, Array.from(await p.grad!.data()));
  }
  const value = (await loss.data())[0]!;
  loss.dispose();
  for (const p of model.params.values()) p.dispose();
  return { value, grads, kernels };
}

describe.each(backends.map((b) => [b.name, b] as const))('loss in row chunks on %s', (_name, be) => {
  const B = 3,
    T = 5; // 15 positions
  const rng = new Rng(3);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(V));
  // ignored: one inside the first chunk, and positions 8..11 — the whole third chunk of 4 rows
  for (const i of [1, 8, 9, 10, 11]) targets[i] = -100;

  for (const family of ['gpt2', 'llama'] as const)
    it(`${family}: 4 rows a chunk (4 + 4 + 4 + 3) gives the loss and gradients of one`, async () => {
      const whole = await lossAndGrads(be, family, ids, targets, B);
      capped.add(be);
      capTensors(be, 4 * V * 4); // logits of 4 positions
      const chunked = await lossAndGrads(be, family, ids, targets, B);
      expect(whole.kernels).toBe(1);
      expect(chunked.kernels).toBe(4);
      expect(Number.isFinite(whole.value)).toBe(true);
      expect(chunked.value).toBeCloseTo(whole.value, 5);
      for (const [name, g] of whole.grads) {
        const h = chunked.grads.get(name)!;
        const scale = Math.max(1e-3, ...g.map(Math.abs));
        const worst = Math.max(...g.map((x, i) => Math.abs(x - h[i]!)));
        expect(worst / scale, name).toBeLessThan(1e-4);
      }
    });

  it('a cap under one row of logits still takes one row at a time', async () => {
    const whole = await lossAndGrads(be, 'gpt2', ids, targets, B);
    capped.add(be);
    capTensors(be, V * 4 - 4);
    const rows = await lossAndGrads(be, 'gpt2', ids, targets, B);
    expect(rows.kernels).toBe(B * T);
    expect(rows.value).toBeCloseTo(whole.value, 5);
  });
});

describe.runIf(gpu)('webgpu: the largest tensor', () => {
  it('is the smaller of maxBufferSize and maxStorageBufferBindingSize, and alloc refuses more with a named error', () => {
    const be = gpu!;
    const l = be.limits;
    const most = Math.min(l.maxBufferSize, l.maxStorageBufferBindingSize);
    expect(be.maxTensorBytes).toBe(most);
    const over = () => be.alloc(Math.floor(most / 4) + 1, 'f32');
    expect(over).toThrow(OutOfMemoryError);
    expect(over).toThrow(
      l.maxStorageBufferBindingSize < l.maxBufferSize ? /maxStorageBufferBindingSize/ : /maxBufferSize/,
    );
  });
});
