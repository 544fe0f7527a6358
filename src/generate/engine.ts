/**
 * The generation engine (after nanochat's engine.py): a KV-cached decoding loop over token ids.
 *
 *   prefill: one forward over the whole prompt with `lastOnly` → logits (1, 1, V) of the next position
 *   decode:  sample a token, feed just that token (T = 1) through the cache, repeat
 *
 * It stops at `maxTokens` new tokens, at a stop token id (not part of the output), at a stop string (checked on the
 * decoded text, which may span tokens; the stop string is not emitted), or at the context window (finish_reason
 * 'length'). A prompt that alone exceeds the window is a ContextOverflowError.
 *
 * Batched prompts of different lengths run one row at a time, each with its own cache (B = 1): simple and exactly
 * equal to running each prompt alone. (A left-padded batch would need an attention mask the model does not take.)
 *
 * Randomness: `seed` seeds a master Rng; row r samples with the r-th `fork()` of it, so row 0 of a batch equals the
 * same prompt run alone. No seed → a fresh one from `crypto.getRandomValues`, returned in the result so the run can
 * be repeated.
 *
 * Probabilities come from the same logits the token was sampled from (no second forward): the model's log-probability
 * of the token, its probability under the final sampling distribution, and the model's top alternatives, returned in
 * OpenAI's `logprobs` shape.
 */
import { ConfigError, ContextOverflowError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { DecoderCache, DecoderModel, IdStreamDecoder, TextCodec } from './interfaces.js';
import { resolveSamplerOptions, Sampler, type ResolvedSamplerOptions, type SampleResult, type SamplerOptions } from './sampler.js';
import { StopStringMatcher } from './stop.js';
import { noGrad, tidy } from '../tensor/tensor.js';

export type FinishReason = 'stop' | 'length';

export interface GenerateOptions extends SamplerOptions {
  /** Most new tokens per row (default 256). The context window may stop it earlier. */
  maxTokens?: number;
  /** Token ids that end generation (e.g. eos, <|im_end|>); the stop token is not part of the output. */
  stopTokens?: readonly number[];
  /** Strings that end generation; checked on the decoded text (needs `tokenizer`); never emitted. */
  stop?: readonly string[];
  /** Seed of the sampler's coin. Absent: a fresh one, returned in the result. */
  seed?: number;
  /** Cancels generation: the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Context window in tokens; default and upper bound: the model's `maxPositions`. */
  contextLength?: number;
  /** For text, stop strings and token strings in `logprobs`. Without it `text` is '' and token strings are ''. */
  tokenizer?: TextCodec;
}

/** One alternative in OpenAI's `top_logprobs`. `id` is an addition. */
export interface TopLogprob {
  token: string;
  id: number;
  logprob: number;
  bytes: number[];
}

/** One generated token in OpenAI's `logprobs.content`; `id` and `prob` (final sampling distribution) are additions. */
export interface TokenLogprobEntry extends TopLogprob {
  prob: number;
  top_logprobs: TopLogprob[];
}

export interface Choice {
  index: number;
  /**
   * New token ids: without the stop token if one ended it; with the tokens that spelled a stop string if one did
   * (a token cannot be cut in half, so `text` is cut instead).
   */
  ids: number[];
  /** Decoded new text, cut before a stop string ('' without a tokenizer). */
  text: string;
  finish_reason: FinishReason;
  /** What stopped it, if finish_reason is 'stop': the stop token id or the stop string. */
  stopped_by: { token: number } | { string: string } | null;
  logprobs: { content: TokenLogprobEntry[] };
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: { prefill_ms: number; decode_ms: number; ttft_ms: number };
}

export interface GenerateResult {
  /** The seed that was used (the given one, or the fresh one drawn). */
  seed: number;
  choices: Choice[];
}

/** One token of a stream. */
export interface StreamEvent {
  /** Text that became showable with this token (complete characters; may be ''). */
  text: string;
  id: number;
  /** The model's log-probability of the token. */
  logprob: number;
  /** Its probability under the final sampling distribution. */
  prob: number;
  /** The model's top alternatives (if topLogprobs > 0). */
  top?: { id: number; token: string; logprob: number }[];
  /** Set on the last event. */
  finishReason?: FinishReason;
  /** True when this event's id is the stop token (not part of the output; its text is only flushed text). */
  isStopToken?: boolean;
}

/** A fresh 32-bit seed from the platform's cryptographic source. */
export function freshSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0]!;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new ConfigError('seed', `expected an integer, got ${String(seed)}`);
}

