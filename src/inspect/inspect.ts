/**
 * Seeing inside a model: one forward over a text with the attention probabilities and the residual stream captured
 * (`ForwardCapture`, src/model/model.ts), and the logit lens (nostalgebraist, "interpreting GPT: the logit lens",
 * 2020): each layer's residual read through the final norm and the language-model head, as a next-token distribution
 * per layer × position. The data of `llmts inspect`'s page (./page.ts), returned as plain arrays.
 *
 *   ids (T) ─ embed ─▶ r₀ ─ block 1 ─▶ r₁ ─ … ─ block L ─▶ r_L ─ final norm ─ head ─▶ logits (T, V)
 *   lens[l] = softmax(head(norm(r_l)))          top-k per position; lens[L] is the model's own distribution
 *   attention[l] = softmax(q·kᵀ/√D) of block l+1, (H, T, T), 0 above the diagonal
 *
 * Browser-safe (no Node built-in); the model runs on whatever backend holds it.
 */
import { logSumExp, topN } from '../backend/sampling.js';
import type { TextCodec } from '../generate/interfaces.js';
import type { CausalLM, ForwardCapture } from '../model/model.js';
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { ConfigError, ShapeError } from '../util/errors.js';
import { tokenPiece } from '../chat/codec.js';

export interface InspectOptions {
  /** Tokens kept per logit-lens cell (default 5, 1..50). */
  topk?: number;
  /** Tokens of the last position's distribution given a display string (the page's table; default 200). */
  topTokens?: number;
  /** Return the residual stream too (default true; the page does not need it). */
  residual?: boolean;
}

/** One row of the logit lens: a layer's top-k next tokens at every position. */
export interface LensRow {
  /** 'embeddings', then 'block 1' … 'block L' (the last is the model's own output). */
  label: string;
  /** (T, k) row-major: the k most likely next tokens at each position, most likely first. */
  ids: Int32Array;
  /** (T, k): their probabilities. */
  probs: Float32Array;
}

/** What `inspectIds` saw, for batch row 0 of one text. */
export interface Inspection {
  family: string;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  hiddenSize: number;
  vocabSize: number;
  /** The token ids of the text (T). */
  ids: number[];
  /** How each token shows (its text, or its bytes in hex when they are not whole UTF-8). */
  tokens: string[];
  /** Per layer, the attention probabilities (H, T, T): row = query position, column = key position. */
  attention: Float32Array[];
  /** The embedding output, then the residual stream after each block: L + 1 arrays (T, C). Empty when not asked. */
  residual: Float32Array[];
  /** The logit lens: L + 1 rows (embeddings, block 1 … block L). */
  lens: LensRow[];
  /** k of the lens. */
  topk: number;
  /** The model's logits at the last position (V): the next-token distribution before any sampler setting. */
  lastLogits: Float32Array;
  /** Display strings of every id the lens, the text and the last position's top tokens mention. */
  vocab: Map<number, string>;
}

/** How a token id shows: the codec's bytes as text (hex when not whole UTF-8), else `⟨id⟩` without a codec. */
export function tokenString(codec: TextCodec | null, id: number): string {
  if (!codec) return `⟨${id}⟩`;
  return codec.tokenBytes ? tokenPiece(codec.tokenBytes(id)) : codec.decode([id]);
}

/**
 * Run the model over `ids` once with everything captured, then read the logit lens. `codec` gives the token strings
 * (null: ids shown as ⟨id⟩).
 */
