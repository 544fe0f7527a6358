// Continuous batching: CausalLM.decodeRows (one decode step of many one-row caches at different positions) against
// each row's own cached forward, for every attention variant (GPT-2, Llama plain / fused / q8 / q4k, grouped-query,
// Qwen3's q/k norms, sliding windows, NoPE layers); and the StepBatcher (src/generate/step_batcher.ts): generations
// started at different times share their decode steps (one decodeRows forward for several lanes) and still draw the
// tokens they draw alone, a bad row fails alone, a lane alone runs directly, a closed lane stops holding the others.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { fuseModel, quantizeModel } from '../src/model/quantize.js';
import { generate } from '../src/generate/engine.js';
import { StepBatcher, stepWeights } from '../src/generate/step_batcher.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { ShapeError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { relErr, testBackends } from './helpers.js';

const backends = (await testBackends()).filter((b) => b.name !== 'async-test');

function config(family: 'llama' | 'gpt2', extra: Partial<ModelConfig> = {}): ModelConfig {
  return {
    family,
    vocabSize: 96,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: family === 'llama' ? 2 : 4,
    headDim: 16,
    intermediateSize: family === 'llama' ? 96 : 256,
    maxPositions: 48,
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
    ...extra,
  };
}

type Cache = ReturnType<CausalLM['newCache']>;

async function read(t: { data(): Promise<ArrayLike<number>>; dispose(): void }): Promise<number[]> {
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}

/** Prefill each prompt into its own one-row cache. */
async function prefilled(model: CausalLM, prompts: number[][]): Promise<Cache[]> {
  const caches = prompts.map(() => model.newCache(1, 40));
  for (const [i, p] of prompts.entries())
    await read(
      noGrad(() => tidy(() => model.forward(Int32Array.from(p), 1, p.length, { cache: caches[i]!, lastOnly: true }))),
    );
  return caches;
}

const prompts = [[1, 2, 3, 4, 5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23], [24]];

const variants: [string, 'llama' | 'gpt2', Partial<ModelConfig>, 'plain' | 'fused' | 'q8' | 'q4k'][] = [
  ['GPT-2', 'gpt2', {}, 'plain'],
  ['Llama', 'llama', {}, 'plain'],
  ['Llama, fused q|k|v', 'llama', {}, 'fused'],
  ['Llama, q8', 'llama', {}, 'q8'],
  ['Llama, q4k', 'llama', { hiddenSize: 256, headDim: 64, intermediateSize: 256 }, 'q4k'],
  ['Qwen3-style q/k norms', 'llama', { qkNorm: true }, 'plain'],
  ['sliding window 4, NoPE layer 1', 'llama', { slidingWindow: 4, noRopeLayers: [false, true] }, 'plain'],
];

