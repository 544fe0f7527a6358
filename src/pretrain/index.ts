/** GPT pretraining, the recipe on top of the loop (src/train/): its settings table, presets, config layers and run. */
export { TRAIN_SETTINGS, DEFAULTS, validateConfig, toModelConfig, cacheDirOf, type TrainConfig } from './settings.js';
export { PRESETS } from './presets.js';
export { buildConfig, parseOverrides, readConfigFile, presetConfig } from './config.js';
export { pretrain, tokenizerHash, type PretrainOptions, type PretrainResult } from './pretrain.js';
export {
  countParams,
  flopsPerToken,
  trainingMemory,
  formatCount,
  formatBytes,
  formatFlops,
  type ParamCount,
  type MemoryEstimate,
} from './estimate.js';
