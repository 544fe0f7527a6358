/**
 * The settings of `llmts sft` (supervised fine-tuning), each declared once: the loop's groups (src/train/settings.ts)
 * with fine-tuning defaults (TRL's SFTConfig where it has one: lr 2e-5, AdamW β2 0.999, no weight decay, 3 epochs),
 * and SFT's own (model folder, data files, held-out split, max length, epochs). Presets: `tiny` (tests, seconds)
 * and `quick`. Layers as `llmts train`: defaults ← preset ← JSON file ← command line.
 */
import { ConfigError } from '../util/errors.js';
import {
  bool,
  closestKey,
  defineSettings,
  float,
  group,
  int,
  oneOf,
  str,
  strings,
  type Values,
} from '../util/settings.js';
import { DISPLAY_SETTINGS, EVAL_SETTINGS, OPTIM_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import { PEFT_SETTINGS } from './peft.js';

const DATA = group('model and data', {
  model: str(
    '',
    'The pretrained model: a Hugging Face folder with config.json, model.safetensors and tokenizer.json (the first positional argument).',
    { aliases: ['model_name_or_path'] },
  ),
  data: strings(
    [],
    'Training data: TRL JSONL files, {"messages"} (conversational), {"prompt","completion"} or {"text"} rows (the positional arguments after the model).',
    { aliases: ['train_file'] },
  ),
  evalData: str('', "Held-out JSONL file for eval_loss ('' = hold out evalFraction of the training rows).", {
    aliases: ['eval_file'],
  }),
  evalFraction: float(
    0.1,
    'Fraction of the training rows held out for evaluation when there is no evalData (at least one row).',
    { gt: 0, max: 0.5 },
  ),
  badRows: oneOf(
    ['error', 'skip'],
    'error',
    "A malformed row: 'error' (stop, naming file and line) or 'skip' (count it, list it in the log).",
  ),
  maxLength: int(
    0,
    "Tokens per example at most; longer ones are truncated (kept from the start), counted and reported (0 = the model's context).",
    { min: 0, aliases: ['max_length', 'max_seq_length'] },
  ),
  epochs: float(3, 'Passes over the training rows (when maxSteps = 0).', { gt: 0, aliases: ['num_train_epochs'] }),
  completionOnly: bool(true, 'Loss on assistant / completion tokens only, the rest masked (false: on every token).', {
    aliases: ['assistant_only_loss', 'completion_only_loss'],
  }),
});

const OPTIM = {
  ...OPTIM_SETTINGS,
  ...group('optimisation', {
    maxSteps: int(0, 'Optimizer steps to take (0 = epochs × training rows / (batchSize · gradAccum), rounded up).', {
      min: 0,
      aliases: ['max_steps', 'steps', 'iters'],
    }),
    lr: float(2e-5, 'Peak learning rate (after warmup).', { gt: 0, max: 10, aliases: ['learning_rate'] }),
    minLr: float(0, 'Learning rate at the end of the cosine decay.', { min: 0, aliases: ['min_lr'] }),
    warmupSteps: int(0, 'Steps of linear warmup.', { min: 0, aliases: ['warmup_steps'] }),
    beta2: float(0.999, 'AdamW β2.', { min: 0, max: 0.999999, aliases: ['adam_beta2'] }),
    weightDecay: float(0, 'AdamW decoupled weight decay.', { min: 0, aliases: ['weight_decay'] }),
  }),
};

/** Every setting of `llmts sft`, in --help order. */
export const SFT_SETTINGS = defineSettings(
  { ...RUN_SETTINGS, ...DATA, ...OPTIM, ...PEFT_SETTINGS, ...EVAL_SETTINGS, ...DISPLAY_SETTINGS },
  'llmts sft',
);

/** An SFT run's settings: one field per row of the table above. */
export type SftConfig = Values<typeof SFT_SETTINGS.table>;

export const SFT_DEFAULTS: Readonly<SftConfig> = Object.freeze(SFT_SETTINGS.defaults());

/** Named presets: partial settings over the defaults. */
export const SFT_PRESETS: Record<string, { help: string; config: Partial<SftConfig> }> = {
  tiny: {
    help: 'tests and smoke runs: batch 4, lr 1e-3, 1 epoch, one evaluation at the end, no interval checkpoints',
    config: {
      batchSize: 4,
      lr: 1e-3,
      minLr: 1e-4,
      epochs: 1,
      evalInterval: 0,
      evalBatches: 4,
      finalEvalBatches: 0,
      checkpointInterval: 0,
      logInterval: 1,
    },
  },
  quick: {
    help: 'a small model on a CPU: 1 epoch, lr 1e-4 with 10 warmup steps, batch 8',
    config: { epochs: 1, lr: 1e-4, minLr: 1e-5, warmupSteps: 10, batchSize: 8 },
  },
};

/** Type and range of every field, then the checks between fields. */
export function validateSftConfig(c: SftConfig): SftConfig {
  SFT_SETTINGS.checkRanges(c);
  if (!c.model) throw new ConfigError('model', 'give the pretrained model folder: llmts sft <model-dir> <data.jsonl>');
  if (!c.data.length) throw new ConfigError('data', 'give the training data: llmts sft <model-dir> <data.jsonl …>');
  if (c.minLr > c.lr) throw new ConfigError('minLr', `must be ≤ lr (${c.lr}), got ${c.minLr}`);
  if (c.maxLength === 1)
    throw new ConfigError('maxLength', 'must be 0 (the model context) or ≥ 2: a target needs a token before it');
  return c;
}

/** Build a config: defaults ← preset ← file ← overrides, then validate. */
export function buildSftConfig(o: { preset?: string; file?: string; overrides?: Partial<SftConfig> } = {}): SftConfig {
  let fromFile: Partial<SftConfig> = {};
  let presetName = o.preset;
  if (o.file) {
    const { values, extra } = SFT_SETTINGS.readFile(o.file, ['preset']);
    if (extra['preset'] !== undefined && typeof extra['preset'] !== 'string')
      throw new ConfigError('preset', `expected a preset name, got ${JSON.stringify(extra['preset'])}`, o.file);
    fromFile = values;
    presetName ??= extra['preset'] as string | undefined;
  }
  let preset: Partial<SftConfig> = {};
  if (presetName) {
    const p = SFT_PRESETS[presetName];
    if (!p)
      throw new ConfigError(
        'preset',
        `unknown preset '${presetName}'. Presets: ${Object.keys(SFT_PRESETS).join(', ')} (closest: '${closestKey(presetName, Object.keys(SFT_PRESETS))}')`,
      );
    preset = p.config;
  }
  return validateSftConfig({ ...SFT_DEFAULTS, ...preset, ...fromFile, ...(o.overrides ?? {}) });
}
