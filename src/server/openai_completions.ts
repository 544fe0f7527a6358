/**
 * OpenAI's legacy `POST /v1/completions` (https://platform.openai.com/docs/api-reference/completions/create): continue
 * a text. The prompt is a string, a list of strings, a list of token ids or a list of such lists; each prompt gets
 * `n` choices (index = prompt · n + choice). A text prompt is encoded with special-token text honoured (as
 * `llmts generate` and llama-server do: the caller writes the whole prompt) and gets the BOS token where the
 * tokenizer asks for one (add_bos_token). Generation ends at eos, a `stop` string, `max_tokens` (default: the
 * server's limit), the context window or the wall-time bound.
 *
 * `logprobs` is the legacy integer form: the log-probability of each token and the `logprobs` most likely
 * alternatives (`{ tokens, token_logprobs, top_logprobs, text_offset }`; text_offset counts UTF-16 characters from the
 * start of the prompt text, as the API's offsets do). `echo` puts the prompt before the reply: in `text`, and in
 * `logprobs` with each prompt token's log-probability given the ones before it (the first: null), the raw model's
 * (./prompt_logprobs.ts); with `max_tokens` 0 nothing is generated. That is lm-evaluation-harness's loglikelihood
 * request (`echo`, `logprobs` 1, `max_tokens` 1, the prompt as token ids). `echo` with `stream`, `suffix` and
 * `best_of` > n are refused with a 400. Structured output (response_format, llama-server's json_schema and grammar)
 * constrains the continuation as on the chat route (./structured_output.ts).
 */
import { MAX_TOP_LOGPROBS } from '../generate/sampler.js';
import type { TokenLogprobEntry } from '../generate/engine.js';
import { baseSeed, checkModel, checkPromptFits, choiceSampler, responseId, usageOf } from './openai_common.js';
import { Body, badParam, readLogitBias, readSampling, SAMPLING_FIELDS } from './openai_params.js';
import { readStructuredOutput, STRUCTURED_FIELDS } from './structured_output.js';
import { sendJson } from './respond.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import { allChoices, emptyOutcome, inSlot, runChoice, type ChoiceOutcome, type ChoiceSpec } from './run_choice.js';
import type { ServedModel } from './served_model.js';
import type { ServerState } from './server_state.js';
import { promptLogprobs, type PromptTokenLogprob } from './prompt_logprobs.js';
import { endSse, sendSse, startSse } from './sse.js';

export const COMPLETIONS_PATH = '/v1/completions';

const COMPLETION_FIELDS = [...SAMPLING_FIELDS, ...STRUCTURED_FIELDS, 'prompt', 'logprobs', 'echo', 'suffix', 'best_of'];

const isIds = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x));

/** The prompts of a request: each as ids and the text it stands for (for text_offset). */
function readPrompts(v: unknown, served: ServedModel): { ids: number[]; text: string }[] {
  const V = served.model.config.vocabSize;
  const fromText = (t: string) => {
    const ids = served.codec.encode(t);
    if (served.bosId !== null && ids[0] !== served.bosId) ids.unshift(served.bosId);
    if (ids.length === 0) throw badParam('prompt', "'prompt' is empty");
    return { ids, text: t };
  };
  const fromIds = (ids: number[], where: string) => {
    const bad = ids.find((x) => x < 0 || x >= V);
    if (bad !== undefined) throw badParam(where, `token id ${bad} is outside the vocabulary 0..${V - 1}`);
    return { ids: [...ids], text: served.codec.decode(ids) };
  };
  if (typeof v === 'string') return [fromText(v)];
  if (isIds(v)) return [fromIds(v, 'prompt')];
  if (Array.isArray(v) && v.length > 0)
    return v.map((p: unknown, i) => {
      if (typeof p === 'string') return fromText(p);
      if (isIds(p)) return fromIds(p, `prompt[${i}]`);
      throw badParam(`prompt[${i}]`, 'expected a string or a non-empty list of token ids');
    });
  throw badParam('prompt', "'prompt' must be a string, a list of strings, or (lists of) token ids");
}

/** The legacy logprobs object of one choice's tokens. */
function legacyLogprobs(entries: readonly TokenLogprobEntry[], offset: number, top: number) {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs:
      top > 0 ? entries.map((e) => Object.fromEntries(e.top_logprobs.map((a) => [a.token, a.logprob]))) : null,
    text_offset,
  };
}

/** The legacy logprobs of an echoed choice: the prompt's tokens (offsets from 0), then the reply's. */
function echoLogprobs(prompt: readonly PromptTokenLogprob[], reply: ReturnType<typeof legacyLogprobs>, top: number) {
  const text_offset: number[] = [];
  let at = 0;
  for (const e of prompt) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: [...prompt.map((e) => e.token), ...reply.tokens],
    token_logprobs: [...prompt.map((e) => e.logprob), ...reply.token_logprobs],
    top_logprobs:
      top > 0
        ? [
            ...prompt.map((e) => (e.top ? Object.fromEntries(e.top.map((a) => [a.token, a.logprob])) : null)),
            ...(reply.top_logprobs ?? []),
          ]
        : null,
    text_offset: [...text_offset, ...reply.text_offset],
  };
}

