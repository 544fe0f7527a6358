/**
 * PPO's objective in the training loop (TRL PPOTrainer; Schulman et al. 2017, Ziegler et al. 2019):
 *
 * - `prepareBatch`: a batch of scored rollouts (rollout.ts) → per-token KL (k1 / k3) to the reference, rewards
 *   −β·kl with the score (minus the missing-EOS penalty) at the last reply token, GAE advantages and returns,
 *   advantages whitened over the batch; and the batch's objective/* metrics under TRL's names.
 * - `ppoLoss`: given the reply tokens' new log-probabilities and value predictions (tensors on the tape), the clipped
 *   policy loss plus vf_coef × the clipped value loss, each a mean over the minibatch's reply tokens. Which branch of
 *   each max() wins is decided on the host from the values (rl_math.ts); a token whose clipped branch wins contributes
 *   a constant (clip's gradient is 0 there), the others −A·ρ and ½(V − R)², so the tensor's value and gradient are
 *   exactly those of the definitions. The objective reads those values back first (a StagedLoss,
 *   src/train/staged_loss.ts), so PPO trains on every backend, the GPU's included.
 * - `PpoObjective`: the TrainableModel the loop drives; a training batch's ids are rollout indices of the current
 *   batch, an evaluation batch's are indices of the held-out replies (the policy's per-token cross-entropy on them).
 */
import type { CausalLM } from '../model/model.js';
import type { RewardModel } from '../model/reward.js';
import * as O from '../tensor/ops.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { readOnHost, staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ShapeError } from '../util/errors.js';
import {
  clippedPolicyTerm,
  clippedValueTerm,
  gae,
  klPerToken,
  shapedRewards,
  StatsMean,
  whiten,
  type KlEstimator,
} from './rl_math.js';
import { replyLogprobs, replyValues, type PromptReply, type Rollout } from './rollout.js';

export interface PpoBatchOptions {
  klCoef: number;
  klEstimator: KlEstimator;
  gamma: number;
  lam: number;
  missingEosPenalty: number;
  whitenAdvantages: boolean;
}

/** A batch of rollouts ready for PPO epochs. */
export interface PpoBatch {
  /** The batch's index in the run (batch k uses prompts k·N … k·N + N − 1 of the shuffled order). */
  index: number;
  rollouts: Rollout[];
  advantages: number[][];
  returns: number[][];
  /** Mean KL per reply (Σ over its tokens), what the adaptive controller reads. */
  meanKl: number;
  /** objective/* and the rollout metrics of this batch. */
  stats: Record<string, number>;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
const sum = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
};

/** Advantages, returns and metrics of a batch of rollouts (see the header). */
export function prepareBatch(index: number, rollouts: Rollout[], o: PpoBatchOptions): PpoBatch {
  if (!rollouts.length) throw new ShapeError('prepareBatch: no rollouts');
  const kls = rollouts.map((r) => klPerToken(r.logprobs, r.refLogprobs, o.klEstimator));
  const scores = rollouts.map((r) => r.score - (r.ended ? 0 : o.missingEosPenalty));
  const rewards = kls.map((_, i) => shapedRewards(kls[i]!, o.klCoef, scores[i]!));
  const g = rollouts.map((r, i) => gae(rewards[i]!, r.values, o.gamma, o.lam));
  const adv = o.whitenAdvantages ? whiten(g.map((x) => x.advantages)) : g.map((x) => x.advantages);
  const klSum = kls.map(sum);
  const nonScore = klSum.map((k) => -o.klCoef * k);
  const stats: Record<string, number> = {
    'objective/kl': mean(klSum),
    'objective/entropy': mean(rollouts.map((r) => -sum(r.logprobs))),
    'objective/non_score_reward': mean(nonScore),
    'objective/rlhf_reward': mean(nonScore) + mean(scores),
    'objective/scores': mean(scores),
    'objective/raw_scores': mean(rollouts.map((r) => r.score)),
    'objective/kl_coef': o.klCoef,
    'val/num_eos_tokens': rollouts.filter((r) => r.ended).length,
    eos_rate: rollouts.filter((r) => r.ended).length / rollouts.length,
    reply_length: mean(rollouts.map((r) => r.reply.length)),
  };
  return {
    index,
    rollouts,
    advantages: adv.map((a) => Array.from(a)),
    returns: g.map((x) => Array.from(x.returns)),
    meanKl: mean(klSum),
    stats,
  };
}

