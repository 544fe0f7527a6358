/**
 * RLOO's objective in the training loop: REINFORCE with a leave-one-out baseline (Ahmadian et al. 2024, "Back to
 * Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs", §3.2; Kool et al. 2019),
 * as TRL's RLOOTrainer computes it (sequence-level KL, its default):
 *
 * - k replies y_1 … y_k are sampled for each prompt x; each is one action (the whole reply), scored once;
 * - the KL-shaped reward of a reply (TRL `token_level_kl = False`): R_i = s_i − β·Σ_t kl_t, with s_i the reward
 *   function's score (minus the missing-EOS penalty) and kl_t the per-token k1 / k3 estimate against the frozen
 *   reference (rl_math.ts);
 * - the leave-one-out advantage: A_i = R_i − 1/(k−1)·Σ_{j≠i} R_j (the other k − 1 replies to the same prompt are
 *   the baseline, so it is unbiased); optionally normalised over the batch ((A − mean)/(std + 1e-8), TRL
 *   `normalize_advantage`);
 * - the clipped ratio loss at the sequence level (TRL's RLOOTrainer): ρ_i = exp(Σ_t log π(y_i,t) − Σ_t log π_old(y_i,t)),
 *   loss = mean_i max(−A_i·ρ_i, −A_i·clip(ρ_i, 1−ε, 1+ε)). With one epoch and no clipping it is REINFORCE.
 *
 * As ppo_objective.ts does, which branch of each max() wins is decided on the host; a clipped reply contributes a
 * constant (clip's gradient is 0 there), the others −A·ρ, so the tensor's value and gradient are the definition's.
 * Layout: the rollouts of a batch are grouped by prompt, k consecutive rollouts per prompt.
 */
import type { CausalLM } from '../model/model.js';
import * as O from '../tensor/ops.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { readOnHost, staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ConfigError, ShapeError } from '../util/errors.js';
import { clippedPolicyTerm, klPerToken, StatsMean, type KlEstimator } from './rl_math.js';
import type { GroupRollout } from './group_rl.js';
import { replyLogprobs, type PromptReply } from './rollout.js';

/** A sampled and scored reply of an RLOO batch (group_rl.ts's). */
export type RlooRollout = GroupRollout;

/** Leave-one-out advantages of `rewards` grouped k by k (k consecutive replies per prompt): A_i = r_i − mean_{j≠i} r_j. */
export function rlooAdvantages(rewards: ArrayLike<number>, k: number): Float64Array {
  if (!Number.isInteger(k) || k < 2) throw new ConfigError('rlooK', `RLOO needs k ≥ 2 replies per prompt, got ${k}`);
  if (rewards.length % k !== 0)
    throw new ShapeError(`rlooAdvantages: ${rewards.length} rewards are not groups of k = ${k}`);
  const out = new Float64Array(rewards.length);
  for (let g = 0; g < rewards.length; g += k) {
    let s = 0;
    for (let i = 0; i < k; i++) s += rewards[g + i]!;
    for (let i = 0; i < k; i++) out[g + i] = rewards[g + i]! - (s - rewards[g + i]!) / (k - 1);
  }
  return out;
}

/** (x − mean)/(std + 1e-8) over all of x, std unbiased (torch's default, as TRL's normalize_advantage uses it). */
export function normalizeAdvantages(a: ArrayLike<number>): Float64Array {
  const n = a.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += a[i]!;
  m /= n || 1;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (a[i]! - m) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return Float64Array.from(a, (x) => (x - m) / (std + 1e-8));
}

export interface RlooBatchOptions {
  k: number;
  klCoef: number;
  klEstimator: KlEstimator;
  missingEosPenalty: number;
  normalizeAdvantage: boolean;
}

/** A batch of rollouts ready for the RLOO epochs. */
export interface RlooBatch {
  /** The batch's index in the run (its prompts are batch `index` of ppo_batches.ts's order). */
  index: number;
  rollouts: RlooRollout[];
  /** One advantage per rollout. */
  advantages: number[];
  /** objective/* and the rollout metrics of this batch, under TRL's names. */
  stats: Record<string, number>;
}