/** Let timers and signals (Ctrl-C, AbortController) run between tokens. */
function yieldToLoop(): Promise<void> {
  return new Promise((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));
}

interface RowStep {
  id: number;
  sample: SampleResult;
  /** Text released by this token (stop strings and partial characters held back). */
  text: string;
  finish?: FinishReason;
  stopToken?: boolean;
  stopString?: string;
  ttftMs?: number;
  prefillMs?: number;
}

interface ResolvedRunOptions {
  sampler: ResolvedSamplerOptions;
  maxTokens: number;
  stopTokens: Set<number>;
  stop: string[];
  window: number;
  signal: AbortSignal | undefined;
  tokenizer: TextCodec | undefined;
}

function resolveRun(model: DecoderModel, opts: GenerateOptions): ResolvedRunOptions {
  const { maxTokens = 256, stopTokens = [], stop = [], signal, contextLength, tokenizer, seed: _seed, ...samplerOpts } = opts;
  const sampler = resolveSamplerOptions(samplerOpts);
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new ConfigError('maxTokens', `expected an integer ≥ 0, got ${String(maxTokens)}`);
  for (const t of stopTokens)
    if (!Number.isInteger(t)) throw new ConfigError('stopTokens', `expected integer token ids, got ${String(t)}`);
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s.length === 0))
    throw new ConfigError('stop', 'expected a list of non-empty strings');
  if (stop.length > 0 && !tokenizer) throw new ConfigError('stop', 'stop strings need a tokenizer (pass opts.tokenizer) to decode text');
  const maxPos = model.config.maxPositions;
  let window = maxPos;
  if (contextLength !== undefined) {
    if (!Number.isInteger(contextLength) || contextLength < 1)
      throw new ConfigError('contextLength', `expected an integer ≥ 1, got ${String(contextLength)}`);
    window = Math.min(contextLength, maxPos);
  }
  return { sampler, maxTokens, stopTokens: new Set(stopTokens), stop: [...stop], window, signal, tokenizer };
}

function checkPrompt(prompt: readonly number[], vocab: number, window: number, row: number): void {
  const where = row >= 0 ? `prompt[${row}]` : 'prompt';
  if (prompt.length === 0) throw new ConfigError(where, 'empty prompt: give at least one token (e.g. the BOS token)');
  for (const id of prompt)
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new ConfigError(where, `token id ${String(id)} is outside the vocabulary 0..${vocab - 1}`);
  if (prompt.length > window) throw new ContextOverflowError(prompt.length, window, where);
}

/** Read a (1, 1, V) logits tensor and free it. */
async function readLogits(t: { data(): Promise<ArrayLike<number>>; dispose(): void }, V: number): Promise<ArrayLike<number>> {
  try {
    const d = await t.data();
    return d.length === V ? d : Array.prototype.slice.call(d, d.length - V) as number[];
  } finally {
    t.dispose();
  }
}

/**
 * The decoding loop for one prompt row. Yields one step per sampled token; the last step has `finish`.
 * A prompt that already fills the window yields nothing (the caller reports finish 'length').
 */