/** What `ppoLoss` needs per reply token of the minibatch (flat, in the tensors' order). */
export interface PpoTokens {
  advantages: ArrayLike<number>;
  oldLogprobs: ArrayLike<number>;
  oldValues: ArrayLike<number>;
  returns: ArrayLike<number>;
}

export interface PpoLossOptions {
  cliprange: number;
  cliprangeValue: number;
  vfCoef: number;
}

/** The minibatch's statistics under TRL's names (means over its reply tokens). */
export interface PpoStepStats {
  'policy/approxkl_avg': number;
  'policy/clipfrac_avg': number;
  'loss/policy_avg': number;
  'loss/value_avg': number;
  'val/clipfrac_avg': number;
  'val/ratio': number;
  'val/ratio_var': number;
}

/** The values of `logp` and `vpred` as read back (the objective's StagedLoss reads them on any backend). */
export interface PpoReadValues {
  logp: ArrayLike<number>;
  vpred: ArrayLike<number>;
}

/**
 * The PPO loss of a minibatch (see the header): `logp` (n,) new log-probabilities of the reply tokens, `vpred` (n,)
 * value predictions, both on the tape; `read`, their values (read synchronously where omitted: CPU backends).
 * Returns the scalar loss tensor and the statistics.
 */
export function ppoLoss(
  logp: Tensor,
  vpred: Tensor,
  tok: PpoTokens,
  o: PpoLossOptions,
  read?: PpoReadValues,
): { loss: Tensor; stats: PpoStepStats } {
  const n = logp.size;
  if (vpred.size !== n || tok.advantages.length !== n || tok.oldLogprobs.length !== n || tok.returns.length !== n)
    throw new ShapeError(`ppoLoss: ${n} log-probs, ${vpred.size} values, ${tok.advantages.length} advantages`);
  if (read && (read.logp.length !== n || read.vpred.length !== n))
    throw new ShapeError(`ppoLoss: ${read.logp.length} / ${read.vpred.length} values read for ${n} tokens`);
  const lp =
      read?.logp ??
      readOnHost(logp, 'ppoLoss decides its clipping', 'pass the values of logp and vpred (PpoObjective does)'),
    v =
      read?.vpred ??
      readOnHost(vpred, 'ppoLoss decides its clipping', 'pass the values of logp and vpred (PpoObjective does)');
  const wPg = new Float64Array(n),
    wVf = new Float64Array(n);
  let constant = 0,
    pgSum = 0,
    vfSum = 0,
    pgClip = 0,
    vfClip = 0,
    akl = 0,
    rSum = 0,
    r2Sum = 0;
  for (let t = 0; t < n; t++) {
    const A = tok.advantages[t]!;
    const p = clippedPolicyTerm(A, lp[t]!, tok.oldLogprobs[t]!, o.cliprange);
    const q = clippedValueTerm(v[t]!, tok.oldValues[t]!, tok.returns[t]!, o.cliprangeValue);
    pgSum += p.loss;
    vfSum += q.loss;
    if (p.clipped) {
      pgClip++;
      constant += p.loss / n;
    } else wPg[t] = -A / n;
    if (q.clipped) {
      vfClip++;
      constant += (o.vfCoef * q.loss) / n;
    } else wVf[t] = (0.5 * o.vfCoef) / n;
    const d = lp[t]! - tok.oldLogprobs[t]!;
    akl += 0.5 * d * d;
    rSum += p.ratio;
    r2Sum += p.ratio * p.ratio;
  }
  const like = (x: ArrayLike<number>) =>
    tensor(logp.dtype === 'f64' ? Float64Array.from(x) : Float32Array.from(x), [n], { backend: logp.backend });
  const ratio = O.exp(O.sub(logp, like(tok.oldLogprobs))); // (n,)
  const pg = O.sum(O.mul(ratio, like(wPg))); // Σ −A·ρ/n over unclipped tokens
  const err = O.sub(vpred, like(tok.returns)); // (n,)
  const vf = O.sum(O.mul(O.square(err), like(wVf))); // Σ ½·vf_coef·(V − R)²/n over unclipped tokens
  const loss = O.scale(O.add(pg, vf), 1, constant);
  const rMean = rSum / n;
  return {
    loss,
    stats: {
      'policy/approxkl_avg': akl / n,
      'policy/clipfrac_avg': pgClip / n,
      'loss/policy_avg': pgSum / n,
      'loss/value_avg': vfSum / n,
      'val/clipfrac_avg': vfClip / n,
      'val/ratio': rMean,
      'val/ratio_var': n > 1 ? (r2Sum - n * rMean * rMean) / (n - 1) : 0,
    },
  };
}