const sum = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
};
const mean = (xs: ArrayLike<number>) => (xs.length ? sum(xs) / xs.length : 0);

/** KL-shaped rewards, leave-one-out advantages and metrics of a batch (see the header). */
export function prepareRlooBatch(index: number, rollouts: RlooRollout[], o: RlooBatchOptions): RlooBatch {
  if (!rollouts.length) throw new ShapeError('prepareRlooBatch: no rollouts');
  for (let g = 0; g < rollouts.length; g += o.k)
    for (let i = 1; i < o.k; i++)
      if (rollouts[g + i]?.promptIndex !== rollouts[g]!.promptIndex)
        throw new ShapeError(`prepareRlooBatch: rollouts ${g}…${g + o.k - 1} are not k replies to one prompt`);
  const kl = rollouts.map((r) => sum(klPerToken(r.logprobs, r.refLogprobs, o.klEstimator)));
  const scores = rollouts.map((r) => r.score - (r.ended ? 0 : o.missingEosPenalty));
  const nonScore = kl.map((x) => -o.klCoef * x);
  const rlhf = scores.map((s, i) => s + nonScore[i]!);
  const adv = rlooAdvantages(rlhf, o.k);
  const a = o.normalizeAdvantage ? normalizeAdvantages(adv) : adv;
  const nEos = rollouts.filter((r) => r.ended).length;
  return {
    index,
    rollouts,
    advantages: Array.from(a),
    stats: {
      'objective/kl': mean(kl),
      'objective/entropy': mean(rollouts.map((r) => -sum(r.logprobs))),
      'objective/non_score_reward': mean(nonScore),
      'objective/rlhf_reward': mean(rlhf),
      'objective/scores': mean(scores),
      'objective/raw_scores': mean(rollouts.map((r) => r.score)),
      'objective/kl_coef': o.klCoef,
      'objective/advantage_std': Math.sqrt(mean(adv.map((x) => x * x)) - mean(adv) ** 2),
      'val/num_eos_tokens': nEos,
      eos_rate: nEos / rollouts.length,
      reply_length: mean(rollouts.map((r) => r.reply.length)),
    },
  };
}

/** The minibatch's statistics under TRL's names (means over its replies). */
export interface RlooStepStats {
  'policy/approxkl_avg': number;
  'policy/clipfrac_avg': number;
  'loss/policy_avg': number;
  'val/ratio': number;
  'val/ratio_var': number;
}

/**
 * The RLOO loss of a minibatch (see the header): `logp` (n,) the new log-probabilities of every reply token (on the
 * tape), `lengths[i]` the token count of reply i (Σ = n), `advantages[i]` and `oldLogprobSums[i]` = Σ_t log π_old
 * per reply; `read`, logp's values (read synchronously where omitted: CPU backends). Returns the scalar loss and the
 * statistics.
 */
