/**
 * The settings of `llmts ppo`: the loop's groups (src/train/settings.ts) and PPO's own with TRL's PPOConfig names
 * and defaults where TRL has them (kl_coef 0.05, kl_estimator k1, gamma 1, lam 0.95, cliprange 0.2,
 * cliprange_value 0.2, vf_coef 0.1, num_ppo_epochs 4, temperature 0.7, missing_eos_penalty), and the adaptive KL
 * controller of Ziegler et al. 2019 (target, horizon) that older TRL versions had. Presets: `tiny` (tests, seconds).
 */
import { PEFT_SETTINGS } from './peft.js';
import { ConfigError } from '../util/errors.js';
import { bool, defineSettings, float, group, int, oneOf, str, strings, type Values } from '../util/settings.js';
import { DISPLAY_SETTINGS, EVAL_SETTINGS, OPTIM_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import { buildFromLayers } from './pref_settings.js';

const DATA = group('models and data', {
  model: str(
    '',
    "The fine-tuned policy to start from, also the frozen reference: a Hugging Face folder (an 'llmts sft' checkpoint; the first positional argument).",
    { aliases: ['model_name_or_path', 'sft_model_path'] },
  ),
  rewardModel: str('', "The reward model: a *ForSequenceClassification folder (an 'llmts reward' checkpoint).", {
    aliases: ['reward_model_path'],
  }),
  valueModel: oneOf(
    ['reward', 'policy'],
    'reward',
    "The value model: 'reward' (a copy of the reward model, trained; TRL's default) or 'policy' (a value head on the policy's body, sharing it).",
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

const ROLLOUT = group('rollouts', {
  totalEpisodes: int(
    256,
    'Replies to sample and learn from in all (the run takes totalEpisodes / batchSize batches).',
    {
      min: 1,
      aliases: ['total_episodes'],
    },
  ),
  batchSize: int(16, 'Rollouts per batch: sampled with one policy, then learned from for ppoEpochs epochs.', {
    min: 1,
    aliases: ['batch_size'],
  }),
  miniBatchSize: int(4, 'Rollouts per optimizer step (batchSize must be a multiple).', {
    min: 1,
    aliases: ['mini_batch_size'],
  }),
  ppoEpochs: int(4, 'Passes over each batch of rollouts, in a new order each time.', {
    min: 1,
    aliases: ['num_ppo_epochs'],
  }),
  responseLength: int(32, 'Most tokens a reply may have (a reply without a stop token by then has no EOS).', {
    min: 1,
    aliases: ['response_length', 'max_new_tokens'],
  }),
  temperature: float(0.7, 'Sampling temperature; the log-probabilities are scored under the same logits / T.', {
    gt: 0,
  }),
  missingEosPenalty: float(
    0,
    "Subtracted from the score of a reply that did not end with a stop token (TRL's missing_eos_penalty).",
    {
      min: 0,
      aliases: ['missing_eos_penalty'],
    },
  ),
});

const PPO = group('PPO', {
  klCoef: float(0.05, 'β of the per-token KL penalty −β·KL(π‖π_ref) (the adaptive controller starts from it).', {
    min: 0,
    aliases: ['kl_coef', 'init_kl_coef'],
  }),
  klEstimator: oneOf(
    ['k1', 'k3'],
    'k1',
    "'k1': log π − log π_ref (unbiased); 'k3': (r − 1) − log r with r = π_ref/π (unbiased, never negative).",
    { aliases: ['kl_estimator'] },
  ),
  targetKl: float(
    0,
    'Adaptive KL controller (Ziegler et al.): the KL per reply to steer β towards (0 = β fixed at klCoef).',
    { min: 0, aliases: ['target'] },
  ),
  horizon: float(
    10000,
    "The adaptive controller's horizon in episodes (β moves by at most 20 % × batchSize / horizon).",
    {
      gt: 0,
    },
  ),
  gamma: float(1, 'Discount γ of the generalised advantage estimate.', { min: 0, max: 1 }),
  lam: float(0.95, 'λ of the generalised advantage estimate.', { min: 0, max: 1 }),
  cliprange: float(0.2, 'ε of the clipped policy ratio.', { gt: 0 }),
  cliprangeValue: float(0.2, 'ε of the clipped value prediction.', { gt: 0, aliases: ['cliprange_value'] }),
  vfCoef: float(0.1, 'Weight of the value loss.', { min: 0, aliases: ['vf_coef'] }),
  whitenAdvantages: bool(true, 'Whiten the advantages over the batch (TRL always does).'),
});

/** The RL trainers' optimisation settings (PPO's and RLOO's: rloo_settings.ts takes them from here). */
export const RL_OPTIM = group('optimisation', {
  maxSteps: int(0, 'Optimizer steps (0 = totalEpisodes / batchSize batches × ppoEpochs × batchSize / miniBatchSize).', {
    min: 0,
    aliases: ['max_steps', 'steps'],
  }),
  lr: float(3e-6, 'Peak learning rate (after warmup).', { gt: 0, max: 10, aliases: ['learning_rate'] }),
  minLr: float(3e-6, 'Learning rate at the end of the decay (TRL keeps it constant: minLr = lr).', {
    min: 0,
    aliases: ['min_lr'],
  }),
  warmupSteps: int(0, 'Steps of linear warmup.', { min: 0, aliases: ['warmup_steps'] }),
  beta2: float(0.999, 'AdamW β2.', { min: 0, max: 0.999999, aliases: ['adam_beta2'] }),
  weightDecay: float(0, 'AdamW decoupled weight decay.', { min: 0, aliases: ['weight_decay'] }),
});

// PPO evaluates on the held-out reference replies (one fixed set, no batches to choose), at the end by default: its
// eval_loss measures drift from the reference, which PPO is expected to grow, not a held-out loss to minimise
const { evalBatches: _evalBatches, finalEvalBatches: _finalEvalBatches, ...EVAL_LOOP } = EVAL_SETTINGS;
/** The RL trainers' evaluation settings (PPO's and RLOO's). */
export const RL_EVAL = group('evaluation and checkpoints', {
  ...EVAL_LOOP,
  evalInterval: int(
    0,
    "Score the held-out reference replies every this many steps, and at the end (0 = only at the end); eval_loss is the policy's per-token cross-entropy on them, which grows as the policy leaves the reference.",
    { min: 0, aliases: ['eval_interval'] },
  ),
});

// the loop's optimiser settings without its batch ones: a PPO step is one minibatch of rollouts (no accumulation)
const { batchSize: _batchSize, gradAccum: _gradAccum, maxSteps: _maxSteps, ...OPTIM_LOOP } = OPTIM_SETTINGS;
export const RL_OPTIM_LOOP = OPTIM_LOOP;

/** Every setting of `llmts ppo`, in --help order. */
export const PPO_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...DATA,
    ...ROLLOUT,
    ...PPO,
    ...RL_OPTIM_LOOP,
    ...RL_OPTIM,
    ...PEFT_SETTINGS,
    ...RL_EVAL,
    ...DISPLAY_SETTINGS,
  },
  'llmts ppo',
);

export type PpoConfig = Values<typeof PPO_SETTINGS.table>;

export const PPO_DEFAULTS: Readonly<PpoConfig> = Object.freeze(PPO_SETTINGS.defaults());

/** The `tiny` preset's settings PPO, RLOO and GRPO share (tests and smoke runs): 32 episodes in batches of 8, replies of ≤ 8 tokens at temperature 1, 2 epochs of 2 minibatches, lr 1e-3, no interval evaluations, samples or checkpoints. */
export const RL_TINY_PRESET = {
  totalEpisodes: 32,
  batchSize: 8,
  miniBatchSize: 4,
  ppoEpochs: 2,
  responseLength: 8,
  temperature: 1,
  lr: 1e-3,
  minLr: 1e-3,
  evalInterval: 0,
  evalReplies: 8,
  sampleInterval: 0,
  checkpointInterval: 0,
  logInterval: 1,
};

export const PPO_PRESETS: Record<string, { help: string; config: Partial<PpoConfig> }> = {
  tiny: {
    help: 'tests and smoke runs: 8 rollouts a batch of 8-token replies, 2 epochs of 2 minibatches, lr 1e-3, eval at the end',
    config: { ...RL_TINY_PRESET, missingEosPenalty: 1 },
  },
};

export function validatePpoConfig(c: PpoConfig): PpoConfig {
  PPO_SETTINGS.checkRanges(c);
  if (!c.model)
    throw new ConfigError(
      'model',
      'give the policy folder: llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl>',
    );
  if (!c.rewardModel)
    throw new ConfigError(
      'rewardModel',
      'give the reward model folder: llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl>',
    );
  if (!c.data.length)
    throw new ConfigError('data', 'give the prompts: llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …>');
  if (c.batchSize % c.miniBatchSize !== 0)
    throw new ConfigError(
      'miniBatchSize',
      `batchSize (${c.batchSize}) must be a multiple of it, got ${c.miniBatchSize}`,
    );
  if (c.minLr > c.lr) throw new ConfigError('minLr', `must be ≤ lr (${c.lr}), got ${c.minLr}`);
  return c;
}

export function buildPpoConfig(o: { preset?: string; file?: string; overrides?: Partial<PpoConfig> } = {}): PpoConfig {
  return buildFromLayers(PPO_SETTINGS, PPO_PRESETS, validatePpoConfig, o);
}
