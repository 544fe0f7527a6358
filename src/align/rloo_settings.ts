/**
 * The settings of `llmts rloo`: the loop's groups (src/train/settings.ts) and RLOO's own with TRL's RLOOConfig names
 * and defaults where TRL has them (rloo_k 2, kl_coef 0.05, cliprange 0.2, num_ppo_epochs 4, normalize_advantage
 * false, temperature 0.7, missing_eos_penalty), and the reward: reward function modules (`--reward FILE.mjs`,
 * a verifiable reward such as raters/arithmetic.mjs), a reward model folder (`--rewardModel DIR`), or both, weighted.
 * Presets: `tiny` (tests, seconds), `arithmetic` (the O4 proof on a small model, minutes on a CPU).
 */
import { PEFT_SETTINGS } from './peft.js';
import { ConfigError } from '../util/errors.js';
import {
  bool,
  defineSettings,
  float,
  group,
  int,
  oneOf,
  str,
  strings,
  numbers,
  type SettingsTable,
  type Values,
} from '../util/settings.js';
import { DISPLAY_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import { RL_EVAL, RL_OPTIM, RL_OPTIM_LOOP, RL_TINY_PRESET } from './ppo_settings.js';
import { buildFromLayers } from './pref_settings.js';

/** The models and data of a group trainer (RLOO, GRPO). */
export const GROUP_RL_DATA = group('models and data', {
  model: str(
    '',
    "The fine-tuned policy to start from, also the frozen reference: a Hugging Face folder (an 'llmts sft' checkpoint; the first positional argument).",
    { aliases: ['model_name_or_path', 'sft_model_path'] },
  ),
  reward: strings(
    [],
    'Reward functions: ES modules exporting reward(prompt, reply) → number, or rater modules exporting makeOracle (its score is the reward); prompt is the conversation [{role, content}, …], reply a string. Several (a,b or a JSON list) are summed, weighted by rewardWeights (TRL reward_funcs).',
    { aliases: ['reward_fn', 'reward_funcs'] },
  ),
  rewardWeights: numbers(
    [],
    'One weight per reward: each function, then the reward model if one is given (default: all 1; TRL reward_weights).',
    {
      aliases: ['reward_weights'],
    },
  ),
  rewardModel: str(
    '',
    "A reward model: a *ForSequenceClassification folder (an 'llmts reward' checkpoint) scoring prompt ++ reply; alone, or added to the functions' rewards (TRL reward_funcs mixing models and functions).",
    { aliases: ['reward_model_path'] },
  ),
  data: strings(
    [],
    'Prompts: TRL prompt-only JSONL files of {"prompt": "..."} or {"prompt": [messages]} rows (the positional arguments after the model).',
    { aliases: ['train_file'] },
  ),
  evalFraction: float(
    0.1,
    "Fraction of the prompts held out (the file's last ones, at least one): the reference's replies to them are the evaluation set.",
    { gt: 0, max: 0.5 },
  ),
  evalReplies: int(32, 'Held-out replies (sampled once from the reference) the evaluation scores the policy on.', {
    min: 1,
  }),
  badRows: oneOf(
    ['error', 'skip'],
    'error',
    "A malformed row: 'error' (stop, naming file and line) or 'skip' (count it, list it in the log).",
  ),
});

/**
 * The rollout settings of a group trainer: `k`, its replies-per-prompt setting (first in --help), then the shared
 * ones; `epochs`, the default and TRL name of ppoEpochs (RLOO's num_ppo_epochs 4, GRPO's num_iterations 1).
 */
export function groupRollouts<K extends SettingsTable>(
  k: K,
  epochs: { default: number; alias: string },
  temperature: number,
) {
  return group('rollouts', {
    ...k,
    totalEpisodes: int(
      512,
      'Replies to sample and learn from in all (the run takes totalEpisodes / batchSize batches).',
      {
        min: 1,
        aliases: ['total_episodes'],
      },
    ),
    batchSize: int(32, 'Replies per batch (batchSize / k prompts, k replies each), learned from for ppoEpochs.', {
      min: 2,
      aliases: ['batch_size'],
    }),
    miniBatchSize: int(8, 'Replies per optimizer step (batchSize must be a multiple).', {
      min: 1,
      aliases: ['mini_batch_size'],
    }),
    ppoEpochs: int(epochs.default, 'Passes over each batch of replies, in a new order each time.', {
      min: 1,
      aliases: [epochs.alias],
    }),
    responseLength: int(32, 'Most tokens a reply may have (a reply without a stop token by then has no EOS).', {
      min: 1,
      aliases: ['response_length', 'max_new_tokens', 'max_completion_length'],
    }),
    temperature: float(
      temperature,
      'Sampling temperature; the log-probabilities are scored under the same logits / T.',
      {
        gt: 0,
      },
    ),
    samplerBatch: int(32, 'Rows the batched sampler decodes in one forward (results do not depend on it).', { min: 1 }),
    missingEosPenalty: float(
      0,
      "Subtracted from the score of a reply that did not end with a stop token (TRL's missing_eos_penalty).",
      { min: 0, aliases: ['missing_eos_penalty'] },
    ),
  });
}

const ROLLOUT = groupRollouts(
  {
    rlooK: int(2, 'Replies sampled per prompt (k ≥ 2): each one’s baseline is the mean reward of the other k − 1.', {
      min: 2,
      aliases: ['rloo_k'],
    }),
  },
  { default: 4, alias: 'num_ppo_epochs' },
  0.7,
);

const RLOO = group('RLOO', {
  klCoef: float(0.05, 'β of the sequence-level KL penalty: reward = score − β·Σ_t KL_t(π‖π_ref).', {
    min: 0,
    aliases: ['kl_coef'],
  }),
  klEstimator: oneOf(
    ['k1', 'k3'],
    'k1',
    "'k1': log π − log π_ref (unbiased); 'k3': (r − 1) − log r with r = π_ref/π (unbiased, never negative).",
    { aliases: ['kl_estimator'] },
  ),
  cliprange: float(0.2, 'ε of the clipped sequence-level policy ratio.', { gt: 0 }),
  normalizeAdvantage: bool(
    false,
    'Normalise the advantages over the batch ((A − mean)/std; TRL normalize_advantage).',
    {
      aliases: ['normalize_advantage'],
    },
  ),
});

// optimisation and evaluation: PPO's (ppo_settings.ts)

/** Every setting of `llmts rloo`, in --help order. */
export const RLOO_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...GROUP_RL_DATA,
    ...ROLLOUT,
    ...RLOO,
    ...RL_OPTIM_LOOP,
    ...RL_OPTIM,
    ...PEFT_SETTINGS,
    ...RL_EVAL,
    ...DISPLAY_SETTINGS,
  },
  'llmts rloo',
);

