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
 * Batched prompts decode together as one batch (one (B, 1) forward per step, the weights read once for all rows):
 * prompts of different lengths are left-padded to the longest, the cache telling the model where each row starts
 * (its positions count from there and attention skips the padding; src/model/kv_cache.ts rowStart). Finished rows
 * ride along until a quarter of the batch is done, then the cache keeps only the live rows. A model whose cache takes
 * no padding (test doubles) decodes each length apart: equal lengths as one batch, the others one at a time.
 *
 * Randomness: `seed` seeds a master Rng; row r samples with the r-th `fork()` of it, so row 0 of a batch equals the
 * same prompt run alone. No seed → a fresh one from `crypto.getRandomValues`, returned in the result so the run can
 * be repeated.
 *
 * Probabilities come from the same logits the token was sampled from (no second forward): the model's log-probability
 * of the token, its probability under the final sampling distribution, and the model's top alternatives, returned in
 * OpenAI's `logprobs` shape. When the logits are a tensor on a backend with the `sample` kernel, the token (after the
 * penalties) and its top alternatives are drawn where the logits live (src/generate/device_sample.ts): the same draw
 * from the same coin, without reading the V logits back; the probabilities are then float32-rounded.
 */
import { ConfigError, ContextOverflowError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { DecoderCache, DecoderModel, IdStreamDecoder, LogitsTensor, TextCodec } from './interfaces.js';
import {
  resolveSamplerOptions,
  Sampler,
  type ResolvedSamplerOptions,
  type SampleResult,
  type SamplerOptions,
} from './sampler.js';
import { StopStringMatcher } from './stop.js';
import { sampleOnDevice, sampleTarget } from './device_sample.js';
import type { PromptCache, TruncatableCache } from './prompt_cache.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { compileGrammar, type CompiledGrammar, type Grammar } from './grammar/grammar.js';
import { GrammarVocab, TokenGrammar, type TokenConstraint } from './grammar/constraint.js';
import { DraftSchedule, resolveSpeculative, type DraftStats, type SpeculativeOptions } from './speculative.js';

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
  /**
   * For text, stop strings and token strings in `logprobs`: a TextCodec (a tokenizer wrapped with `tokenizerCodec`
   * from src/chat/codec.ts, or any codec of your own). Without it `text` is '' and token strings are ''.
   */
  tokenizer?: TextCodec;
  /**
   * generate() only: decode prompts of equal length together as one batch (one forward per step for all of them;
   * default true). Each row keeps its own coin, so its tokens do not depend on the grouping up to float rounding.
   */
  batch?: boolean;
  /**
   * Keep the KV cache between calls (one prompt per call): the part of the prompt a previous call with the same
   * PromptCache already computed is not prefilled again (./prompt_cache.ts). A chat passes one per conversation.
   */
  promptCache?: PromptCache<TruncatableCache>;
  /**
   * Constrained decoding: every row's text is a sentence of this grammar (JSON Schema: `jsonSchemaGrammar` from
   * ./grammar/json_schema.ts; llama.cpp's GBNF: `parseGbnf`). Needs `tokenizer` (the tokens' bytes). A stop token
   * is allowed only where the grammar accepts the text, and a row whose grammar is complete ends there
   * (`stopped_by: { grammar: true }`). The sampled token is checked first; only when the grammar rejects it is the
   * whole vocabulary masked and the token drawn again from the sampling distribution restricted to the allowed ids
   * (llama.cpp's order: exact, since a rejected draw is redrawn from the same distribution renormalised). `prob`
   * is then the token's probability under that restricted distribution, and under the unrestricted one when the
   * first draw passed.
   */
  grammar?: Grammar | CompiledGrammar | TokenGrammar;
  /**
   * Speculative decoding (./speculative.ts): a drafter guesses the next tokens and one forward of the model checks
   * them all; each token is still sampled from the model with the row's own coin, so the output is the same as
   * without it (up to float rounding), only sooner where the guesses hold. Rows decode one at a time (no batching).
   */
  speculative?: SpeculativeOptions;
  /**
   * Added to the logits of these ids before anything else (OpenAI's `logit_bias`: −100 all but bans a token, +100
   * all but forces it). The biased logits are the row's distribution for every purpose after it: penalties,
   * sampling, and the reported log-probabilities. Rows with a bias sample on the host.
   */
  logitBias?: Readonly<Record<number, number>> | ReadonlyMap<number, number>;
  /**
   * Prefill a long prompt this many tokens per forward, yielding to the event loop between them, so generations that
   * share the model (a server's parallel slots, ./step_batcher.ts) keep stepping while it prefills (vLLM's chunked
   * prefill). Default 0: the whole prompt in one forward. One prompt at a time only (a batch prefills whole).
   */
  prefillChunk?: number;
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
  /** What stopped it, if finish_reason is 'stop': the stop token id, the stop string, or a completed grammar. */
  stopped_by: { token: number } | { string: string } | { grammar: true } | null;
  logprobs: { content: TokenLogprobEntry[] };
  usage: { prompt_tokens: number; completion_tokens: number };
  timings: { prefill_ms: number; decode_ms: number; ttft_ms: number };
  /** With `speculative`: how many tokens were drafted and how many of them the model took. */
  draft?: DraftStats;
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

/** One sampled token of a row. @internal */
export interface RowStep {
  id: number;
  sample: SampleResult;
  /** Text released by this token (stop strings and partial characters held back). */
  text: string;
  finish?: FinishReason;
  stopToken?: boolean;
  stopString?: string;
  /** The grammar was complete after this token. */
  grammarDone?: boolean;
  /** Speculative decoding's counts so far (on every step of a speculative row; the last one holds the totals). */
  draft?: DraftStats;
  ttftMs?: number;
  prefillMs?: number;
}

/** @internal */
export interface ResolvedRunOptions {
  sampler: ResolvedSamplerOptions;
  maxTokens: number;
  stopTokens: Set<number>;
  stop: string[];
  window: number;
  signal: AbortSignal | undefined;
  tokenizer: TextCodec | undefined;
  promptCache: PromptCache<TruncatableCache> | undefined;
  grammar: TokenGrammar | undefined;
  speculative: Required<SpeculativeOptions> | undefined;
  /** logitBias as parallel arrays, or null. */
  bias: { ids: Int32Array; values: Float32Array } | null;
  /** Prompt tokens per prefill forward of one row; 0: all at once. */
  prefillChunk: number;
}

/** generate()'s options, checked and resolved. @internal */
export function resolveRun(model: DecoderModel, opts: GenerateOptions): ResolvedRunOptions {
  const {
    maxTokens = 256,
    stopTokens = [],
    stop = [],
    signal,
    contextLength,
    tokenizer,
    seed: _seed,
    batch: _batch,
    promptCache,
    grammar,
    speculative,
    logitBias,
    prefillChunk = 0,
    ...samplerOpts
  } = opts;
  const sampler = resolveSamplerOptions(samplerOpts);
  if (!Number.isInteger(maxTokens) || maxTokens < 0)
    throw new ConfigError('maxTokens', `expected an integer ≥ 0, got ${String(maxTokens)}`);
  for (const t of stopTokens)
    if (!Number.isInteger(t)) throw new ConfigError('stopTokens', `expected integer token ids, got ${String(t)}`);
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s.length === 0))
    throw new ConfigError('stop', 'expected a list of non-empty strings');
  if (stop.length > 0 && !tokenizer)
    throw new ConfigError('stop', 'stop strings need a tokenizer (pass opts.tokenizer) to decode text');
  if (!Number.isInteger(prefillChunk) || prefillChunk < 0)
    throw new ConfigError('prefillChunk', `expected an integer ≥ 0, got ${String(prefillChunk)}`);
  const maxPos = model.config.maxPositions;
  let window = maxPos;
  if (contextLength !== undefined) {
    if (!Number.isInteger(contextLength) || contextLength < 1)
      throw new ConfigError('contextLength', `expected an integer ≥ 1, got ${String(contextLength)}`);
    window = Math.min(contextLength, maxPos);
  }
  const codec = tokenizer === undefined ? undefined : checkCodec(tokenizer);
  return {
    sampler,
    maxTokens,
    stopTokens: new Set(stopTokens),
    stop: [...stop],
    window,
    signal,
    tokenizer: codec,
    promptCache,
    grammar: grammar === undefined ? undefined : tokenGrammar(grammar, codec, model.config.vocabSize),
    speculative: resolveSpeculative(speculative),
    bias: resolveBias(logitBias, model.config.vocabSize),
    prefillChunk,
  };
}

