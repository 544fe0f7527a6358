/**
 * Reward-model training (what `llmts reward` runs), TRL's RewardTrainer on the shared preference run (pref_run.ts):
 * the fine-tuned model's body with a new score head (src/model/reward.ts, transformers' `*ForSequenceClassification`
 * with one label), trained on preference pairs with the Bradley–Terry loss, margins and reward centring
 * (pref_losses.ts); every pair of one prompt in one batch. Metrics: loss, accuracy, rewards/chosen,
 * rewards/rejected, rewards/margins, and their eval_ forms with eval_reward_length_correlation (reward against
 * reply length over the held-out replies: a reward model that pays for length shows it). The checkpoint is a
 * `*ForSequenceClassification` folder that `loadRewardModel` loads.
 */
import { saveRewardModel } from '../model/hf/folder.js';
import { loadRewardPolicy } from './peft.js';
import { RewardModel } from '../model/reward.js';
import { Rng } from '../util/rng.js';
import { statMetrics } from './pref_stats.js';
import { loadPairData, runPreference, type PrefOptions, type PrefRecipe, type PrefResult } from './pref_run.js';
import { RewardObjective } from './reward_objective.js';
import { REWARD_DEFAULTS, validateRewardConfig, type RewardConfig } from './reward_settings.js';

export const REWARD_RECIPE: PrefRecipe<RewardConfig> = {
  command: 'reward',
  defaults: REWARD_DEFAULTS,
  validate: validateRewardConfig,
  loadData: loadPairData,
  async prepare({ c, resumeDir, backend, items: pairs, log }) {
    // a new run: the language model's body and a score head drawn from the seed (and fresh LoRA adapters on the body
    // with usePeft); a resumed one: the checkpoint
    const rm = await loadRewardPolicy(
      c,
      c.model,
      resumeDir,
      backend,
      (lm) => RewardModel.fromCausalLM(lm, new Rng(c.seed), c.scoreInitStd),
      log,
    );
    const objective = new RewardObjective(rm, pairs, c.centerRewardsCoefficient);
    return {
      objective,
      metrics: (which, prefix) => statMetrics(objective.takeStats(which), prefix, 'reward'),
      config: rm.config,
      save: (d) => saveRewardModel(rm, d),
      describe: `${rm.config.family} reward model (score head on the last token)`,
      models: [rm],
    };
  },
};

export type RewardOptions = PrefOptions<RewardConfig>;
export type RewardResult = PrefResult<RewardConfig>;

/** Run (or resume) reward-model training. */
export function trainRewardModel(o: RewardOptions): Promise<RewardResult> {
  return runPreference(REWARD_RECIPE, o);
}
