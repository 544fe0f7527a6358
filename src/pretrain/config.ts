/**
 * Building a pretraining config from its layers, as nanoGPT's `configurator.py`: the defaults, then a preset, then a
 * JSON file, then the command line, each overriding the one before, then the checks. The settings themselves are
 * declared once in settings.ts; the presets are in presets.ts.
 */
import { ConfigError } from '../util/errors.js';
import { closestKey } from '../util/settings.js';
import { PRESETS } from './presets.js';
import { DEFAULTS, TRAIN_SETTINGS, validateConfig, type TrainConfig } from './settings.js';

/** A preset by name (ConfigError with the list when unknown). */
export function presetConfig(name: string): Partial<TrainConfig> {
  const p = PRESETS[name];
  if (!p)
    throw new ConfigError(
      'preset',
      `unknown preset '${name}'. Presets: ${Object.keys(PRESETS).join(', ')} (closest: '${closestKey(name, Object.keys(PRESETS))}')`,
    );
  return p.config;
}

/** Read a JSON config file: an object of settings (same names and types as the command line), and its preset if any. */
export function readConfigFile(file: string): Partial<TrainConfig> & { preset?: string } {
  const { values, extra } = TRAIN_SETTINGS.readFile(file, ['preset']);
  if (extra['preset'] !== undefined && typeof extra['preset'] !== 'string')
    throw new ConfigError('preset', `expected a preset name, got ${JSON.stringify(extra['preset'])}`, file);
  return extra['preset'] !== undefined ? { ...values, preset: extra['preset'] as string } : values;
}

/** Settings from `key=value` string pairs (the command line). */
export function parseOverrides(pairs: ReadonlyArray<readonly [string, string]>): Partial<TrainConfig> {
  return TRAIN_SETTINGS.fromPairs(pairs);
}

/** Build a config: defaults ← preset ← file ← overrides, then validate. */
export function buildConfig(o: { preset?: string; file?: string; overrides?: Partial<TrainConfig> } = {}): TrainConfig {
  const { preset: filePreset, ...fromFile } = o.file ? readConfigFile(o.file) : {};
  const presetName = o.preset ?? filePreset;
  const c: TrainConfig = {
    ...DEFAULTS,
    ...(presetName ? presetConfig(presetName) : {}),
    ...fromFile,
    ...(o.overrides ?? {}),
  };
  return validateConfig(c);
}
