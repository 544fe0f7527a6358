/**
 * RLOO (what `llmts rloo` runs): REINFORCE with a leave-one-out baseline (Ahmadian et al. 2024), TRL's RLOOTrainer,
 * a group trainer (group_rl.ts: the shared loop, src/train/run.ts, and PPO's rollout machinery):
 *
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed, and its saved config;
 *   2. the models: the policy (the SFT folder, or the checkpoint), the frozen reference (the SFT folder), and the
 *      reward: a reward function module (reward_fn.ts; a verifiable reward such as raters/arithmetic.mjs) or a frozen
 *      reward model; no value model;
 *   3. the prompts (rl_data.ts), the last evalFraction held out; the reference's replies to the held-out prompts
 *      are the evaluation set (eval_loss: the policy's per-token cross-entropy on them), as PPO's;
 *   4. before the first step of each batch: batchSize / rlooK prompts (ppo_batches.ts's order), rlooK replies to
 *      each from the batched KV-cached sampler (batch_sampler.ts, temperature only), scored by the policy and the
 *      reference (log-probabilities under logits / T) and by the reward → sequence-level KL-shaped rewards and
 *      leave-one-out advantages (rloo_objective.ts `prepareRlooBatch`);
 *   5. each step: one minibatch of replies, the clipped sequence-level ratio loss, one AdamW step; ppoEpochs passes
 *      over each batch (ppo_batches.ts's PpoBatcher);
 *   6. the loop (rl_loop.ts): metrics.jsonl with TRL's names (objective/kl, objective/scores, objective/rlhf_reward,
 *      objective/non_score_reward, objective/entropy, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg,
 *      val/ratio, val/ratio_var, val/num_eos_tokens, reply_length, eos_rate), checkpoints as a causal-LM folder with its
 *      chat template plus `rloo_state.json` (the batch being learned from, so a run stopped mid-batch resumes exactly),
 *      Ctrl-C, report.html.
 */
import type { RlResult } from './rl_loop.js';
import { prepareRlooBatch, RlooObjective, type RlooBatch } from './rloo_objective.js';
import { RLOO_DEFAULTS, validateRlooConfig, type RlooConfig } from './rloo_settings.js';
import { runGroupRl, type GroupRlOptions, type GroupRlSpec } from './group_rl.js';

/** RLOO's own file in a checkpoint: the batch of rollouts being learned from. */
export const RLOO_STATE = 'rloo_state.json';

export type RlooOptions = GroupRlOptions<RlooConfig>;

export type RlooResult = RlResult<RlooConfig>;

const RLOO_SPEC: GroupRlSpec<RlooConfig, RlooBatch> = {
  command: 'rloo',
  trainer: 'RLOO',
  stateFile: RLOO_STATE,
  defaults: RLOO_DEFAULTS,
  validate: validateRlooConfig,
  k: (c) => c.rlooK,
  objective: (policy, evalReplies, c) =>
    new RlooObjective(policy, evalReplies, { cliprange: c.cliprange, temperature: c.temperature }),
  prepare: (k, scored, c) =>
    prepareRlooBatch(k, scored, {
      k: c.rlooK,
      klCoef: c.klCoef,
      klEstimator: c.klEstimator,
      missingEosPenalty: c.missingEosPenalty,
      normalizeAdvantage: c.normalizeAdvantage,
    }),
  klLine: (c) => `${c.klCoef} (${c.klEstimator}, sequence-level)`,
};

/** Run (or resume) RLOO. */
export function rloo(o: RlooOptions): Promise<RlooResult> {
  return runGroupRl(RLOO_SPEC, o);
}
