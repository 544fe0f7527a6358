// Decode graphs (src/model/decode_graph.ts, issue 17): a KV-cached decode step recorded twice and then replayed
// gives the plain forward's logits bit for bit — Llama (plain, fused f32, q8) and GPT-2, one row and a left-padded
// batch whose rows are dropped, after a truncate, after a weight is replaced — and a step the recording cannot replay
// (a kernel that falls back to ref) stays on the plain forward. On ref, wasm and — where Dawn finds an adapter (CI:
// SwiftShader) — webgpu, whose reads are asynchronous. (LLMTS_TEST_BACKENDS' async-test backend is left out: its
// kernels fall back to ref through host steps, so it never replays.)
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { setDecodeGraphs } from '../src/model/decode_graph.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { fuseModel, quantizeModel } from '../src/model/quantize.js';
import { keep, noGrad, tensor, tidy } from '../src/tensor/tensor.js';
import { ShapeError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { testBackends } from './helpers.js';

const all = (await testBackends()).filter((b) => b.name !== 'async-test');
const gpu = await import('../src/backend/webgpu/backend.js').then((m) => m.createWebGpuBackend()).catch(() => null);
afterAll(() => gpu?.dispose());
const backends = gpu ? [...all, gpu] : all;

function config(family: 'llama' | 'gpt2'): ModelConfig {
  return {
    family,
    vocabSize: 96,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: family === 'llama' ? 2 : 4,
    headDim: 16,
    intermediateSize: family === 'llama' ? 96 : 256,
    maxPositions: 32,
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

afterEach(() => setDecodeGraphs(true));

type Cache = ReturnType<CausalLM['newCache']>;

/** One forward's logits, as the generation engine runs it (a scope, no gradients, an asynchronous read). */
async function run(model: CausalLM, ids: number[], B: number, cache: Cache): Promise<number[]> {
  const t = noGrad(() => tidy(() => model.forward(Int32Array.from(ids), B, ids.length / B, { cache, lastOnly: true })));
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}
const step = (model: CausalLM, ids: number[], cache: Cache) => run(model, ids, ids.length, cache);

/**
 * Prefill `prompt` (rows of equal length, left-padded by rowStart), then decode `steps` steps of the given ids;
 * `between(i, cache)` runs before step i. Returns every step's logits and, per step, whether a graph was ready after it.
 */
async function decode(
  model: CausalLM,
  graphs: boolean,
  prompt: number[][],
  steps: number[][],
  rowStart?: number[],
  between?: (i: number, cache: Cache) => void,
): Promise<{ logits: number[][]; ready: boolean[] }> {
  setDecodeGraphs(graphs);
  const cache = model.newCache(prompt.length, 32, rowStart);
  await run(model, prompt.flat(), prompt.length, cache);
  const logits: number[][] = [];
  const ready: boolean[] = [];
  for (const [i, ids] of steps.entries()) {
    between?.(i, cache);
    logits.push(await step(model, ids, cache));
    ready.push(cache.graph.ready);
  }
  cache.dispose();
  return { logits, ready };
}

const ids1 = (n: number, from: number) => Array.from({ length: n }, (_, i) => [(from + 7 * i) % 96]);

describe.each(backends.map((b) => [b.name, b] as const))('decode graphs, %s backend', (_n, backend: Backend) => {
  it.each([
    ['llama', 'plain'],
    ['llama', 'f32'],
    ['llama', 'q8'],
    ['gpt2', 'plain'],
  ] as const)('%s (%s weights): replayed steps equal the plain forward bit for bit', async (family, kind) => {
    const model = initModel(config(family), new Rng(5), { backend });
    if (kind === 'f32') await fuseModel(model);
    if (kind === 'q8') await quantizeModel(model, 'q8');
    const steps = ids1(9, 3);
    const plain = await decode(model, false, [[1, 2, 3, 4]], steps);
    const graph = await decode(model, true, [[1, 2, 3, 4]], steps);
    expect(plain.ready.every((r) => !r)).toBe(true);
    // recorded at steps 0 and 1, replayed from step 2 on
    expect(graph.ready).toEqual([false, true, true, true, true, true, true, true, true]);
    expect(graph.logits).toEqual(plain.logits);
  });

  it('a left-padded batch, its rows dropped midway (keepRows): re-recorded, equal to the plain forward', async () => {
    const model = initModel(config('llama'), new Rng(6), { backend });
    const prompt = [
      [5, 6, 7, 8],
      [0, 0, 9, 10],
      [0, 11, 12, 13],
    ];
    const steps = [
      [14, 15, 16],
      [17, 18, 19],
      [20, 21, 22],
      [23, 24, 25],
      [26, 27],
      [28, 29],
      [30, 31],
      [32, 33],
    ];
    const drop = (i: number, cache: Cache) => i === 4 && cache.keepRows([2, 0]);
    const plain = await decode(model, false, prompt, steps, [0, 2, 1], drop);
    const graph = await decode(model, true, prompt, steps, [0, 2, 1], drop);
    expect(graph.ready).toEqual([false, true, true, true, false, true, true, true]);
    expect(graph.logits).toEqual(plain.logits);
  });

  it('after a truncate and after a replaced weight, replays follow the cache and the new weights', async () => {
    const model = initModel(config('llama'), new Rng(7), { backend });
    const name = 'model.layers.1.mlp.down_proj.weight';
    const old = model.params.get(name)!;
    const swapped = keep(
      tensor(
        (await old.data()).map((v) => -2 * v),
        old.shape,
        { backend },
      ),
    );
    const between = (i: number, cache: Cache) => {
      if (i === 4) cache.truncate(cache.length - 3);
      if (i === 6) model.params.set(name, swapped);
    };
    const steps = ids1(9, 11);
    const plain = await decode(model, false, [[1, 2, 3, 4, 5]], steps, undefined, between);
    model.params.set(name, old);
    const graph = await decode(model, true, [[1, 2, 3, 4, 5]], steps, undefined, between);
    model.params.set(name, old);
    // the truncate keeps the graph (positions are patched); the new weight drops it and two steps record a new one
    expect(graph.ready).toEqual([false, true, true, true, true, true, false, true, true]);
    expect(graph.logits).toEqual(plain.logits);
    expect(graph.logits[6]).not.toEqual(graph.logits[5]);
    swapped.dispose();
  });

  it('up to a full cache, replays skip every check (the moving calls checked at the last position) and stay exact', async () => {
    const model = initModel(config('llama'), new Rng(10), { backend });
    await quantizeModel(model, 'q8');
    const steps = ids1(13, 5); // 3 prompt positions + 13 steps: the 16-position cache full
    setDecodeGraphs(false);
    const want: number[][] = [];
    let cache = model.newCache(1, 16);
    await run(model, [1, 2, 3], 1, cache);
    for (const ids of steps) want.push(await step(model, ids, cache));
    cache.dispose();
    setDecodeGraphs(true);
    cache = model.newCache(1, 16);
    await run(model, [1, 2, 3], 1, cache);
    const checked = backend.run;
    let runs = 0;
    (backend as { run: Backend['run'] }).run = (...a) => {
      runs++;
      checked.apply(backend, a);
    };
    const got: number[][] = [];
    const runsPerStep: number[] = [];
    try {
      for (const ids of steps) {
        const r0 = runs;
        got.push(await step(model, ids, cache));
        runsPerStep.push(runs - r0);
      }
    } finally {
      delete (backend as { run?: unknown }).run;
    }
    expect(got).toEqual(want);
    expect(cache.length).toBe(16);
    // recorded twice through `run`, then replayed: with runReplay/runUnchecked (wasm, webgpu) `run` is never called
    expect(runsPerStep[0]).toBeGreaterThan(20);
    const replayed = runsPerStep.slice(2);
    if (backend.runReplay && backend.runUnchecked) expect(replayed.every((n) => n === 0)).toBe(true);
    else expect(replayed.every((n) => n > 0)).toBe(true);
    cache.dispose();
  });

  it('bad steps still get the plain forward’s errors while a graph is ready', async () => {
    const model = initModel(config('llama'), new Rng(8), { backend });
    const cache = model.newCache(1, 8);
    await run(model, [1, 2, 3], 1, cache);
    for (const id of [4, 5, 6]) await step(model, [id], cache);
    expect(cache.graph.ready).toBe(true);
    await expect(step(model, [96], cache)).rejects.toThrow(ShapeError);
    await step(model, [7], cache);
    await step(model, [8], cache); // the cache now holds 8 positions: full
    await expect(step(model, [9], cache)).rejects.toThrow(/exceed the cache/);
    cache.dispose();
  });
});

describe('decode graphs: what a recording cannot replay', () => {
  it('a kernel that falls back to ref (a host step inside the forward) keeps the plain forward, with the same logits', async () => {
    const backend = all.find((b) => b.name === 'wasm');
    if (!backend) return;
    const model = initModel(config('llama'), new Rng(9), { backend });
    const steps = ids1(6, 2);
    const supports = backend.supports;
    (backend as { supports: Backend['supports'] }).supports = (name, d) =>
      name !== 'rmsnorm' && supports.call(backend, name, d);
    try {
      const want = (await decode(model, false, [[1, 2, 3]], steps)).logits;
      setDecodeGraphs(true);
      const cache = model.newCache(1, 32);
      await run(model, [1, 2, 3], 1, cache);
      const got: number[][] = [];
      for (const ids of steps) got.push(await step(model, ids, cache));
      expect(cache.graph.ready).toBe(false);
      expect(cache.graph.lastFailure).toMatch(/readSync/);
      expect(got).toEqual(want);
      cache.dispose();
    } finally {
      delete (backend as { supports?: unknown }).supports;
    }
  });
});