/** logitBias checked (integer ids inside the vocabulary, finite values) as parallel arrays; null when empty. */
function resolveBias(b: GenerateOptions['logitBias'], V: number): { ids: Int32Array; values: Float32Array } | null {
  if (b === undefined) return null;
  if (b === null || typeof b !== 'object')
    throw new ConfigError('logitBias', 'expected an object or Map from token id to bias');
  const entries: [number, unknown][] =
    b instanceof Map
      ? [...(b as ReadonlyMap<number, number>).entries()]
      : Object.entries(b).map(([k, v]): [number, unknown] => [Number(k), v]);
  if (entries.length === 0) return null;
  for (const [id, v] of entries) {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new ConfigError('logitBias', `token id ${String(id)} is outside the vocabulary 0..${V - 1}`);
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new ConfigError('logitBias', `the bias of token ${id} must be a finite number, got ${String(v)}`);
  }
  return { ids: Int32Array.from(entries, (e) => e[0]), values: Float32Array.from(entries, (e) => e[1] as number) };
}

/** Vocabularies' byte tries, per tokenizer (a codec's `vocabKey`) and vocabulary size. */
const vocabs = new WeakMap<object, Map<number, GrammarVocab>>();

/** The vocabulary of a codec as the grammar sees it: each id's bytes, none for special tokens and ids past it. */
export function grammarVocab(codec: TextCodec, V: number): GrammarVocab {
  const key = codec.vocabKey ?? codec;
  let byV = vocabs.get(key);
  if (!byV) vocabs.set(key, (byV = new Map()));
  let v = byV.get(V);
  if (!v) {
    const bytesOf = (id: number): Uint8Array | null => {
      if (codec.isSpecial?.(id)) return null;
      try {
        return codec.tokenBytes ? codec.tokenBytes(id) : new TextEncoder().encode(codec.decode([id]));
      } catch {
        return null; // an id past the tokenizer (a padded embedding row)
      }
    };
    v = new GrammarVocab(bytesOf, V);
    byV.set(V, v);
  }
  return v;
}

