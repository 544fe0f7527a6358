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
 * then the cache keeps only the live rows (KVCache.keepRows), so they stop costing work. As nanochat's engine.py,
 * the engine sees token ids only.
 */
import { ConfigError, ContextOverflowError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { sampleOnDevice, sampleTarget } from './device_sample.js';
import { freshSeed } from './engine.js';
import type { LogitsTensor } from './interfaces.js';
import { resolveSamplerOptions, Sampler, type SampleResult } from './sampler.js';

/** A cache a ragged batch can use: rows may be dropped, and it remembers each row's left padding. */
export interface BatchCache {
  readonly length: number;
  keepRows(rows: readonly number[]): void;
  reset(): void;
}

/** What batched sampling needs from a model (CausalLM satisfies it). */
export interface BatchDecoderModel<C extends BatchCache = BatchCache> {
  config: { vocabSize: number; maxPositions: number };
  /** ids (B, T); with a cache the positions follow its `length`, and the cache's rowStart applies. */
  forward(ids: Int32Array, B: number, T: number, opts?: { cache?: C; lastOnly?: boolean }): LogitsTensor;
  /** rowStart[b]: where row b's real tokens start in the left-padded batch. */
  newCache(batch: number, maxLen?: number, rowStart?: readonly number[]): C;
}

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
  /** Rows finished so far, of `rows`. */
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

/** One row while it decodes. */
interface Row {
  index: number;
  prompt: Int32Array;
  room: number;
  sampler: Sampler;
  ids: number[];
  logprobs: number[];
  finish: 'stop' | 'length' | null;
}

/** Let timers and signals run between steps. */
function yieldToLoop(): Promise<void> {
  return new Promise((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));
}

/**
 * Sample a continuation of every prompt (token ids), batched. Returns one result per prompt, in the given order.
 * Rejects with `signal.reason` when aborted.
 */
export async function sampleBatch<C extends BatchCache>(
  model: BatchDecoderModel<C>,
  prompts: readonly Int32Array[],
  options: SampleBatchOptions = {},
): Promise<BatchSample[]> {
  const { maxTokens = 256, temperature = 1, stopTokens = [], batchSize = 16, signal, onStep } = options;
  if (!Array.isArray(prompts) || prompts.length === 0) throw new ConfigError('prompts', 'no prompts given');
  if (!Number.isInteger(maxTokens) || maxTokens < 0)
    throw new ConfigError('maxTokens', `expected an integer ≥ 0, got ${String(maxTokens)}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new ConfigError('batchSize', `expected an integer ≥ 1, got ${String(batchSize)}`);
  const V = model.config.vocabSize,
    window = model.config.maxPositions;
  for (const t of stopTokens)
    if (!Number.isInteger(t) || t < 0 || t >= V)
      throw new ConfigError('stopTokens', `expected token ids in 0..${V - 1}, got ${String(t)}`);
  prompts.forEach((p, r) => {
    if (!(p instanceof Int32Array)) throw new ConfigError(`prompts[${r}]`, 'expected an Int32Array of token ids');
    if (p.length === 0) throw new ConfigError(`prompts[${r}]`, 'empty prompt: give at least one token (e.g. BOS)');
    for (const id of p)
      if (id < 0 || id >= V)
        throw new ConfigError(`prompts[${r}]`, `token id ${id} is outside the vocabulary 0..${V - 1}`);
    if (p.length > window) throw new ContextOverflowError(p.length, window, `prompts[${r}]`);
  });
  // temperature-only: the sampler's other settings stay off (checked like generate()'s)
  const o = resolveSamplerOptions({ temperature, topK: 0, topP: 1, minP: 0 });
  const seed = options.seed ?? freshSeed();
  if (!Number.isSafeInteger(seed)) throw new ConfigError('seed', `expected an integer, got ${String(seed)}`);
  const master = new Rng(seed);
  const rows: Row[] = prompts.map((prompt, index) => ({
    index,
    prompt,
    room: Math.min(maxTokens, window - prompt.length),
    sampler: new Sampler(o, master.fork()), // row r: the r-th fork, whatever batch it lands in
    ids: [],
    logprobs: [],
    finish: null,
  }));
  for (const r of rows) if (r.room <= 0) r.finish = 'length';
  // similar lengths together (less padding); the order does not change any row's draws
  const order = rows.filter((r) => !r.finish).sort((a, b) => a.prompt.length - b.prompt.length || a.index - b.index);
  const stops = new Set(stopTokens);
  const progress = { tokens: 0, finished: rows.length - order.length, rows: rows.length, batch: 0 };
  for (let i = 0; i < order.length; i += batchSize) {
    await decodeRagged(model, order.slice(i, i + batchSize), o.temperature, stops, V, window, signal, (n, b) => {
      progress.tokens += n;
      progress.finished = rows.filter((r) => r.finish).length;
      progress.batch = b;
      onStep?.({ ...progress });
    });
  }
  return rows.map((r) => ({
    ids: Int32Array.from(r.ids),
    logprobs: Float32Array.from(r.logprobs),
    finishReason: r.finish ?? 'length',
  }));
}

/** Decode one batch of rows to the end, left-padded to its longest prompt. */
async function decodeRagged<C extends BatchCache>(
  model: BatchDecoderModel<C>,
  batch: Row[],
  temperature: number,
  stops: ReadonlySet<number>,
  V: number,
  window: number,
  signal: AbortSignal | undefined,
  step: (tokens: number, batch: number) => void,
): Promise<void> {
  signal?.throwIfAborted();
  const Pmax = Math.max(...batch.map((r) => r.prompt.length));
  const steps = Math.max(...batch.map((r) => r.room));
  let live = [...batch]; // the rows of the cache, in its row order
  const rowStart = live.map((r) => Pmax - r.prompt.length);
  const cache = model.newCache(live.length, Pmax + steps, rowStart);
  try {
    // prefill: (B, Pmax), left-padded with each row's first token (padding is never attended to) → (B, 1, V)
    const ids = new Int32Array(live.length * Pmax);
    live.forEach((r, b) => {
      ids.fill(r.prompt[0]!, b * Pmax, b * Pmax + rowStart[b]!);
      ids.set(r.prompt, b * Pmax + rowStart[b]!);
    });
    let logits = forwardNoGrad(model, ids, live.length, Pmax, cache, true);
    for (let j = 1; ; j++) {
      const samples = await drawRows(
        logits,
        live.map((r) => (r.finish ? null : r)),
        V,
      );
      let drawn = 0;
      live.forEach((r, b) => {
        const s = samples[b];
        if (!s) return;
        drawn++;
        r.ids.push(s.id);
        r.logprobs.push(temperature > 0 ? Math.log(s.prob) : s.logprob);
        if (stops.has(s.id)) r.finish = 'stop';
        else if (r.ids.length >= r.room) r.finish = 'length';
      });
      step(drawn, live.length);
      const open = live.filter((r) => !r.finish).length;
      if (open === 0) return;
      if (signal) {
        await yieldToLoop();
        signal.throwIfAborted();
      }
      // the next forward writes cache position Pmax + j − 1, i.e. row position P + j − 1: a finished row that
      // would pass the window must go (a live row's room keeps it inside), and so do finished rows once they
      // are a quarter of the batch (one gather per layer instead of their work on every step)
      const past = live.some((r) => r.finish && r.prompt.length + j - 1 >= window);
      if (past || open <= live.length * 0.75) {
        const keep = live.flatMap((r, b) => (r.finish ? [] : [b]));
        cache.keepRows(keep);
        live = keep.map((b) => live[b]!);
      }
      // decode: (B', 1) → (B', 1, V); a finished row riding along is fed its last token, its logits ignored
      logits = forwardNoGrad(
        model,
        Int32Array.from(live, (r) => r.ids[r.ids.length - 1]!),
        live.length,
        1,
        cache,
        false,
      );
    }
  } finally {
    cache.reset();
  }
}

/** Run a forward pass without the autograd tape, freeing every intermediate tensor. */
function forwardNoGrad<C extends BatchCache>(
  model: BatchDecoderModel<C>,
  ids: Int32Array,
  B: number,
  T: number,
  cache: C,
  lastOnly: boolean,
): LogitsTensor {
  return tidy(() => noGrad(() => model.forward(ids, B, T, lastOnly ? { cache, lastOnly } : { cache })));
}

/**
 * One token for each live row (`live[b]` null: finished, skipped) from logits (B, 1, V), then free the logits: on
 * the device with the `sample` kernel where the backend has it, else on the host (the same draw from the same coin).
 */
async function drawRows(t: LogitsTensor, live: readonly (Row | null)[], V: number): Promise<(SampleResult | null)[]> {
  try {
    const dev = sampleTarget(t);
    const first = live.find((r) => r)!;
    if (dev) {
      const u = live.map((r) => (r ? r.sampler.drawUniform() : 0));
      const s = await sampleOnDevice(dev, first.sampler.options, u);
      return live.map((r, b) => (r ? s[b]! : null));
    }
    const all = await t.data();
    const row = (b: number): ArrayLike<number> =>
      all instanceof Float32Array
        ? all.subarray(b * V, (b + 1) * V)
        : Array.prototype.slice.call(all, b * V, (b + 1) * V);
    return live.map((r, b) => (r ? r.sampler.sample(row(b)) : null));
  } finally {
    t.dispose();
  }
}
