/**
 * GRPO's objective in the training loop: Group Relative Policy Optimization (Shao et al. 2024, "DeepSeekMath",
 * §4.1), as TRL's GRPOTrainer computes it:
 *
 * - G replies y_1 … y_G are sampled for each prompt (group_rl.ts), each scored once by the reward (minus the
 *   missing-EOS penalty, 0 by default);
 * - the group-relative advantage of reply i: A_i = r_i − mean(r of its group), divided by (std + 1e-4) with
 *   `scaleRewards` 'group' (the group's std, unbiased as torch's), 'batch' (the whole batch's std) or not at all
 *   ('none', Dr. GRPO); every token of the reply has that advantage;
 * - the per-token clipped surrogate with the ratio ρ_t = exp(log π(y_t) − log π_old(y_t)):
 *   ℓ_t = −min(ρ_t·A, clip(ρ_t, 1 − ε, 1 + ε_high)·A) + β·k3_t, with k3_t = exp(ref_t − log π) − (ref_t − log π) − 1
 *   the per-token KL estimate against the frozen reference (β 0 by default, TRL's: then it drops out);
 * - aggregated by `lossType`: 'grpo' the mean over each reply's tokens, then over replies; 'bnpo' and 'dapo' the
 *   sum over all tokens of the minibatch / their count (one minibatch is one optimizer step here, so DAPO's
 *   normalisation over the whole accumulated batch is this); 'dr_grpo' the sum / (replies × responseLength).
 *
 * Which branch of each min() wins is decided on the host from the values read back (a StagedLoss,
 * src/train/staged_loss.ts): a token whose clipped branch wins contributes a constant, the others −A·w_t·ρ_t, so the
 * tensor's value and gradient are the definition's (torch.min splits a tie's gradient between two equal branches of
 * equal slope: the same).
 */
import type { CausalLM } from '../model/model.js';
import * as O from '../tensor/ops.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import { readOnHost, staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ConfigError, ShapeError } from '../util/errors.js';
import type { GroupRollout } from './group_rl.js';
import { clippedPolicyTerm, klPerToken, StatsMean } from './rl_math.js';
import { replyLogprobs, type PromptReply } from './rollout.js';

export const GRPO_LOSS_TYPES = ['dapo', 'grpo', 'bnpo', 'dr_grpo'] as const;
export type GrpoLossType = (typeof GRPO_LOSS_TYPES)[number];
export const GRPO_SCALE_REWARDS = ['group', 'batch', 'none'] as const;
export type GrpoScaleRewards = (typeof GRPO_SCALE_REWARDS)[number];

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
/** torch.std: unbiased (n − 1); 0 for one value. */
function std(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
}

/** Group-relative advantages of `rewards`, G consecutive per prompt (see the header). */
export function grpoAdvantages(rewards: readonly number[], G: number, scale: GrpoScaleRewards): Float64Array {
  if (!Number.isInteger(G) || G < 2)
    throw new ConfigError('numGenerations', `GRPO needs G ≥ 2 replies per prompt, got ${G}`);
  if (rewards.length % G !== 0)
    throw new ShapeError(`grpoAdvantages: ${rewards.length} rewards are not groups of G = ${G}`);
  const out = new Float64Array(rewards.length);
  const all = scale === 'batch' ? std(rewards) : 0;
  for (let g = 0; g < rewards.length; g += G) {
    const group = rewards.slice(g, g + G);
    const m = mean(group),
      s = scale === 'group' ? std(group) : all;
    for (let i = 0; i < G; i++)
      out[g + i] = scale === 'none' ? rewards[g + i]! - m : (rewards[g + i]! - m) / (s + 1e-4);
  }
  return out;
}

export interface GrpoBatchOptions {
  G: number;
  scaleRewards: GrpoScaleRewards;
  missingEosPenalty: number;
}

/** A batch of rollouts ready for the GRPO epochs. */
export interface GrpoBatch {
  /** The batch's index in the run (its prompts are batch `index` of ppo_batches.ts's order). */
  index: number;
  rollouts: GroupRollout[];
  /** One advantage per rollout (every token of the reply has it). */
  advantages: number[];
  /** The batch's reward and completion metrics, under TRL's names. */
  stats: Record<string, number>;
}