export function rlooLoss(
  logp: Tensor,
  lengths: readonly number[],
  advantages: ArrayLike<number>,
  oldLogprobSums: ArrayLike<number>,
  cliprange: number,
  read?: ArrayLike<number>,
): { loss: Tensor; stats: RlooStepStats } {
  const R = lengths.length,
    n = logp.size;
  if (advantages.length !== R || oldLogprobSums.length !== R || lengths.reduce((s, x) => s + x, 0) !== n)
    throw new ShapeError(
      `rlooLoss: ${R} replies of ${lengths.reduce((s, x) => s + x, 0)} tokens, ${n} log-probs, ${advantages.length} advantages`,
    );
  // segment sums: (R, n) 0/1 matrix @ (n, 1) → Σ_t log π per reply, on the tape
  const seg = new Float64Array(R * n);
  let at = 0;
  lengths.forEach((L, i) => {
    for (let t = 0; t < L; t++) seg[i * n + at + t] = 1;
    at += L;
  });
  const like = (x: ArrayLike<number>, shape: number[]) =>
    tensor(logp.dtype === 'f64' ? Float64Array.from(x) : Float32Array.from(x), shape, { backend: logp.backend });
  if (read && read.length !== n) throw new ShapeError(`rlooLoss: ${read.length} values read for ${n} log-probs`);
  const lp = read ?? readOnHost(logp, 'rlooLoss decides its clipping', 'pass the values of logp (RlooObjective does)');
  const w = new Float64Array(R);
  let constant = 0,
    lossSum = 0,
    clip = 0,
    akl = 0,
    rSum = 0,
    r2Sum = 0;
  at = 0;
  for (let i = 0; i < R; i++) {
    let s = 0;
    for (let t = 0; t < lengths[i]!; t++) s += lp[at + t]!;
    at += lengths[i]!;
    const p = clippedPolicyTerm(advantages[i]!, s, oldLogprobSums[i]!, cliprange);
    lossSum += p.loss;
    if (p.clipped) {
      clip++;
      constant += p.loss / R;
    } else w[i] = -advantages[i]! / R;
    const d = s - oldLogprobSums[i]!;
    akl += 0.5 * d * d;
    rSum += p.ratio;
    r2Sum += p.ratio * p.ratio;
  }
  const sums = O.reshape(O.matmul(like(seg, [R, n]), O.reshape(logp, [n, 1])), [R]); // (R,)
  const ratio = O.exp(O.sub(sums, like(oldLogprobSums, [R]))); // (R,)
  const loss = O.scale(O.sum(O.mul(ratio, like(w, [R]))), 1, constant);
  const rMean = rSum / R;
  return {
    loss,
    stats: {
      'policy/approxkl_avg': akl / R,
      'policy/clipfrac_avg': clip / R,
      'loss/policy_avg': lossSum / R,
      'val/ratio': rMean,
      'val/ratio_var': R > 1 ? (r2Sum - R * rMean * rMean) / (R - 1) : 0,
    },
  };
}

/**
 * The TrainableModel the loop drives: a training batch's ids are rollout indices of the current batch, an
 * evaluation batch's are indices of the held-out reference replies (the policy's per-token cross-entropy on them).
 */
export class RlooObjective implements TrainableModel {
  readonly params: Map<string, Tensor>;
  batch: RlooBatch | null = null;
  private readonly stats = new StatsMean();

  constructor(
    readonly policy: CausalLM,
    private readonly evalReplies: readonly PromptReply[],
    private readonly o: { cliprange: number; temperature: number },
  ) {
    this.params = policy.trainableParams(); // the LoRA adapters when there are adapters
  }

  loss(ids: Int32Array, _targets: Int32Array, B: number, _T: number, opts: { training?: boolean } = {}): LossResult {
    if (ids.length !== B || B === 0) throw new ShapeError(`rloo loss: ${ids.length} indices for B=${B}`);
    if (!opts.training) {
      const items = Array.from(ids, (i) => this.evalReplies[i]!);
      return O.scale(O.mean(replyLogprobs(this.policy, items, this.o.temperature)), -1);
    }
    const b = this.batch;
    if (!b) throw new ShapeError('rloo loss: no batch of rollouts');
    const rs = Array.from(ids, (i) => {
      const r = b.rollouts[i];
      if (!r) throw new ShapeError(`rloo loss: rollout ${i} outside [0, ${b.rollouts.length})`);
      return r;
    });
    // no dropout: the ratio compares the same distribution the rollouts were scored under
    const logp = replyLogprobs(this.policy, rs, this.o.temperature); // (n,)
    // the clipping is decided on the host from the values: read them (staged_loss.ts), then build the loss
    return staged([logp], ([lp]) => {
      const { loss, stats } = rlooLoss(
        logp,
        rs.map((r) => r.reply.length),
        Array.from(ids, (i) => b.advantages[i]!),
        rs.map((r) => sum(r.logprobs)),
        this.o.cliprange,
        lp,
      );
      this.stats.add(stats);
      return loss;
    });
  }

  /** The minibatch statistics since the last call (means), for the step's record. */
  takeStats(): Record<string, number> {
    return this.stats.take();
  }
}
