/**
 * The settings of `llmts reward` (reward-model training): the loop's groups (src/train/settings.ts), the shared
 * preference groups (pref_settings.ts) and the reward model's own: TRL's `center_rewards_coefficient` (0.01 here,
 * as issue 11 asks; 0 = off) and the score head's initial standard deviation. Presets: `tiny` (tests, seconds) and
 * `quick`.
 */
import { PEFT_SETTINGS } from './peft.js';
import { defineSettings, float, group, type Values } from '../util/settings.js';
import { DISPLAY_SETTINGS, EVAL_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import {
  buildFromLayers,
  checkPrefConfig,
  PREF_TINY_PRESET,
  prefDataSettings,
  prefOptimSettings,
} from './pref_settings.js';

const REWARD = group('reward model', {
  centerRewardsCoefficient: float(
    0.01,
    'Weight of the reward-centring term coef · mean((r_chosen + r_rejected)²) (Eisenstein et al. 2023; 0 = off).',
    { min: 0, aliases: ['center_rewards_coefficient'] },
  ),
  scoreInitStd: float(0.02, 'Standard deviation of the new score head (transformers: initializer_range).', { gt: 0 }),
});

/** Every setting of `llmts reward`, in --help order. */
export const REWARD_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...prefDataSettings('llmts reward'),
    ...REWARD,
    ...prefOptimSettings(1e-5),
    ...PEFT_SETTINGS,
    ...EVAL_SETTINGS,
    ...DISPLAY_SETTINGS,
  },
  'llmts reward',
);

export type RewardConfig = Values<typeof REWARD_SETTINGS.table>;

export const REWARD_DEFAULTS: Readonly<RewardConfig> = Object.freeze(REWARD_SETTINGS.defaults());

export const REWARD_PRESETS: Record<string, { help: string; config: Partial<RewardConfig> }> = {
  tiny: PREF_TINY_PRESET,
  quick: {
    help: 'a small model on a CPU: 1 epoch, lr 5e-5 with 10 warmup steps, 8 prompts a batch',
    config: { epochs: 1, lr: 5e-5, minLr: 5e-6, warmupSteps: 10, batchSize: 8 },
  },
};

export function validateRewardConfig(c: RewardConfig): RewardConfig {
  REWARD_SETTINGS.checkRanges(c);
  checkPrefConfig(c, 'reward');
  return c;
}

export function buildRewardConfig(
  o: { preset?: string; file?: string; overrides?: Partial<RewardConfig> } = {},
): RewardConfig {
  return buildFromLayers(REWARD_SETTINGS, REWARD_PRESETS, validateRewardConfig, o);
}