/** Advantages and metrics of a batch of rollouts, G consecutive ones per prompt. */
export function prepareGrpoBatch(index: number, rollouts: GroupRollout[], o: GrpoBatchOptions): GrpoBatch {
  if (!rollouts.length) throw new ShapeError('prepareGrpoBatch: no rollouts');
  for (let g = 0; g < rollouts.length; g += o.G)
    for (let i = 1; i < o.G; i++)
      if (rollouts[g + i]?.promptIndex !== rollouts[g]!.promptIndex)
        throw new ShapeError(`prepareGrpoBatch: rollouts ${g}…${g + o.G - 1} are not G replies to one prompt`);
  const rewards = rollouts.map((r) => r.score - (r.ended ? 0 : o.missingEosPenalty));
  const adv = grpoAdvantages(rewards, o.G, o.scaleRewards);
  const stds: number[] = [];
  for (let g = 0; g < rewards.length; g += o.G) stds.push(std(rewards.slice(g, g + o.G)));
  const lengths = rollouts.map((r) => r.reply.length);
  const nEos = rollouts.filter((r) => r.ended).length;
  return {
    index,
    rollouts,
    advantages: Array.from(adv),
    stats: {
      // the RL trainers' shared names (rl_command's closing line reads them): score, and Σ_t KL per reply (k1)
      'objective/scores': mean(rewards),
      'objective/kl': mean(rollouts.map((r) => klPerToken(r.logprobs, r.refLogprobs, 'k1').reduce((a, x) => a + x, 0))),
      reward: mean(rewards),
      reward_std: mean(stds),
      frac_reward_zero_std: stds.filter((s) => s < 1e-8).length / stds.length,
      'objective/raw_scores': mean(rollouts.map((r) => r.score)),
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': 1 - nEos / rollouts.length,
      'val/num_eos_tokens': nEos,
      eos_rate: nEos / rollouts.length,
      reply_length: mean(lengths),
    },
  };
}

export interface GrpoLossOptions {
  /** ε and ε_high of the clip (ε_high = ε in GRPO; DAPO's clip-higher raises it). */
  epsilon: number;
  epsilonHigh: number;
  /** β of the per-token k3 KL penalty (0: none). */
  beta: number;
  lossType: GrpoLossType;
  /** max_completion_length, for 'dr_grpo''s constant normaliser. */
  responseLength: number;
  /** Leave replies without a stop token out of the loss (TRL's mask_truncated_completions; GrpoObjective only). */
  maskTruncated?: boolean;
}

/** What `grpoLoss` needs per reply of the minibatch (flat over tokens where per token, in the tensor's order). */
export interface GrpoTokens {
  /** Token count of each reply (Σ = n). */
  lengths: readonly number[];
  /** One advantage per reply. */
  advantages: ArrayLike<number>;
  /** log π_old of every token (n). */
  oldLogprobs: ArrayLike<number>;
  /** log π_ref of every token (n). */
  refLogprobs: ArrayLike<number>;
  /**
   * Which replies count (default all): maskTruncatedCompletions leaves out those without a stop token (DAPO), as
   * TRL zeroes their completion mask — no loss, no place in the token counts, the clip ratios or the KL.
   */
  counted?: readonly boolean[];
}

/** The minibatch's statistics under TRL's names (token means). */
export interface GrpoStepStats {
  'clip_ratio/low_mean': number;
  'clip_ratio/high_mean': number;
  'clip_ratio/region_mean': number;
  kl: number;
  'loss/policy_avg': number;
}

/** Each token's weight in the aggregate (see the header's lossType); a reply not `counted` weighs 0. */
function tokenWeights(
  lengths: readonly number[],
  counted: readonly boolean[],
  n: number,
  o: GrpoLossOptions,
): Float64Array {
  const R = lengths.length;
  const active = lengths.reduce((s, L, i) => s + (counted[i] ? L : 0), 0);
  const w = new Float64Array(n);
  let at = 0;
  lengths.forEach((L, i) => {
    const v = !counted[i]
      ? 0
      : o.lossType === 'grpo'
        ? 1 / (Math.max(L, 1) * R)
        : o.lossType === 'dr_grpo'
          ? 1 / (R * o.responseLength)
          : 1 / Math.max(active, 1);
    w.fill(v, at, at + L);
    at += L;
  });
  return w;
}

/**
 * The GRPO loss of a minibatch (see the header): `logp` (n,) the new log-probabilities of every reply token (on the
 * tape); `read`, its values (read synchronously where omitted: CPU backends). Returns the scalar loss, its value as
 * the definition computes it in float64, and the statistics.
 */
