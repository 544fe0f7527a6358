/**
 * The preference losses of `llmts reward` and `llmts dpo`, on tensors with gradients (ops that already have rules):
 *
 * Reward model (TRL RewardTrainer), over P pairs with rewards r_c, r_r (P,) and margins m (P,):
 *   loss = mean(−log σ(r_c − r_r − m)) + coef · mean((r_c + r_r)²)       coef: center_rewards_coefficient
 *
 * DPO family (TRL dpo_trainer.py `dpo_loss`), with x = (log π(c) − log π(r)) − (log π_ref(c) − log π_ref(r)), β, ε:
 *   sigmoid  (DPO, Rafailov et al. 2023; ε > 0: conservative DPO)  (1−ε)·−log σ(βx) + ε·−log σ(−βx)
 *   robust   (Chowdhury et al. 2024, unbiased under label noise ε)  ((1−ε)·−log σ(βx) − ε·−log σ(−βx)) / (1−2ε)
 *   hinge    (SLiC, Zhao et al. 2023)                              relu(1 − βx)
 *   ipo      (Azar et al. 2023)                                    (x − 1/(2β))²   (log-probs averaged per token)
 * each averaged over the pairs. −log σ(z) is logSigmoidLoss (a two-class cross-entropy, stable for any z).
 */
import { logSigmoidLoss } from '../model/losses.js';
import * as O from '../tensor/ops.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { readOnHost } from '../train/staged_loss.js';
import { ConfigError, ShapeError } from '../util/errors.js';

export const DPO_LOSS_TYPES = ['sigmoid', 'ipo', 'hinge', 'robust'] as const;
export type DpoLossType = (typeof DPO_LOSS_TYPES)[number];

/** A constant (P,) tensor on `like`'s backend (no gradient). */
export function constant(values: ArrayLike<number>, like: Tensor): Tensor {
  return tensor(Float32Array.from(values), [values.length], { backend: like.backend });
}

/** The reward model's loss (see the header): a scalar. `margins` null = all 0. */
export function bradleyTerryLoss(
  chosen: Tensor,
  rejected: Tensor,
  margins: ArrayLike<number> | null,
  centerCoef: number,
): Tensor {
  const P = chosen.size;
  if (P === 0 || rejected.size !== P)
    throw new ShapeError(`bradleyTerryLoss: ${P} chosen and ${rejected.size} rejected rewards (need equal, ≥ 1)`);
  if (margins && margins.length !== P)
    throw new ShapeError(`bradleyTerryLoss: ${margins.length} margins for ${P} pairs`);
  let d = O.sub(chosen, rejected); // (P,)
  if (margins && Array.from(margins).some((m) => m !== 0)) d = O.sub(d, constant(margins, d));
  let loss = logSigmoidLoss(d);
  if (centerCoef > 0) {
    const s = O.add(chosen, rejected); // (P,)
    loss = O.add(loss, O.scale(O.mean(O.mul(s, s)), centerCoef));
  }
  return loss;
}

export interface DpoLossOptions {
  beta: number;
  lossType: DpoLossType;
  /** ε of sigmoid (conservative DPO) and robust; 0 ≤ ε < 0.5. */
  labelSmoothing: number;
}

/**
 * The DPO-family loss (see the header) of policy log-probabilities `policyChosen`, `policyRejected` (P,) on the tape
 * against the reference's (constants). For IPO the caller passes per-token means, as TRL does. Hinge masks the pairs
 * past the hinge on the host, from `values` (the policy log-probabilities as read back: DpoObjective reads them on any
 * backend) or, where omitted, from a synchronous read (CPU backends): pair i counts where 1 − β·x_i > 0, x_i computed
 * in float64 from those values.
 */
export function dpoFamilyLoss(
  policyChosen: Tensor,
  policyRejected: Tensor,
  refChosen: ArrayLike<number>,
  refRejected: ArrayLike<number>,
  o: DpoLossOptions,
  values?: { chosen: ArrayLike<number>; rejected: ArrayLike<number> },
): Tensor {
  const P = policyChosen.size;
  if (P === 0 || policyRejected.size !== P || refChosen.length !== P || refRejected.length !== P)
    throw new ShapeError(
      `dpoFamilyLoss: ${P} chosen, ${policyRejected.size} rejected, ${refChosen.length}/${refRejected.length} reference log-probs (need equal, ≥ 1)`,
    );
  if (!(o.beta > 0)) throw new ConfigError('beta', `must be > 0, got ${o.beta}`);
  const eps = o.labelSmoothing;
  if (!(eps >= 0 && eps < 0.5)) throw new ConfigError('labelSmoothing', `must be in [0, 0.5), got ${eps}`);
  const refDiff = Array.from(refChosen, (c, i) => c - refRejected[i]!);
  const x = O.sub(O.sub(policyChosen, policyRejected), constant(refDiff, policyChosen)); // (P,)
  const b = o.beta;
  switch (o.lossType) {
    case 'sigmoid': {
      const l = logSigmoidLoss(O.scale(x, b));
      return eps > 0 ? O.add(O.scale(l, 1 - eps), O.scale(logSigmoidLoss(O.scale(x, -b)), eps)) : l;
    }
    case 'robust':
      return O.scale(
        O.sub(O.scale(logSigmoidLoss(O.scale(x, b)), 1 - eps), O.scale(logSigmoidLoss(O.scale(x, -b)), eps)),
        1 / (1 - 2 * eps),
      );
    case 'hinge': {
      const z = O.add(O.scale(x, -b), constant(new Float32Array(P).fill(1), x)); // (P,) 1 − βx
      const c =
          values?.chosen ??
          readOnHost(policyChosen, 'the hinge loss masks', 'pass the policy log-probabilities (DpoObjective does)'),
        r =
          values?.rejected ??
          readOnHost(policyRejected, 'the hinge loss masks', 'pass the policy log-probabilities (DpoObjective does)');
      if (c.length !== P || r.length !== P)
        throw new ShapeError(`dpoFamilyLoss: ${c.length}/${r.length} values read for ${P} pairs`);
      const mask = Array.from({ length: P }, (_, i) => (1 - b * (c[i]! - r[i]! - refDiff[i]!) > 0 ? 1 : 0));
      return O.mean(O.mul(z, constant(mask, z))); // relu(z) = z · [z > 0]
    }
    case 'ipo': {
      const y = O.sub(x, constant(new Float32Array(P).fill(1 / (2 * b)), x));
      return O.mean(O.mul(y, y));
    }
  }
}