export type RlooConfig = Values<typeof RLOO_SETTINGS.table>;

export const RLOO_DEFAULTS: Readonly<RlooConfig> = Object.freeze(RLOO_SETTINGS.defaults());

export const RLOO_PRESETS: Record<string, { help: string; config: Partial<RlooConfig> }> = {
  tiny: {
    help: 'tests and smoke runs: 4 prompts × 2 replies of ≤ 8 tokens a batch, 2 epochs of 2 minibatches, lr 1e-3',
    config: RL_TINY_PRESET,
  },
  arithmetic: {
    help: 'the O4 proof (exact-match reward) on a small SFT model: 16 prompts × 8 replies a batch, normalised advantages, 4 epochs of 2 minibatches, lr 1e-4, β 0.02, 81,920 episodes',
    config: {
      // scripts/rloo-arithmetic.mjs, from the same SFT (held-out exact match 37.6 % greedy / 23.6 % sampled):
      // k 4, batch 64, lr 3e-4: each minibatch moved the policy 0.2–1 nats (clipfrac ~0.5), exact match fell to 21 %;
      // k 4, lr 1e-4, 16,384 episodes: 39.8 / 27.2 %; k 8 with normalised advantages, 16,384: 39.4 / 29.6 %, and at
      // lr 2e-4 33.4 / 23.0 %; k 8, lr 1e-4, 49,152 episodes: 41.0 / 33.2 %; 81,920 (these): 50.0 / 39.4 % at KL 2.1
      rlooK: 8,
      totalEpisodes: 81920,
      batchSize: 128,
      miniBatchSize: 64,
      normalizeAdvantage: true,
      ppoEpochs: 4,
      responseLength: 24,
      temperature: 1,
      missingEosPenalty: 1,
      klCoef: 0.02,
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

/** The checks every group trainer's settings take: a policy, one reward, prompts, and batches of whole groups. */
export function checkGroupConfig(
  c: Pick<
    RlooConfig,
    'model' | 'reward' | 'rewardWeights' | 'rewardModel' | 'data' | 'batchSize' | 'miniBatchSize' | 'lr' | 'minLr'
  >,
  command: 'rloo' | 'grpo',
  k: { name: string; value: number },
): void {
  const usage = `llmts ${command} <sft-dir> --reward <reward.mjs> <prompts.jsonl …>`;
  // one module named as a string (the code API, and runs saved before rewards became a list) is a list of one
  if (typeof (c.reward as unknown) === 'string')
    c.reward = (c.reward as unknown as string) ? [c.reward as unknown as string] : [];
  if (!c.model) throw new ConfigError('model', `give the policy folder: ${usage}`);
  if (!c.reward.length && !c.rewardModel)
    throw new ConfigError('reward', `give a reward function module (--reward FILE.mjs) or --rewardModel DIR: ${usage}`);
  // the reward functions, then the reward model (TRL: reward_funcs may mix both), one weight each
  const sources = c.reward.length + (c.rewardModel ? 1 : 0);
  if (c.rewardWeights.length && c.rewardWeights.length !== sources)
    throw new ConfigError(
      'rewardWeights',
      `one weight per reward (${c.reward.length} function${c.reward.length === 1 ? '' : 's'}${c.rewardModel ? ', then the reward model' : ''}: ${sources}), got ${c.rewardWeights.length} weight${c.rewardWeights.length === 1 ? '' : 's'}`,
    );
  if (!c.data.length) throw new ConfigError('data', `give the prompts: ${usage}`);
  if (c.batchSize % k.value !== 0)
    throw new ConfigError(
      'batchSize',
      `must be a multiple of ${k.name} (${k.value}): each prompt gets ${k.name} replies, got ${c.batchSize}`,
    );
  if (c.batchSize % c.miniBatchSize !== 0)
    throw new ConfigError(
      'miniBatchSize',
      `batchSize (${c.batchSize}) must be a multiple of it, got ${c.miniBatchSize}`,
    );
  if (c.minLr > c.lr) throw new ConfigError('minLr', `must be ≤ lr (${c.lr}), got ${c.minLr}`);
}

export function validateRlooConfig(c: RlooConfig): RlooConfig {
  RLOO_SETTINGS.checkRanges(c);
  checkGroupConfig(c, 'rloo', { name: 'rlooK', value: c.rlooK });
  return c;
}

export function buildRlooConfig(
  o: { preset?: string; file?: string; overrides?: Partial<RlooConfig> } = {},
): RlooConfig {
  return buildFromLayers(RLOO_SETTINGS, RLOO_PRESETS, validateRlooConfig, o);
}
