/**
 * The served model's tokenizer over HTTP, in the shapes of vLLM's and llama-server's endpoints, so that clients that
 * tokenize remotely work unchanged (lm-evaluation-harness's `local-completions` with its remote tokenizer):
 *
 *   GET  /tokenizer_info  → { eos_token, bos_token, pad_token, chat_template, model_max_length, vocab_size }
 *   POST /tokenize        { prompt | content, add_special_tokens | add_special } → { tokens, count, max_model_len }
 *   POST /detokenize      { tokens } → { prompt, content }
 *
 * Text is encoded as /v1/completions encodes a prompt (special-token text becomes its id: the caller writes the
 * whole text); add_special_tokens prepends the BOS token where the tokenizer asks for one (add_bos_token).
 */
import { Body, badParam } from './openai_params.js';
import { sendJson } from './respond.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import type { ServerState } from './server_state.js';

const PATHS = ['/tokenizer_info', '/tokenize', '/detokenize'];

function only(ctx: RouteContext, method: 'GET' | 'POST'): void {
  if (ctx.method === method || (method === 'GET' && ctx.method === 'HEAD')) return;
  ctx.res.setHeader('Allow', method);
  throw new HttpError(405, `${ctx.method} is not allowed on ${ctx.url.pathname}; use ${method}`);
}

/** /tokenizer_info, /tokenize, /detokenize. */
export function tokenizeRoute(state: ServerState): Route {
  return async (ctx) => {
    const p = ctx.url.pathname;
    if (!PATHS.includes(p)) return false;
    const s = state.served;
    const V = s.model.config.vocabSize;
    const text = (id: number | null | undefined) => (id === null || id === undefined ? null : s.codec.decode([id]));
    if (p === '/tokenizer_info') {
      only(ctx, 'GET');
      sendJson(ctx.res, 200, {
        eos_token: text(s.eosTokens[0]),
        bos_token: text(s.bosId),
        pad_token: null,
        chat_template: s.template.text ?? null,
        model_max_length: s.model.config.maxPositions,
        vocab_size: V,
      });
      return true;
    }
    only(ctx, 'POST');
    if (p === '/tokenize') {
      const b = new Body(await ctx.json(), ['prompt', 'content', 'add_special_tokens', 'add_special', 'model']);
      const t = b.string('prompt') ?? b.string('content');
      if (t === undefined) throw badParam('prompt', "give the text to tokenize as 'prompt' (or 'content')");
      const ids = s.codec.encode(t);
      if ((b.bool('add_special_tokens') ?? b.bool('add_special') ?? false) && s.bosId !== null && ids[0] !== s.bosId)
        ids.unshift(s.bosId);
      sendJson(ctx.res, 200, { tokens: ids, count: ids.length, max_model_len: s.model.config.maxPositions });
      return true;
    }
    const b = new Body(await ctx.json(), ['tokens', 'model']);
    const ids = b.get('tokens');
    if (!Array.isArray(ids) || ids.some((x) => !Number.isInteger(x) || x < 0 || x >= V))
      throw badParam('tokens', `'tokens' must be a list of token ids in 0..${V - 1}`);
    const decoded = s.codec.decode(ids as number[]);
    sendJson(ctx.res, 200, { prompt: decoded, content: decoded });
    return true;
  };
}