async function* decodeRow<C extends DecoderCache>(
  model: DecoderModel<C>,
  prompt: readonly number[],
  run: ResolvedRunOptions,
  rng: Rng,
): AsyncGenerator<RowStep, FinishReason> {
  const V = model.config.vocabSize;
  const room = Math.min(run.maxTokens, run.window - prompt.length);
  if (room <= 0) return 'length';
  const signal = run.signal;
  signal?.throwIfAborted();
  const sampler = new Sampler(run.sampler, rng);
  sampler.observe(prompt);
  const dec: IdStreamDecoder | null = run.tokenizer ? run.tokenizer.streamDecoder() : null;
  const stopper = new StopStringMatcher(run.stop);
  const cache = model.newCache(1, prompt.length + room);
  const t0 = performance.now();
  try {
    // prefill: (1, P) → (1, 1, V)
    let logits = await readLogits(
      tidy(() => noGrad(() => model.forward(Int32Array.from(prompt), 1, prompt.length, { cache, lastOnly: true }))),
      V,
    );
    const prefillMs = performance.now() - t0;
    for (let n = 0; ; n++) {
      const sample = sampler.sample(logits);
      const id = sample.id;
      const step: RowStep = { id, sample, text: '' };
      if (n === 0) {
        step.ttftMs = performance.now() - t0;
        step.prefillMs = prefillMs;
      }
      if (run.stopTokens.has(id)) {
        step.stopToken = true;
        step.finish = 'stop';
        if (dec) step.text = stopper.push(dec.flush()).text + stopper.flush();
        yield step;
        return 'stop';
      }
      sampler.observe(id);
      if (dec) {
        const r = stopper.push(dec.push(id));
        step.text = r.text;
        if (r.stopped !== null) {
          step.stopString = r.stopped;
          step.finish = 'stop';
          yield step;
          return 'stop';
        }
      }
      if (n + 1 >= room) {
        if (dec) {
          const r = stopper.push(dec.flush());
          step.text += r.text + (r.stopped !== null ? '' : stopper.flush());
          if (r.stopped !== null) {
            step.stopString = r.stopped;
            step.finish = 'stop';
            yield step;
            return 'stop';
          }
        }
        step.finish = 'length';
        yield step;
        return 'length';
      }
      yield step;
      if (signal) {
        await yieldToLoop();
        signal.throwIfAborted();
      }
      // decode: (1, 1) → (1, 1, V)
      logits = await readLogits(tidy(() => noGrad(() => model.forward(Int32Array.of(id), 1, 1, { cache }))), V);
    }
  } finally {
    cache.reset(); // frees the cached keys/values, also when the consumer stops early or on abort
  }
}

function tokenString(tok: TextCodec | undefined, id: number): { token: string; bytes: number[] } {
  if (!tok) return { token: '', bytes: [] };
  const token = tok.decode([id]);
  const bytes = tok.tokenBytes ? Array.from(tok.tokenBytes(id)) : Array.from(new TextEncoder().encode(token));
  return { token, bytes };
}

/**
 * Generate continuations of one or more prompts (token ids). Rows may have different lengths; each runs with its own
 * KV cache. Rejects with `signal.reason` when aborted.
 */
