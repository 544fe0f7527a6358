/**
 * The KTO loss (Kahneman–Tversky Optimization, Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic
 * Optimization"), as TRL's KTOTrainer (`kto_loss`) computes it, over B unpaired rows with labels (desirable or not):
 *
 *   r_i  = log π_θ(y_i|x_i) − log π_ref(y_i|x_i)                       the implied reward (β·r_i is logged)
 *   z0   = max(0, mean_j [log π_θ(y'_j|x_j) − log π_ref(y'_j|x_j)])    the reference point: a KL estimate from
 *          mismatched pairs (x_j with another row's completion y'_j), detached (no gradient flows through it)
 *   desirable   loss_i = λ_D · (1 − σ(β(r_i − z0)))
 *   undesirable loss_i = λ_U · (1 − σ(β(z0 − r_i)))
 *   loss = mean_i loss_i                                                 (over every row of the batch, as TRL)
 *
 * 1 − σ(u) = σ(−u), so loss_i = w_i · σ(s_i · β(r_i − z0)) with s_i = −1 (desirable) or +1 (undesirable). σ(v) is
 * read off a two-class softmax of the logits (0, v) (stable for any v, ops that already have gradients).
 */
import * as O from '../tensor/ops.js';
import { zeros, type Tensor } from '../tensor/tensor.js';
import { ConfigError, ShapeError } from '../util/errors.js';
import { constant } from './pref_losses.js';

export interface KtoLossOptions {
  /** β: the implied reward's scale (TRL's default 0.1). */
  beta: number;
  /** λ_D: the weight of a desirable row's loss (TRL's `desirable_weight`, default 1). */
  desirableWeight: number;
  /** λ_U: the weight of an undesirable row's loss (TRL's `undesirable_weight`, default 1). */
  undesirableWeight: number;
}

/** σ(v) elementwise of v (P,), with gradients: column 1 of softmax over the logits (0, v). */
export function sigmoid(v: Tensor): Tensor {
  const P = v.size;
  const p = O.softmax(O.concat([zeros([P, 1], { backend: v.backend }), O.reshape(v, [P, 1])], 1)); // (P, 2)
  return O.reshape(O.slice(p, [0, 1], [P, 1]), [P]); // (P,)
}

/**
 * KTO's reference point z0 from the mismatched pairs' log-probabilities under the policy and the reference (each
 * (K,)): the mean log-ratio, clamped at 0 (the expected KL is ≥ 0; a batch's estimate can fall below).
 */
export function klReferencePoint(policyKl: ArrayLike<number>, refKl: ArrayLike<number>): number {
  const K = policyKl.length;
  if (K === 0 || refKl.length !== K)
    throw new ShapeError(`klReferencePoint: ${K} policy and ${refKl.length} reference log-probs (need equal, ≥ 1)`);
  let s = 0;
  for (let i = 0; i < K; i++) s += policyKl[i]! - refKl[i]!;
  return Math.max(0, s / K);
}

/**
 * The KTO loss (see the header) of the policy's log-probabilities `policy` (B,) on the tape, against the reference's
 * `ref` (B,), with each row's `desirable` label and the detached reference point `z0`: a scalar.
 */
export function ktoLoss(
  policy: Tensor,
  ref: ArrayLike<number>,
  desirable: readonly boolean[],
  z0: number,
  o: KtoLossOptions,
): Tensor {
  const B = policy.size;
  if (B === 0 || ref.length !== B || desirable.length !== B)
    throw new ShapeError(
      `ktoLoss: ${B} policy log-probs, ${ref.length} reference log-probs, ${desirable.length} labels (need equal, ≥ 1)`,
    );
  if (!(o.beta > 0)) throw new ConfigError('beta', `must be > 0, got ${o.beta}`);
  if (!(o.desirableWeight >= 0 && o.undesirableWeight >= 0))
    throw new ConfigError('desirableWeight', 'the desirable and undesirable weights must be ≥ 0');
  if (!Number.isFinite(z0) || z0 < 0) throw new ConfigError('z0', `the KL reference point must be ≥ 0, got ${z0}`);
  const b = o.beta;
  // s_i·β·(r_i − z0) = s_i·β·lp_i − s_i·β·(ref_i + z0)
  const sb = desirable.map((d) => (d ? -b : b));
  const v = O.sub(
    O.mul(policy, constant(sb, policy)),
    constant(
      Array.from(ref, (r, i) => sb[i]! * (r + z0)),
      policy,
    ),
  ); // (B,)
  const w = desirable.map((d) => (d ? o.desirableWeight : o.undesirableWeight));
  return O.mean(O.mul(sigmoid(v), constant(w, policy)));
}