describe.each(backends.map((b) => [b.name, b] as const))('decodeRows, %s backend', (_n, backend: Backend) => {
  it.each(variants)('%s: each row equals its own cached step, over several steps', async (_v, family, extra, kind) => {
    const model = initModel(config(family, extra), new Rng(7), { backend });
    if (kind === 'fused') await fuseModel(model);
    if (kind === 'q8' || kind === 'q4k') await quantizeModel(model, kind);
    const mine = await prefilled(model, prompts);
    const alone = await prefilled(model, prompts);
    for (let step = 0; step < 5; step++) {
      const ids = prompts.map((_, b) => (13 * step + 5 * b + 1) % 96);
      const batched = await read(noGrad(() => tidy(() => model.decodeRows(Int32Array.from(ids), mine))));
      const V = 96;
      expect(batched.length).toBe(prompts.length * V);
      for (let b = 0; b < prompts.length; b++) {
        const one = await read(
          noGrad(() => tidy(() => model.forward(Int32Array.of(ids[b]!), 1, 1, { cache: alone[b]! }))),
        );
        expect(relErr(batched.slice(b * V, (b + 1) * V), one)).toBeLessThan(1e-5);
        expect(mine[b]!.length).toBe(alone[b]!.length);
      }
    }
    for (const c of [...mine, ...alone]) c.dispose();
  });

  it('refuses a full cache, a padded or batched cache, a cache twice, ids outside the vocabulary — before any row moves', async () => {
    const model = initModel(config('llama'), new Rng(8), { backend });
    const [a, b] = await prefilled(model, [[1, 2], [3]]);
    const full = model.newCache(1, 2);
    await read(noGrad(() => tidy(() => model.forward(Int32Array.of(1, 2), 1, 2, { cache: full }))));
    const two = model.newCache(2, 8);
    const run = (ids: number[], caches: Cache[]) =>
      noGrad(() => tidy(() => model.decodeRows(Int32Array.from(ids), caches)));
    expect(() => run([1, 2], [a!, full])).toThrow(/3 positions exceed the cache's 2/);
    expect(() => run([1, 2], [a!, two])).toThrow(/caches\[1\] is not a one-row cache/);
    expect(() => run([1, 2], [a!, a!])).toThrow(/a cache is given for two rows/);
    expect(() => run([1, 99], [a!, b!])).toThrow(ShapeError);
    expect(() => run([1], [a!, b!])).toThrow(/1 ids for 2 caches/);
    expect([a!.length, b!.length]).toEqual([2, 1]);
    for (const c of [a!, b!, full, two]) c.dispose();
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('StepBatcher, %s backend', (_n, backend: Backend) => {
  const model = initModel(config('llama', { maxPositions: 64 }), new Rng(9), { backend });
  const gens = [
    { prompt: [1, 2, 3, 4, 5], seed: 1, maxTokens: 12 },
    { prompt: [6, 7], seed: 2, maxTokens: 20 },
    { prompt: [8, 9, 10, 11, 12, 13, 14, 15, 16], seed: 3, maxTokens: 7 },
  ];

  it('concurrent generations share decode steps and draw the tokens each draws alone', async () => {
    const alone: Awaited<ReturnType<typeof generate>>['choices'][number][] = [];
    for (const g of gens)
      alone.push(
        (await generate(model, g.prompt, { seed: g.seed, maxTokens: g.maxTokens, temperature: 0.8 })).choices[0]!,
      );
    const batcher = new StepBatcher({ maxWaitMs: 50, minStepWeights: 0 });
    const lanes = gens.map(() => batcher.lane(model));
    const together = await Promise.all(
      gens.map(async (g, i) => {
        // started at different times: lane i begins after i event-loop turns
        for (let k = 0; k < i; k++) await new Promise((r) => setImmediate(r));
        try {
          // with a signal, as a server's: the engine yields to the event loop between tokens
          const signal = new AbortController().signal;
          return (
            await generate(lanes[i]!, g.prompt, { seed: g.seed, maxTokens: g.maxTokens, temperature: 0.8, signal })
          ).choices[0]!;
        } finally {
          lanes[i]!.close();
        }
      }),
    );
    together.forEach((c, i) => {
      expect(c.ids).toEqual(alone[i]!.ids);
      expect(c.finish_reason).toBe(alone[i]!.finish_reason);
      c.logprobs.content.forEach((e, t) => expect(e.logprob).toBeCloseTo(alone[i]!.logprobs.content[t]!.logprob, 4));
    });
    const s = batcher.stats;
    expect(s.lanes).toBe(0);
    expect(s.maxRows).toBe(3);
    // the shortest reply's 6 decode steps ran 3 wide; every step after the first token of each lane was batched
    expect(s.rows).toBe(gens.reduce((n, g) => n + g.maxTokens - 1, 0) - s.direct + gens.length);
    expect(s.rows / s.batches).toBeGreaterThan(2);
  });

  it('a model that reads fewer weights a step than minStepWeights steps lane by lane (the default: 2M)', async () => {
    expect(stepWeights(model)).toBe(12 * 2 * 64 ** 2 + 96 * 64);
    const batcher = new StepBatcher({ maxWaitMs: 50 });
    const lanes = [batcher.lane(model), batcher.lane(model)];
    await Promise.all(lanes.map((l, i) => generate(l, [1 + i, 2], { seed: i, maxTokens: 6 })));
    for (const l of lanes) l.close();
    expect(batcher.stats).toMatchObject({ batches: 0, direct: 12 });
    // at the bound it batches
    const at = new StepBatcher({ maxWaitMs: 50, minStepWeights: stepWeights(model) });
    const two = [at.lane(model), at.lane(model)];
    await Promise.all(two.map((l, i) => generate(l, [1 + i, 2], { seed: i, maxTokens: 6 })));
    for (const l of two) l.close();
    expect(at.stats.batches).toBeGreaterThan(0);
  });

  it('a prompt prefilled in chunks (prefillChunk) gives the tokens of a whole prefill; the other lanes step between its chunks', async () => {
    const long = Array.from({ length: 40 }, (_, i) => (i * 5 + 3) % 96);
    const whole = (await generate(model, long, { seed: 4, maxTokens: 8 })).choices[0]!;
    const chunked = (await generate(model, long, { seed: 4, maxTokens: 8, prefillChunk: 7 })).choices[0]!;
    expect(chunked.ids).toEqual(whole.ids);
    chunked.logprobs.content.forEach((e, t) => expect(e.logprob).toBeCloseTo(whole.logprobs.content[t]!.logprob, 4));
    await expect(generate(model, long, { prefillChunk: 1.5 })).rejects.toThrow(/prefillChunk/);
    // lane A decodes; lane B arrives with the long prompt in chunks of 8: A's steps run between B's chunks
    const log: string[] = [];
    const spy = (tag: string) => {
      const m: typeof model = Object.create(model);
      m.forward = (ids, B, T, o) => {
        log.push(`${tag}${T}`);
        return model.forward(ids, B, T, o);
      };
      return m;
    };
    const batcher = new StepBatcher({ maxWaitMs: 5_000, minStepWeights: 0 });
    const [a, b] = [batcher.lane(spy('a')), batcher.lane(spy('b'))];
    const ac = new AbortController(); // a signal: the engine yields to the event loop between tokens
    const ra = generate(a, [1, 2], { seed: 1, maxTokens: 30, signal: ac.signal }).finally(() => a.close());
    await new Promise((r) => setImmediate(r));
    const rb = generate(b, long, { seed: 2, maxTokens: 3, prefillChunk: 8, signal: ac.signal }).finally(() =>
      b.close(),
    );
    const [ga, gb] = await Promise.all([ra, rb]);
    const first = log.indexOf('b8'),
      last = log.lastIndexOf('b8');
    expect(log.filter((x) => x === 'b8').length).toBe(5); // 40 tokens in chunks of 8
    // A's decode steps run while B prefills (held, they run as one-row batches: decodeRows → forward, logged 'a1'),
    // not after B's first decode step (held steps would otherwise wait up to maxWaitMs, 5 s, for B)
    expect(log.slice(first, last).filter((x) => x === 'a1').length).toBeGreaterThanOrEqual(1);
    expect(ga.choices[0]!.ids).toEqual((await generate(model, [1, 2], { seed: 1, maxTokens: 30 })).choices[0]!.ids);
    expect(gb.choices[0]!.ids).toEqual((await generate(model, long, { seed: 2, maxTokens: 3 })).choices[0]!.ids);
  });

  it('a lane alone steps at once (no batch); a closed lane stops holding the others', async () => {
    const batcher = new StepBatcher({ maxWaitMs: 10_000, minStepWeights: 0 });
    const solo = batcher.lane(model);
    await generate(solo, [1, 2, 3], { seed: 1, maxTokens: 5 });
    expect(batcher.stats).toMatchObject({ batches: 0, direct: 5 });
    // a second lane opens and never steps; once it closes, the first lane's held step runs without waiting 10 s
    const idle = batcher.lane(model);
    const t0 = performance.now();
    const p = generate(solo, [1, 2, 3], { seed: 1, maxTokens: 5 });
    setTimeout(() => idle.close(), 20);
    await p;
    expect(performance.now() - t0).toBeLessThan(5_000);
    solo.close();
    expect(() => solo.forward(Int32Array.of(1), 1, 1)).toThrow(/closed/);
  });

  it("a row whose cache is full fails alone: the other lane's step runs", async () => {
    const batcher = new StepBatcher({ maxWaitMs: 1_000, minStepWeights: 0 });
    const [a, b] = [batcher.lane(model), batcher.lane(model)];
    const ca = model.newCache(1, 8),
      cb = model.newCache(1, 3);
    const pre = (lane: typeof a, cache: Cache, ids: number[]) =>
      read(noGrad(() => tidy(() => lane.forward(Int32Array.from(ids), 1, ids.length, { cache }))));
    await pre(a, ca, [1, 2]);
    await pre(b, cb, [3, 4, 5]); // full
    const sa = noGrad(() => tidy(() => a.forward(Int32Array.of(6), 1, 1, { cache: ca })));
    const sb = noGrad(() => tidy(() => b.forward(Int32Array.of(7), 1, 1, { cache: cb })));
    await expect(sb.settle!()).rejects.toThrow(/4 positions exceed the cache's 3/);
    const got = await (await sa.settle!()).data();
    expect(got.length).toBe(96);
    expect(ca.length).toBe(3);
    a.close();
    b.close();
  });
});