function tokenGrammar(
  g: Grammar | CompiledGrammar | TokenGrammar,
  codec: TextCodec | undefined,
  V: number,
): TokenGrammar {
  if (g instanceof TokenGrammar) return g;
  if (!codec) throw new ConfigError('grammar', 'constrained decoding needs a tokenizer (pass opts.tokenizer)');
  return new TokenGrammar('rules' in g ? compileGrammar(g) : g, grammarVocab(codec, V));
}

/**
 * The codec as given, after checking that it is one: the engine sees ids and this interface only, so a tokenizer
 * passed as is (it has no `streamDecoder`) is refused with the way to wrap it.
 */
function checkCodec(c: TextCodec): TextCodec {
  const f = (k: string): boolean => typeof (c as unknown as Record<string, unknown> | null)?.[k] === 'function';
  if (f('encode') && f('decode') && f('streamDecoder')) return c;
  throw new ConfigError(
    'tokenizer',
    'expected a TextCodec (encode, decode, streamDecoder); wrap a tokenizer: tokenizerCodec(tok)',
  );
}

function checkPrompt(prompt: readonly number[], vocab: number, window: number, row: number): void {
  const where = row >= 0 ? `prompt[${row}]` : 'prompt';
  if (prompt.length === 0) throw new ConfigError(where, 'empty prompt: give at least one token (e.g. the BOS token)');
  for (const id of prompt)
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new ConfigError(where, `token id ${String(id)} is outside the vocabulary 0..${vocab - 1}`);
  if (prompt.length > window) throw new ContextOverflowError(prompt.length, window, where);
}

/** Row b of (B, V) logits, without a copy where the array allows it. */
function logitsRow(all: ArrayLike<number>, b: number, V: number): ArrayLike<number> {
  if (all.length === V) return all;
  const sub = (all as Float32Array).subarray;
  return typeof sub === 'function'
    ? (all as Float32Array).subarray(b * V, (b + 1) * V)
    : (Array.prototype.slice.call(all, b * V, (b + 1) * V) as number[]);
}

/**
 * What one row needs between tokens: its sampler (coin + penalty window), streaming decoder and stop-string matcher.
 * `next(logits)` turns the logits of the next position into one step, deciding whether the row ends there.
 */
class RowState {
  private readonly sampler: Sampler;
  private readonly dec: IdStreamDecoder | null;
  private readonly stopper: StopStringMatcher;
  private readonly constraint: TokenConstraint | null;
  /** Tokens sampled so far. */
  n = 0;
  finish: FinishReason | null = null;

