/**
 * llama.cpp's GGUF mapping: tensor names and layouts (./tensors.ts), hyper-parameters (./hparams.ts), a model from a
 * parsed file and a file from a model (./weights.ts, browser-safe), a model's LoRA adapters as llama.cpp's adapter file
 * (./lora.ts), files on disk (./file.ts, Node). The bytes are
 * src/formats/gguf.ts; the tokenizer half is src/tokenizer/gguf.ts.
 */
export { modelFromGguf, ggufFromModel, GGUF_EXPORT_TYPES, type GgufExportType, type ToGgufOptions } from './weights.js';
export { hparamsFromGguf, hparamsToGguf, FILE_TYPE } from './hparams.js';
export { tensorMappings, relayout, type TensorMapping, type Layout } from './tensors.js';
export { isGgufPath, loadGgufModel, loadGgufConfig, saveGguf, saveGgufLora } from './file.js';
export { ggufFromLora } from './lora.js';
