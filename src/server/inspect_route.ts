/**
 * `POST /v1/inspect` (an llm.ts extension, not OpenAI's): the views of `llmts inspect` (src/inspect: attention maps
 * per layer and head, the logit lens, the next-token distribution) for a conversation the server's model sees, e.g.
 * one reply of the chat page.
 *
 *   { "messages": [{role, content}, …], "reply"?: "…", "format"?: "html" | "json" | "link", "top_k"?: 1..50 }
 *
 * The prompt is built exactly as /v1/chat/completions builds it (the chat template's text with special tokens, each
 * message's content as plain text, the generation prompt after the last message); `reply` (an assistant reply to
 * look inside) is appended as plain text. The answer is the offline page (`format` "html", the default) or its data
 * (`"json"`: `pageData` of src/inspect/page.ts), or `"link"`: `{ "url": "/v1/inspect/<id>" }`, a page kept in memory
 * that `GET` serves once asked for (the chat page opens it in a new tab: a page fetched by POST cannot be navigated
 * to). The last INSPECT_KEEP_PAGES pages (at most INSPECT_KEEP_BYTES in all) are kept; older ones answer 404.
 * The forward runs in the generation queue, like a completion.
 */
import { randomUUID } from 'node:crypto';
import { CausalLM } from '../model/model.js';
import { inspectIds } from '../inspect/inspect.js';
import { inspectionHtml, PAGE_MAX_ATTENTION, pageData } from '../inspect/page.js';
import { readMessages } from './openai_chat.js';
import { badParam, Body } from './openai_params.js';
import { asHttpError, sendJson } from './respond.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import type { ServerState } from './server_state.js';

export const INSPECT_PATH = '/v1/inspect';
export const INSPECT_KEEP_PAGES = 16;
export const INSPECT_KEEP_BYTES = 256 * 1024 * 1024;

/** Pages made for `"format": "link"`, oldest first (Map keeps insertion order); bounded by count and bytes. */
class KeptPages {
  private readonly pages = new Map<string, string>();
  private bytes = 0;
  put(html: string): string {
    const id = randomUUID();
    this.pages.set(id, html);
    this.bytes += html.length;
    for (const [old, page] of this.pages) {
      if (this.pages.size <= INSPECT_KEEP_PAGES && this.bytes <= INSPECT_KEEP_BYTES) break;
      if (old === id) break;
      this.pages.delete(old);
      this.bytes -= page.length;
    }
    return id;
  }
  get(id: string): string | undefined {
    return this.pages.get(id);
  }
}

function sendHtml(ctx: RouteContext, html: string): void {
  ctx.res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
  });
  ctx.res.end(html);
}
const FIELDS = ['model', 'messages', 'reply', 'format', 'top_k'];

/** The inspect route: the served model must be a CausalLM (the library's model), else 501. */
export function inspectRoute(state: ServerState): Route {
  const kept = new KeptPages();
  return async (ctx: RouteContext) => {
    if (ctx.url.pathname.startsWith(`${INSPECT_PATH}/`)) {
      if (ctx.method !== 'GET') {
        ctx.res.setHeader('Allow', 'GET');
        throw new HttpError(405, `${ctx.method} is not allowed on ${INSPECT_PATH}/<id>; use GET`);
      }
      const html = kept.get(ctx.url.pathname.slice(INSPECT_PATH.length + 1));
      if (html === undefined)
        throw new HttpError(404, 'No such inspection page (pages are kept in memory, the newest few only)');
      sendHtml(ctx, html);
      return true;
    }
    if (ctx.url.pathname !== INSPECT_PATH) return false;
    if (ctx.method !== 'POST') {
      ctx.res.setHeader('Allow', 'POST');
      throw new HttpError(405, `${ctx.method} is not allowed on ${INSPECT_PATH}; use POST`);
    }
    const b = new Body(await ctx.json(), FIELDS);
    const { served } = state;
    const name = b.string('model');
    if (name !== undefined && name !== served.name)
      throw new HttpError(
        404,
        `The model '${name}' does not exist; this server serves '${served.name}'`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    const format = b.string('format') ?? 'html';
    if (format !== 'html' && format !== 'json' && format !== 'link')
      throw badParam('format', '\'format\' must be "html", "json" or "link"');
    const topk = b.number('top_k', { min: 1, max: 50, integer: true }) ?? 5;
    const reply = b.string('reply') ?? '';
    const conv = readMessages(b.get('messages'));
    const model = served.model;
    if (!(model instanceof CausalLM))
      throw new HttpError(501, 'this server’s model does not support inspection', 'server_error');
    let ids: number[];
    try {
      ids = conv.encode(
        served.template,
        (t) => served.codec.encode(t),
        served.codec.encodePlain?.bind(served.codec),
      ).ids;
      if (reply)
        for (const x of (served.codec.encodePlain ?? served.codec.encode).call(served.codec, reply)) ids.push(x);
    } catch (e) {
      throw asHttpError(e, 'messages');
    }
    const c = model.config;
    if (ids.length > c.maxPositions)
      throw badParam(
        'messages',
        `${ids.length} tokens exceed the model's context window of ${c.maxPositions}`,
        'context_length_exceeded',
      );
    if (c.numLayers * c.numHeads * ids.length * ids.length > PAGE_MAX_ATTENTION)
      throw badParam('messages', `${ids.length} tokens are too many attention weights for one page; inspect fewer`);
    const ins = await state.queue.run(ctx.signal, () =>
      inspectIds(model, ids, served.codec, { topk, residual: false }),
    );
    if (format === 'json') {
      sendJson(ctx.res, 200, pageData(ins, { source: served.name }));
      return true;
    }
    const html = inspectionHtml(ins, { source: served.name });
    if (format === 'link') {
      sendJson(ctx.res, 200, { url: `${INSPECT_PATH}/${kept.put(html)}` });
      return true;
    }
    sendHtml(ctx, html);
    return true;
  };
}