export class PpoObjective implements TrainableModel {
  readonly params: Map<string, Tensor>;
  /** The batch the loop's training ids index. */
  batch: PpoBatch | null = null;
  private readonly stats = new StatsMean();

  /**
   * `evalReplies`: held-out prompts with the reference's replies (evaluation: the policy's cross-entropy on them).
   * The parameters are the policy's, then the value model's under `value/` (those it shares with the policy once).
   */
  constructor(
    readonly policy: CausalLM,
    readonly value: RewardModel,
    private readonly evalReplies: readonly PromptReply[],
    private readonly o: PpoLossOptions & { temperature: number },
  ) {
    // the policy's trainable tensors (its LoRA adapters when it has them), then the value model's own
    this.params = new Map(policy.trainableParams());
    const mine = new Set(policy.params.values());
    for (const [k, t] of value.params) if (!mine.has(t)) this.params.set(`value/${k}`, t);
  }

  loss(ids: Int32Array, _targets: Int32Array, B: number, _T: number, opts: { training?: boolean } = {}): LossResult {
    if (ids.length !== B || B === 0) throw new ShapeError(`ppo loss: ${ids.length} indices for B=${B}`);
    if (!opts.training) {
      const items = Array.from(ids, (i) => this.evalReplies[i]!);
      const lp = replyLogprobs(this.policy, items, this.o.temperature); // (n,)
      return O.scale(O.mean(lp), -1);
    }
    const b = this.batch;
    if (!b) throw new ShapeError('ppo loss: no batch of rollouts');
    const rs = Array.from(ids, (i) => {
      const r = b.rollouts[i];
      if (!r) throw new ShapeError(`ppo loss: rollout ${i} outside [0, ${b.rollouts.length})`);
      return r;
    });
    const flat = (f: (i: number) => readonly number[]) => Array.from(ids).flatMap((i) => [...f(i)]);
    // no dropout: the ratio compares the same distribution the rollouts were scored under
    const logp = replyLogprobs(this.policy, rs, this.o.temperature); // (n,)
    const vpred = replyValues(this.value, rs); // (n,)
    const tok = {
      advantages: flat((i) => b.advantages[i]!),
      oldLogprobs: flat((i) => b.rollouts[i]!.logprobs),
      oldValues: flat((i) => b.rollouts[i]!.values),
      returns: flat((i) => b.returns[i]!),
    };
    // the clipping is decided on the host from the values: read them (staged_loss.ts), then build the loss
    return staged([logp, vpred], ([lp, v]) => {
      const { loss, stats } = ppoLoss(logp, vpred, tok, this.o, { logp: lp!, vpred: v! });
      this.stats.add(stats);
      return loss;
    });
  }

  /** The minibatch statistics since the last call (means), for the step's record. */
  takeStats(): Record<string, number> {
    return this.stats.take();
  }
}
