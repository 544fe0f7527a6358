// Batched sampling of ragged prompts (src/generate/batch.ts) on the Hugging Face fixture models (GPT-2: learned
// positions; Llama: RoPE, grouped-query attention), on ref and wasm. References: each row decoded alone through
// generate()'s single-row path (no padding, B = 1 cache), and a teacher-forced full forward of prompt + reply
// (log_softmax(logits / T) in float64): the log-probabilities a policy-gradient trainer recomputes.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate } from '../src/generate/engine.js';
import { sampleBatch } from '../src/generate/batch.js';
import { loadModel } from '../src/model/hf/folder.js';
import type { CausalLM } from '../src/model/model.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { ConfigError, ContextOverflowError, UnsupportedError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { fixtureDirs, relErr, testBackends } from './helpers.js';

const cases = (await testBackends()).flatMap((b) =>
  fixtureDirs().map((d) => [`${path.basename(d)} (${b.name})`, d, b] as const),
);

/** Prompts of lengths 1 … 13 (ragged), ids from a seeded Rng. */
function prompts(V: number, lens: readonly number[], seed = 5): Int32Array[] {
  const rng = new Rng(seed);
  return lens.map((n) => Int32Array.from({ length: n }, () => rng.int(V)));
}

/** log_softmax(logits / T) of each reply token, from one teacher-forced forward of prompt + reply (float64). */
async function teacherForced(model: CausalLM, prompt: Int32Array, reply: Int32Array, T: number): Promise<number[]> {
  const seq = Int32Array.from([...prompt, ...reply]);
  const t = tidy(() => noGrad(() => model.forward(seq, 1, seq.length)));
  const all = (await t.data()) as Float32Array;
  t.dispose();
  const V = model.config.vocabSize;
  return Array.from(reply, (id, k) => {
    const row = all.subarray((prompt.length - 1 + k) * V, (prompt.length + k) * V);
    let m = -Infinity;
    for (const x of row) m = Math.max(m, x / T);
    let s = 0;
    for (const x of row) s += Math.exp(x / T - m);
    return row[id]! / T - m - Math.log(s);
  });
}

describe.each(cases)('sampleBatch on %s', (_name, dir, backend) => {
  const lens = [7, 1, 13, 4, 9, 4, 2];

  it('greedy: each row equals the row decoded alone (padded batch, rows dropped as they finish)', async () => {
    const model = await loadModel(dir, { backend });
    const ps = prompts(model.config.vocabSize, lens);
    // one prompt 3 short of the window: it ends 'length' after 3 tokens while the others go on
    const W = model.config.maxPositions;
    ps.push(prompts(model.config.vocabSize, [W - 3], 9)[0]!);
    const got = await sampleBatch(model, ps, { temperature: 0, maxTokens: 10, batchSize: 8 });
    for (let r = 0; r < ps.length; r++) {
      const alone = await generate(model, [...ps[r]!], { temperature: 0, maxTokens: 10 });
      expect(Array.from(got[r]!.ids), `row ${r}`).toEqual(alone.choices[0]!.ids);
      expect(got[r]!.finishReason).toBe('length');
    }
    expect(got[ps.length - 1]!.ids.length).toBe(3);
    // greedy log-probabilities are the model's own (T = 1)
    const lp = await teacherForced(model, ps[2]!, got[2]!.ids, 1);
    for (let k = 0; k < lp.length; k++) expect(got[2]!.logprobs[k]).toBeCloseTo(lp[k]!, 5);
  });

  it('sampled: a row does not depend on its batch; equals generate() row r; logprobs = teacher-forced', async () => {
    const model = await loadModel(dir, { backend });
    const ps = prompts(model.config.vocabSize, lens);
    const T = 0.8;
    const opts = { temperature: T, maxTokens: 12, seed: 42 };
    const full = await sampleBatch(model, ps, { ...opts, batchSize: 16 });
    const single = await sampleBatch(model, ps, { ...opts, batchSize: 1 });
    const threes = await sampleBatch(model, ps, { ...opts, batchSize: 3 });
    // generate(): row r draws with the r-th fork of the same seed; batch: false decodes each row alone
    const gen = await generate(
      model,
      ps.map((p) => [...p]),
      { ...opts, batch: false, topK: 0, topP: 1 },
    );
    let worst = 0;
    for (let r = 0; r < ps.length; r++) {
      const ids = Array.from(full[r]!.ids);
      expect(ids.length).toBe(12);
      expect(Array.from(single[r]!.ids), `row ${r} alone`).toEqual(ids);
      expect(Array.from(threes[r]!.ids), `row ${r} in threes`).toEqual(ids);
      expect(gen.choices[r]!.ids, `row ${r} vs generate`).toEqual(ids);
      // the policy's log-probabilities of its own samples, recomputed by a full forward: KL(π ‖ π) = 0
      const lp = await teacherForced(model, ps[r]!, full[r]!.ids, T);
      for (let k = 0; k < lp.length; k++) worst = Math.max(worst, Math.abs(full[r]!.logprobs[k]! - lp[k]!));
      expect(relErr(single[r]!.logprobs, full[r]!.logprobs)).toBeLessThan(1e-5);
    }
    expect(worst).toBeLessThan(2e-5);
  });

  it('generate() decodes prompts of different lengths as one padded batch, each row as it decodes alone', async () => {
    const model = await loadModel(dir, { backend });
    const ps = prompts(model.config.vocabSize, lens).map((p) => [...p]);
    // every sampler setting on: top-k, top-p, a penalty and the top alternatives
    const o = { seed: 3, maxTokens: 9, temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.3, topLogprobs: 2 };
    const batched = await generate(model, ps, o);
    const alone = await generate(model, ps, { ...o, batch: false });
    expect(batched.choices.map((c) => c.ids)).toEqual(alone.choices.map((c) => c.ids));
    for (let r = 0; r < ps.length; r++) {
      const a = batched.choices[r]!.logprobs.content,
        b = alone.choices[r]!.logprobs.content;
      for (let t = 0; t < a.length; t++) {
        expect(a[t]!.logprob).toBeCloseTo(b[t]!.logprob, 5);
        expect(a[t]!.top_logprobs.map((x) => x.id)).toEqual(b[t]!.top_logprobs.map((x) => x.id));
      }
    }
  });

  it('a stop token ends its row (kept as the last id); the other rows go on', async () => {
    const model = await loadModel(dir, { backend });
    const ps = prompts(model.config.vocabSize, lens);
    const free = await sampleBatch(model, ps, { temperature: 0, maxTokens: 8 });
    const stop = free[2]!.ids[3]!; // row 2's fourth greedy token
    const got = await sampleBatch(model, ps, { temperature: 0, maxTokens: 8, stopTokens: [stop] });
    for (let r = 0; r < ps.length; r++) {
      const at = free[r]!.ids.indexOf(stop);
      const want = at < 0 ? free[r]!.ids : free[r]!.ids.subarray(0, at + 1);
      expect(Array.from(got[r]!.ids), `row ${r}`).toEqual(Array.from(want));
      expect(got[r]!.finishReason).toBe(at < 0 ? 'length' : 'stop');
    }
    expect(got[2]!.finishReason).toBe('stop');
  });
});