  constructor(
    private readonly run: ResolvedRunOptions,
    rng: Rng,
    prompt: readonly number[],
    private readonly room: number,
  ) {
    this.sampler = new Sampler(run.sampler, rng);
    this.sampler.observe(prompt);
    this.dec = run.tokenizer ? run.tokenizer.streamDecoder() : null;
    this.stopper = new StopStringMatcher(run.stop);
    this.constraint = run.grammar ? run.grammar.start(run.stopTokens) : null;
  }

  /** The row's logits with its logit bias added (a reused copy), or the logits themselves without one. */
  private biased(logits: ArrayLike<number>): ArrayLike<number> {
    const b = this.run.bias;
    if (!b) return logits;
    if (this.biasRow.length !== logits.length) this.biasRow = new Float32Array(logits.length);
    const row = this.biasRow;
    for (let i = 0; i < row.length; i++) row[i] = logits[i]!;
    for (let k = 0; k < b.ids.length; k++) row[b.ids[k]!] = row[b.ids[k]!]! + b.values[k]!;
    return row;
  }
  private biasRow = new Float32Array(0);

  /** Whether this row samples on the host only (a logit bias: the `sample` kernel takes none). */
  get hostOnly(): boolean {
    return this.run.bias !== null;
  }

  /** Whether the row's grammar (if any) lets `id` come next. */
  allows(id: number): boolean {
    return this.constraint === null || this.constraint.allows(id);
  }

  /** Sample again among the ids the grammar allows (after it rejected the first draw). */
  resample(logits: ArrayLike<number>): SampleResult {
    return this.sampler.sampleAllowed(this.biased(logits), this.constraint!.allowed(logits.length));
  }

  /** The resolved sampler settings. */
  get options(): ResolvedSamplerOptions {
    return this.run.sampler;
  }

  /** The row's token counts in its penalty window (the `sample` kernel applies the penalties from them). */
  get penaltyCounts(): ReadonlyMap<number, number> {
    return this.sampler.penaltyCounts;
  }

  /** The uniform number the row's coin gives for its next token (0 at temperature 0, coin untouched). */
  drawUniform(): number {
    return this.sampler.drawUniform();
  }

  /** Sample the next token from its logits on the host (not yet taken: see `accept`). */
  sample(logits: ArrayLike<number>): SampleResult {
    return this.sampler.sample(this.biased(logits));
  }

  /** Sample the next token from logits on the host (drawn again among the allowed ids if the grammar rejects it), and take it. */
  sampleAndAccept(logits: ArrayLike<number>): RowStep {
    let s = this.sample(logits);
    if (!this.allows(s.id)) s = this.resample(logits);
    return this.accept(s);
  }

  /** Take a sampled token: decide whether the row ends with it. */
  accept(sample: SampleResult): RowStep {
    const { dec, stopper } = this;
    const id = sample.id;
    const step: RowStep = { id, sample, text: '' };
    this.n++;
    if (this.run.stopTokens.has(id)) {
      step.stopToken = true;
      if (dec) step.text = stopper.push(dec.flush()).text + stopper.flush();
      return this.end(step, 'stop');
    }
    this.sampler.observe(id);
    this.constraint?.accept(id);
    if (dec) {
      const r = stopper.push(dec.push(id));
      step.text = r.text;
      if (r.stopped !== null) {
        step.stopString = r.stopped;
        return this.end(step, 'stop');
      }
    }
    if (this.constraint?.complete) {
      if (dec) step.text += stopper.push(dec.flush()).text + stopper.flush();
      step.grammarDone = true;
      return this.end(step, 'stop');
    }
    if (this.n >= this.room) {
      if (dec) {
        const r = stopper.push(dec.flush());
        step.text += r.text;
        if (r.stopped !== null) {
          step.stopString = r.stopped;
          return this.end(step, 'stop');
        }
        step.text += stopper.flush();
      }
      return this.end(step, 'length');
    }
    return step;
  }

  private end(step: RowStep, f: FinishReason): RowStep {
    step.finish = f;
    this.finish = f;
    return step;
  }
}

/**
 * One step for the live rows (`live[b]` null = finished, skipped) from logits (B, 1, V), and free the logits: on
 * the device with the `sample` kernel where the logits are a tensor whose backend has it (the same draws as on the
 * host, without reading V logits back), else from the logits read back (test doubles, backends without it).
 */
