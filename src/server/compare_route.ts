/**
 * Compare: two checkpoints answer the same stored user turn, blind. `llmts serve A --compare B` serves A and keeps B
 * beside it; the page's Compare view asks for both replies, shows them in an order the server drew (A's and B's
 * names withheld), and the person's choice is an ordinary `choice` judgment on the two sibling replies. The running
 * score is read back from the store.
 *
 *   POST /api/compare   {"parent_id", "temperature"?, "max_tokens"?, "seed"? (default: drawn)}
 *                       → 201 {"object": "feedback.comparison", "parent_id", "seed", "message_ids": [x, y],
 *                              "replies": [text x, text y]}  — both recorded (each with its own checkpoint's hash),
 *                              generated with the same seed, in the queue; the order is drawn per request
 *   GET  /api/compare   → {"object": "feedback.compare_stats", "base", "candidate": {hash, path, name},
 *                          "wins", "losses", "ties", "both_bad", "win_rate", "ci95": [lo, hi]}
 *                          win_rate: the candidate's (B's) wins over the decided choices, each rater's latest per
 *                          pair; ci95: Wilson's score interval (Wilson 1927)
 */
import { randomInt } from 'node:crypto';
import { Conversation } from '../chat/conversation.js';
import { UnknownRecordError } from '../feedback/errors.js';
import type { FeedbackStore } from '../feedback/store.js';
import { freshSeed } from '../generate/engine.js';
import { PromptCachePool } from './cache_pool.js';
import { checkPromptFits, choiceSampler } from './openai_common.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import { runChoice } from './run_choice.js';
import { chatStops, type ServedModel } from './served_model.js';
import type { ServerState } from './server_state.js';

/** One side of the comparison: a served checkpoint and its folder (hashed once by the store). */
export interface CompareSide {
  served: ServedModel;
  dir: string;
}

/** Wilson's score interval for `k` successes in `n` trials at z = 1.96 (95 %); [0, 1] when n = 0. */
export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/** The candidate's record against the base: each rater's latest choice per pair of one base and one candidate reply. */
export function compareStats(store: FeedbackStore, baseHash: string, candHash: string) {
  const msgs = store.allMessages();
  const latest = new Map<string, string>();
  for (const j of store.allJudgments()) {
    if (j.kind !== 'choice' || j.value === null) continue;
    const [x, y] = j.items.map((i) => msgs.get(i.messageId)?.checkpointHash ?? null);
    let v = j.value;
    if (x === candHash && y === baseHash) v = v === 'a' ? 'win' : v === 'b' ? 'loss' : v;
    else if (x === baseHash && y === candHash) v = v === 'a' ? 'loss' : v === 'b' ? 'win' : v;
    else continue;
    const pair = j.items
      .map((i) => i.messageId)
      .sort((a, b) => a - b)
      .join(',');
    latest.set(`${j.rater}\u0000${pair}`, v);
  }
  const count = (v: string) => [...latest.values()].filter((x) => x === v).length;
  const wins = count('win');
  const losses = count('loss');
  return {
    wins,
    losses,
    ties: count('tie'),
    both_bad: count('both_bad'),
    win_rate: wins + losses ? wins / (wins + losses) : null,
    ci95: wilson(wins, wins + losses),
  };
}

function fail(param: string, message: string, status = 400): HttpError {
  return new HttpError(status, `${param}: ${message}`, 'invalid_request_error', param);
}

/**
 * The compare routes (see the header); `base` is the model the server started with (it stays the base after
 * "Improve the model" switched the server), `candidate` the --compare one.
 */
