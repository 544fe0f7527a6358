/**
 * What `llmts reward` and `llmts dpo` share in their settings: the model-and-data group (a fine-tuned model folder,
 * preference JSONL files, the held-out split by prompt, maxLength, epochs), the optimisation group over the loop's
 * (batches of prompts, every pair of a prompt together), and building a config from defaults ← preset ← JSON file
 * ← command line. The tables themselves are reward_settings.ts and dpo_settings.ts.
 */
import { ConfigError } from '../util/errors.js';
import {
  closestKey,
  float,
  group,
  int,
  oneOf,
  str,
  strings,
  type Settings,
  type SettingsTable,
  type Values,
} from '../util/settings.js';
import { OPTIM_SETTINGS } from '../train/settings.js';

/** `dataHelp`: what the data are, when not preference pairs (KTO's unpaired rows). */
export function prefDataSettings(command: string, dataHelp?: string) {
  return group('model and data', {
    model: str(
      '',
      `The fine-tuned model to start from: a Hugging Face folder with config.json, model.safetensors and tokenizer.json, e.g. an 'llmts sft' checkpoint (the first positional argument).`,
      { aliases: ['model_name_or_path'] },
    ),
    data: strings(
      [],
      dataHelp ??
        `Preference data: TRL JSONL files of {"prompt","chosen","rejected"} rows (optional "margin") or {"prompt","completions","ranking"} rows (the positional arguments after the model).`,
      { aliases: ['train_file'] },
    ),
    evalData: str('', "Held-out JSONL file ('' = hold out the last evalFraction of the prompts).", {
      aliases: ['eval_file'],
    }),
    evalFraction: float(
      0.1,
      `Fraction of the prompts held out for evaluation when there is no evalData (at least one) in ${command}.`,
      { gt: 0, max: 0.5 },
    ),
    badRows: oneOf(
      ['error', 'skip'],
      'error',
      "A malformed row: 'error' (stop, naming file and line) or 'skip' (count it, list it in the log).",
    ),
    maxLength: int(
      0,
      "Tokens of prompt + reply at most; longer pairs are dropped and counted (0 = the model's context).",
      { min: 0, aliases: ['max_length'] },
    ),
    epochs: float(1, 'Passes over the training prompts (when maxSteps = 0).', { gt: 0, aliases: ['num_train_epochs'] }),
  });
}

/** `batch`: batchSize's default and what it counts, when not 4 prompts (KTO: rows). */
export function prefOptimSettings(lr: number, batch?: { default: number; help: string }) {
  return {
    ...OPTIM_SETTINGS,
    ...group('optimisation', {
      batchSize: int(
        batch?.default ?? 4,
        batch?.help ?? 'Prompts per micro-batch: each brings all its pairs (a ranking row its C(K,2) pairs).',
        {
          min: 1,
          aliases: ['batch_size', 'per_device_train_batch_size'],
        },
      ),
      maxSteps: int(
        0,
        'Optimizer steps to take (0 = epochs × training prompts / (batchSize · gradAccum), rounded up).',
        { min: 0, aliases: ['max_steps', 'steps', 'iters'] },
      ),
      lr: float(lr, 'Peak learning rate (after warmup).', { gt: 0, max: 10, aliases: ['learning_rate'] }),
      minLr: float(0, 'Learning rate at the end of the cosine decay.', { min: 0, aliases: ['min_lr'] }),
      warmupSteps: int(0, 'Steps of linear warmup.', { min: 0, aliases: ['warmup_steps'] }),
      beta2: float(0.999, 'AdamW β2.', { min: 0, max: 0.999999, aliases: ['adam_beta2'] }),
      weightDecay: float(0, 'AdamW decoupled weight decay.', { min: 0, aliases: ['weight_decay'] }),
    }),
  };
}

/** The checks every preference config needs. */
export function checkPrefConfig(
  c: { model: string; data: string[]; lr: number; minLr: number; maxLength: number },
  command: string,
): void {
  if (!c.model)
    throw new ConfigError('model', `give the fine-tuned model folder: llmts ${command} <model-dir> <prefs.jsonl>`);
  if (!c.data.length)
    throw new ConfigError('data', `give the preference data: llmts ${command} <model-dir> <prefs.jsonl …>`);
  if (c.minLr > c.lr) throw new ConfigError('minLr', `must be ≤ lr (${c.lr}), got ${c.minLr}`);
  if (c.maxLength === 1) throw new ConfigError('maxLength', 'must be 0 (the model context) or ≥ 2');
}

/** Build a config: defaults ← preset ← file ← overrides, then validate. */
export function buildFromLayers<T extends SettingsTable>(
  S: Settings<T>,
  presets: Record<string, { config: Partial<Values<T>> }>,
  validate: (c: Values<T>) => Values<T>,
  o: { preset?: string; file?: string; overrides?: Partial<Values<T>> },
): Values<T> {
  let fromFile: Partial<Values<T>> = {};
  let presetName = o.preset;
  if (o.file) {
    const { values, extra } = S.readFile(o.file, ['preset']);
    if (extra['preset'] !== undefined && typeof extra['preset'] !== 'string')
      throw new ConfigError('preset', `expected a preset name, got ${JSON.stringify(extra['preset'])}`, o.file);
    fromFile = values;
    presetName ??= extra['preset'] as string | undefined;
  }
  let preset: Partial<Values<T>> = {};
  if (presetName) {
    const p = presets[presetName];
    if (!p)
      throw new ConfigError(
        'preset',
        `unknown preset '${presetName}'. Presets: ${Object.keys(presets).join(', ')} (closest: '${closestKey(presetName, Object.keys(presets))}')`,
      );
    preset = p.config;
  }
  return validate({ ...S.defaults(), ...preset, ...fromFile, ...(o.overrides ?? {}) });
}

/** The `tiny` preset of `reward` and `dpo`: tests and smoke runs. */
export const PREF_TINY_PRESET = {
  help: 'tests and smoke runs: 4 prompts a batch, lr 1e-3, 1 epoch, one evaluation at the end, no interval checkpoints',
  config: {
    batchSize: 4,
    lr: 1e-3,
    minLr: 1e-4,
    epochs: 1,
    evalInterval: 0,
    evalBatches: 50,
    finalEvalBatches: 0,
    checkpointInterval: 0,
    logInterval: 1,
  },
} as const;
