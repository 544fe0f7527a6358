/**
 * File formats: bytes ⇄ named typed arrays, no model. Safetensors (whole files, headers, chosen tensors, and the
 * browser-safe byte-level half), 16-bit floats, and sharded checkpoints (model.safetensors.index.json). Depends on
 * src/util only; the Hugging Face name and config mapping that turns these arrays into a model is src/model/hf/.
 */
export * from './half.js';
export * from './safetensors.js';
export * from './checkpoint.js';
export * from './gguf.js';
export * from './gguf_types.js';
export * from './gguf_file.js';
