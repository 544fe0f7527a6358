/**
 * Text embeddings from a causal language model: the final normalised hidden states (the input of its head, what
 * llama.cpp's embeddings and sentence-transformers read), pooled per text into one vector.
 *
 *   ids (1, T) → hidden (1, T, C) → pooled (C) → first `dimensions` components → L2-normalised
 *
 * Pooling:
 *   last  the last token's state: decoder embedding models (Qwen3-Embedding, e5-mistral, SFR-Embedding) end each
 *         text with a token whose state sums it up (their tokenizer appends eos; src/tokenizer/leading_bos.ts)
 *   mean  the average of the text's token states
 *   cls   the first token's state
 * `normalize` (default true) scales each vector to unit length, so a dot product is a cosine similarity;
 * `dimensions` keeps the first d components before that (Matryoshka models; OpenAI's `dimensions`).
 * Each text runs alone (B = 1: no padding, so the states are those of the text by itself), without the autograd tape.
 */
import { ConfigError, ContextOverflowError } from '../util/errors.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';

export const POOLINGS = ['last', 'mean', 'cls'] as const;
export type Pooling = (typeof POOLINGS)[number];

export interface EmbedOptions {
  /** How a text's token states become one vector (default 'last'). */
  pooling?: Pooling;
  /** Scale each vector to unit length (default true). */
  normalize?: boolean;
  /** Keep the first d components (1 ≤ d ≤ hidden size; default all). */
  dimensions?: number;
  /** Cancels between texts: the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What embed() needs of a model: its final states (CausalLM.hidden) and its sizes. */
export interface HiddenStatesModel {
  config: { vocabSize: number; maxPositions: number; hiddenSize: number };
  hidden(ids: Int32Array, B: number, T: number): Tensor;
}

/** The special tokens a model's tokenizer puts around a text (its BOS first, the EOS its post-processor appends). */
export interface TextFrame {
  bos: number | null;
  eos: number | null;
}

/** A text's ids framed as its tokenizer frames one: BOS first and EOS last where they belong and are missing. */
export function frameIds(ids: readonly number[], frame: TextFrame): number[] {
  const out = [...ids];
  if (frame.bos !== null && out[0] !== frame.bos) out.unshift(frame.bos);
  if (frame.eos !== null && out[out.length - 1] !== frame.eos) out.push(frame.eos);
  return out;
}

/** Pool one text's states (T, C), row-major, into a vector of the first `d` components. */
export function pool(states: ArrayLike<number>, T: number, C: number, pooling: Pooling, d = C): Float64Array {
  const out = new Float64Array(d);
  if (pooling === 'mean') {
    for (let t = 0; t < T; t++) for (let i = 0; i < d; i++) out[i]! += states[t * C + i]!;
    for (let i = 0; i < d; i++) out[i]! /= T;
  } else {
    const t = pooling === 'last' ? T - 1 : 0;
    for (let i = 0; i < d; i++) out[i] = states[t * C + i]!;
  }
  return out;
}

/** Embed each row of token ids (see the top of this file). */
export async function embed(
  model: HiddenStatesModel,
  rows: readonly (readonly number[])[],
  opts: EmbedOptions = {},
): Promise<Float32Array[]> {
  const { pooling = 'last', normalize = true, signal } = opts;
  const c = model.config;
  const C = c.hiddenSize;
  if (!(POOLINGS as readonly string[]).includes(pooling))
    throw new ConfigError('pooling', `expected one of ${POOLINGS.join(', ')}, got ${String(pooling)}`);
  const d = opts.dimensions ?? C;
  if (!Number.isInteger(d) || d < 1 || d > C)
    throw new ConfigError('dimensions', `expected an integer in 1..${C} (the hidden size), got ${String(d)}`);
  rows.forEach((ids, r) => {
    const where = rows.length > 1 ? `input[${r}]` : 'input';
    if (ids.length === 0) throw new ConfigError(where, 'empty: give at least one token');
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new ConfigError(where, `token id ${String(id)} is outside the vocabulary 0..${c.vocabSize - 1}`);
    if (ids.length > c.maxPositions) throw new ContextOverflowError(ids.length, c.maxPositions, where);
  });
  const out: Float32Array[] = [];
  for (const ids of rows) {
    signal?.throwIfAborted();
    // (1, T) → (1, T, C)
    const h = tidy(() => noGrad(() => model.hidden(Int32Array.from(ids), 1, ids.length)));
    let states: ArrayLike<number>;
    try {
      states = await h.data();
    } finally {
      h.dispose();
    }
    const v = pool(states, ids.length, C, pooling, d);
    if (normalize) {
      let n = 0;
      for (let i = 0; i < d; i++) n += v[i]! * v[i]!;
      const s = n > 0 ? 1 / Math.sqrt(n) : 0;
      for (let i = 0; i < d; i++) v[i]! *= s;
    }
    out.push(Float32Array.from(v));
  }
  return out;
}