export function grpoLoss(
  logp: Tensor,
  tok: GrpoTokens,
  o: GrpoLossOptions,
  read?: ArrayLike<number>,
): { loss: Tensor; value: number; stats: GrpoStepStats } {
  const R = tok.lengths.length,
    n = logp.size;
  if (
    tok.advantages.length !== R ||
    tok.lengths.reduce((s, x) => s + x, 0) !== n ||
    tok.oldLogprobs.length !== n ||
    tok.refLogprobs.length !== n
  )
    throw new ShapeError(
      `grpoLoss: ${R} replies of ${tok.lengths.reduce((s, x) => s + x, 0)} tokens, ${n} log-probs, ${tok.advantages.length} advantages, ${tok.oldLogprobs.length} old / ${tok.refLogprobs.length} reference log-probs`,
    );
  if (read && read.length !== n) throw new ShapeError(`grpoLoss: ${read.length} values read for ${n} log-probs`);
  const lp = read ?? readOnHost(logp, 'grpoLoss decides its clipping', 'pass the values of logp (GrpoObjective does)');
  const counted = tok.counted ?? tok.lengths.map(() => true);
  if (counted.length !== R) throw new ShapeError(`grpoLoss: ${counted.length} counted flags for ${R} replies`);
  const w = tokenWeights(tok.lengths, counted, n, o);
  const u = new Float64Array(n); // the ratio's coefficient where the unclipped branch wins
  let constant = 0,
    value = 0,
    pgSum = 0,
    low = 0,
    high = 0,
    klSum = 0,
    active = 0,
    t = 0;
  tok.lengths.forEach((L, i) => {
    const A = tok.advantages[i]!;
    if (!counted[i]) {
      t += L; // weight 0: neither loss nor gradient
      return;
    }
    active += L;
    for (let j = 0; j < L; j++, t++) {
      const p = clippedPolicyTerm(A, lp[t]!, tok.oldLogprobs[t]!, o.epsilon, o.epsilonHigh);
      if (p.clipped) constant += w[t]! * p.loss;
      else u[t] = -A * w[t]!;
      const d = tok.refLogprobs[t]! - lp[t]!;
      const k3 = Math.exp(d) - d - 1;
      value += w[t]! * (p.loss + o.beta * k3);
      pgSum += p.loss;
      klSum += k3;
      if (p.ratio < 1 - o.epsilon && A < 0) low++;
      if (p.ratio > 1 + o.epsilonHigh && A > 0) high++;
    }
  });
  const like = (x: ArrayLike<number>) =>
    tensor(logp.dtype === 'f64' ? Float64Array.from(x) : Float32Array.from(x), [n], { backend: logp.backend });
  const ratio = O.exp(O.sub(logp, like(tok.oldLogprobs))); // (n,)
  let loss = O.sum(O.mul(ratio, like(u))); // Σ −A·w·ρ over unclipped tokens
  if (o.beta > 0) {
    const d = O.sub(like(tok.refLogprobs), logp); // (n,) ref − log π
    const k3 = O.sub(O.sub(O.exp(d), d), like(new Float64Array(n).fill(1))); // exp(d) − d − 1
    loss = O.add(loss, O.sum(O.mul(k3, like(Float64Array.from(w, (x) => o.beta * x)))));
  }
  const N = Math.max(active, 1);
  return {
    loss: O.scale(loss, 1, constant),
    value,
    stats: {
      'clip_ratio/low_mean': low / N,
      'clip_ratio/high_mean': high / N,
      'clip_ratio/region_mean': (low + high) / N,
      kl: klSum / N,
      'loss/policy_avg': pgSum / N,
    },
  };
}

/**
 * The TrainableModel the loop drives: a training batch's ids are rollout indices of the current batch, an
 * evaluation batch's are indices of the held-out reference replies (the policy's per-token cross-entropy on them).
 */
export class GrpoObjective implements TrainableModel {
  readonly params: Map<string, Tensor>;
  batch: GrpoBatch | null = null;
  private readonly stats = new StatsMean();

  constructor(
    readonly policy: CausalLM,
    private readonly evalReplies: readonly PromptReply[],
    private readonly o: GrpoLossOptions & { temperature: number },
  ) {
    this.params = policy.trainableParams(); // the LoRA adapters when there are adapters
  }

  loss(ids: Int32Array, _targets: Int32Array, B: number, _T: number, opts: { training?: boolean } = {}): LossResult {
    if (ids.length !== B || B === 0) throw new ShapeError(`grpo loss: ${ids.length} indices for B=${B}`);
    if (!opts.training) {
      const items = Array.from(ids, (i) => this.evalReplies[i]!);
      return O.scale(O.mean(replyLogprobs(this.policy, items, this.o.temperature)), -1);
    }
    const b = this.batch;
    if (!b) throw new ShapeError('grpo loss: no batch of rollouts');
    const rs = Array.from(ids, (i) => {
      const r = b.rollouts[i];
      if (!r) throw new ShapeError(`grpo loss: rollout ${i} outside [0, ${b.rollouts.length})`);
      return r;
    });
    // no dropout: the ratio compares the same distribution the rollouts were scored under
    const logp = replyLogprobs(this.policy, rs, this.o.temperature); // (n,)
    const tok: GrpoTokens = {
      lengths: rs.map((r) => r.reply.length),
      advantages: Array.from(ids, (i) => b.advantages[i]!),
      oldLogprobs: rs.flatMap((r) => r.logprobs),
      refLogprobs: rs.flatMap((r) => r.refLogprobs),
      ...(this.o.maskTruncated ? { counted: rs.map((r) => r.ended) } : {}),
    };
    // the clipping is decided on the host from the values: read them (staged_loss.ts), then build the loss
    return staged([logp], ([lp]) => {
      const { loss, stats } = grpoLoss(logp, tok, this.o, lp);
      this.stats.add(stats);
      return loss;
    });
  }

  /** The minibatch statistics since the last call (means), for the step's record. */
  takeStats(): Record<string, number> {
    return this.stats.take();
  }
}
