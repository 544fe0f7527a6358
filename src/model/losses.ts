/**
 * Sequence-level losses built from ops that already have gradients, for preference training (reward models, DPO)
 * and fine-tuning on completions:
 * - logSigmoidLoss: mean(−log σ(d)), computed as the cross-entropy of the logits (0, d) against class 1 (stable for
 *   any d, no new kernel);
 * - sequenceLogProbs: Σ log p(completion token | prompt and the completion before it), per (prompt, completion).
 */
import { ShapeError } from '../util/errors.js';
import * as O from '../tensor/ops.js';
import { zeros, type Tensor } from '../tensor/tensor.js';
import type { CausalLM, TrainingOptions } from './model.js';
import { groupByLength, inCallerOrder } from './ragged.js';

/** mean over d (P,) of −log σ(d): a scalar tensor. */
export function logSigmoidLoss(d: Tensor): Tensor {
  const P = d.size;
  const logits = O.concat([zeros([P, 1], { backend: d.backend }), O.reshape(d, [P, 1])], 1); // (P, 2)
  const ce = O.crossEntropy(logits, O.ids(new Int32Array(P).fill(1), [P], d)); // (P,)
  return O.mean(ce);
}

/**
 * log p(completion | prompt) of each pair, summed over the completion's tokens: (N,). The model reads
 * prompt ++ completion minus its last token; only the completion's positions count (the others are masked with the
 * cross-entropy's ignore index). Pairs of equal total length run as one batch.
 */
export function sequenceLogProbs(
  model: CausalLM,
  prompts: readonly ArrayLike<number>[],
  completions: readonly ArrayLike<number>[],
  opts: TrainingOptions = {},
): Tensor {
  if (prompts.length !== completions.length)
    throw new ShapeError(`sequenceLogProbs: ${prompts.length} prompts but ${completions.length} completions`);
  const IGNORE = -100;
  const full = prompts.map((p, i) => {
    const c = completions[i]!;
    if (p.length === 0) throw new ShapeError(`sequenceLogProbs: prompt ${i} is empty (start it with a BOS token)`);
    if (c.length === 0) throw new ShapeError(`sequenceLogProbs: completion ${i} is empty`);
    return [...Array.from(p), ...Array.from(c)];
  });
  // inputs drop the last token; targets are the next tokens, masked over the prompt
  const inputs = full.map((s) => s.slice(0, -1));
  const groups = groupByLength(inputs, 'sequence');
  const parts = groups.map((g) => {
    const B = g.index.length,
      T = g.T;
    const targets = new Int32Array(B * T).fill(IGNORE);
    g.index.forEach((i, b) => {
      const s = full[i]!,
        start = prompts[i]!.length - 1; // the first predicted completion token is at position start
      for (let t = start; t < T; t++) targets[b * T + t] = s[t + 1]!;
    });
    const logits = model.forward(g.ids, B, T, opts); // (B, T, V)
    const ce = O.crossEntropy(logits, O.ids(targets, [B * T], logits), IGNORE); // (B·T), 0 where ignored
    return O.scale(O.sum(O.reshape(ce, [B, T]), 1), -1); // (B,)
  });
  return inCallerOrder(groups, parts);
}
