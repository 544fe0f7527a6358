/**
 * One choice of a request: a prompt (token ids) streamed through the engine (src/generate/engine.ts `stream`) with
 * a prompt cache from the pool, each token handed to the route as it comes (text, and its OpenAI log-prob entry),
 * and what the route's response needs at the end (text, finish reason, token counts, cached prompt tokens).
 *
 * Bounds: the client's signal stops it (a client that disconnects stops its generation: the engine checks the signal
 * between tokens and the route's `onToken` may await backpressure); the request's deadline ends it like max_tokens
 * does (finish_reason 'length'); so does the model's context window (the engine's own rule).
 */
import { stream, type FinishReason, type TokenLogprobEntry, type TopLogprob } from '../generate/engine.js';
import type { TokenGrammar } from '../generate/grammar/constraint.js';
import type { TextCodec } from '../generate/interfaces.js';
import type { StepBatcher } from '../generate/step_batcher.js';
import type { SamplerOptions } from '../generate/sampler.js';
import type { DraftStats, SpeculativeOptions } from '../generate/speculative.js';
import type { PromptCachePool } from './cache_pool.js';
import type { ServedModel } from './served_model.js';
import type { ServerState } from './server_state.js';
import { checkStillServed } from './switch_model.js';

export interface ChoiceSpec {
  prompt: readonly number[];
  /** The resolved sampler settings (topLogprobs: alternatives per token when `logprobs`). */
  sampler: SamplerOptions;
  maxTokens: number;
  stopTokens: readonly number[];
  stop: readonly string[];
  seed: number;
  /** Report each token's log-prob entry. */
  logprobs: boolean;
  /** Structured output: the reply is a sentence of this grammar (./structured_output.ts). */
  grammar?: TokenGrammar | null;
  /** OpenAI's logit_bias: token id → bias added to its logit. */
  logitBias?: ReadonlyMap<number, number>;
  /** Speculative decoding for this choice (a request's `prediction`, ./prediction.ts); else the served model's. */
  speculative?: SpeculativeOptions | null;
}

/** One generated token as the route sees it. */
export interface ChoiceToken {
  /** Text this token made showable ('' while a character or a possible stop string is held back). */
  text: string;
  /** Its log-prob entry (OpenAI's `logprobs.content[i]`), or null when logprobs were not asked or it is a stop token. */
  entry: TokenLogprobEntry | null;
}

export interface ChoiceOutcome {
  text: string;
  finishReason: FinishReason;
  completionTokens: number;
  /** Prompt tokens whose keys and values came from the prompt cache (OpenAI's `cached_tokens`). */
  cachedTokens: number;
  /** Drafted and accepted token counts, when the choice decoded speculatively. */
  draft: DraftStats | null;
  /** Every token's entry, when logprobs were asked. */
  logprobs: TokenLogprobEntry[];
  /** Every generated token (the stop token aside) with the model's log-probability of it, asked or not. */
  tokens: { id: number; logprob: number }[];
  /** The wall-time bound ended it. */
  timedOut: boolean;
}

/** A choice before its first token (and the whole of one asked for none: echo with max_tokens 0). */
export function emptyOutcome(): ChoiceOutcome {
  return {
    text: '',
    finishReason: 'length',
    completionTokens: 0,
    cachedTokens: 0,
    draft: null,
    logprobs: [],
    tokens: [],
    timedOut: false,
  };
}

/** What a choice runs with. */
export interface ChoiceEnv {
  served: ServedModel;
  /** Shares the decode steps of choices generating at once (each choice decodes on a lane of it); absent: none. */
  batcher?: StepBatcher;
  pool: PromptCachePool;
  /** performance.now() after which the request's generation ends (finish 'length'). */
  deadline: number;
  /** Prompt tokens per prefill forward (0: all at once). */
  prefillChunk?: number;
  /** Counts every token produced (the server's statistics). */
  onProduced(): void;
}

/**
 * Run a request's generation in one of the queue's slots (./queue.ts): at its turn (the served model still the one
 * its prompt was built for), with the server's step batcher, so the choices generating in the other slots share
 * their decode steps (src/generate/step_batcher.ts).
 */
export async function inSlot<T>(
  state: ServerState,
  served: ServedModel,
  signal: AbortSignal,
  job: (env: ChoiceEnv) => Promise<T>,
): Promise<T> {
  return state.queue.run(
    signal,
    async () => {
      checkStillServed(state, served);
      return job({
        served,
        batcher: state.batcher,
        pool: state.pool,
        deadline: performance.now() + state.limits.timeoutMs,
        prefillChunk: state.limits.prefillChunk,
        onProduced: () => state.counters.tokens++,
      });
    },
    { slot: true },
  );
}