export function compareRoute(
  state: ServerState,
  store: FeedbackStore,
  base: CompareSide,
  candidate: CompareSide,
): Route {
  const sides = [base, candidate].map((s) => ({
    ...s,
    hash: store.registerCheckpoint(s.dir),
    pool: new PromptCachePool(s.served.model, 1), // its own: the server's may be switched to another model
  }));
  const send = (ctx: RouteContext, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    ctx.res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    ctx.res.end(text);
  };
  return async (ctx) => {
    if (ctx.url.pathname !== '/api/compare') return false;
    if (ctx.method === 'GET') {
      const side = (s: (typeof sides)[number]) => ({ hash: s.hash, path: s.dir, name: s.served.name });
      send(ctx, 200, {
        object: 'feedback.compare_stats',
        base: side(sides[0]!),
        candidate: side(sides[1]!),
        ...compareStats(store, sides[0]!.hash, sides[1]!.hash),
      });
      return true;
    }
    if (ctx.method !== 'POST')
      throw new HttpError(405, `${ctx.method} is not allowed on /api/compare; it takes GET, POST`);
    const body = (await ctx.json()) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw fail('body', 'expected a JSON object');
    for (const k of Object.keys(body))
      if (!['parent_id', 'temperature', 'max_tokens', 'seed'].includes(k))
        throw fail(k, 'unknown field; expected parent_id, temperature, max_tokens, seed');
    const parentId = body['parent_id'];
    if (typeof parentId !== 'number' || !Number.isSafeInteger(parentId) || parentId < 1)
      throw fail('parent_id', `expected the id of a stored user message, got ${JSON.stringify(parentId)}`);
    let path: ReturnType<FeedbackStore['pathTo']>;
    try {
      path = store.pathTo(parentId);
    } catch (e) {
      if (e instanceof UnknownRecordError) throw fail('parent_id', `no stored message ${parentId}`, 404);
      throw e;
    }
    if (path.at(-1)!.role !== 'user') throw fail('parent_id', `message ${parentId} is not a user message`);
    const temperature = body['temperature'] ?? 0.8;
    if (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= 2))
      throw fail('temperature', 'expected a number 0..2');
    const maxTokens = body['max_tokens'] ?? 128;
    if (
      typeof maxTokens !== 'number' ||
      !Number.isInteger(maxTokens) ||
      maxTokens < 1 ||
      maxTokens > state.limits.maxTokens
    )
      throw fail('max_tokens', `expected an integer 1..${state.limits.maxTokens}`);
    const system = path[0]!.role === 'system' ? path[0]!.content : null;
    const conv = new Conversation({
      system,
      messages: path.filter((m) => m.role !== 'system').map((m) => ({ role: m.role, content: m.content })),
    });
    const asked = body['seed'];
    if (asked !== undefined && (typeof asked !== 'number' || !Number.isSafeInteger(asked) || asked < 0))
      throw fail('seed', 'expected a non-negative integer');
    const seed = asked ?? freshSeed();
    const texts = await state.queue.run(ctx.signal, async () => {
      const out: string[] = [];
      for (const s of sides) {
        const prompt = conv.encode(
          s.served.template,
          (t) => s.served.codec.encode(t),
          s.served.codec.encodePlain?.bind(s.served.codec),
        ).ids;
        checkPromptFits(prompt.length, s.served, 'parent_id');
        const stops = chatStops(s.served);
        const o = await runChoice(
          {
            served: s.served,
            pool: s.pool,
            deadline: performance.now() + state.limits.timeoutMs,
            onProduced: () => state.counters.tokens++,
          },
          {
            prompt,
            sampler: choiceSampler(s.served, { temperature }, 0),
            maxTokens,
            stopTokens: stops.tokens,
            stop: stops.strings,
            seed,
            logprobs: false,
          },
          ctx.signal,
          () => {},
        );
        out.push(o.text);
      }
      return out;
    });
    const ids = sides.map(
      (s, i) =>
        store.recordReply({
          parentId,
          content: texts[i]!,
          checkpointHash: s.hash,
          sampler: { temperature, max_tokens: maxTokens, compare: true },
          seed,
        }).id,
    );
    const order = randomInt(2) === 0 ? [0, 1] : [1, 0]; // blind: which side comes first is drawn per comparison
    send(ctx, 201, {
      object: 'feedback.comparison',
      parent_id: parentId,
      seed,
      message_ids: order.map((k) => ids[k]),
      replies: order.map((k) => texts[k]),
    });
    return true;
  };
}
