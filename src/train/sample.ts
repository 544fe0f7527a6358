/**
 * Samples for the training strip: continue fixed prompts with the model being trained, greedy (temperature 0) or
 * seeded sampling (the token choice is `sampleToken` of the generation engine). A KV cache makes each new token one
 * T = 1 forward; once the context window is full the window slides as in nanoGPT's `generate` (keep the last
 * maxPositions − 1 tokens, recompute them), so a sample may be longer than the model's context.
 */
import { sampleToken } from '../generate/sampler.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';

/** What sampling needs from the model. */
export interface SamplingModel<C extends { length: number; reset(): void; dispose?(): void }> {
  config: { vocabSize: number; maxPositions: number };
  forward(ids: Int32Array, B: number, T: number, opts?: { cache?: C; lastOnly?: boolean }): Tensor;
  newCache(batch: number, maxLen?: number): C;
}

export interface SampleOptions {
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 0 = all tokens. */
  topK: number;
  seed: number;
  /** Stop at this id (not emitted). */
  stopId?: number;
}

/** Continue `prompt` ids; returns the new ids. */
export async function sampleIds<C extends { length: number; reset(): void; dispose?(): void }>(
  model: SamplingModel<C>,
  prompt: readonly number[],
  o: SampleOptions,
): Promise<number[]> {
  const W = model.config.maxPositions;
  const rng = new Rng(o.seed);
  const opts = { temperature: o.temperature, topK: o.topK };
  const seq = prompt.length ? [...prompt] : [0];
  const out: number[] = [];
  const cache = model.newCache(1, W);
  // Prefill with the last W − 1 tokens (room for one more).
  const prefill = async (): Promise<ArrayLike<number>> => {
    cache.reset();
    const ctx = Int32Array.from(seq.slice(-(W - 1)));
    const logits = tidy(() => noGrad(() => model.forward(ctx, 1, ctx.length, { cache, lastOnly: true }))); // (1, 1, V)
    const d = await logits.data();
    logits.dispose();
    return d;
  };
  try {
    let row = await prefill();
    for (let i = 0; i < o.maxTokens; i++) {
      const id = sampleToken(row, opts, rng).id;
      if (o.stopId !== undefined && id === o.stopId) break;
      out.push(id);
      seq.push(id);
      if (i === o.maxTokens - 1) break;
      if (cache.length >= W) row = await prefill();
      else {
        const logits = tidy(() => noGrad(() => model.forward(Int32Array.of(id), 1, 1, { cache, lastOnly: true }))); // (1, 1, V)
        row = await logits.data();
        logits.dispose();
      }
    }
  } finally {
    if (cache.dispose) cache.dispose();
    else cache.reset();
  }
  return out;
}