async function stepRows(
  held: LogitsTensor,
  live: readonly (RowState | null)[],
  V: number,
): Promise<(RowStep | null)[]> {
  let t = held;
  try {
    if (held.settle) t = await held.settle(); // a step batched with other generations' (./step_batcher.ts)
    let samples: (SampleResult | null)[];
    let all: ArrayLike<number> | null = null;
    const dev = live.some((r) => r?.hostOnly) ? null : sampleTarget(t);
    if (dev) {
      const run = live.find((r) => r)!;
      const u = live.map((r) => (r ? r.drawUniform() : 0));
      samples = await sampleOnDevice(
        dev,
        run.options,
        u,
        live.map((r) => (r ? r.penaltyCounts : new Map<number, number>())),
      );
    } else {
      const rows = await t.data();
      all = rows;
      samples = live.map((r, b) => (r ? r.sample(logitsRow(rows, b, V)) : null));
    }
    // a grammar that rejects the draw: draw again among the ids it allows, on the host
    for (let b = 0; b < live.length; b++) {
      const r = live[b];
      if (!r || r.allows(samples[b]!.id)) continue;
      all ??= await t.data();
      samples[b] = r.resample(logitsRow(all, b, V));
    }
    return live.map((r, b) => (r ? r.accept(samples[b]!) : null));
  } finally {
    t.dispose();
    if (t !== held) held.dispose();
  }
}

/** Run a forward pass without the autograd tape, freeing every intermediate tensor. */
function forwardNoGrad<C extends DecoderCache>(
  model: DecoderModel<C>,
  ids: Int32Array,
  B: number,
  T: number,
  cache: C,
  lastOnly: boolean,
) {
  return tidy(() => noGrad(() => model.forward(ids, B, T, lastOnly ? { cache, lastOnly } : { cache })));
}

/**
 * Feed prompt[from..] through the cache → the logits after the last prompt token (1, 1, V): one forward, or with
 * `prefillChunk` one forward per chunk, yielding to the event loop between chunks (the signal checked there).
 */
async function prefillRow<C extends DecoderCache>(
  model: DecoderModel<C>,
  prompt: readonly number[],
  from: number,
  cache: C,
  run: ResolvedRunOptions,
): Promise<LogitsTensor> {
  const P = prompt.length,
    chunk = run.prefillChunk > 0 ? run.prefillChunk : P;
  for (let s = from; ; s += chunk) {
    const n = Math.min(chunk, P - s);
    const t = forwardNoGrad(model, Int32Array.from(prompt.slice(s, s + n)), 1, n, cache, true);
    if (s + n >= P) return t;
    t.dispose();
    await yieldToLoop();
    run.signal?.throwIfAborted();
  }
}

/**
 * The decoding loop for one prompt row. Yields one step per sampled token; the last step has `finish`.
 * A prompt that already fills the window yields nothing (the caller reports finish 'length').
 * With `speculative`, each round after the first token feeds the last token and a draft of the next ones as one
 * (1, 1 + k) forward and samples every position in order (./speculative.ts); the cache is cut back past the first
 * drafted token the row did not take.
 */
