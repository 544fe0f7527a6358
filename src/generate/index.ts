/** Generation: the sampler, the KV-cached decoding engine, streaming, stop strings, batched sampling of ragged prompts. */
export * from './interfaces.js';
export * from './sampler.js';
export * from './stop.js';
export * from './engine.js';
export * from './prompt_cache.js';
export * from './batch.js';
export * from './grammar/index.js';
export * from './speculative.js';
export * from './step_batcher.js';
