/**
 * What both OpenAI endpoints do alike: name the response (`chatcmpl-…`, `cmpl-…`), check the requested model,
 * check that the prompt leaves room in the context window, settle the sampler settings (the request's over the
 * model's defaults) and each choice's seed, and add up `usage`.
 */
import { randomBytes } from 'node:crypto';
import { freshSeed } from '../generate/engine.js';
import { resolveSamplerOptions, type ResolvedSamplerOptions, type SamplerOptions } from '../generate/sampler.js';
import { ConfigError } from '../util/errors.js';
import { badParam, type Body } from './openai_params.js';
import { HttpError } from './routes.js';
import type { ChoiceOutcome } from './run_choice.js';
import type { ServedModel } from './served_model.js';

/** A response id: the prefix and 24 random hex digits (ids, not sampling: no seeded Rng needed). */
export function responseId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}

/** The `model` field: required, and the served model's name (else 404 model_not_found, as OpenAI answers). */
export function checkModel(b: Body, served: ServedModel): string {
  const m = b.get('model');
  if (m === undefined) throw badParam('model', 'you must provide a model parameter (GET /v1/models lists it)');
  if (typeof m !== 'string') throw badParam('model', `Invalid 'model': expected a string, got ${JSON.stringify(m)}`);
  if (m !== served.name)
    throw new HttpError(
      404,
      `The model '${m}' does not exist; this server serves '${served.name}'`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  return m;
}

/** A prompt must leave at least one position free in the context window (else 400 context_length_exceeded). */
export function checkPromptFits(tokens: number, served: ServedModel, param: string): void {
  const window = served.model.config.maxPositions;
  if (tokens >= window)
    throw badParam(
      param,
      `This model's maximum context length is ${window} tokens. However, your ${param} resulted in ${tokens} tokens; shorten it`,
      'context_length_exceeded',
    );
}

/** The request's sampler settings over the model's defaults, checked. */
export function choiceSampler(served: ServedModel, req: SamplerOptions, topLogprobs: number): ResolvedSamplerOptions {
  const o: SamplerOptions = { ...served.defaults, ...req, topLogprobs };
  try {
    return resolveSamplerOptions(o);
  } catch (e) {
    if (e instanceof ConfigError) throw badParam(e.field, e.message);
    throw e;
  }
}

/** Choice i samples with seed + i (the given seed, or a fresh one), so a request with a seed repeats exactly. */
export function baseSeed(seed: number | undefined): number {
  return seed ?? freshSeed();
}

/** OpenAI's `usage`: the prompt counted once, the completions of every choice summed. */
export function usageOf(promptTokens: number, outcomes: readonly ChoiceOutcome[]) {
  const completion = outcomes.reduce((a, o) => a + o.completionTokens, 0);
  const drafted = outcomes.filter((o) => o.draft);
  const accepted = drafted.reduce((a, o) => a + o.draft!.accepted, 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completion,
    total_tokens: promptTokens + completion,
    prompt_tokens_details: { cached_tokens: outcomes[0]?.cachedTokens ?? 0 },
    // speculative decoding (a prediction, or the server's drafter): drafted tokens taken and turned down
    ...(drafted.length > 0
      ? {
          completion_tokens_details: {
            accepted_prediction_tokens: accepted,
            rejected_prediction_tokens: drafted.reduce((a, o) => a + o.draft!.drafted, 0) - accepted,
          },
        }
      : {}),
  };
}