async function* decodeRow<C extends DecoderCache>(
  model: DecoderModel<C>,
  prompt: readonly number[],
  run: ResolvedRunOptions,
  rng: Rng,
): AsyncGenerator<RowStep, FinishReason> {
  const room = Math.min(run.maxTokens, run.window - prompt.length);
  if (room <= 0) return 'length';
  const signal = run.signal;
  signal?.throwIfAborted();
  const row = new RowState(run, rng, prompt, room);
  const pc = run.promptCache;
  // with a prompt cache: its cache, holding the first `reused` prompt tokens already
  const { cache, reused } = pc
    ? (pc.take(prompt, prompt.length + room) as unknown as { cache: C; reused: number })
    : { cache: model.newCache(1, prompt.length + room), reused: 0 };
  const fed = [...prompt]; // the ids the cache holds once the prefill is done, then each token fed back
  const spec = run.speculative;
  if (spec && typeof (cache as Partial<TruncatableCache>).truncate !== 'function') {
    cache.reset();
    throw new ConfigError('speculative', "this model's KV cache cannot be cut back (no truncate())");
  }
  const drafting = spec ? spec.drafter.session(prompt) : null;
  const stats: DraftStats = { rounds: 0, drafted: 0, accepted: 0 };
  const schedule = new DraftSchedule(spec?.maxDraft ?? 1);
  const t0 = performance.now();
  try {
    const V = model.config.vocabSize;
    // prefill: (1, P − reused) → (1, 1, V), in chunks of run.prefillChunk tokens when set
    const logits = await prefillRow(model, prompt, reused, cache, run);
    const prefillMs = performance.now() - t0;
    let step = (await stepRows(logits, [row], V))[0]!;
    step.ttftMs = performance.now() - t0;
    step.prefillMs = prefillMs;
    for (;;) {
      if (drafting) step.draft = { ...stats };
      yield step;
      if (step.finish) return step.finish;
      if (signal) {
        await yieldToLoop();
        signal.throwIfAborted();
      }
      const x = step.id;
      // at most room − n − 1 drafted: a round samples up to k + 1 tokens
      const want = drafting ? Math.min(schedule.next(), room - row.n - 1) : 0;
      const draft = want > 0 ? checkDraft(await drafting!.draft([...fed, x], want), want, V) : [];
      if (draft.length === 0) {
        // decode: (1, 1) → (1, 1, V)
        const t = forwardNoGrad(model, Int32Array.of(x), 1, 1, cache, false);
        fed.push(x);
        step = (await stepRows(t, [row], V))[0]!;
        continue;
      }
      // verify: (1, 1 + k) → (1, 1 + k, V); position i's logits give the token after draft[i − 1]
      const before = fed.length;
      const t = forwardNoGrad(model, Int32Array.of(x, ...draft), 1, 1 + draft.length, cache, false);
      fed.push(x, ...draft);
      let all: ArrayLike<number>;
      try {
        all = await t.data();
      } finally {
        t.dispose();
      }
      stats.rounds++;
      stats.drafted += draft.length;
      let i = 0;
      for (;;) {
        step = row.sampleAndAccept(logitsRow(all, i, V));
        const took = i < draft.length && step.id === draft[i];
        if (took) stats.accepted++;
        if (step.finish || !took) break;
        i++;
        step.draft = { ...stats };
        yield step;
      }
      // the cache keeps x and the drafted tokens taken: draft[0 .. i)
      if (fed.length > before + 1 + i) {
        (cache as unknown as TruncatableCache).truncate(before + 1 + i);
        fed.length = before + 1 + i;
      }
      schedule.update(i, draft.length);
    }
  } finally {
    drafting?.dispose();
    // frees the cached keys/values, also when the consumer stops early or on abort; a prompt cache keeps them
    if (pc) pc.settle(fed);
    else cache.reset();
  }
}

/** A drafter's ids, checked: integers inside the vocabulary, at most `want` (anything else ends the draft there). */
function checkDraft(d: readonly number[], want: number, V: number): number[] {
  const out: number[] = [];
  if (!Array.isArray(d)) return out;
  for (const id of d) {
    if (out.length >= want || !Number.isInteger(id) || id < 0 || id >= V) break;
    out.push(id);
  }
  return out;
}

/** A cache that can drop rows (KVCache.keepRows): finished rows then stop costing work. */
interface RowDroppingCache extends DecoderCache {
  keepRows(rows: readonly number[]): void;
}
function canDropRows(c: DecoderCache): c is RowDroppingCache {
  return typeof (c as Partial<RowDroppingCache>).keepRows === 'function';
}

/** Progress of a batch after a step: tokens drawn in it, rows in the forward that produced it. */
export type BatchStepHook = (drawn: number, batch: number) => void;

/**
 * The decoding loop for B prompts as one batch: one (B, Pmax) prefill, then (B, 1) steps, so the weights are read
 * once per step for all rows. Prompts of different lengths are left-padded to the longest (the cache's rowStart:
 * each row's positions count from its first real token and no row attends to padding); a model whose cache does not
 * take rowStart (reports it back) gets null, and the caller decodes the lengths apart. A finished row rides along
 * fed its last token (its logits ignored) until a quarter of the batch has finished, or until its next position
 * would pass the window; then a cache that can (KVCache.keepRows) keeps only the live rows. Returns each row's
 * steps; the first step of each carries the timings.
 * @internal shared by generate() and sampleBatch() (./batch.ts)
 */
