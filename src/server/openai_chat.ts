/**
 * OpenAI's `POST /v1/chat/completions` (https://platform.openai.com/docs/api-reference/chat/create).
 *
 * The messages go through the model's chat template (its Jinja `chat_template`, or ChatML): the template's own text
 * is encoded with special tokens honoured, each message's content as plain text, so a client cannot forge a role
 * marker by typing it (src/chat/conversation.ts `encode`). The reply ends at eos, at the template's end-of-turn
 * marker, at a `stop` string, at `max_completion_tokens` / `max_tokens`, at the context window, or at the server's
 * wall-time bound (the last three: finish_reason 'length').
 *
 * Supported: messages (system/developer first, then user and assistant turns; text content, as a string or text
 * parts), stream (+ stream_options.include_usage), temperature, top_p, max_tokens / max_completion_tokens, stop, seed,
 * n, logprobs + top_logprobs, presence_penalty, frequency_penalty; llama-server's top_k, min_p, repetition_penalty.
 * Structured output (./structured_output.ts): response_format json_object / json_schema, llama-server's json_schema
 * and grammar (GBNF); the reply is then JSON (or the grammar's text) from its first token, so a thinking model should
 * be asked with its thinking off (chat_template_kwargs).
 * Tool calling (./tool_calls.ts): tools and tool_choice (none, auto, required, a named function), assistant messages with
 * tool_calls and tool messages in the history, calls parsed out of the reply as `tool_calls` (finish_reason
 * 'tool_calls'); a stream holds back what may be a call and sends each call whole.
 * Refused with a 400 naming the field: the deprecated functions / function_call, other roles.
 * Choice i samples with seed + i (the response's extra `seed` field says which seed was used, also when drawn fresh); with n > 1 the choices are generated one after another (a stream sends each
 * choice's chunks in turn, by index).
 */
import { Conversation } from '../chat/conversation.js';
import { withTemplateKwargs, type ChatMessage, type MessageToolCall } from '../chat/template.js';
import { promptOpensThinking, REASONING_FORMATS, ReasoningSplitter, type ReasoningPiece } from './reasoning.js';
import { MAX_TOP_LOGPROBS } from '../generate/sampler.js';
import { baseSeed, checkModel, checkPromptFits, choiceSampler, responseId, usageOf } from './openai_common.js';
import { Body, badParam, readLogitBias, readSampling, SAMPLING_FIELDS } from './openai_params.js';
import type { ReplyLinkAnswer } from './reply_link.js';
import { asHttpError, sendJson } from './respond.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import { allChoices, inSlot, runChoice, type ChoiceOutcome, type ChoiceSpec } from './run_choice.js';
import { PREDICTION_FIELDS, readPrediction } from './prediction.js';
import { chatStops } from './served_model.js';
import { readStructuredOutput, STRUCTURED_FIELDS } from './structured_output.js';
import { checkPlain, readToolUse, toolCallsOf } from './tool_calls.js';
import { parseToolCalls, ToolCallStream } from '../chat/tools.js';
import type { ServerState } from './server_state.js';
import { endSse, sendSse, startSse } from './sse.js';

export const CHAT_PATH = '/v1/chat/completions';

const CHAT_FIELDS = [
  ...SAMPLING_FIELDS,
  'messages',
  'max_completion_tokens',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'functions',
  'function_call',
  ...STRUCTURED_FIELDS,
  ...PREDICTION_FIELDS,
  'chat_template_kwargs',
  'reasoning_format',
  'llmts',
];

/** The text of a message's content: a string, or a list of text parts (absent: an assistant turn of tool calls only). */
function contentText(c: unknown, i: number, emptyOk = false): string {
  if (typeof c === 'string') return c;
  if ((c === undefined || c === null) && emptyOk) return '';
  if (Array.isArray(c)) {
    let s = '';
    c.forEach((p: unknown, j) => {
      const part = p as { type?: unknown; text?: unknown } | null;
      if (part?.type !== 'text' || typeof part.text !== 'string')
        throw badParam(
          `messages[${i}].content[${j}]`,
          'only text content parts ({ "type": "text", "text": … }) are supported by this model',
        );
      s += part.text;
    });
    return s;
  }
  throw badParam(`messages[${i}].content`, 'expected a string or a list of text parts');
}

