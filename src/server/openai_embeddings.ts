/**
 * `POST /v1/embeddings` (OpenAI's): one vector per input text, from the served model's final hidden states
 * (src/model/embed.ts), pooled as the model folder says (sentence-transformers' 1_Pooling/config.json; else the last
 * token, what decoder embedding models use) and L2-normalised (unless the folder has no Normalize module).
 *
 *   { "model", "input": "text" | ["text", …] | [ids…] | [[ids…], …], "encoding_format"?: "float" | "base64",
 *     "dimensions"?: d, "user"? }
 *   → { "object": "list", "data": [{ "object": "embedding", "index", "embedding" }], "model", "usage" }
 *
 * A text is tokenised as the model's tokenizer encodes one (BOS first, and the eos its post-processor appends, as
 * Qwen3-Embedding's does); its content is plain text (no special tokens from marker text). `dimensions` keeps the
 * first d components and normalises again (Matryoshka models, as OpenAI's text-embedding-3 do). "base64" is the
 * little-endian float32 array in base64, what OpenAI's clients ask for by default and decode. An input longer than
 * the context window, an empty one, or more than EMBED_MAX_INPUTS inputs is a 400 naming `input`. The forwards run
 * in the generation queue, like a completion.
 */
import { embed, frameIds } from '../model/embed.js';
import { checkModel } from './openai_common.js';
import { badParam, Body } from './openai_params.js';
import { sendJson } from './respond.js';
import { HttpError, type Route } from './routes.js';
import type { ServerState } from './server_state.js';

export const EMBEDDINGS_PATH = '/v1/embeddings';
/** Most inputs in one request (OpenAI's limit). */
export const EMBED_MAX_INPUTS = 2048;
const FIELDS = ['model', 'input', 'encoding_format', 'dimensions'];

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

/** The request's inputs as token ids. */
function readInputs(v: unknown, state: ServerState): number[][] {
  const { served } = state;
  const emb = served.embedding;
  const encodeText = (s: string): number[] => {
    if (s === '') throw badParam('input', "Invalid 'input': an empty text has nothing to embed");
    return frameIds((served.codec.encodePlain ?? served.codec.encode).call(served.codec, s), {
      bos: emb?.bos ?? null,
      eos: emb?.eos ?? null,
    });
  };
  if (v === undefined) throw badParam('input', "you must provide 'input' (a text, texts, or token ids)");
  let rows: number[][];
  if (typeof v === 'string') rows = [encodeText(v)];
  else if (isIds(v) && v.length > 0) rows = [v];
  else if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'))
    rows = (v as string[]).map(encodeText);
  else if (Array.isArray(v) && v.length > 0 && v.every(isIds)) rows = v.map((r) => [...r]);
  else
    throw badParam(
      'input',
      "Invalid 'input': expected a non-empty string, array of strings, array of token ids, or array of those arrays",
    );
  if (rows.length > EMBED_MAX_INPUTS)
    throw badParam('input', `Invalid 'input': at most ${EMBED_MAX_INPUTS} inputs per request, got ${rows.length}`);
  const { vocabSize, maxPositions } = served.model.config;
  rows.forEach((r, i) => {
    const where = rows.length > 1 || Array.isArray(v) ? `input[${i}]` : 'input';
    if (r.length === 0) throw badParam('input', `Invalid '${where}': it is empty`);
    for (const id of r)
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw badParam('input', `Invalid '${where}': token id ${id} is outside the vocabulary 0..${vocabSize - 1}`);
    if (r.length > maxPositions)
      throw badParam(
        'input',
        `'${where}' is ${r.length} tokens but the model's context window is ${maxPositions} tokens; shorten it`,
        'context_length_exceeded',
      );
  });
  return rows;
}

/** The route. A served model without hidden states (not a CausalLM-like model) answers 501. */
export function embeddingsRoute(state: ServerState): Route {
  return async (ctx) => {
    if (ctx.url.pathname !== EMBEDDINGS_PATH) return false;
    if (ctx.method !== 'POST') {
      ctx.res.setHeader('Allow', 'POST');
      throw new HttpError(405, `${ctx.method} is not allowed on ${EMBEDDINGS_PATH}; use POST`, 'invalid_request_error');
    }
    const b = new Body(await ctx.json(), FIELDS);
    const { served } = state;
    const model = checkModel(b, served);
    const format = b.string('encoding_format') ?? 'float';
    if (format !== 'float' && format !== 'base64')
      throw badParam(
        'encoding_format',
        `Invalid 'encoding_format': expected "float" or "base64", got ${JSON.stringify(format)}`,
      );
    const m = served.model as unknown as Partial<Parameters<typeof embed>[0]>;
    if (typeof m.hidden !== 'function' || typeof m.config?.hiddenSize !== 'number')
      throw new HttpError(501, 'this server’s model does not give hidden states, so no embeddings', 'server_error');
    const C = m.config.hiddenSize;
    const dimensions = b.number('dimensions', { min: 1, max: C, integer: true });
    const rows = readInputs(b.get('input'), state);
    const emb = served.embedding ?? { pooling: 'last' as const, normalize: true };
    const vectors = await state.queue.run(ctx.signal, () =>
      embed(m as Parameters<typeof embed>[0], rows, {
        pooling: emb.pooling,
        normalize: emb.normalize || dimensions !== undefined,
        ...(dimensions !== undefined ? { dimensions } : {}),
        signal: ctx.signal,
      }),
    );
    const tokens = rows.reduce((a, r) => a + r.length, 0);
    sendJson(ctx.res, 200, {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding:
          format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
      })),
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
    return true;
  };
}