export async function generate<C extends DecoderCache>(
  model: DecoderModel<C>,
  promptIds: readonly (readonly number[])[] | readonly number[],
  opts: GenerateOptions = {},
): Promise<GenerateResult> {
  const rows: (readonly number[])[] =
    promptIds.length > 0 && typeof promptIds[0] === 'number' ? [promptIds as readonly number[]] : [...(promptIds as readonly (readonly number[])[])];
  if (rows.length === 0) throw new ConfigError('prompt', 'no prompts given');
  const run = resolveRun(model, opts);
  rows.forEach((p, r) => {
    if (!Array.isArray(p)) throw new ConfigError(`prompt[${r}]`, 'expected an array of token ids');
    checkPrompt(p, model.config.vocabSize, run.window, rows.length > 1 ? r : -1);
  });
  const seed = opts.seed ?? freshSeed();
  checkSeed(seed);
  const master = new Rng(seed);
  const choices: Choice[] = [];
  for (let r = 0; r < rows.length; r++) {
    const prompt = rows[r]!;
    const rng = master.fork();
    const ids: number[] = [];
    const content: TokenLogprobEntry[] = [];
    let text = '';
    let stoppedBy: Choice['stopped_by'] = null;
    let finish: FinishReason = 'length';
    const timings = { prefill_ms: 0, decode_ms: 0, ttft_ms: 0 };
    const t0 = performance.now();
    const it = decodeRow(model, prompt, run, rng);
    for (;;) {
      const n = await it.next();
      if (n.done) {
        finish = n.value;
        break;
      }
      const s = n.value;
      if (s.ttftMs !== undefined) {
        timings.ttft_ms = s.ttftMs;
        timings.prefill_ms = s.prefillMs ?? 0;
      }
      text += s.text;
      if (s.stopToken) stoppedBy = { token: s.id };
      else {
        ids.push(s.id);
        const ts = tokenString(run.tokenizer, s.id);
        content.push({
          ...ts,
          id: s.id,
          logprob: s.sample.logprob,
          prob: s.sample.prob,
          top_logprobs: s.sample.top.map((a) => ({ ...tokenString(run.tokenizer, a.id), id: a.id, logprob: a.logprob })),
        });
      }
      if (s.stopString !== undefined) stoppedBy = { string: s.stopString };
    }
    timings.decode_ms = performance.now() - t0 - timings.prefill_ms;
    choices.push({
      index: r,
      ids,
      text,
      finish_reason: finish,
      stopped_by: stoppedBy,
      logprobs: { content },
      usage: { prompt_tokens: prompt.length, completion_tokens: ids.length },
      timings,
    });
  }
  return { seed, choices };
}

/** A stream of generated tokens; `seed` says which seed it uses, `finishReason` is set once it ends. */
export interface GenerationStream extends AsyncIterable<StreamEvent> {
  readonly seed: number;
  readonly promptTokens: number;
  finishReason: FinishReason | null;
}

/**
 * Stream one continuation. `prompt` is text (encoded with `tokenizer`) or token ids. Every event's text is made of
 * complete characters (the tokenizer's streaming decoder holds partial UTF-8 sequences back), with stop strings held
 * back until they can no longer match. Abort with `opts.signal` (the iteration throws the signal's reason) or by
 * leaving the loop early.
 */
export function stream<C extends DecoderCache>(
  model: DecoderModel<C>,
  tokenizer: TextCodec,
  prompt: string | readonly number[],
  opts: Omit<GenerateOptions, 'tokenizer'> = {},
): GenerationStream {
  const run = resolveRun(model, { ...opts, tokenizer });
  const ids = typeof prompt === 'string' ? tokenizer.encode(prompt) : [...prompt];
  checkPrompt(ids, model.config.vocabSize, run.window, -1);
  const seed = opts.seed ?? freshSeed();
  checkSeed(seed);
  const rng = new Rng(seed).fork(); // same coin as row 0 of generate()
  const s: GenerationStream = {
    seed,
    promptTokens: ids.length,
    finishReason: null,
    async *[Symbol.asyncIterator]() {
      const it = decodeRow(model, ids, run, rng);
      for (;;) {
        const n = await it.next();
        if (n.done) {
          s.finishReason = n.value;
          return;
        }
        const st = n.value;
        const ev: StreamEvent = { text: st.text, id: st.id, logprob: st.sample.logprob, prob: st.sample.prob };
        if (st.sample.top.length > 0) ev.top = st.sample.top.map((a) => ({ id: a.id, token: tokenizer.decode([a.id]), logprob: a.logprob }));
        if (st.finish) ev.finishReason = st.finish;
        if (st.stopToken) ev.isStopToken = true;
        yield ev;
      }
    },
  };
  return s;
}