/** OpenAI messages → the conversation (system first, then user/assistant turns). */
export function readMessages(v: unknown): Conversation {
  if (!Array.isArray(v) || v.length === 0) throw badParam('messages', "'messages' must be a non-empty list");
  let system: string | null = null;
  const turns: ChatMessage[] = [];
  v.forEach((m: unknown, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw badParam(`messages[${i}]`, 'expected an object');
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (role === 'system' || role === 'developer') {
      if (i !== 0)
        throw badParam(`messages[${i}].role`, 'a system (or developer) message is supported only as the first message');
      system = contentText(content, i);
    } else if (role === 'user') {
      turns.push({ role, content: contentText(content, i) });
    } else if (role === 'assistant') {
      const calls = readToolCalls((m as { tool_calls?: unknown }).tool_calls, i);
      turns.push({
        role,
        content: contentText(content, i, calls.length > 0),
        ...(calls.length ? { tool_calls: calls } : {}),
      });
    } else if (role === 'tool') {
      const id = (m as { tool_call_id?: unknown }).tool_call_id;
      if (typeof id !== 'string')
        throw badParam(`messages[${i}].tool_call_id`, 'a tool message needs the tool_call_id it answers');
      turns.push({ role, content: contentText(content, i), tool_call_id: id });
    } else
      throw badParam(
        `messages[${i}].role`,
        `unsupported role ${JSON.stringify(role)}: expected system, developer, user, assistant or tool`,
      );
  });
  return new Conversation({ system, messages: turns });
}

