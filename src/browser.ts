/**
 * llm.ts in a browser (dist/browser.js): everything that runs in a page or a Web Worker, and nothing that reads
 * files. No module in its static import graph imports a Node built-in (test/browser_graph.test.ts checks); the
 * wasm backend fetches build/kernels-*.wasm next to dist/ and runs its threads as module Web Workers when the page
 * is cross-origin isolated (COOP same-origin + COEP require-corp), else on one thread (describe() says why).
 *
 *   import { initBackend, modelFromHf, tokenizerFromJson, generate } from 'llmts/browser';
 *   const backend = await initBackend('wasm', { threads: navigator.hardwareConcurrency });
 *   const [cfg, weights, tokJson] = await Promise.all([
 *     fetch(`${dir}/config.json`).then((r) => r.json()),
 *     fetch(`${dir}/model.safetensors`).then((r) => r.arrayBuffer()),
 *     fetch(`${dir}/tokenizer.json`).then((r) => r.text()),
 *   ]);
 *   const model = modelFromHf(cfg, new Uint8Array(weights));
 *   const tok = tokenizerFromJson(tokJson);
 *   const out = await generate(model, tok.encode('Once upon a time'), { maxTokens: 32, tokenizer: tokenizerCodec(tok) });
 *
 * A page's main thread may not block, so the wasm backend there spins while worker threads finish a kernel;
 * long generations are smoother from a Worker. Chat templates need '@huggingface/jinja' (a bundler resolves it;
 * without one, an import map entry).
 */
// backends
export type { Backend, DType, HostArray } from './backend/backend.js';
export { initBackend, getBackend, setBackend } from './backend/registry.js';
export type { BackendName, InitOptions } from './backend/registry.js';
// tensors, autograd, optimizer
export { Tensor, tensor, zeros, full, empty, tidy, noGrad, keep } from './tensor/tensor.js';
export * as ops from './tensor/ops.js';
export { backward } from './tensor/autograd.js';
export { AdamW } from './optim/adamw.js';
export type { AdamWOptions } from './optim/adamw.js';
export { gradNorm, clipCoefficient } from './optim/clip.js';
export { learningRate, makeSchedule } from './optim/schedule.js';
export type { ScheduleOptions } from './optim/schedule.js';
// model
export type { ModelConfig, ModelFamily } from './model/config.js';
export { CausalLM, shiftTargets } from './model/model.js';
export type { ForwardOptions } from './model/model.js';
export { KVCache } from './model/kv_cache.js';
export { initModel } from './model/init.js';
export { quantizeModel, dequantizeModel, fileQuantization, describeWeights, QUANT_KINDS } from './model/quantize.js';
export {
  addLora,
  loadLora,
  mergeLora,
  loraParams,
  loraKeys,
  linearModules,
  targetModules,
  ALL_LINEAR,
  type LoraOptions,
  type LoraWeight,
} from './model/lora.js';
export type { QuantKind, QuantizeReport } from './model/quantize.js';
// preference training: reward model, sequence log-probabilities, DPO
export { RewardModel, SCORE_WEIGHT } from './model/reward.js';
export { logSigmoidLoss, sequenceLogProbs } from './model/losses.js';
export {
  perplexity,
  perplexityWindows,
  type PerplexityOptions,
  type PerplexityResult,
  type PerplexityWindow,
} from './model/perplexity.js';
export { continuationLogprobs, type ContinuationScore } from './model/continuations.js';
export { dpoLoss, type PreferencePair, type DpoOutput } from './rlhf/dpo.js';
// Hugging Face models and safetensors from bytes
export { modelFromHf, rewardModelFromHf, type FromHfOptions } from './model/hf/weights.js';
export { fromHfConfig, toHfConfig } from './model/hf/config.js';
export * from './formats/safetensors_bytes.js';
// GGUF (llama.cpp's files) from and to bytes
export { parseGguf, serializeGguf, decodeGgufTensor, type GgufFile, type GgufValue } from './formats/gguf.js';
export { modelFromGguf, ggufFromModel } from './model/gguf/weights.js';
export { ggufFromLora } from './model/gguf/lora.js';
export { tokenizerFromGguf, tokenizerToGguf } from './tokenizer/gguf.js';
// tokenizer (from tokenizer.json text or object), generation, chat
export type {
  DecodeOptions,
  EncodeOptions,
  SpecialPolicy,
  SpecialToken,
  TextTokenizer,
  TokenizerConfig,
} from './tokenizer/types.js';
export { Tokenizer, type BpeTokenizerSpec, type UnicodeNormalization } from './tokenizer/tokenizer.js';
export { CharTokenizer } from './tokenizer/char_tokenizer.js';
export {
  SpmTokenizer,
  llamaSpmLayout,
  SPACE_MARK,
  type SpmStep,
  type SpmTokenizerSpec,
} from './tokenizer/spm_tokenizer.js';
export { StreamDecoder, type TokenBytesSource } from './tokenizer/stream_decoder.js';
export { trainBpe, trainBpeWithStats, countWords, type TrainBpeOptions, type TrainStats } from './tokenizer/trainer.js';
export {
  toTokenizerJson,
  fromTokenizerJson,
  toTokenizerConfigJson,
  fromTokenizerConfigJson,
  type WriteOptions,
} from './tokenizer/hf_json.js';
export { tokenizerFromJson } from './tokenizer/from_json.js';
export {
  PATTERN_NAMES,
  GPT2_PATTERN,
  CL100K_PATTERN,
  LLAMA3_PATTERN,
  parsePatternName,
  compilePattern,
  type PatternName,
} from './tokenizer/patterns.js';
export { encodeUtf8, decodeUtf8, BYTE_TO_CHAR } from './tokenizer/bytes.js';
export * from './generate/index.js';
export * from './chat/index.js';
// utilities
export { Rng } from './util/rng.js';
export * from './util/errors.js';
// seeing inside: captured attention and residuals, the logit lens, the inspection page (no Node built-in)
export * from './inspect/index.js';
// float32 decoding with fused q/k/v and gate/up linears (issue 17)
export { fuseModel } from './model/quantize.js';
