/**
 * `createServer(options)`: the OpenAI-compatible HTTP server on node:http (after llama-server's `server.cpp`: one
 * model, one generation at a time, OpenAI's routes and error shapes).
 *
 * A request goes through: shutdown check → API key (when set) → the routes in order — /health, /v1/models,
 * /v1/chat/completions, /v1/completions, /tokenize, /detokenize, /tokenizer_info (./tokenize_route.ts), /v1/inspect
 * (./inspect_route.ts: the views of `llmts inspect`), /v1/embeddings (./openai_embeddings.ts), then `options.routes` (the feedback API and app mount there) and `options.stateRoutes` (Compare), then the
 * minimal chat page — and a 404 in OpenAI's error shape when none answers. A route's error is answered with its
 * status as OpenAI's error object (./respond.ts).
 *
 * Every request is bounded: its body (`maxBodyBytes`, else 413), its reply (`maxTokens` per choice, `maxN` choices),
 * its wait for a turn (`maxQueue` waiting, else 429; `maxWaitMs`, else 503) and its generation's wall time
 * (`timeoutMs`: the reply ends with finish_reason 'length'). Receiving the request itself is bounded by node's
 * `requestTimeout`. A client that disconnects aborts its request's signal: a waiting request leaves the queue, a
 * generating one stops at the next token.
 *
 * Binds 127.0.0.1 unless told otherwise; no CORS headers (a web page from another origin cannot call it). `close()`
 * refuses new requests (503), ends the running generation and waiting ones, and closes every connection.
 */
import { timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPagePath, pageRoute } from './app_route.js';
import { PromptCachePool } from './cache_pool.js';
import { chatRoute } from './openai_chat.js';
import { completionsRoute } from './openai_completions.js';
import { tokenizeRoute } from './tokenize_route.js';
import type { ReasoningFormat } from './reasoning.js';
import { INSPECT_PATH, inspectRoute } from './inspect_route.js';
import { healthRoute, modelsRoute } from './openai_models.js';
import { embeddingsRoute } from './openai_embeddings.js';
import { StepBatcher } from '../generate/step_batcher.js';
import { GenerationQueue } from './queue.js';
import { asHttpError, sendError } from './respond.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import type { ReplyLinker } from './reply_link.js';
import type { ServedModel } from './served_model.js';
import type { ChatCompletionRecord, ServerState } from './server_state.js';

export interface ServerOptions {
  served: ServedModel;
  /** Interface to bind (default 127.0.0.1: this machine only). */
  host?: string;
  /** Port (default 8080; 0: any free port, see `url` after listen). */
  port?: number;
  /** When set, every API request needs `Authorization: Bearer <key>` (the page's files and /health do not). */
  apiKey?: string | null;
  /** Requests that may wait behind the running one (default 16); more get 429. */
  maxQueue?: number;
  /**
   * Generations that run at once (default 4), as llama-server's `--parallel` slots: their decode steps share one
   * forward (src/generate/step_batcher.ts). Other model work (embeddings, inspection) still runs alone.
   */
  parallel?: number;
  /**
   * A prompt is prefilled this many tokens per forward, so the replies in the other slots keep stepping between the
   * chunks instead of waiting for the whole prefill (default 256 with more than one slot, else 0: all at once).
   */
  prefillChunk?: number;
  /** Longest wait for a turn in ms (default 120 000); past it 503. */
  maxWaitMs?: number;
  /** Most new tokens per choice, and the default when a request gives none (default 1024). */
  maxTokens?: number;
  /** Most choices per request (n; default 8). */
  maxN?: number;
  /** Largest request body in bytes (default 4 MiB); more gets 413. */
  maxBodyBytes?: number;
  /** Wall time of one request's generation in ms (default 300 000). */
  timeoutMs?: number;
  /** Prompt caches kept for conversations' next turns (default 4; 0: none). */
  promptCacheSlots?: number;
  /**
   * Chat replies of a thinking model: 'deepseek' puts `<think>…</think>` in `reasoning_content` (./reasoning.ts);
   * 'none' (default) leaves the reply as written. A request's `reasoning_format` overrides it.
   */
  reasoningFormat?: ReasoningFormat;
  /** More routes, tried after the OpenAI ones (the feedback API, the app). */
  routes?: readonly Route[];
  /** Routes built on the server's state (its queue, limits, prompt caches), tried after `routes`: Compare. */
  stateRoutes?: (state: ServerState) => readonly Route[];
  /** Serve the minimal chat page at / (default true). */
  page?: boolean;
  /**
   * Called after each chat completion answered in full, inside the request's turn (the next request waits for it):
   * the conversation, fingerprint, sampler settings, and each choice's seed, text and token log-probs. A hook that
   * throws is logged; the client already has its answer.
   */
  onChatCompletion?: (r: ChatCompletionRecord) => void | Promise<void>;
  /**
   * Records chat completions that name a stored user message (`"llmts": {"parent_id"}`) in the feedback store before
   * the response ends, and answers with the stored ids (./reply_link.ts). Without it such a field is ignored.
   */
  replyLinker?: ReplyLinker | null;
  /** One line per request (method, path, status, time) and for server errors; default none. */
  log?: (line: string) => void;
}

export interface LlmServer {
  readonly http: http.Server;
  readonly state: ServerState;
  /** http://host:port once listening, else null. */
  readonly url: string | null;
  /** Start listening; resolves with the URL. */
  listen(): Promise<string>;
  /** Refuse new requests, end running and waiting ones, close every connection; resolves when closed. */
  close(): Promise<void>;
}

/** Why a request's signal aborted when its client went away. */
class ClientGone extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGone';
  }
}

