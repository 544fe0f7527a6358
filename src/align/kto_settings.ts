/**
 * The settings of `llmts kto` (Kahneman–Tversky Optimization on unpaired thumbs up / down): the loop's groups
 * (src/train/settings.ts), the shared preference groups (pref_settings.ts, with batches of rows instead of prompts)
 * and KTO's own with TRL's KTOConfig names and defaults: `beta` 0.1, `desirable_weight` 1, `undesirable_weight` 1,
 * learning rate 1e-6. Presets: `tiny` (tests, seconds) and `quick`.
 */
import { DISPLAY_SETTINGS, EVAL_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import { ConfigError } from '../util/errors.js';
import { PEFT_SETTINGS } from './peft.js';
import { defineSettings, float, group, type Values } from '../util/settings.js';
import {
  buildFromLayers,
  checkPrefConfig,
  PREF_TINY_PRESET,
  prefDataSettings,
  prefOptimSettings,
} from './pref_settings.js';

const KTO = group('KTO', {
  beta: float(0.1, 'β: the implied reward is β·(log π − log π_ref); larger keeps the policy closer to the reference.', {
    gt: 0,
  }),
  desirableWeight: float(
    1,
    "λ_D: the weight of a desirable (thumbs-up) row's loss; with more of one kind, weight the rarer one up (TRL: λ_D·n_D / λ_U·n_U within [1, 4/3]).",
    { min: 0, aliases: ['desirable_weight'] },
  ),
  undesirableWeight: float(1, "λ_U: the weight of an undesirable (thumbs-down) row's loss.", {
    min: 0,
    aliases: ['undesirable_weight'],
  }),
});

/** Every setting of `llmts kto`, in --help order. */
export const KTO_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...prefDataSettings(
      'llmts kto',
      'Unpaired preference data: TRL JSONL files of {"prompt","completion","label": true|false} rows (thumbs up / down), or {"prompt","chosen","rejected"} rows, each unpaired into a desirable and an undesirable row (the positional arguments after the model).',
    ),
    ...KTO,
    ...PEFT_SETTINGS,
    ...prefOptimSettings(1e-6, {
      default: 8,
      help: "Rows per micro-batch (≥ 2; TRL's default 8): the rows are shuffled once and cut into fixed batches; each row's KL pair is its prompt with the previous row's completion.",
    }),
    ...EVAL_SETTINGS,
    ...DISPLAY_SETTINGS,
  },
  'llmts kto',
);

export type KtoConfig = Values<typeof KTO_SETTINGS.table>;

export const KTO_DEFAULTS: Readonly<KtoConfig> = Object.freeze(KTO_SETTINGS.defaults());

export const KTO_PRESETS: Record<string, { help: string; config: Partial<KtoConfig> }> = {
  tiny: {
    help: 'tests and smoke runs: 8 rows a batch, lr 1e-3, 1 epoch, one evaluation at the end, no interval checkpoints',
    config: { ...PREF_TINY_PRESET.config, batchSize: 8 },
  },
  quick: {
    help: 'a small model on a CPU: 1 epoch, lr 5e-6 with 10 warmup steps, 16 rows a batch',
    config: { epochs: 1, lr: 5e-6, minLr: 5e-7, warmupSteps: 10, batchSize: 16 },
  },
};

export function validateKtoConfig(c: KtoConfig): KtoConfig {
  KTO_SETTINGS.checkRanges(c);
  checkPrefConfig(c, 'kto');
  if (c.batchSize < 2)
    throw new ConfigError(
      'batchSize',
      `must be ≥ 2 for KTO: the KL reference point pairs each row's prompt with another row's completion (got ${c.batchSize})`,
    );
  if (c.desirableWeight === 0 && c.undesirableWeight === 0)
    throw new ConfigError('desirableWeight', 'desirableWeight and undesirableWeight are both 0: nothing to learn');
  return c;
}

export function buildKtoConfig(o: { preset?: string; file?: string; overrides?: Partial<KtoConfig> } = {}): KtoConfig {
  return buildFromLayers(KTO_SETTINGS, KTO_PRESETS, validateKtoConfig, o);
}
