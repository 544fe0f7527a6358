/**
 * Reading an OpenAI request body: each field checked against the API reference's type and range, and a bad one
 * answered as OpenAI answers it, 400 `invalid_request_error` with `param` naming the field. Unknown fields are refused
 * ("Unrecognized request argument supplied"), as the OpenAI API does, so a typo is not silently ignored. `null` is
 * the same as leaving a field out (the API allows it everywhere).
 *
 * The sampling fields both endpoints share are read here (temperature, top_p, max_tokens, n, stop, seed, penalties,
 * stream, stream_options), with llama-server's extensions top_k, min_p and repetition_penalty.
 */
import type { SamplerOptions } from '../generate/sampler.js';
import { HttpError } from './routes.js';

/** Most entries in a `logit_bias` (OpenAI's limit). */
export const MAX_LOGIT_BIAS = 300;

/**
 * OpenAI's `logit_bias`: an object from token id (a string of digits) to a bias in −100..100, added to that token's
 * logit before sampling; ids must be inside the served vocabulary (`vocabSize`). Undefined when absent or empty.
 */
export function readLogitBias(b: Body, vocabSize: number): Map<number, number> | undefined {
  const v = b.get('logit_bias');
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw badParam('logit_bias', "Invalid 'logit_bias': expected an object mapping token ids to biases");
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_LOGIT_BIAS)
    throw badParam('logit_bias', `Invalid 'logit_bias': at most ${MAX_LOGIT_BIAS} tokens, got ${entries.length}`);
  const out = new Map<number, number>();
  for (const [k, x] of entries) {
    const id = /^\d+$/.test(k) ? Number(k) : Number.NaN;
    if (!Number.isSafeInteger(id) || id >= vocabSize)
      throw badParam(
        'logit_bias',
        `Invalid 'logit_bias': ${JSON.stringify(k)} is not a token id in 0..${vocabSize - 1}`,
      );
    if (typeof x !== 'number' || !Number.isFinite(x) || x < -100 || x > 100)
      throw badParam('logit_bias', `Invalid 'logit_bias': the bias of token ${k} must be a number in -100..100`);
    out.set(id, x);
  }
  return out.size > 0 ? out : undefined;
}

/** A 400 for one field. */
export function badParam(param: string, message: string, code: string | null = null): HttpError {
  return new HttpError(400, message, 'invalid_request_error', param, code);
}

/** Fields every request may carry and the server ignores (they change nothing here). */
const IGNORED = ['user', 'metadata', 'store', 'service_tier', 'parallel_tool_calls'];

/** Fields of the sampling part, shared by both endpoints. */
export const SAMPLING_FIELDS = [
  'model',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'max_tokens',
  'n',
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  // llama-server's extensions
  'top_k',
  'min_p',
  'repetition_penalty',
];

/** A request body: a JSON object whose fields are read one by one, each checked. */
export class Body {
  private readonly o: Record<string, unknown>;