/** An assistant message's tool_calls (OpenAI's shape), checked. */
function readToolCalls(v: unknown, i: number): MessageToolCall[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badParam(`messages[${i}].tool_calls`, 'expected a list of tool calls');
  return v.map((c: unknown, j) => {
    const f = (c as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    const id = (c as { id?: unknown } | null)?.id;
    if (
      !f ||
      typeof f.name !== 'string' ||
      typeof f.arguments !== 'string' ||
      (id !== undefined && typeof id !== 'string')
    )
      throw badParam(
        `messages[${i}].tool_calls[${j}]`,
        'expected { "id", "type": "function", "function": { "name", "arguments" (JSON text) } }',
      );
    return {
      ...(id !== undefined ? { id } : {}),
      type: 'function',
      function: { name: f.name, arguments: f.arguments },
    };
  });
}

/** Refuse what this server cannot do (the deprecated function calling), naming the field. */
function refuseUnsupported(b: Body): void {
  if (b.get('functions') !== undefined || b.get('function_call') !== undefined)
    throw badParam(
      b.get('functions') !== undefined ? 'functions' : 'function_call',
      "the deprecated 'functions' and 'function_call' are not supported; use 'tools' and 'tool_choice'",
    );
}

/** A reply as the assistant's message: reasoning_content apart when a splitter is given. */
function messageOf(text: string, sp: ReasoningSplitter | null) {
  if (!sp) return { role: 'assistant', content: text, refusal: null };
  const a = sp.push(text),
    b = sp.end();
  const reasoning = a.reasoning + b.reasoning;
  return {
    role: 'assistant',
    content: a.content + b.content,
    ...(reasoning ? { reasoning_content: reasoning } : {}),
    refusal: null,
  };
}

/** A split piece as a stream delta (only the fields it has). */
function pieceDelta(p: ReasoningPiece): Record<string, string> {
  return {
    ...(p.reasoning ? { reasoning_content: p.reasoning } : {}),
    ...(p.content || !p.reasoning ? { content: p.content } : {}),
  };
}

/** One token's text as a stream delta, split when a splitter is given. */
function deltaOf(text: string, sp: ReasoningSplitter | null): Record<string, string> {
  return sp ? pieceDelta(sp.push(text)) : { content: text };
}

/** The chat completions route. */
export function chatRoute(state: ServerState): Route {
  return async (ctx: RouteContext) => {
    if (ctx.url.pathname !== CHAT_PATH) return false;
    if (ctx.method !== 'POST') {
      ctx.res.setHeader('Allow', 'POST');
      throw new HttpError(405, `${ctx.method} is not allowed on ${CHAT_PATH}; use POST`, 'invalid_request_error');
    }
    const b = new Body(await ctx.json(), CHAT_FIELDS);
    const { served, limits } = state;
    const model = checkModel(b, served);
    refuseUnsupported(b);
    const conv = readMessages(b.get('messages'));
    const kwargs = b.get('chat_template_kwargs');
    if (kwargs !== undefined && (typeof kwargs !== 'object' || Array.isArray(kwargs)))
      throw badParam('chat_template_kwargs', "'chat_template_kwargs' must be an object of template variables");
    let template = served.template;
    try {
      if (kwargs) template = withTemplateKwargs(template, kwargs as Record<string, unknown>);
    } catch (e) {
      throw asHttpError(e, 'chat_template_kwargs');
    }
    const req = readSampling(b, limits, ['max_completion_tokens', 'max_tokens']);
    const logitBias = readLogitBias(b, served.model.config.vocabSize);
    const grammar = readStructuredOutput(b, served);
    const prediction = readPrediction(b, served);
    const toolUse = readToolUse(b, served, template);
    if (toolUse) template = toolUse.template;
    if (toolUse?.grammar && grammar)
      throw badParam(
        'tool_choice',
        'a required tool call and a response_format (or grammar) cannot both hold the reply',
      );
    const toolTurns = conv.messages.some((m) => m.role === 'tool' || m.tool_calls?.length);
    const first = conv.system !== null ? 1 : 0; // the request's index of conv.messages[0]
    conv.messages.forEach((m, i) =>
      m.tool_calls?.forEach((c, j) =>
        checkPlain(served, c.function.name + c.function.arguments, `messages[${i + first}].tool_calls[${j}]`),
      ),
    );
    const logprobs = b.bool('logprobs') ?? false;
    const topLogprobs = b.number('top_logprobs', { min: 0, max: MAX_TOP_LOGPROBS, integer: true });
    if (topLogprobs !== undefined && !logprobs) throw badParam('top_logprobs', "'top_logprobs' needs 'logprobs': true");
    let prompt: number[];
    try {
      prompt = conv.encode(template, (t) => served.codec.encode(t), served.codec.encodePlain?.bind(served.codec)).ids;
    } catch (e) {
      throw asHttpError(e, 'messages');
    }
    checkPromptFits(prompt.length, served, 'messages');
    // a thinking model's reply: reasoning_content apart (./reasoning.ts), if asked
    const rf = b.string('reasoning_format') ?? state.reasoningFormat;
    if (!(REASONING_FORMATS as readonly string[]).includes(rf))
      throw badParam(
        'reasoning_format',
        `Invalid 'reasoning_format': expected one of ${REASONING_FORMATS.join(', ')}, got ${JSON.stringify(rf)}`,
      );
    const opensThinking = promptOpensThinking(served.codec.decode(prompt.slice(-8)));
    const splitter = () => (rf === 'deepseek' ? new ReasoningSplitter(opensThinking) : null);
    // the feedback store's link (./reply_link.ts): checked now, recorded before the response ends
    const link = b.get('llmts');
    const plan = link !== undefined && state.replyLinker ? state.replyLinker.check(link, conv.all()) : null;
    const sampler = choiceSampler(served, req.sampler, logprobs ? (topLogprobs ?? 0) : 0);
    const stops = chatStops(served);
    const seed = baseSeed(req.seed);
    const specs: ChoiceSpec[] = Array.from({ length: req.n }, (_, i) => ({
      prompt,
      sampler,
      maxTokens: req.maxTokens,
      stopTokens: stops.tokens,
      stop: [...stops.strings, ...req.stop],
      seed: seed + i,
      logprobs,
      grammar: toolUse?.grammar ?? grammar ?? toolUse?.lazy ?? null,
      speculative: prediction,
      ...(logitBias ? { logitBias } : {}),
    }));
    const id = responseId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    const head = { id, created, model, system_fingerprint: served.fingerprint, seed };

    const record = async (outcomes: readonly ChoiceOutcome[]) => {
      // the feedback store keeps conversations of text turns; tool calls and results are not among them
      if (!state.onChatCompletion || toolUse || toolTurns) return;
      try {
        await state.onChatCompletion({
          id,
          created,
          model,
          fingerprint: served.fingerprint,
          messages: conv.all(),
          sampler,
          maxTokens: req.maxTokens,
          stop: req.stop,
          choices: outcomes.map((o, index) => ({
            index,
            seed: specs[index]!.seed,
            text: o.text,
            finishReason: o.finishReason,
            tokens: o.tokens,
          })),
          usage: usageOf(prompt.length, outcomes),
        });
      } catch (e) {
        state.log(`onChatCompletion failed for ${id}: ${(e as Error)?.stack ?? String(e)}`);
      }
    };

    const linkReplies = (outcomes: readonly ChoiceOutcome[]): ReplyLinkAnswer | null => {
      if (!plan || !state.replyLinker || toolUse || toolTurns) return null;
      const choices = outcomes.map((o, index) => ({
        text: o.text,
        seed: specs[index]!.seed,
        logprobs: o.logprobs.length
          ? o.logprobs.map((e) => ({
              token: e.token,
              logprob: e.logprob,
              bytes: e.bytes,
              top_logprobs: e.top_logprobs,
            }))
          : o.tokens.map((t) => ({ token: served.codec.decode([t.id]), logprob: t.logprob })),
      }));
      return state.replyLinker.record(plan, { ...sampler, max_tokens: req.maxTokens, stop: req.stop }, choices);
    };

    await inSlot(state, served, ctx.signal, async (env) => {
      const outcomes: ChoiceOutcome[] = [];
      if (!req.stream) {
        // the choices at once, their decode steps batched; the first keeps the conversation's prompt cache
        outcomes.push(
          ...(await allChoices(specs.length, ctx.signal, (i, signal) =>
            runChoice(env, specs[i]!, signal, () => {}, { promptCache: i === 0 }),
          )),
        );
        const linked = linkReplies(outcomes);
        sendJson(ctx.res, 200, {
          ...head,
          object: 'chat.completion',
          choices: outcomes.map((o, index) => {
            const message: Record<string, unknown> = messageOf(o.text, splitter());
            let finish: string = o.finishReason;
            if (toolUse) {
              const p = parseToolCalls(message.content as string, toolUse.format);
              if (p.calls.length) {
                message.content = p.content.trim() === '' ? null : p.content;
                message.tool_calls = toolCallsOf(p.calls);
                if (finish === 'stop') finish = 'tool_calls';
              }
            }
            return {
              index,
              message,
              logprobs: logprobs ? { content: o.logprobs, refusal: null } : null,
              finish_reason: finish,
            };
          }),
          usage: usageOf(prompt.length, outcomes),
          ...(linked ? { llmts: linked } : {}),
        });
        await record(outcomes);
        return;
      }
      const { res } = ctx;
      // a client that stops reading holds a write at most until the wall-time bound, then the rest is buffered
      const sendUntil = AbortSignal.any([ctx.signal, AbortSignal.timeout(limits.timeoutMs)]);
      const usageNull = req.includeUsage ? { usage: null } : {};
      const chunk = (choices: unknown[]) => ({ ...head, object: 'chat.completion.chunk', choices, ...usageNull });
      startSse(res);
      // the choices at once (their chunks interleave, each with its index, as OpenAI's do), decode steps batched
      const one = async (index: number, signal: AbortSignal): Promise<ChoiceOutcome> => {
        await sendSse(
          res,
          chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
          sendUntil,
        );
        const sp = splitter();
        // with tools: content that may be a call is held back (ts), each call sent whole at the end
        const ts = toolUse ? new ToolCallStream(toolUse.format) : null;
        const held = (d: Record<string, string>): Record<string, string> => {
          if (!ts || d.content === undefined) return d;
          const content = ts.push(d.content);
          const out = { ...d };
          if (content === '' && out.reasoning_content) delete out.content;
          else out.content = content;
          return out;
        };
        const o = await runChoice(
          env,
          specs[index]!,
          signal,
          async (t) => {
            if (t.text === '' && !t.entry) return;
            const delta = held(deltaOf(t.text, sp));
            if (ts && delta.content === '' && !delta.reasoning_content && !t.entry) return;
            await sendSse(
              res,
              chunk([
                { index, delta, logprobs: t.entry ? { content: [t.entry], refusal: null } : null, finish_reason: null },
              ]),
              sendUntil,
            );
          },
          { promptCache: index === 0 },
        );
        const rest = sp?.end();
        if (rest && (rest.reasoning || rest.content))
          await sendSse(
            res,
            chunk([{ index, delta: held(pieceDelta(rest)), logprobs: null, finish_reason: null }]),
            sendUntil,
          );
        let finish: string = o.finishReason;
        if (ts) {
          const e = ts.end();
          if (e.text)
            await sendSse(
              res,
              chunk([{ index, delta: { content: e.text }, logprobs: null, finish_reason: null }]),
              sendUntil,
            );
          const calls = toolCallsOf(e.calls);
          for (let k = 0; k < calls.length; k++)
            await sendSse(
              res,
              chunk([
                { index, delta: { tool_calls: [{ index: k, ...calls[k]! }] }, logprobs: null, finish_reason: null },
              ]),
              sendUntil,
            );
          if (calls.length && finish === 'stop') finish = 'tool_calls';
        }
        await sendSse(res, chunk([{ index, delta: {}, logprobs: null, finish_reason: finish }]), sendUntil);
        return o;
      };
      outcomes.push(...(await allChoices(specs.length, ctx.signal, one)));
      if (req.includeUsage)
        await sendSse(
          res,
          { ...head, object: 'chat.completion.chunk', choices: [], usage: usageOf(prompt.length, outcomes) },
          sendUntil,
        );
      let linked: ReplyLinkAnswer | null = null;
      try {
        linked = linkReplies(outcomes);
      } catch (e) {
        state.log(`recording ${id} in the feedback store failed: ${(e as Error)?.stack ?? String(e)}`);
      }
      if (linked)
        await sendSse(res, { ...head, object: 'chat.completion.chunk', choices: [], llmts: linked }, sendUntil);
      endSse(res);
      await record(outcomes);
    });
    return true;
  };
}