/** The completions route. */
export function completionsRoute(state: ServerState): Route {
  return async (ctx: RouteContext) => {
    if (ctx.url.pathname !== COMPLETIONS_PATH) return false;
    if (ctx.method !== 'POST') {
      ctx.res.setHeader('Allow', 'POST');
      throw new HttpError(405, `${ctx.method} is not allowed on ${COMPLETIONS_PATH}; use POST`);
    }
    const b = new Body(await ctx.json(), COMPLETION_FIELDS);
    const { served, limits } = state;
    const model = checkModel(b, served);
    const echo = b.bool('echo') ?? false;
    if (b.string('suffix')) throw badParam('suffix', 'suffix (insertion) is not supported by this server');
    const req = readSampling(b, limits, ['max_tokens'], echo ? 0 : 1);
    const logitBias = readLogitBias(b, served.model.config.vocabSize);
    if (echo && req.stream)
      throw badParam('echo', 'echo with stream is not supported by this server; ask without stream');
    const bestOf = b.number('best_of', { min: 1, integer: true });
    if (bestOf !== undefined && bestOf !== req.n)
      throw badParam('best_of', 'best_of other than n is not supported by this server');
    const top = b.number('logprobs', { min: 0, max: MAX_TOP_LOGPROBS, integer: true });
    const grammar = readStructuredOutput(b, served);
    const prompts = readPrompts(b.get('prompt'), served);
    prompts.forEach((p, i) => checkPromptFits(p.ids.length, served, prompts.length > 1 ? `prompt[${i}]` : 'prompt'));
    if (prompts.length * req.n > limits.maxN)
      throw badParam('n', `${prompts.length} prompts × n = ${prompts.length * req.n} choices; at most ${limits.maxN}`);
    const sampler = choiceSampler(served, req.sampler, top ?? 0);
    const seed = baseSeed(req.seed);
    const specs: ChoiceSpec[] = prompts.flatMap((p) =>
      Array.from({ length: req.n }, (_, i) => ({
        prompt: p.ids,
        sampler,
        maxTokens: req.maxTokens,
        stopTokens: served.eosTokens,
        stop: req.stop,
        seed: seed + i,
        logprobs: top !== undefined,
        grammar,
        ...(logitBias ? { logitBias } : {}),
      })),
    );
    const promptOf = (index: number) => prompts[Math.floor(index / req.n)]!;
    const id = responseId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    const head = { id, object: 'text_completion', created, model, system_fingerprint: served.fingerprint, seed };
    const promptTokens = prompts.reduce((a, p) => a + p.ids.length, 0);

    await inSlot(state, served, ctx.signal, async (env) => {
      const outcomes: ChoiceOutcome[] = [];
      if (!req.stream) {
        // the choices at once, their decode steps batched; each prompt's first keeps its prompt cache
        outcomes.push(
          ...(await allChoices(specs.length, ctx.signal, async (i, signal) =>
            req.maxTokens === 0
              ? emptyOutcome()
              : runChoice(env, specs[i]!, signal, () => {}, { promptCache: i % req.n === 0 }),
          )),
        );
        // echo: each prompt scored once, whatever its n
        const scored =
          echo && top !== undefined
            ? await Promise.all(prompts.map((p) => promptLogprobs(served.model, served.codec, p.ids, top)))
            : null;
        sendJson(ctx.res, 200, {
          ...head,
          choices: outcomes.map((o, index) => {
            const p = promptOf(index);
            const reply = top !== undefined ? legacyLogprobs(o.logprobs, p.text.length, top) : null;
            return {
              text: echo ? p.text + o.text : o.text,
              index,
              logprobs: scored && reply ? echoLogprobs(scored[Math.floor(index / req.n)]!, reply, top!) : reply,
              finish_reason: o.finishReason,
            };
          }),
          usage: usageOf(promptTokens, outcomes),
        });
        return;
      }
      const { res } = ctx;
      // a client that stops reading holds a write at most until the wall-time bound, then the rest is buffered
      const sendUntil = AbortSignal.any([ctx.signal, AbortSignal.timeout(limits.timeoutMs)]);
      const usageNull = req.includeUsage ? { usage: null } : {};
      startSse(res);
      // the choices at once (their chunks interleave, each with its index), decode steps batched
      const one = async (index: number, signal: AbortSignal): Promise<ChoiceOutcome> => {
        let at = promptOf(index).text.length;
        const o = await runChoice(
          env,
          specs[index]!,
          signal,
          async (t) => {
            if (t.text === '' && !t.entry) return;
            const lp = t.entry ? legacyLogprobs([t.entry], at, top ?? 0) : null;
            if (t.entry) at += t.entry.token.length;
            await sendSse(
              res,
              { ...head, choices: [{ text: t.text, index, logprobs: lp, finish_reason: null }], ...usageNull },
              sendUntil,
            );
          },
          { promptCache: index % req.n === 0 },
        );
        await sendSse(
          res,
          { ...head, choices: [{ text: '', index, logprobs: null, finish_reason: o.finishReason }], ...usageNull },
          sendUntil,
        );
        return o;
      };
      outcomes.push(...(await allChoices(specs.length, ctx.signal, one)));
      if (req.includeUsage)
        await sendSse(res, { ...head, choices: [], usage: usageOf(promptTokens, outcomes) }, sendUntil);
      endSse(res);
    });
    return true;
  };
}
