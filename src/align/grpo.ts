/**
 * GRPO (what `llmts grpo` runs): Group Relative Policy Optimization (Shao et al. 2024, "DeepSeekMath"), TRL's
 * GRPOTrainer, a group trainer (group_rl.ts: the shared loop, src/train/run.ts, and PPO's rollout machinery):
 * numGenerations replies per prompt, sampled from the policy (temperature only), scored by a reward function or a
 * reward model; advantages relative to the group (grpo_objective.ts `prepareGrpoBatch`); the per-token clipped
 * surrogate with an optional k3 KL penalty against the frozen reference (`grpoLoss`), ppoEpochs (TRL's
 * num_iterations) passes over each batch in minibatches. No value model. metrics.jsonl has TRL's names (reward,
 * reward_std, frac_reward_zero_std, completions/mean_length, completions/clipped_ratio, kl, clip_ratio/low_mean,
 * clip_ratio/high_mean, clip_ratio/region_mean) and the loop's; checkpoints are causal-LM folders with their chat
 * template plus `grpo_state.json` (the batch being learned from, so a run stopped mid-batch resumes exactly).
 */
import { prepareGrpoBatch, GrpoObjective, type GrpoBatch } from './grpo_objective.js';
import { GRPO_DEFAULTS, validateGrpoConfig, type GrpoConfig } from './grpo_settings.js';
import { runGroupRl, type GroupRlOptions, type GroupRlSpec } from './group_rl.js';
import type { RlResult } from './rl_loop.js';

/** GRPO's own file in a checkpoint: the batch of rollouts being learned from. */
export const GRPO_STATE = 'grpo_state.json';

export type GrpoOptions = GroupRlOptions<GrpoConfig>;

export type GrpoResult = RlResult<GrpoConfig>;

const GRPO_SPEC: GroupRlSpec<GrpoConfig, GrpoBatch> = {
  command: 'grpo',
  trainer: 'GRPO',
  stateFile: GRPO_STATE,
  defaults: GRPO_DEFAULTS,
  validate: validateGrpoConfig,
  k: (c) => c.numGenerations,
  objective: (policy, evalReplies, c) =>
    new GrpoObjective(policy, evalReplies, {
      epsilon: c.epsilon,
      epsilonHigh: c.epsilonHigh || c.epsilon,
      beta: c.beta,
      lossType: c.lossType,
      responseLength: c.responseLength,
      maskTruncated: c.maskTruncatedCompletions,
      temperature: c.temperature,
    }),
  prepare: (k, scored, c) =>
    prepareGrpoBatch(k, scored, {
      G: c.numGenerations,
      scaleRewards: c.scaleRewards,
      missingEosPenalty: c.missingEosPenalty,
    }),
  klLine: (c) => (c.beta > 0 ? `β ${c.beta} (k3, per token, in the loss)` : 'none (β 0: the reference only scores)'),
};

/** Run (or resume) GRPO. */
export function grpo(o: GrpoOptions): Promise<GrpoResult> {
  return runGroupRl(GRPO_SPEC, o);
}