/**
 * The request body as JSON, at most `limit` bytes (413 beyond; 400 when it is not JSON; 415 unless the request says
 * `Content-Type: application/json`). The media type is required so that a page of another origin, which may send a
 * form or text/plain to this server without the browser asking first (no CORS preflight), cannot post judgments,
 * start generations or change anything: a cross-origin JSON request is preflighted, and this server allows none.
 */
function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    req.resume(); // discard the body
    return Promise.reject(
      new HttpError(
        415,
        `this server takes request bodies as JSON only: send Content-Type: application/json${type ? ` (not ${type.slice(0, 80)})` : ''}`,
        'invalid_request_error',
        null,
        'unsupported_media_type',
      ),
    );
  }
  const tooLarge = () =>
    new HttpError(
      413,
      `the request body is larger than this server accepts (${limit} bytes)`,
      'invalid_request_error',
      null,
      'request_too_large',
    );
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume(); // discard the rest; the 413 closes the connection
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('error', reject);
    req.on('end', () => {
      if (size > limit) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(
          new HttpError(
            400,
            `We could not parse the JSON body of your request (${(e as Error).message}); send a JSON object with Content-Type: application/json`,
            'invalid_request_error',
          ),
        );
      }
    });
  });
}

/** Whether the bearer token matches (in constant time). */
function keyMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!),
    b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function createServer(o: ServerOptions): LlmServer {
  const host = o.host ?? '127.0.0.1';
  const maxBody = o.maxBodyBytes ?? 4 * 2 ** 20;
  const log = o.log ?? (() => {});
  const parallel = o.parallel ?? 4;
  const state: ServerState = {
    served: o.served,
    queue: new GenerationQueue({
      ...(o.maxQueue !== undefined ? { maxQueue: o.maxQueue } : {}),
      ...(o.maxWaitMs !== undefined ? { maxWaitMs: o.maxWaitMs } : {}),
      parallel,
    }),
    batcher: new StepBatcher(),
    pool: new PromptCachePool(o.served.model, o.promptCacheSlots ?? 4),
    limits: {
      maxTokens: o.maxTokens ?? 1024,
      maxN: o.maxN ?? 8,
      timeoutMs: o.timeoutMs ?? 300_000,
      prefillChunk: o.prefillChunk ?? (parallel > 1 ? 256 : 0),
    },
    counters: { requests: 0, tokens: 0, cancelled: 0 },
    onChatCompletion: o.onChatCompletion ?? null,
    replyLinker: o.replyLinker ?? null,
    reasoningFormat: o.reasoningFormat ?? 'none',
    log,
  };
  let closing = false;
  const active = new Set<AbortController>();
  const routes: Route[] = [
    healthRoute(state, () => closing),
    modelsRoute(state),
    chatRoute(state),
    completionsRoute(state),
    tokenizeRoute(state),
    inspectRoute(state),
    embeddingsRoute(state),
    ...(o.routes ?? []),
    ...(o.stateRoutes?.(state) ?? []),
    ...(o.page === false ? [] : [pageRoute()]),
  ];
  let url: string | null = null;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const target = new URL(req.url ?? '/', url ?? `http://${host}`);
    const ac = new AbortController();
    active.add(ac);
    res.on('close', () => {
      active.delete(ac);
      if (!res.writableFinished) ac.abort(new ClientGone());
    });
    res.on('finish', () => {
      state.counters.requests++;
      log(`${method} ${target.pathname} ${res.statusCode} ${(performance.now() - t0).toFixed(0)} ms`);
    });
    let body: Promise<unknown> | null = null;
    const ctx: RouteContext = {
      req,
      res,
      url: target,
      method,
      json: () => (body ??= readJson(req, maxBody)),
      signal: ac.signal,
    };
    try {
      const path = target.pathname;
      // an inspection page by its id: the unguessable id made by an authorised POST is the key (a new tab sends no header)
      const isPublic =
        (method === 'GET' || method === 'HEAD') &&
        (path === '/health' || isPagePath(path) || path.startsWith(`${INSPECT_PATH}/`));
      if (closing && path !== '/health')
        throw new HttpError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
      if (o.apiKey && !isPublic && !keyMatches(req.headers.authorization, o.apiKey)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        throw new HttpError(
          401,
          req.headers.authorization
            ? 'Incorrect API key provided'
            : "You didn't provide an API key: send it as 'Authorization: Bearer <key>'",
          'invalid_request_error',
          null,
          'invalid_api_key',
        );
      }
      for (const r of routes) if (await r(ctx)) return;
      throw new HttpError(404, `Unknown request URL: ${method} ${path}`, 'invalid_request_error', null, 'unknown_url');
    } catch (e) {
      if (ac.signal.reason instanceof ClientGone) {
        state.counters.cancelled++;
        log(`${method} ${target.pathname}: client went away after ${(performance.now() - t0).toFixed(0)} ms`);
        return;
      }
      const h = asHttpError(e);
      if (h.status >= 500 && !(e instanceof HttpError))
        log(`error on ${method} ${target.pathname}: ${(e as Error)?.stack ?? String(e)}`);
      sendError(res, h);
    }
  }

  const server = http.createServer({ requestTimeout: 60_000, headersTimeout: 30_000 }, (req, res) => {
    void handle(req, res);
  });

  return {
    http: server,
    state,
    get url() {
      return url;
    },
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port ?? 8080, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
          resolve(url);
        });
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      state.queue.close();
      const shutdown = new HttpError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
      for (const ac of active) ac.abort(shutdown);
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      // the aborted responses end within a token; give them up to 2 s to say so, then drop every connection
      // (also keep-alive sockets a client opened but never used, which node does not count as idle)
      for (let i = 0; i < 200 && active.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      server.closeAllConnections();
      await closed;
      state.pool.dispose();
    },
  };
}
