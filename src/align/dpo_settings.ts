/**
 * The settings of `llmts dpo` (Direct Preference Optimization and its variants): the loop's groups
 * (src/train/settings.ts), the shared preference groups (pref_settings.ts) and DPO's own with TRL's DPOConfig names
 * and defaults: `beta` 0.1, `loss_type` sigmoid (or ipo, hinge, robust), `label_smoothing` 0. Presets: `tiny` (tests,
 * seconds) and `quick`.
 */
import { ConfigError } from '../util/errors.js';
import { PEFT_SETTINGS } from './peft.js';
import { defineSettings, float, group, oneOf, str, type Values } from '../util/settings.js';
import { DISPLAY_SETTINGS, EVAL_SETTINGS, RUN_SETTINGS } from '../train/settings.js';
import { DPO_LOSS_TYPES } from './pref_losses.js';
import {
  buildFromLayers,
  checkPrefConfig,
  PREF_TINY_PRESET,
  prefDataSettings,
  prefOptimSettings,
} from './pref_settings.js';

const DPO = group('DPO', {
  beta: float(
    0.1,
    'β: how far the policy may move from the reference (larger = closer); the implicit reward is β·(log π − log π_ref).',
    { gt: 0 },
  ),
  lossType: oneOf(
    DPO_LOSS_TYPES,
    'sigmoid',
    "'sigmoid' (DPO), 'ipo' (per-token log-probs, (x − 1/2β)²), 'hinge' (SLiC: relu(1 − βx)) or 'robust' (noisy labels, with labelSmoothing).",
    { aliases: ['loss_type'] },
  ),
  labelSmoothing: float(
    0,
    'ε: the probability a preference label is flipped (sigmoid: conservative DPO; robust: its unbiased loss); 0 ≤ ε < 0.5.',
    { min: 0, max: 0.49, aliases: ['label_smoothing'] },
  ),
  referenceFrom: str(
    '',
    "The checkpoint of an earlier 'llmts dpo' run from the same model on the same data: use its reference log-probabilities instead of computing them again (a sweep over β); the model and the data are checked.",
  ),
});

/** Every setting of `llmts dpo`, in --help order. */
export const DPO_SETTINGS = defineSettings(
  {
    ...RUN_SETTINGS,
    ...prefDataSettings('llmts dpo'),
    ...DPO,
    ...PEFT_SETTINGS,
    ...prefOptimSettings(1e-6),
    ...EVAL_SETTINGS,
    ...DISPLAY_SETTINGS,
  },
  'llmts dpo',
);

export type DpoConfig = Values<typeof DPO_SETTINGS.table>;

export const DPO_DEFAULTS: Readonly<DpoConfig> = Object.freeze(DPO_SETTINGS.defaults());

export const DPO_PRESETS: Record<string, { help: string; config: Partial<DpoConfig> }> = {
  tiny: PREF_TINY_PRESET,
  quick: {
    help: 'a small model on a CPU: 1 epoch, lr 5e-6 with 10 warmup steps, 8 prompts a batch',
    config: { epochs: 1, lr: 5e-6, minLr: 5e-7, warmupSteps: 10, batchSize: 8 },
  },
};

export function validateDpoConfig(c: DpoConfig): DpoConfig {
  DPO_SETTINGS.checkRanges(c);
  checkPrefConfig(c, 'dpo');
  if (c.labelSmoothing > 0 && (c.lossType === 'hinge' || c.lossType === 'ipo'))
    throw new ConfigError('labelSmoothing', `applies to the sigmoid and robust losses, not ${c.lossType}; leave it 0`);
  return c;
}

export function buildDpoConfig(o: { preset?: string; file?: string; overrides?: Partial<DpoConfig> } = {}): DpoConfig {
  return buildFromLayers(DPO_SETTINGS, DPO_PRESETS, validateDpoConfig, o);
}
