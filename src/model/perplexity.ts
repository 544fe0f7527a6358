/**
 * Perplexity of a model on a token sequence, by Hugging Face's sliding-window recipe (transformers' guide
 * "Perplexity of fixed-length models"): windows of `context` tokens begin every `stride` tokens, and each window
 * scores only the tokens the windows before it did not reach. With stride < context every token after the first is
 * scored exactly once, seeing at least context − stride tokens before it (all there are, near the start).
 * stride = context gives disjoint windows: fewer forwards, but a window's first tokens see little context (so the
 * perplexity comes out higher), and its very first token, with none, is not scored (n − windows tokens in all), as
 * in transformers' recipe.
 *
 *   ids      0 1 2 3 4 5 6 7 8 9        context 6, stride 3
 *   window 1 [0 1 2 3 4 5]              scores 1 … 5
 *   window 2       [3 4 5 6 7 8]        scores 6 … 8 (3 … 5 are context)
 *   window 3             [6 7 8 9]      scores 9
 *
 * Windows of one length run `batchSize` at a time. The result is the summed negative log-likelihood in nats, its
 * mean per scored token and exp of that mean.
 */
import { ConfigError } from '../util/errors.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import type { CausalLM } from './model.js';

export interface PerplexityOptions {
  /** Tokens per window (default: the model's positions, at most 1024). */
  context?: number;
  /** Tokens between window starts, 1 … context (default: half the context, rounded up). */
  stride?: number;
  /** Windows per forward (default 4). */
  batchSize?: number;
  /** Called after each forward with the tokens scored so far and in all. */
  onProgress?: (scored: number, total: number) => void;
}

export interface PerplexityResult {
  /** Tokens scored: every token after the first. */
  tokens: number;
  /** Their summed negative log-likelihood, nats. */
  nll: number;
  /** nll / tokens: the cross-entropy in nats per token. */
  meanNll: number;
  /** exp(meanNll). */
  perplexity: number;
  context: number;
  stride: number;
  windows: number;
}

/** One window: ids[begin, end), scoring the tokens at from … end − 1 (predicted from the ones before them). */
export interface PerplexityWindow {
  begin: number;
  end: number;
  from: number;
}

/** The windows of a sequence of n tokens (n ≥ 2). */
export function perplexityWindows(n: number, context: number, stride: number): PerplexityWindow[] {
  const out: PerplexityWindow[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + context, n);
    out.push({ begin, end, from: Math.max(prevEnd, begin + 1) });
    prevEnd = end;
    if (end === n) break;
  }
  return out;
}

/** The defaults filled in and checked against the model (ConfigError naming the option). */
export function perplexitySettings(
  model: CausalLM,
  n: number,
  opts: PerplexityOptions,
): { context: number; stride: number; batchSize: number } {
  const maxPos = model.config.maxPositions;
  const context = opts.context ?? Math.min(maxPos, 1024);
  if (!Number.isSafeInteger(context) || context < 2 || context > maxPos)
    throw new ConfigError('context', `expected an integer in 2 … ${maxPos} (the model's positions), got ${context}`);
  const stride = opts.stride ?? Math.ceil(context / 2);
  if (!Number.isSafeInteger(stride) || stride < 1 || stride > context)
    throw new ConfigError('stride', `expected an integer in 1 … ${context} (the context), got ${stride}`);
  const batchSize = opts.batchSize ?? 4;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new ConfigError('batchSize', `expected an integer ≥ 1, got ${batchSize}`);
  if (n < 2) throw new ConfigError('text', `perplexity needs at least 2 tokens, got ${n}`);
  return { context, stride, batchSize };
}

/** Perplexity of `model` on `ids` (see the top of this file). */
export async function perplexity(
  model: CausalLM,
  ids: ArrayLike<number>,
  opts: PerplexityOptions = {},
): Promise<PerplexityResult> {
  const n = ids.length;
  const { context, stride, batchSize } = perplexitySettings(model, n, opts);
  const V = model.config.vocabSize;
  for (let i = 0; i < n; i++)
    if (!Number.isInteger(ids[i]) || ids[i]! < 0 || ids[i]! >= V)
      throw new ConfigError('ids', `token id ${ids[i]} at ${i} is outside the vocabulary [0, ${V})`);
  const windows = perplexityWindows(n, context, stride);
  let nll = 0,
    scored = 0;
  for (let w0 = 0; w0 < windows.length; ) {
    // the next windows of the same length, at most batchSize of them
    const T = windows[w0]!.end - windows[w0]!.begin;
    let B = 1;
    while (B < batchSize && w0 + B < windows.length && windows[w0 + B]!.end - windows[w0 + B]!.begin === T) B++;
    const x = new Int32Array(B * T);
    const targets = new Int32Array(B * T).fill(-100);
    let count = 0;
    for (let b = 0; b < B; b++) {
      const w = windows[w0 + b]!;
      for (let t = 0; t < T; t++) {
        x[b * T + t] = ids[w.begin + t]!;
        const g = w.begin + t + 1; // the token position t predicts
        if (g >= w.from && g < w.end) {
          targets[b * T + t] = ids[g]!;
          count++;
        }
      }
    }
    const mean = tidy(() => noGrad(() => model.loss(x, targets, B, T)));
    nll += (await mean.item()) * count;
    mean.dispose();
    scored += count;
    w0 += B;
    opts.onProgress?.(scored, n - 1);
  }
  const meanNll = nll / scored;
  return { tokens: scored, nll, meanNll, perplexity: Math.exp(meanNll), context, stride, windows: windows.length };
}
