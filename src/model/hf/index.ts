/**
 * The Hugging Face mapping beside the model: config.json ⇄ ModelConfig (config.ts), HF tensor names ⇄ parameters and
 * a CausalLM/RewardModel from tensors in memory (weights.ts, browser-safe), and model folders in and out (folder.ts,
 * Node only). The bytes themselves are src/formats/.
 */
export * from './config.js';
export * from './weights.js';
export * from './folder.js';
