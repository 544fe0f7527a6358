/**
 * The settings of `llmts grpo`: the loop's groups (src/train/settings.ts), the group trainers' models, data and
 * rollouts (rloo_settings.ts), and GRPO's own with TRL's GRPOConfig names and defaults (num_generations 8, beta 0,
 * epsilon 0.2, epsilon_high = epsilon, loss_type dapo, scale_rewards group, num_iterations 1, temperature 1).
 * Presets: `tiny` (tests, seconds), `arithmetic` (the O4 task on a small model, minutes on a CPU).
 */
import { PEFT_SETTINGS } from './peft.js';
import { DISPLAY_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import { ConfigError } from '../util/errors.js';
import { bool, defineSettings, float, group, int, oneOf, type Values } from '../util/settings.js';
import { GRPO_LOSS_TYPES, GRPO_SCALE_REWARDS } from './grpo_objective.js';
import { RL_EVAL, RL_OPTIM, RL_OPTIM_LOOP, RL_TINY_PRESET } from './ppo_settings.js';
import { buildFromLayers } from './pref_settings.js';
import { checkGroupConfig, GROUP_RL_DATA, groupRollouts } from './rloo_settings.js';

const ROLLOUT = groupRollouts(
  {
    numGenerations: int(
      8,
      "Replies sampled per prompt (G ≥ 2): each reply's advantage is its reward against its group's mean.",
      { min: 2, aliases: ['num_generations'] },
    ),
  },
  { default: 1, alias: 'num_iterations' },
  1,
);

const GRPO = group('GRPO', {
  beta: float(
    0,
    "β of the per-token KL penalty in the loss (k3 against the frozen reference); 0, TRL's default, leaves it out.",
    { min: 0 },
  ),
  epsilon: float(0.2, 'ε of the clipped per-token ratio: clip(ρ, 1 − ε, 1 + εHigh).', { gt: 0, max: 1 }),
  epsilonHigh: float(0, "The upper ε of the clip (DAPO's clip-higher: 0.28); 0 = epsilon.", {
    min: 0,
    aliases: ['epsilon_high'],
  }),
  lossType: oneOf(
    GRPO_LOSS_TYPES,
    'dapo',
    "How the per-token losses are averaged: 'dapo' and 'bnpo' over all tokens of the minibatch, 'grpo' over each reply's tokens then over replies (length-biased), 'dr_grpo' summed / (replies × responseLength).",
    { aliases: ['loss_type'] },
  ),
  maskTruncatedCompletions: bool(
    false,
    'Leave replies that hit responseLength without a stop token out of the loss (DAPO; their rewards still shape their groups).',
    { aliases: ['mask_truncated_completions'] },
  ),
  scaleRewards: oneOf(
    GRPO_SCALE_REWARDS,
    'group',
    "Advantages (r − group mean) divided by the group's reward std ('group'), the batch's ('batch'), or not ('none': Dr. GRPO).",
    { aliases: ['scale_rewards'] },
  ),
});

// optimisation and evaluation: PPO's (ppo_settings.ts)

/** Every setting of `llmts grpo`, in --help order. */
export const GRPO_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...GROUP_RL_DATA,
    ...ROLLOUT,
    ...GRPO,
    ...RL_OPTIM_LOOP,
    ...RL_OPTIM,
    ...PEFT_SETTINGS,
    ...RL_EVAL,
    ...DISPLAY_SETTINGS,
  },
  'llmts grpo',
);

export type GrpoConfig = Values<typeof GRPO_SETTINGS.table>;

export const GRPO_DEFAULTS: Readonly<GrpoConfig> = Object.freeze(GRPO_SETTINGS.defaults());

export const GRPO_PRESETS: Record<string, { help: string; config: Partial<GrpoConfig> }> = {
  tiny: {
    help: 'tests and smoke runs: 2 prompts × 4 replies of ≤ 8 tokens a batch, 2 epochs of 2 minibatches, lr 1e-3',
    config: { ...RL_TINY_PRESET, numGenerations: 4 }, // temperature 1: GRPO's default too
  },
  arithmetic: {
    help: 'the O4 task (exact-match reward) on a small SFT model: 16 prompts × 8 replies a batch, 4 epochs of 2 minibatches, lr 1e-4, β 0.02',
    config: {
      numGenerations: 8,
      totalEpisodes: 81920,
      batchSize: 128,
      miniBatchSize: 64,
      ppoEpochs: 4,
      responseLength: 24,
      missingEosPenalty: 1,
      beta: 0.02,
      lr: 1e-4,
      minLr: 1e-4,
      samplerBatch: 64,
      evalInterval: 0,
      evalReplies: 32,
      sampleInterval: 0,
      checkpointInterval: 0,
      logInterval: 8,
    },
  },
};

export function validateGrpoConfig(c: GrpoConfig): GrpoConfig {
  GRPO_SETTINGS.checkRanges(c);
  checkGroupConfig(c, 'grpo', { name: 'numGenerations', value: c.numGenerations });
  if (c.epsilonHigh > 0 && c.epsilonHigh < c.epsilon)
    throw new ConfigError(
      'epsilonHigh',
      `the upper clip must be ≥ epsilon (${c.epsilon}) or 0 (= epsilon), got ${c.epsilonHigh}`,
    );
  return c;
}

export function buildGrpoConfig(
  o: { preset?: string; file?: string; overrides?: Partial<GrpoConfig> } = {},
): GrpoConfig {
  return buildFromLayers(GRPO_SETTINGS, GRPO_PRESETS, validateGrpoConfig, o);
}