/** A token as OpenAI's logprobs spell it: its text and its UTF-8 bytes. */
export function tokenOf(codec: TextCodec, id: number): { token: string; bytes: number[] } {
  const token = codec.decode([id]);
  const bytes = codec.tokenBytes ? Array.from(codec.tokenBytes(id)) : Array.from(new TextEncoder().encode(token));
  return { token, bytes };
}

class Deadline extends Error {}

/** Choices of one request that generate at once (each holds a KV cache while it runs); the rest start as they end. */
const CHOICES_AT_ONCE = 8;

/**
 * Run a request's n choices at once, up to 8 at a time — their decode steps share forwards through the env's
 * batcher — and return their outcomes in index order. `one(index, signal)` runs choice `index`; the first that
 * fails stops the others (their signal aborts) and its error is the call's.
 */
export async function allChoices<T>(
  n: number,
  signal: AbortSignal,
  one: (index: number, signal: AbortSignal) => Promise<T>,
): Promise<T[]> {
  if (n === 1) return [await one(0, signal)];
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n && !ac.signal.aborted) {
      const i = next++;
      out[i] = await one(i, ac.signal);
    }
    ac.signal.throwIfAborted();
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(n, CHOICES_AT_ONCE) }, () =>
        worker().catch((e: unknown) => {
          if (!ac.signal.aborted) ac.abort(e);
          throw e;
        }),
      ),
    );
    return out;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Run one choice; rejects with the signal's reason when the client goes away. `promptCache: false` (a request's
 * further choices of the same prompt, running beside its first): prefill without one, so no other conversation's
 * cache is taken for it.
 */
export async function runChoice(
  env: ChoiceEnv,
  spec: ChoiceSpec,
  signal: AbortSignal,
  onToken: (t: ChoiceToken) => void | Promise<void>,
  opts: { promptCache?: boolean } = {},
): Promise<ChoiceOutcome> {
  const { served } = env;
  const codec = served.codec;
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(new Deadline()), Math.max(0, env.deadline - performance.now()));
  const pc = opts.promptCache === false ? null : env.pool.pick(spec.prompt);
  // a lane while this choice generates: the other slots' steps wait for its steps only meanwhile
  const lane = env.batcher?.lane(served.model);
  const speculative = spec.speculative ?? served.speculative;
  const out = emptyOutcome();
  try {
    signal.throwIfAborted();
    const s = stream(lane ?? served.model, codec, spec.prompt, {
      ...spec.sampler,
      maxTokens: spec.maxTokens,
      stopTokens: spec.stopTokens,
      stop: spec.stop,
      seed: spec.seed,
      signal: ac.signal,
      ...(pc ? { promptCache: pc } : {}),
      ...(spec.grammar ? { grammar: spec.grammar } : {}),
      ...(speculative ? { speculative } : {}),
      ...(spec.logitBias ? { logitBias: spec.logitBias } : {}),
      ...(env.prefillChunk ? { prefillChunk: env.prefillChunk } : {}),
    });
    let first = true;
    for await (const ev of s) {
      if (first) {
        out.cachedTokens = pc ? pc.lastReused : 0;
        first = false;
      }
      env.onProduced();
      let entry: TokenLogprobEntry | null = null;
      if (!ev.isStopToken) {
        out.completionTokens++;
        out.tokens.push({ id: ev.id, logprob: ev.logprob });
        if (spec.logprobs) {
          const top: TopLogprob[] = (ev.top ?? []).map((a) => ({
            ...tokenOf(codec, a.id),
            id: a.id,
            logprob: a.logprob,
          }));
          entry = { ...tokenOf(codec, ev.id), id: ev.id, logprob: ev.logprob, prob: ev.prob, top_logprobs: top };
          out.logprobs.push(entry);
        }
      }
      out.text += ev.text;
      await onToken({ text: ev.text, entry });
      if (ev.finishReason) out.finishReason = ev.finishReason;
    }
    if (s.finishReason) out.finishReason = s.finishReason;
    out.draft = s.draft;
  } catch (e) {
    if (!(ac.signal.reason instanceof Deadline) || signal.aborted) throw e;
    out.timedOut = true;
    out.finishReason = 'length';
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    lane?.close();
    env.pool.release(pc);
  }
  return out;
}
