/**
 * The feedback store over HTTP: the `Route` (routes.ts) the web page uses to keep conversations and post judgments.
 * JSON in and out, snake_case fields as in OpenAI's API, errors as `HttpError` (OpenAI's error object: 400 with
 * `param` naming the bad field and `code` the store's error code, 404 for an id that names nothing, 405 for a method
 * a path does not take). Paths under the prefix (default `/api`):
 *
 *   GET  /api/conversations?limit=50&offset=0    {"object": "list", "data": [conversation, …]}, most recent first
 *   POST /api/conversations                      {"title"?}                                   → 201 conversation
 *   GET  /api/conversations/:id                  {"conversation", "messages": [… parents first], "judgments"}
 *   POST /api/conversations/:id/messages         {"parent_id": id|null, "role": "user"|"system", "content",
 *                                                 "author"?}                                   → 201 message
 *   GET  /api/messages/:id                       message
 *   POST /api/judgments                          one feedback action (below)                 → 201 judgment
 *   POST /api/judgments/batch                    {"judgments": [≤ 1000 actions]} (a scripted rater): one
 *                                                transaction, all or none     → 201 {"object": "list", "data"}
 *   GET  /api/judgments/:id                      judgment
 *
 * A judgment body is {"kind", "rater", …}: thumbs {"message_id", "value": "up"|"down", "reasons"?}; flag
 * {"message_id", "reasons": [labels]}; edit {"message_id", "content"} (the answer carries the new sibling message as
 * "message"); choice {"message_ids": [A, B], "value": "a"|"b"|"tie"|"both_bad"}; ranking {"message_ids": [K ids],
 * "ranking": [indices into message_ids, best first]}. Unknown fields are refused, naming them.
 *
 * Model replies are not posted here: the server records a finished generation with `replyRecorder(store, dir)`.
 * A 201 is sent only after the action's transaction has committed: an acknowledged judgment survives a crash.
 */
import { FeedbackInputError, UnknownRecordError } from '../feedback/errors.js';
import type { FeedbackStore } from '../feedback/store.js';
import type { Conversation, Judgment, JudgmentInput, Message, ReplyInput } from '../feedback/types.js';
import { HttpError, type Route, type RouteContext } from './routes.js';

/** A conversation as the API writes it. */
export function conversationJson(c: Conversation) {
  return {
    id: c.id,
    object: 'feedback.conversation',
    title: c.title,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    message_count: c.messageCount,
  };
}

/** A message as the API writes it. */
export function messageJson(m: Message) {
  return {
    id: m.id,
    object: 'feedback.message',
    conversation_id: m.conversationId,
    parent_id: m.parentId,
    role: m.role,
    content: m.content,
    author: m.author,
    edit_of: m.editOf,
    checkpoint_hash: m.checkpointHash,
    sampler: m.sampler,
    seed: m.seed,
    logprobs: m.logprobs,
    created_at: m.createdAt,
  };
}

/** A judgment as the API writes it (`ranking`: indices into `message_ids`, best first, as it was posted). */
export function judgmentJson(j: Judgment) {
  const ranking =
    j.kind === 'ranking'
      ? j.items
          .map((it, pos) => ({ pos, rank: it.rank! }))
          .sort((a, b) => a.rank - b.rank)
          .map((x) => x.pos)
      : null;
  return {
    id: j.id,
    object: 'feedback.judgment',
    kind: j.kind,
    rater: j.rater,
    message_id: j.messageId,
    message_ids: j.items.length ? j.items.map((i) => i.messageId) : null,
    value: j.value,
    reasons: j.reasons,
    ranking,
    edit_message_id: j.editMessageId,
    created_at: j.createdAt,
  };
}

/**
 * What the server calls when a model reply finishes: records it under the user message it answers, with the
 * checkpoint's hash (computed here once, from `checkpointDir`'s weights), sampler settings, seed and log-probs.
 */
export function replyRecorder(
  store: FeedbackStore,
  checkpointDir: string,
): (reply: Omit<ReplyInput, 'checkpointHash'>) => Message {
  const checkpointHash = store.registerCheckpoint(checkpointDir);
  return (reply) => store.recordReply({ ...reply, checkpointHash });
}

/** Most judgments one batch may hold. */
export const MAX_BATCH = 1000;

const JUDGMENT_FIELDS: Record<string, readonly string[]> = {
  thumbs: ['message_id', 'value', 'reasons'],
  flag: ['message_id', 'reasons'],
  edit: ['message_id', 'content'],
  choice: ['message_ids', 'value'],
  ranking: ['message_ids', 'ranking'],
};