describe('sampleBatch: input, progress, cancel', () => {
  it('refuses bad input with named errors, reports progress, and aborts', async () => {
    const [backend] = await testBackends();
    const model = await loadModel(fixtureDirs()[0]!, { backend: backend! });
    const V = model.config.vocabSize,
      W = model.config.maxPositions;
    await expect(sampleBatch(model, [])).rejects.toThrow(ConfigError);
    await expect(sampleBatch(model, [new Int32Array(0)])).rejects.toThrow(/prompts\[0\].*empty/);
    await expect(sampleBatch(model, [Int32Array.of(1, V)])).rejects.toThrow(/outside the vocabulary/);
    await expect(sampleBatch(model, [new Int32Array(W + 1)])).rejects.toThrow(ContextOverflowError);
    await expect(sampleBatch(model, [Int32Array.of(1)], { batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(sampleBatch(model, [Int32Array.of(1)], { temperature: -1 })).rejects.toThrow(/temperature/);
    // a prompt that fills the window: no tokens, 'length'
    const [full] = await sampleBatch(model, [new Int32Array(W)], { seed: 1 });
    expect(full!.ids.length).toBe(0);
    expect(full!.finishReason).toBe('length');
    const steps: number[] = [];
    const ps = prompts(V, [3, 5, 8]);
    await sampleBatch(model, ps, { seed: 1, maxTokens: 4, onStep: (p) => steps.push(p.tokens) });
    expect(steps).toEqual([3, 6, 9, 12]);
    // padded forwards: inference only, rowStart checked
    const ids = Int32Array.of(1, 2, 3, 4, 5, 6);
    expect(() => tidy(() => model.forward(ids, 2, 3, { rowStart: [0, 1] }))).toThrow(UnsupportedError);
    expect(() => tidy(() => noGrad(() => model.forward(ids, 2, 3, { rowStart: [0] })))).toThrow(/rowStart/);
    expect(() => tidy(() => noGrad(() => model.forward(ids, 2, 3, { rowStart: [0, 3] })))).toThrow(/rowStart/);
    const cache = model.newCache(2, 8, [0, 1]);
    expect(() => tidy(() => noGrad(() => model.forward(ids, 2, 3, { cache, rowStart: [0, 1] })))).toThrow(ConfigError);
    expect(() => model.newCache(2, 8, [0, 8])).toThrow(/rowStart/);
    const ac = new AbortController();
    const run = sampleBatch(model, ps, {
      seed: 1,
      maxTokens: 20,
      signal: ac.signal,
      onStep: (p) => (p.tokens >= 6 ? ac.abort(new Error('stopped')) : undefined),
    });
    await expect(run).rejects.toThrow('stopped');
  });
});

describe.each(cases)('padded forward on %s', (_name, dir, backend) => {
  it('a left-padded batch (no cache) gives each row the logits of the row alone', async () => {
    const model = await loadModel(dir, { backend });
    const V = model.config.vocabSize;
    const ps = prompts(V, [6, 1, 3]);
    const P = 6,
      rowStart = ps.map((p) => P - p.length);
    const ids = new Int32Array(ps.length * P);
    ps.forEach((p, b) => ids.set(p, b * P + rowStart[b]!)); // padding: id 0
    const t = tidy(() => noGrad(() => model.forward(ids, ps.length, P, { rowStart })));
    const all = Float32Array.from((await t.data()) as Float32Array);
    t.dispose();
    for (let b = 0; b < ps.length; b++) {
      const one = tidy(() => noGrad(() => model.forward(ps[b]!, 1, ps[b]!.length)));
      const want = (await one.data()) as Float32Array;
      one.dispose();
      expect(relErr(all.subarray((b * P + rowStart[b]!) * V, (b + 1) * P * V), want), `row ${b}`).toBeLessThan(1e-5);
    }
  });
});
