/**
 * Batched sampling of ragged prompts, for the RL trainers (PPO, RLOO, KTO's samples, evaluation) and a server
 * batching requests: many prompts of different lengths decoded together, one forward per step for a whole batch.
 *
 *   prompts ─ sort by length, cut into batches of `batchSize` ─▶ left-pad each batch to its longest prompt
 *   prefill: (B, Pmax) with the cache's rowStart (positions per row from its first real token, padding unseen)
 *   decode:  draw one token per live row from softmax(logits / T) where the logits live, feed (B', 1) back
 *
 * The draws are temperature-only, exactly from softmax(logits / temperature) (no top-k, top-p or penalties): what
 * a policy-gradient trainer needs, and `logprobs[t]` is the log-probability of the drawn token under that same
 * distribution (log of the `sample` kernel's float64 probability, rounded to float32; temperature 0 is greedy and
 * reports the model's own log-probabilities). Row r draws with the r-th fork of the seeded Rng (generate()'s rule),
 * so a row's tokens do not depend on which rows share its batch, nor on `batchSize`.
 *
 * A row ends at a stop token (kept as its last id, with its log-probability: the policy chose to stop), at
 * `maxTokens`, or at the context window. Finished rows ride along masked until a quarter of the batch has finished,
 * then the cache keeps only the live rows (KVCache.keepRows), so they stop costing work. The loop is generate()'s
 * batch loop (./engine.ts decodeBatch); this file chooses the batches and the sampler settings. As nanochat's
 * engine.py, the engine sees token ids only.
 */
import { ConfigError, ContextOverflowError, UnsupportedError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { decodeBatch, freshSeed, resolveRun } from './engine.js';
import type { DecoderCache, DecoderModel } from './interfaces.js';

export interface SampleBatchOptions {
  /** Most new tokens per row (default 256); the context window may end a row earlier ('length'). */
  maxTokens?: number;
  /** Sampling temperature (default 1): tokens are drawn from softmax(logits / temperature); 0 is greedy. */
  temperature?: number;
  /** Token ids that end a row (EOS, <|im_end|>); the stop token is the row's last id. */
  stopTokens?: readonly number[];
  /** Seed of the master Rng (row r draws with its r-th fork). Absent: a fresh one (not repeatable). */
  seed?: number;
  /** Rows decoded together in one forward (default 16). Results do not depend on it. */
  batchSize?: number;
  /** Cancels sampling: the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after every decode step. */
  onStep?: (p: BatchProgress) => void;
}

/** Progress after a decode step. */
export interface BatchProgress {
  /** Tokens drawn so far, over all rows. */
  tokens: number;
  /** Rows done so far (counted as their batch ends), of `rows`. */
  finished: number;
  rows: number;
  /** Rows in the forward that produced this step (live ones, and finished ones still riding along). */
  batch: number;
}

/** One row's result. */
export interface BatchSample {
  /** The new token ids; ends with the stop token when finishReason is 'stop'. */
  ids: Int32Array;
  /** logprobs[t]: log-probability of ids[t] under softmax(logits / temperature), the distribution it was drawn from. */
  logprobs: Float32Array;
  finishReason: 'stop' | 'length';
}

/**
 * Sample a continuation of every prompt (token ids), batched. Returns one result per prompt, in the given order.
 * Rejects with `signal.reason` when aborted. The model's cache must take left padding (CausalLM's does) unless the
 * prompts of each batch have equal lengths.
 */
export async function sampleBatch<C extends DecoderCache>(
  model: DecoderModel<C>,
  prompts: readonly Int32Array[],
  options: SampleBatchOptions = {},
): Promise<BatchSample[]> {
  const { maxTokens = 256, temperature = 1, stopTokens = [], batchSize = 16, signal, onStep } = options;
  if (!Array.isArray(prompts) || prompts.length === 0) throw new ConfigError('prompts', 'no prompts given');
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ConfigError('batchSize', `expected an integer ≥ 1, got ${String(batchSize)}`);
  const V = model.config.vocabSize,
    window = model.config.maxPositions;
  for (const t of stopTokens)
    if (!Number.isInteger(t) || t < 0 || t >= V)
      throw new ConfigError('stopTokens', `expected token ids in 0..${V - 1}, got ${String(t)}`);
  const rows = prompts.map((p, r) => {
    if (!(p instanceof Int32Array)) throw new ConfigError(`prompts[${r}]`, 'expected an Int32Array of token ids');
    if (p.length === 0) throw new ConfigError(`prompts[${r}]`, 'empty prompt: give at least one token (e.g. BOS)');
    for (const id of p)
      if (id < 0 || id >= V)
        throw new ConfigError(`prompts[${r}]`, `token id ${id} is outside the vocabulary 0..${V - 1}`);
    if (p.length > window) throw new ContextOverflowError(p.length, window, `prompts[${r}]`);
    return Array.from(p);
  });
  // temperature-only: top-k, top-p, min-p and the penalties stay off (checked as generate() checks them)
  const run = resolveRun(model, { maxTokens, temperature, topK: 0, topP: 1, minP: 0, stopTokens, signal });
  const seed = options.seed ?? freshSeed();
  if (!Number.isSafeInteger(seed)) throw new ConfigError('seed', `expected an integer, got ${String(seed)}`);
  const master = new Rng(seed);
  const rngs = rows.map(() => master.fork()); // row r: the r-th fork, whatever batch it lands in
  // similar lengths together (less padding); the order changes no row's draws
  const order = rows.map((_, r) => r).sort((a, b) => rows[a]!.length - rows[b]!.length || a - b);
  const out: BatchSample[] = new Array(rows.length);
  const progress: BatchProgress = { tokens: 0, finished: 0, rows: rows.length, batch: 0 };
  for (let i = 0; i < order.length; i += batchSize) {
    const part = order.slice(i, i + batchSize);
    const steps = await decodeBatch(
      model,
      part.map((r) => rows[r]!),
      run,
      part.map((r) => rngs[r]!),
      (drawn, batch) => {
        progress.tokens += drawn;
        progress.batch = batch;
        onStep?.({ ...progress });
      },
    );
    if (!steps) throw new UnsupportedError("sampleBatch: this model's cache takes no left padding (rowStart)");
    part.forEach((r, k) => {
      const st = steps[k]!;
      out[r] = {
        ids: Int32Array.from(st, (s) => s.id),
        // the probability under softmax(logits / T) is the draw's own; greedy reports the model's
        logprobs: Float32Array.from(st, (s) => (temperature > 0 ? Math.log(s.sample.prob) : s.sample.logprob)),
        finishReason: st.at(-1)?.finish ?? 'length',
      };
      progress.finished++;
    });
  }
  return out;
}