function object(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new HttpError(400, `expected a JSON object as the body, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  return v as Record<string, unknown>;
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(body))
    if (!allowed.includes(k))
      throw new HttpError(
        400,
        `unknown field ${JSON.stringify(k)} in ${what}; expected ${allowed.join(', ')}`,
        'invalid_request_error',
        k,
      );
}

/** A judgment body (snake_case) as the store's JudgmentInput; the store checks the values. */
export function judgmentInput(v: unknown): JudgmentInput {
  const body = object(v);
  const kind = body['kind'];
  const fields = typeof kind === 'string' ? JUDGMENT_FIELDS[kind] : undefined;
  if (fields) onlyFields(body, ['kind', 'rater', ...fields], `a ${kind} judgment`);
  return {
    kind,
    rater: body['rater'],
    messageId: body['message_id'],
    messageIds: body['message_ids'],
    value: body['value'],
    reasons: body['reasons'],
    content: body['content'],
    ranking: body['ranking'],
  } as unknown as JudgmentInput;
}

function queryInt(url: URL, name: string, dflt: number, min: number, max: number): number {
  const s = url.searchParams.get(name);
  if (s === null) return dflt;
  const n = Number(s);
  if (s.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new HttpError(
      400,
      `${name}: expected an integer ${min}..${max}, got ${JSON.stringify(s)}`,
      'invalid_request_error',
      name,
    );
  return n;
}

function send(ctx: RouteContext, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  ctx.res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  ctx.res.end(text);
}

/** The store's errors as HTTP errors: an unknown id is 404, any other bad field 400. */
function httpError(e: unknown): unknown {
  if (e instanceof UnknownRecordError) return new HttpError(404, e.message, 'invalid_request_error', e.field, e.code);
  if (e instanceof FeedbackInputError) return new HttpError(400, e.message, 'invalid_request_error', e.field, e.code);
  return e;
}

export interface FeedbackRouteOptions {
  /** Where the API lives (default `/api`). */
  prefix?: string;
}

/** The feedback API as a Route (see the header). */
export function feedbackRoute(store: FeedbackStore, o: FeedbackRouteOptions = {}): Route {
  const prefix = (o.prefix ?? '/api').replace(/\/$/, '');
  type Handler = (ctx: RouteContext, id: number) => Promise<[number, unknown]>;
  const routes: { pattern: RegExp; methods: Record<string, Handler> }[] = [
    {
      pattern: /^\/conversations$/,
      methods: {
        GET: async (ctx) => {
          const limit = queryInt(ctx.url, 'limit', 50, 1, 500);
          const offset = queryInt(ctx.url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
          return [200, { object: 'list', data: store.listConversations(limit, offset).map(conversationJson) }];
        },
        POST: async (ctx) => {
          const body = object(await ctx.json());
          onlyFields(body, ['title'], 'a new conversation');
          return [201, conversationJson(store.createConversation((body['title'] ?? '') as string))];
        },
      },
    },
    {
      pattern: /^\/conversations\/(\d+)$/,
      methods: {
        GET: async (_ctx, id) => [
          200,
          store.snapshot(() => ({
            conversation: conversationJson(store.conversation(id)),
            messages: store.messagesOf(id).map(messageJson),
            judgments: store.judgmentsOf(id).map(judgmentJson),
          })),
        ],
      },
    },
    {
      pattern: /^\/conversations\/(\d+)\/messages$/,
      methods: {
        POST: async (ctx, id) => {
          const body = object(await ctx.json());
          onlyFields(body, ['parent_id', 'role', 'content', 'author'], 'a message');
          const m = store.addMessage({
            conversationId: id,
            parentId: (body['parent_id'] ?? null) as number | null,
            role: body['role'] as 'user',
            content: body['content'] as string,
            author: (body['author'] ?? null) as string | null,
          });
          return [201, messageJson(m)];
        },
      },
    },
    { pattern: /^\/messages\/(\d+)$/, methods: { GET: async (_ctx, id) => [200, messageJson(store.message(id))] } },
    {
      pattern: /^\/judgments$/,
      methods: {
        POST: async (ctx) => {
          const j = store.addJudgment(judgmentInput(await ctx.json()));
          const out: Record<string, unknown> = judgmentJson(j);
          if (j.editMessageId !== null) out['message'] = messageJson(store.message(j.editMessageId));
          return [201, out];
        },
      },
    },
    {
      pattern: /^\/judgments\/batch$/,
      methods: {
        POST: async (ctx) => {
          const body = object(await ctx.json());
          onlyFields(body, ['judgments'], 'a batch');
          const list = body['judgments'];
          if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH)
            throw new HttpError(
              400,
              `judgments: expected a list of 1 to ${MAX_BATCH} judgments`,
              'invalid_request_error',
              'judgments',
            );
          const inputs = list.map((x, k) => {
            try {
              return judgmentInput(x);
            } catch (e) {
              if (e instanceof HttpError)
                throw new HttpError(400, `judgments[${k}]: ${e.message}`, e.type, `judgments[${k}].${e.param ?? ''}`);
              throw e;
            }
          });
          return [201, { object: 'list', data: store.addJudgments(inputs).map(judgmentJson) }];
        },
      },
    },
    { pattern: /^\/judgments\/(\d+)$/, methods: { GET: async (_ctx, id) => [200, judgmentJson(store.judgment(id))] } },
  ];

  return async (ctx) => {
    const p = ctx.url.pathname;
    if (p !== prefix && !p.startsWith(`${prefix}/`)) return false;
    const rest = p.slice(prefix.length);
    for (const r of routes) {
      const m = r.pattern.exec(rest);
      if (!m) continue;
      const handler = r.methods[ctx.method];
      if (!handler)
        throw new HttpError(
          405,
          `${ctx.method} is not allowed on ${p}; it takes ${Object.keys(r.methods).join(', ')}`,
          'invalid_request_error',
          null,
          'method_not_allowed',
        );
      const id = m[1] === undefined ? 0 : Number(m[1]);
      let answer: [number, unknown];
      try {
        answer = await handler(ctx, id);
      } catch (e) {
        throw httpError(e);
      }
      send(ctx, answer[0], answer[1]);
      return true;
    }
    return false;
  };
}
