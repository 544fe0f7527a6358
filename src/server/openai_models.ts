/**
 * `GET /v1/models` and `GET /v1/models/{id}` (OpenAI's model list: the one served model), and `GET /health`
 * (llama-server's: status "ok" while serving, "shutting_down" once closing, with the queue and counters).
 */
import { sendJson } from './respond.js';
import { HttpError, type Route } from './routes.js';
import type { ServerState } from './server_state.js';

function modelObject(state: ServerState) {
  const s = state.served;
  return {
    id: s.name,
    object: 'model',
    created: s.created,
    owned_by: 'llmts',
    // extras: what a client may want to know before asking
    context_length: s.model.config.maxPositions,
    max_tokens: state.limits.maxTokens,
  };
}

function onlyGet(method: string, path: string, setAllow: () => void): void {
  if (method === 'GET' || method === 'HEAD') return;
  setAllow();
  throw new HttpError(405, `${method} is not allowed on ${path}; use GET`);
}

/** GET /v1/models, GET /v1/models/{id}. */
export function modelsRoute(state: ServerState): Route {
  return async (ctx) => {
    const p = ctx.url.pathname;
    if (p !== '/v1/models' && !p.startsWith('/v1/models/')) return false;
    onlyGet(ctx.method, p, () => ctx.res.setHeader('Allow', 'GET'));
    if (p === '/v1/models') {
      sendJson(ctx.res, 200, { object: 'list', data: [modelObject(state)] });
      return true;
    }
    const id = decodeURIComponent(p.slice('/v1/models/'.length));
    if (id !== state.served.name)
      throw new HttpError(
        404,
        `The model '${id}' does not exist; this server serves '${state.served.name}'`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    sendJson(ctx.res, 200, modelObject(state));
    return true;
  };
}

/** GET /health. */
export function healthRoute(state: ServerState, closing: () => boolean): Route {
  return async (ctx) => {
    if (ctx.url.pathname !== '/health') return false;
    onlyGet(ctx.method, '/health', () => ctx.res.setHeader('Allow', 'GET'));
    const shutting = closing();
    sendJson(ctx.res, shutting ? 503 : 200, {
      status: shutting ? 'shutting_down' : 'ok',
      model: state.served.name,
      queue: state.queue.stats,
      batching: state.batcher.stats,
      ...state.counters,
    });
    return true;
  };
}