export async function inspectIds(
  model: CausalLM,
  ids: readonly number[],
  codec: TextCodec | null,
  opts: InspectOptions = {},
): Promise<Inspection> {
  const c = model.config;
  const k = opts.topk ?? 5;
  if (!Number.isInteger(k) || k < 1 || k > 50) throw new ConfigError('topk', `expected an integer in 1..50, got ${k}`);
  const M = opts.topTokens ?? 200;
  if (!Number.isInteger(M) || M < 1) throw new ConfigError('topTokens', `expected a positive integer, got ${M}`);
  const T = ids.length;
  if (T === 0) throw new ShapeError('inspect: the text has no tokens');
  if (T > c.maxPositions)
    throw new ShapeError(
      `inspect: ${T} tokens exceed the model's context window of ${c.maxPositions}; inspect a shorter text`,
    );
  const x = Int32Array.from(ids);

  // one forward, captured: attention (1, H, T, T) per layer, residuals (1, T, C) × (L + 1), logits (1, T, V)
  const got = noGrad(() =>
    tidy(() => {
      const capture: Required<ForwardCapture> = { attention: [], residual: [] };
      const logits = model.forward(x, 1, T, { capture });
      return { logits, attention: capture.attention, residual: capture.residual };
    }),
  );
  try {
    const attention: Float32Array[] = [];
    for (const a of got.attention) attention.push(Float32Array.from(await a.data()));
    const residual: Float32Array[] = [];
    if (opts.residual ?? true) for (const r of got.residual) residual.push(Float32Array.from(await r.data()));
    const V = c.vocabSize;
    const all = (await got.logits.data()) as Float32Array;
    const lastLogits = Float32Array.from(all.subarray((T - 1) * V, T * V));

    // the logit lens: every residual but the last through the final norm and the head; the last is the forward's own
    const lens: LensRow[] = [];
    for (let l = 0; l <= c.numLayers; l++) {
      const label = l === 0 ? 'embeddings' : `block ${l}`;
      let logits: Float32Array;
      if (l === c.numLayers) logits = all;
      else {
        const t = noGrad(() => tidy(() => model.lensLogits(got.residual[l]!)));
        logits = (await t.data()) as Float32Array;
        t.dispose();
      }
      lens.push({ label, ...topTokens(logits, T, V, k) });
    }

    const vocab = new Map<number, string>();
    const name = (id: number) => {
      if (!vocab.has(id)) vocab.set(id, tokenString(codec, id));
    };
    ids.forEach(name);
    for (const row of lens) row.ids.forEach(name);
    for (const t of topN(lastLogits, Math.min(M, V))) name(t.id);

    return {
      family: c.family,
      numLayers: c.numLayers,
      numHeads: c.numHeads,
      numKvHeads: c.numKvHeads,
      hiddenSize: c.hiddenSize,
      vocabSize: V,
      ids: [...ids],
      tokens: ids.map((id) => vocab.get(id)!),
      attention,
      residual,
      lens,
      topk: Math.min(k, V),
      lastLogits,
      vocab,
    };
  } finally {
    const ts: Tensor[] = [got.logits, ...got.attention, ...got.residual];
    for (const t of ts) t.dispose();
  }
}

/**
 * Encode `text` with the codec and inspect it. Special-token text (`<|im_start|>`) stays ordinary characters unless
 * `specials: 'all'` (trusted text: what the person running the command typed, a rendered chat template).
 */
export async function inspectText(
  model: CausalLM,
  codec: TextCodec,
  text: string,
  opts: InspectOptions & { bos?: number; specials?: 'all' | 'none' } = {},
): Promise<Inspection> {
  const ids = opts.specials === 'all' || !codec.encodePlain ? codec.encode(text) : codec.encodePlain(text);
  if (opts.bos !== undefined && ids[0] !== opts.bos) ids.unshift(opts.bos);
  return inspectIds(model, ids, codec, opts);
}

/** The k most likely tokens of each of T rows of logits (T, V), with their softmax probabilities (float64 sums). */
function topTokens(logits: Float32Array, T: number, V: number, k: number): Omit<LensRow, 'label'> {
  const kk = Math.min(k, V);
  const ids = new Int32Array(T * kk),
    probs = new Float32Array(T * kk);
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V); // (V)
    const lse = logSumExp(row);
    topN(row, kk).forEach((e, j) => {
      ids[t * kk + j] = e.id;
      probs[t * kk + j] = Math.exp(e.logprob - lse);
    });
  }
  return { ids, probs };
}
