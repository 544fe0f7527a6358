/**
 * The log-probability of each prompt token given the ones before it, with the `top` most likely alternatives at each
 * position: what `echo` with `logprobs` returns on /v1/completions, the request lm-evaluation-harness makes for its
 * loglikelihood tasks (multiple choice, perplexity). One forward over the prompt, teacher-forced; the raw model's
 * distribution (log-softmax of the logits in float64, no temperature or penalty). The first token has nothing before
 * it: its logprob and alternatives are null, as OpenAI's API returns them.
 */
import type { DecoderModel, TextCodec } from '../generate/interfaces.js';
import type { TopLogprob } from '../generate/engine.js';
import { logSumExp } from '../backend/sampling.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { tokenOf } from './run_choice.js';

export interface PromptTokenLogprob {
  token: string;
  id: number;
  /** null for the first token. */
  logprob: number | null;
  /** The `top` most likely tokens at this position, most likely first; null for the first token. */
  top: TopLogprob[] | null;
}

/** Each prompt token's entry (see the top of this file). */
export async function promptLogprobs(
  model: DecoderModel,
  codec: TextCodec,
  ids: readonly number[],
  top: number,
): Promise<PromptTokenLogprob[]> {
  const T = ids.length,
    V = model.config.vocabSize;
  const out: PromptTokenLogprob[] = [{ ...tokenOf(codec, ids[0]!), id: ids[0]!, logprob: null, top: null }];
  if (T < 2) return out;
  // the logits at positions 0 … T − 2 predict tokens 1 … T − 1
  const t = tidy(() => noGrad(() => model.forward(Int32Array.from(ids.slice(0, -1)), 1, T - 1)));
  const logits = (await t.data()) as Float32Array;
  t.dispose();
  for (let p = 0; p < T - 1; p++) {
    const o = p * V;
    const lse = logSumExp(logits.subarray(o, o + V));
    const alternatives: TopLogprob[] = [];
    if (top > 0) {
      // the `top` largest logits, by insertion into a short sorted list (top ≤ 20)
      const best: number[] = [];
      for (let v = 0; v < V; v++) {
        const x = logits[o + v]!;
        if (best.length === top && x <= logits[o + best[top - 1]!]!) continue;
        let i = best.length < top ? best.length : top - 1;
        while (i > 0 && logits[o + best[i - 1]!]! < x) i--;
        best.splice(i, 0, v);
        if (best.length > top) best.pop();
      }
      for (const v of best) alternatives.push({ ...tokenOf(codec, v), id: v, logprob: logits[o + v]! - lse });
    }
    const id = ids[p + 1]!;
    out.push({ ...tokenOf(codec, id), id, logprob: logits[o + id]! - lse, top: alternatives });
  }
  return out;
}