export async function decodeBatch<C extends DecoderCache>(
  model: DecoderModel<C>,
  prompts: readonly (readonly number[])[],
  run: ResolvedRunOptions,
  rngs: readonly Rng[],
  onStep?: BatchStepHook,
): Promise<RowStep[][] | null> {
  const V = model.config.vocabSize,
    maxPos = model.config.maxPositions;
  const steps: RowStep[][] = prompts.map(() => []);
  // rows with room for a token (a prompt that fills the window ends at once: 'length')
  const rooms = prompts.map((p) => Math.min(run.maxTokens, run.window - p.length));
  const active = prompts.flatMap((_, b) => (rooms[b]! > 0 ? [b] : []));
  if (active.length === 0) return steps;
  const signal = run.signal;
  signal?.throwIfAborted();
  const P = Math.max(...active.map((b) => prompts[b]!.length));
  const rowStart = active.map((b) => P - prompts[b]!.length);
  const padded = rowStart.some((s) => s > 0);
  const cache = model.newCache(
    active.length,
    P + Math.max(...active.map((b) => rooms[b]!)),
    padded ? rowStart : undefined,
  );
  if (padded && !(cache as { rowStart?: unknown }).rowStart) {
    cache.reset();
    return null;
  }
  const rows = active.map((b) => ({ b, state: new RowState(run, rngs[b]!, prompts[b]!, rooms[b]!) }));
  let live = rows; // the cache's rows, in its order
  const t0 = performance.now();
  try {
    // prefill: (B, P), each row left-padded with its first token (never attended to) → (B, 1, V)
    const ids = new Int32Array(live.length * P);
    live.forEach(({ b }, k) => {
      ids.fill(prompts[b]![0]!, k * P, k * P + rowStart[k]!);
      ids.set(prompts[b]!, k * P + rowStart[k]!);
    });
    let logits = forwardNoGrad(model, ids, live.length, P, cache, true);
    const prefillMs = performance.now() - t0;
    for (let j = 1; ; j++) {
      const stepped = await stepRows(
        logits,
        live.map((r) => (r.state.finish ? null : r.state)),
        V,
      );
      let drawn = 0,
        open = 0;
      live.forEach(({ b, state }, k) => {
        const step = stepped[k];
        if (!step) return;
        drawn++;
        if (state.n === 1) {
          step.ttftMs = performance.now() - t0;
          step.prefillMs = prefillMs;
        }
        steps[b]!.push(step);
        if (!state.finish) open++;
      });
      onStep?.(drawn, live.length);
      if (open === 0) return steps;
      if (signal) {
        await yieldToLoop();
        signal.throwIfAborted();
      }
      // the next forward writes cache position P + j − 1, i.e. P_b + j − 1 of row b
      if (canDropRows(cache)) {
        const past = live.some((r) => r.state.finish && prompts[r.b]!.length + j - 1 >= maxPos);
        if (past || open <= live.length * 0.75) {
          const keep = live.flatMap((r, k) => (r.state.finish ? [] : [k]));
          cache.keepRows(keep);
          live = keep.map((k) => live[k]!);
        }
      }
      // decode: (B', 1) → (B', 1, V); a finished row riding along is fed its last token
      const last = Int32Array.from(live, (r) => steps[r.b]!.at(-1)!.id);
      logits = forwardNoGrad(model, last, live.length, 1, cache, false);
    }
  } finally {
    cache.reset();
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
    promptIds.length > 0 && typeof promptIds[0] === 'number'
      ? [promptIds as readonly number[]]
      : [...(promptIds as readonly (readonly number[])[])];
  if (rows.length === 0) throw new ConfigError('prompt', 'no prompts given');
  if (opts.promptCache && rows.length > 1)
    throw new ConfigError('promptCache', `a prompt cache serves one prompt per call, got ${rows.length}`);
  const run = resolveRun(model, opts);
  rows.forEach((p, r) => {
    if (!Array.isArray(p)) throw new ConfigError(`prompt[${r}]`, 'expected an array of token ids');
    checkPrompt(p, model.config.vocabSize, run.window, rows.length > 1 ? r : -1);
  });
  const seed = opts.seed ?? freshSeed();
  checkSeed(seed);
  const master = new Rng(seed);
  const rngs = rows.map(() => master.fork()); // row r's coin is the r-th fork, however the rows are grouped
  const choices: Choice[] = new Array(rows.length);
  // rows with equal prompt lengths decode as one batch (batch: true), the others one at a time
  const groups = new Map<number, number[]>();
  rows.forEach((p, r) => {
    const key = opts.batch === false || run.speculative ? -1 - r : p.length;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  });
  // prompts of different lengths: one left-padded batch, where the model's cache takes the padding
  if (opts.batch !== false && !run.speculative && groups.size > 1) {
    const t0 = performance.now();
    const perRow = await decodeBatch(model, rows, run, rngs);
    if (perRow) {
      const totalMs = performance.now() - t0;
      rows.forEach((p, r) => (choices[r] = toChoice(r, p, perRow[r]!, run, totalMs)));
      return { seed, choices };
    }
  }
  for (const members of groups.values()) {
    const t0 = performance.now();
    let perRow: RowStep[][];
    if (members.length === 1) {
      perRow = [[]];
      const it = decodeRow(model, rows[members[0]!]!, run, rngs[members[0]!]!);
      for (;;) {
        const n = await it.next();
        if (n.done) break;
        perRow[0]!.push(n.value);
      }
    } else {
      perRow = (await decodeBatch(
        model,
        members.map((r) => rows[r]!),
        run,
        members.map((r) => rngs[r]!),
      ))!; // equal lengths: no padding, never null
    }
    const totalMs = performance.now() - t0;
    members.forEach((r, k) => (choices[r] = toChoice(r, rows[r]!, perRow[k]!, run, totalMs)));
  }
  return { seed, choices };
}

/** One row's steps → an OpenAI-style choice. */
function toChoice(
  index: number,
  prompt: readonly number[],
  steps: readonly RowStep[],
  run: ResolvedRunOptions,
  totalMs: number,
): Choice {
  const ids: number[] = [];
  const content: TokenLogprobEntry[] = [];
  let text = '';
  let stoppedBy: Choice['stopped_by'] = null;
  const timings = { prefill_ms: 0, decode_ms: 0, ttft_ms: 0 };
  for (const s of steps) {
    if (s.ttftMs !== undefined) {
      timings.ttft_ms = s.ttftMs;
      timings.prefill_ms = s.prefillMs ?? 0;
    }
    text += s.text;
    if (s.stopToken) stoppedBy = { token: s.id };
    else {
      ids.push(s.id);
      content.push({
        ...tokenString(run.tokenizer, s.id),
        id: s.id,
        logprob: s.sample.logprob,
        prob: s.sample.prob,
        top_logprobs: s.sample.top.map((a) => ({ ...tokenString(run.tokenizer, a.id), id: a.id, logprob: a.logprob })),
      });
    }
    if (s.stopString !== undefined) stoppedBy = { string: s.stopString };
    if (s.grammarDone) stoppedBy = { grammar: true };
  }
  timings.decode_ms = totalMs - timings.prefill_ms;
  const last = steps[steps.length - 1];
  const draft = last?.draft;
  return {
    index,
    ids,
    text,
    finish_reason: last?.finish ?? 'length',
    stopped_by: stoppedBy,
    logprobs: { content },
    usage: { prompt_tokens: prompt.length, completion_tokens: ids.length },
    timings,
    ...(draft ? { draft } : {}),
  };
}

/** A stream of generated tokens; `seed` says which seed it uses, `finishReason` is set once it ends. */
export interface GenerationStream extends AsyncIterable<StreamEvent> {
  readonly seed: number;
  readonly promptTokens: number;
  finishReason: FinishReason | null;
  /** With `speculative`: the drafted and accepted counts so far (null without). */
  draft: DraftStats | null;
}

/**
 * Stream one continuation. `prompt` is text (encoded with `codec`) or token ids. Every event's text is made of
 * complete characters (the tokenizer's streaming decoder holds partial UTF-8 sequences back), with stop strings held
 * back until they can no longer match. Abort with `opts.signal` (the iteration throws the signal's reason) or by
 * leaving the loop early.
 */
export function stream<C extends DecoderCache>(
  model: DecoderModel<C>,
  codec: TextCodec,
  prompt: string | readonly number[],
  opts: Omit<GenerateOptions, 'tokenizer'> = {},
): GenerationStream {
  const tokenizer = checkCodec(codec);
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
    draft: null,
    async *[Symbol.asyncIterator]() {
      const it = decodeRow(model, ids, run, rng);
      try {
        for (;;) {
          const n = await it.next();
          if (n.done) {
            s.finishReason = n.value;
            return;
          }
          const st = n.value;
          if (st.draft) s.draft = st.draft;
          const ev: StreamEvent = { text: st.text, id: st.id, logprob: st.sample.logprob, prob: st.sample.prob };
          if (st.sample.top.length > 0)
            ev.top = st.sample.top.map((a) => ({ id: a.id, token: tokenizer.decode([a.id]), logprob: a.logprob }));
          if (st.finish) ev.finishReason = st.finish;
          if (st.stopToken) ev.isStopToken = true;
          yield ev;
        }
      } finally {
        // a consumer that leaves early: end the decoding loop too, so its finally frees (or keeps) the KV cache
        await it.return(undefined as never);
      }
    },
  };
  return s;
}