  constructor(raw: unknown, known: readonly string[]) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw badParam('body', 'the request body must be a JSON object');
    this.o = raw as Record<string, unknown>;
    for (const k of Object.keys(this.o))
      if (!known.includes(k) && !IGNORED.includes(k))
        throw badParam(k, `Unrecognized request argument supplied: ${k}`, 'unknown_parameter');
  }

  /** The raw value (undefined for absent or null). */
  get(k: string): unknown {
    const v = this.o[k];
    return v === null ? undefined : v;
  }

  number(
    k: string,
    r: { min?: number; max?: number; integer?: boolean; minExclusive?: boolean } = {},
  ): number | undefined {
    const v = this.get(k);
    if (v === undefined) return undefined;
    const what = r.integer ? 'an integer' : 'a number';
    const range =
      r.min !== undefined && r.max !== undefined
        ? ` ${r.minExclusive ? '>' : '≥'} ${r.min} and ≤ ${r.max}`
        : r.min !== undefined
          ? ` ${r.minExclusive ? '>' : '≥'} ${r.min}`
          : r.max !== undefined
            ? ` ≤ ${r.max}`
            : '';
    const bad = () => badParam(k, `Invalid '${k}': expected ${what}${range}, got ${JSON.stringify(v)}`);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad();
    if (r.integer && !Number.isSafeInteger(v)) throw bad();
    if (r.min !== undefined && (r.minExclusive ? v <= r.min : v < r.min)) throw bad();
    if (r.max !== undefined && v > r.max) throw bad();
    return v;
  }

  bool(k: string): boolean | undefined {
    const v = this.get(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw badParam(k, `Invalid '${k}': expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  string(k: string): string | undefined {
    const v = this.get(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badParam(k, `Invalid '${k}': expected a string, got ${JSON.stringify(v)}`);
    return v;
  }
}

/** What the server allows a request to ask. */
export interface RequestLimits {
  /** Most new tokens per choice (the default when a request gives none). */
  maxTokens: number;
  /** Most choices per request (`n`). */
  maxN: number;
}

/** The sampling part of a request, checked. */
export interface SamplingRequest {
  /** Sampler settings given by the request (the model's defaults fill the rest). */
  sampler: SamplerOptions;
  maxTokens: number;
  n: number;
  stop: string[];
  /** The given seed, or undefined (a fresh one is drawn). */
  seed: number | undefined;
  stream: boolean;
  includeUsage: boolean;
}

/** OpenAI's limit on stop sequences. */
export const MAX_STOP = 4;

/**
 * The sampling fields. `maxTokensKeys` lists the names the endpoint accepts for the token limit, first wins
 * (chat: max_completion_tokens, then the deprecated max_tokens); `minMaxTokens` 0 lets a request generate nothing
 * (completions with `echo`: the prompt scored only).
 */
export function readSampling(
  b: Body,
  limits: RequestLimits,
  maxTokensKeys: readonly string[],
  minMaxTokens = 1,
): SamplingRequest {
  const sampler: SamplerOptions = {};
  const set = <K extends keyof SamplerOptions>(k: K, v: SamplerOptions[K] | undefined) => {
    if (v !== undefined) sampler[k] = v;
  };
  set('temperature', b.number('temperature', { min: 0, max: 2 }));
  set('topP', b.number('top_p', { min: 0, max: 1, minExclusive: true }));
  set('presencePenalty', b.number('presence_penalty', { min: -2, max: 2 }));
  set('frequencyPenalty', b.number('frequency_penalty', { min: -2, max: 2 }));
  set('topK', b.number('top_k', { min: 0, integer: true }));
  set('minP', b.number('min_p', { min: 0, max: 1 }));
  set('repetitionPenalty', b.number('repetition_penalty', { min: 0, minExclusive: true }));

  let maxTokens: number | undefined;
  for (const k of maxTokensKeys) {
    const v = b.number(k, { min: minMaxTokens, integer: true });
    if (v === undefined) continue;
    if (v > limits.maxTokens)
      throw badParam(
        k,
        `Invalid '${k}': ${v} is more than this server allows per reply (${limits.maxTokens}, --max-tokens)`,
      );
    maxTokens ??= v;
  }

  const n = b.number('n', { min: 1, max: limits.maxN, integer: true }) ?? 1;

  const rawStop = b.get('stop');
  let stop: string[] = [];
  if (rawStop !== undefined) {
    const list = typeof rawStop === 'string' ? [rawStop] : rawStop;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0))
      throw badParam('stop', "Invalid 'stop': expected a non-empty string or a list of them");
    if (list.length > MAX_STOP)
      throw badParam('stop', `Invalid 'stop': at most ${MAX_STOP} stop sequences, got ${list.length}`);
    stop = list as string[];
  }

  const seed = b.number('seed', { integer: true });
  const stream = b.bool('stream') ?? false;
  const so = b.get('stream_options');
  let includeUsage = false;
  if (so !== undefined) {
    if (!stream) throw badParam('stream_options', 'stream_options is only allowed when stream is true');
    if (typeof so !== 'object' || Array.isArray(so))
      throw badParam('stream_options', "Invalid 'stream_options': expected an object");
    const iu = (so as Record<string, unknown>)['include_usage'];
    if (iu !== undefined && iu !== null && typeof iu !== 'boolean')
      throw badParam('stream_options.include_usage', 'expected true or false');
    includeUsage = iu === true;
  }
  return { sampler, maxTokens: maxTokens ?? limits.maxTokens, n, stop, seed, stream, includeUsage };
}
