/**
 * The log-likelihood of continuations after a context: Σ_i log p(cont_i | context, cont_<i), and whether each
 * continuation is the model's greedy one (every token its most likely) — lm-evaluation-harness's `loglikelihood`
 * request, computed in process. The continuations of one context run as one batch, right-padded (a causal model's
 * positions never see the padding after them), and only their positions go through the language-model head.
 * A context that does not fit the model's positions with the longest continuation loses its oldest tokens, as the
 * harness truncates.
 */
import { argmax, logSumExp } from '../backend/sampling.js';
import { ConfigError } from '../util/errors.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import type { CausalLM } from './model.js';

export interface ContinuationScore {
  /** Σ log p over the continuation's tokens (nats). */
  logprob: number;
  /** Every token of it was the most likely one (ties count). */
  greedy: boolean;
  /** Its length in tokens. */
  tokens: number;
}

/** Scores of `continuations` after `context` (token ids; the context non-empty: a BOS token where the model wants one). */
export async function continuationLogprobs(
  model: CausalLM,
  context: readonly number[],
  continuations: readonly (readonly number[])[],
): Promise<ContinuationScore[]> {
  const V = model.config.vocabSize;
  if (!context.length) throw new ConfigError('context', 'needs at least one token (a BOS token, or some text)');
  if (!continuations.length) throw new ConfigError('continuations', 'no continuation to score');
  const L = Math.max(...continuations.map((c) => c.length));
  if (continuations.some((c) => !c.length))
    throw new ConfigError('continuations', 'an empty continuation has no tokens to score');
  const keep = Math.min(context.length, model.config.maxPositions - L);
  if (keep < 1)
    throw new ConfigError(
      'continuations',
      `a continuation of ${L} tokens leaves no room for context in the model's ${model.config.maxPositions} positions`,
    );
  const ctx = context.slice(context.length - keep);
  const B = continuations.length,
    T = ctx.length + L;
  const ids = new Int32Array(B * T); // padding: id 0, after the continuation, unseen by it
  const rows: number[] = []; // the positions whose logits predict a continuation token
  continuations.forEach((c, b) => {
    ids.set(ctx, b * T);
    ids.set(c, b * T + ctx.length);
    for (let i = 0; i < c.length; i++) rows.push(b * T + ctx.length - 1 + i);
  });
  for (const id of [...ctx, ...continuations.flat()])
    if (!(Number.isInteger(id) && id >= 0 && id < V))
      throw new ConfigError('ids', `token id ${id} is outside the vocabulary [0, ${V})`);
  const t = tidy(() => noGrad(() => model.logitsAt(ids, B, T, Int32Array.from(rows))));
  const logits = (await t.data()) as Float32Array;
  t.dispose();
  let r = 0;
  return continuations.map((c) => {
    let logprob = 0,
      greedy = true;
    for (const id of c) {
      const row = logits.subarray(r * V, ++r * V);
      logprob += row[id]! - logSumExp(row);
      if (row[argmax(row)]! > row[id]!) greedy = false; // ties count as greedy
    }
    return { logprob, greedy, tokens: c.length };
  });
}
