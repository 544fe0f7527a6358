/**
 * llm.ts public API. The few things most programs need:
 *
 *   const backend = await initBackend();                  // wasm SIMD + threads where it works, else ref
 *   const model = await loadModel('path/to/hf-folder');   // config.json + model.safetensors
 *   const loss = tidy(() => { const l = model.loss(ids, targets, B, T); backward(l); return l; });
 *   const opt = new AdamW(model.params, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
 *   opt.step({ gradScale: clipCoefficient(await gradNorm(model.params), 1.0) }); opt.zeroGrad();
 *   await saveModel(model, 'out/folder');
 */
export type { Backend, DType, HostArray } from './backend/backend.js';
export { initBackend, getBackend, setBackend } from './backend/registry.js';
export type { BackendName } from './backend/registry.js';
export { Tensor, tensor, zeros, full, empty, tidy, Scope, noGrad, keep } from './tensor/tensor.js';
export * as ops from './tensor/ops.js';
export { backward } from './tensor/autograd.js';
export type { ModelConfig, ModelFamily } from './model/config.js';
export { CausalLM, shiftTargets } from './model/model.js';
export type { ForwardOptions } from './model/model.js';
export type { ForwardCapture } from './model/model.js';
export { KVCache } from './model/kv_cache.js';
export { setDecodeGraphs } from './model/decode_graph.js';
export { initModel } from './model/init.js';
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
export type { CausalLMOptions } from './model/model.js';
export type { HeadKind } from './model/params.js';
export { dpoLoss } from './rlhf/dpo.js';
export type { PreferencePair, DpoOutput } from './rlhf/dpo.js';
export { loadModel, saveModel, loadConfig, loadRewardModel, saveRewardModel } from './model/hf/folder.js';
export { AdamW } from './optim/adamw.js';
export type { AdamWOptions } from './optim/adamw.js';
export { gradNorm, clipCoefficient } from './optim/clip.js';
export { Rng } from './util/rng.js';
export * from './util/errors.js';
export * from './tokenizer/index.js';
export * from './generate/index.js';
export * from './chat/index.js';
export { learningRate, makeSchedule } from './optim/schedule.js';
export type { ScheduleOptions } from './optim/schedule.js';
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
export { readAdapterConfig, setAdapterBase, isAdapterFolder, type AdapterConfig } from './model/hf/adapter.js';
export type { QuantKind, QuantizeReport } from './model/quantize.js';
export { modelFromHf, rewardModelFromHf } from './model/hf/weights.js';
export type { FromHfOptions } from './model/hf/weights.js';
export { tokenizerFromJson } from './tokenizer/from_json.js';
export { parseGguf, serializeGguf, decodeGgufTensor, ggufTensorBytes, ggufGet } from './formats/gguf.js';
export type { GgufFile, GgufValue, GgufTensorInfo, GgufTensorToWrite } from './formats/gguf.js';
export { modelFromGguf, ggufFromModel, type GgufExportType } from './model/gguf/weights.js';
export { loadGgufModel, saveGguf, saveGgufLora } from './model/gguf/file.js';
export { ggufFromLora } from './model/gguf/lora.js';
export { readGgufFile, readGgufHeader } from './formats/gguf_file.js';
export { tokenizerFromGguf, tokenizerToGguf } from './tokenizer/gguf.js';
export {
  readTrlDataset,
  parseTrlJsonl,
  writeTrlDataset,
  formatTrlJsonl,
  rankingToPairs,
  TrlRowError,
} from './data/trl.js';
export type {
  TrlDataset,
  TrlKind,
  TrlForm,
  TrlRow,
  TrlMessage,
  TrlText,
  LanguageModelingRow,
  PromptCompletionRow,
  PreferenceRow,
  UnpairedPreferenceRow,
  RankingRow,
} from './data/trl.js';
export { sft } from './align/sft.js';
export type { SftOptions, SftResult } from './align/sft.js';
export { SFT_SETTINGS, SFT_PRESETS, buildSftConfig, type SftConfig } from './align/sft_settings.js';
export { encodeSftRow, renderWithSpans, type SftExample, type SftRow } from './align/sft_data.js';
export { trainRewardModel, type RewardOptions, type RewardResult } from './align/reward.js';
export { REWARD_SETTINGS, REWARD_PRESETS, buildRewardConfig, type RewardConfig } from './align/reward_settings.js';
export { dpo, type DpoOptions, type DpoResult } from './align/dpo.js';
export { DPO_SETTINGS, DPO_PRESETS, buildDpoConfig, type DpoConfig } from './align/dpo_settings.js';
export { bradleyTerryLoss, dpoFamilyLoss, DPO_LOSS_TYPES, type DpoLossType } from './align/pref_losses.js';
export { kto, type KtoOptions, type KtoResult } from './align/kto.js';
export { KTO_SETTINGS, KTO_PRESETS, buildKtoConfig, type KtoConfig } from './align/kto_settings.js';
export { ktoLoss, klReferencePoint, type KtoLossOptions } from './align/kto_loss.js';
export { judgePairs, wilsonInterval, Z95, type Judge, type PairJudgement } from './align/eval/judge.js';
export {
  evalMultipleChoice,
  readChoiceQuestions,
  encodePair,
  type ChoiceQuestion,
  type MultipleChoiceReport,
} from './align/eval/multiple_choice.js';
export {
  bestIndex,
  bestOfN,
  bestOfNKl,
  distinctRatio,
  eosRate,
  preferenceProbability,
  calibrationBins,
  type CalibrationBin,
} from './align/eval/stats.js';
export { ppo, type PpoOptions, type PpoResult } from './align/ppo.js';
export { PPO_SETTINGS, PPO_PRESETS, buildPpoConfig, type PpoConfig } from './align/ppo_settings.js';
export { ppoLoss, prepareBatch, type PpoBatch } from './align/ppo_objective.js';
export {
  gae,
  whiten,
  klPerToken,
  shapedRewards,
  AdaptiveKlController,
  FixedKlController,
  type KlController,
  type KlEstimator,
} from './align/rl_math.js';
export { engineReplySampler, scoreRollouts, replyLogprobs, type ReplySampler, type Rollout } from './align/rollout.js';
export { encodePreferenceRow, type PrefPair } from './align/pref_data.js';
export * from './inspect/index.js';
export {
  loadOracle,
  OracleError,
  type CompareItem,
  type CompareMeta,
  type LoadedOracle,
  type Oracle,
  type OracleModule,
  type OracleOptions,
  type ReplyMeta,
  type ScoreItem,
  type Verdict,
} from './align/oracle.js';
export { OracleProcess, type OracleProcessOptions } from './align/oracle_process.js';
export {
  getTask,
  TASKS,
  taskDemonstrations,
  taskPrompts,
  type AlignTask,
  type TaskItem,
  type TaskSplit,
} from './align/tasks/index.js';
export {
  FEEDBACK_TYPES,
  parseSamples,
  rateSamples,
  readSamples,
  type BatchRater,
  type FeedbackType,
  type RateOptions,
  type RateResult,
  type SampleRow,
} from './align/rate.js';
export { createServer, type LlmServer, type ServerOptions } from './server/server.js';
export { chatStops, type ServedModel } from './server/served_model.js';
export type { ChatCompletionRecord } from './server/server_state.js';
export { HttpError, type Route, type RouteContext } from './server/routes.js';
export {
  FeedbackStore,
  exportFeedback,
  feedbackStats,
  checkpointHash,
  FeedbackInputError,
  UnknownRecordError,
  FeedbackDatabaseError,
  EXPORT_TYPES,
  FLAG_REASONS,
  JUDGMENT_KINDS,
  SCHEMA_VERSION,
  type ExportType,
  type ExportResult,
  type FeedbackStats,
  type Judgment,
  type JudgmentInput,
  type JudgmentKind,
  type ReplyInput,
  type TokenLogprob,
  type Message as FeedbackMessage,
  type Conversation as FeedbackConversation,
} from './feedback/index.js';
export { feedbackRoute, replyRecorder, type FeedbackRouteOptions } from './server/feedback_api.js';
// RLOO (issue 11)
export { rloo, type RlooOptions, type RlooResult } from './align/rloo.js';
export { RLOO_SETTINGS, RLOO_PRESETS, buildRlooConfig, type RlooConfig } from './align/rloo_settings.js';
export { rlooAdvantages, rlooLoss, prepareRlooBatch, type RlooBatch } from './align/rloo_objective.js';
export { grpo, type GrpoOptions, type GrpoResult } from './align/grpo.js';
export { GRPO_SETTINGS, GRPO_PRESETS, buildGrpoConfig, type GrpoConfig } from './align/grpo_settings.js';
export { grpoAdvantages, grpoLoss, prepareGrpoBatch, type GrpoBatch } from './align/grpo_objective.js';
export {
  resolveLoss,
  resolveLossSync,
  staged,
  type LossResult,
  type StagedLoss,
} from './train/staged_loss.js';
export { loadRewardFunction, RewardFunctionError, type RewardFunction } from './align/reward_fn.js';
export { batchReplySampler } from './align/batch_sampler.js';

// the chat page's feedback loop (issue 12): replies linked to the store, blind Compare, Improve the model
export { replyLinker, type ReplyLinker, type ReplyLinkAnswer } from './server/reply_link.js';
export { compareRoute, compareStats, wilson, type CompareSide } from './server/compare_route.js';
export { ImproveJob, improveRoute, type ImproveOptions } from './server/improve_job.js';
export { switchServedModel } from './server/switch_model.js';
// align verify: the whole alignment proof in one call (src/align/verify.ts), its fixed settings
export {
  alignVerify,
  flipPreferences,
  type VerifyFigures,
  type VerifyOptions,
  type VerifyResult,
} from './align/verify.js';
export { FULL as VERIFY_FULL, QUICK as VERIFY_QUICK, type VerifySettings } from './align/verify_settings.js';
// float32 decoding with fused q/k/v and gate/up linears (issue 17)
export { fuseModel } from './model/quantize.js';
