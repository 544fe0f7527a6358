/**
 * Direct Preference Optimization (Rafailov et al. 2023), TRL's sigmoid form: for a (prompt, chosen, rejected) pair,
 *   loss = −log σ(β·((log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))))
 * with log π(·) the summed log-probability of the completion given the prompt (src/model/losses.ts). The reference
 * model's log-probabilities carry no gradient; the implicit rewards β·(log π − log π_ref) are returned for logging.
 */
import { ShapeError } from '../util/errors.js';
import * as O from '../tensor/ops.js';
import { noGrad, type Tensor } from '../tensor/tensor.js';
import { logSigmoidLoss, sequenceLogProbs } from '../model/losses.js';
import type { CausalLM, TrainingOptions } from '../model/model.js';

export interface PreferencePair {
  prompt: ArrayLike<number>;
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
}

export interface DpoOutput {
  /** The mean loss over the pairs: a scalar on the tape. */
  loss: Tensor;
  /** Implicit rewards β·(log π − log π_ref) of the chosen and rejected completions, (P,) each (no gradient). */
  rewardsChosen: Tensor;
  rewardsRejected: Tensor;
}

/** The DPO loss of `policy` against `reference` on preference pairs (β > 0, TRL's default 0.1). */
export function dpoLoss(
  policy: CausalLM,
  reference: CausalLM,
  pairs: readonly PreferencePair[],
  beta = 0.1,
  opts: TrainingOptions = {},
): DpoOutput {
  const P = pairs.length;
  if (P === 0) throw new ShapeError('dpoLoss: no preference pairs');
  if (!(beta > 0)) throw new ShapeError(`dpoLoss: beta must be > 0 (got ${beta})`);
  const prompts = [...pairs.map((p) => p.prompt), ...pairs.map((p) => p.prompt)];
  const completions = [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)];
  const pi = sequenceLogProbs(policy, prompts, completions, opts); // (2P,) chosen then rejected
  const ref = noGrad(() => sequenceLogProbs(reference, prompts, completions)); // (2P,)
  const ratio = O.sub(pi, ref); // (2P,)  log π − log π_ref
  const rc = O.slice(ratio, [0], [P]),
    rr = O.slice(ratio, [P], [P]); // (P,) each
  const loss = logSigmoidLoss(O.scale(O.sub(rc, rr), beta));
  const [rewardsChosen, rewardsRejected] = noGrad(() => [O.scale(rc, beta), O.scale(rr, beta)]);
  return { loss, rewardsChosen: rewardsChosen!, rewardsRejected: rewardsRejected! };
}
