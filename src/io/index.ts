/** Public API of src/io: safetensors, sharded checkpoints, 16-bit floats, Hugging Face config.json mapping. */
export * from './half.js';
export * from './safetensors.js';
export * from './checkpoint.js';
export * from './hf_config.js';
export * from './hf_weights.js';
