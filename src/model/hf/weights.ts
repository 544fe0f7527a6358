/**
 * A Hugging Face model from what its folder holds, already in memory: the parsed `config.json` and the tensors of
 * `model.safetensors` (decoded, or the file's bytes) → CausalLM. No file access and no Node built-ins, so it runs in a
 * browser (fetch the two files, call `modelFromHf`); ./folder.ts's `loadModel` reads a folder and calls it.
 *
 *   const model = modelFromHf(await (await fetch(`${dir}/config.json`)).json(),
 *                             new Uint8Array(await (await fetch(`${dir}/model.safetensors`)).arrayBuffer()));
 *
 * Every parameter the config implies must be present with its exact shape and a floating-point dtype; tensors the
 * config does not use are refused (apart from buffers transformers also writes: attn.bias, rotary inv_freq).
 */
import type { Backend } from '../../backend/backend.js';
import { getBackend } from '../../backend/registry.js';
import { FileFormatError, ShapeError } from '../../util/errors.js';
import { tensor, vacantTensor } from '../../tensor/tensor.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ModelConfig } from '../config.js';
import { CausalLM } from '../model.js';
import { embeddingName, paramSpecs, type ParamSpec } from '../params.js';
import { RewardModel, SCORE_WEIGHT } from '../reward.js';
import { fromHfConfig } from './config.js';
import { splitFused } from './fused_projections.js';
import { decodeSafetensors, type SafetensorsDtype, type StoredTensor } from '../../formats/safetensors_bytes.js';

export interface FromHfOptions {
  /** Backend of the parameters (default: the current one). */
  backend?: Backend;
  /** Names the source in errors (a folder or URL; default '<memory>'). */
  source?: string;
  /**
   * The tensors hold the norm gains themselves (a GGUF file: llama.cpp's converter added Gemma's 1), not gain −
   * config.normOffset as a Hugging Face checkpoint stores them. Default false.
   */
  gainsHeld?: boolean;
  /**
   * Parameters to create vacant (vacantTensor: a shape, no memory): their values live elsewhere (a GGUF file's
   * linears, to be quantised from there). Their stored entries are checked for shape only.
   */
  vacant?: ReadonlySet<string>;
}

/** The dtype each parameter had on disk, so saving writes it back the same way. */
const storedDtypes = new WeakMap<CausalLM | RewardModel, Map<string, SafetensorsDtype>>();

/** The on-disk dtype of each parameter of a model made by `modelFromHf` / `rewardModelFromHf` (else undefined). */
export function storedDtypesOf(model: CausalLM | RewardModel): ReadonlyMap<string, SafetensorsDtype> | undefined {
  return storedDtypes.get(model);
}

/**
 * Build a CausalLM from a config (config.json's parsed object, or a ModelConfig) and its weights (the bytes of a
 * safetensors file, or tensors by name as `decodeSafetensors`/`readSafetensors` return them).
 */
export function modelFromHf(
  config: ModelConfig | Record<string, unknown>,
  weights: Uint8Array | ReadonlyMap<string, StoredTensor>,
  opts: FromHfOptions = {},
): CausalLM {
  const { where, cfg, stored } = checkpointInputs(config, weights, opts);
  if (stored.has(SCORE_WEIGHT)) {
    throw new FileFormatError(
      'E_UNKNOWN_TENSOR',
      where,
      `holds '${SCORE_WEIGHT}': this is a reward model (a sequence classifier), not a language model — load it with loadRewardModel`,
      SCORE_WEIGHT,
    );
  }
  const { params, dtypes } = paramsFromStored(
    paramSpecs(cfg),
    stored,
    where,
    cfg,
    opts.backend ?? getBackend(),
    [],
    opts.gainsHeld ? 0 : (cfg.normOffset ?? 0),
    opts.vacant,
  );
  if (cfg.tieWordEmbeddings && stored.has('lm_head.weight')) {
    const a = stored.get('lm_head.weight')!.data,
      b = stored.get(embeddingName(cfg))!.data;
    if (a.length !== b.length) throw new ShapeError('lm_head.weight does not match the tied embedding');
  }
  const model = new CausalLM(cfg, params);
  storedDtypes.set(model, dtypes);
  return model;
}

/**
 * A reward model (transformers' *ForSequenceClassification with one label: the body and `score.weight` [1, C]) from
 * its config and weights, as modelFromHf. A language-model checkpoint has no score head: that is a named error that
 * says to start one with RewardModel.fromCausalLM.
 */
export function rewardModelFromHf(
  config: ModelConfig | Record<string, unknown>,
  weights: Uint8Array | ReadonlyMap<string, StoredTensor>,
  opts: FromHfOptions = {},
): RewardModel {
  const { where, cfg, stored } = checkpointInputs(config, weights, opts);
  if (!stored.has(SCORE_WEIGHT)) {
    throw new FileFormatError(
      'E_MISSING_TENSOR',
      where,
      `tensor '${SCORE_WEIGHT}' is missing: this is not a reward model (a language model? start a reward model from it with RewardModel.fromCausalLM)`,
      SCORE_WEIGHT,
    );
  }
  const labels = labelCount(cfg.hf ?? {});
  if (labels !== 1)
    throw new FileFormatError(
      'E_TENSOR_SHAPE',
      where,
      `a reward model has one label; config.json has ${labels}`,
      SCORE_WEIGHT,
    );
  const specs: ParamSpec[] = [
    ...paramSpecs(cfg, 'none'),
    { name: SCORE_WEIGHT, shape: [1, cfg.hiddenSize], init: 'normal', decay: true },
  ];
  const { params, dtypes } = paramsFromStored(
    specs,
    stored,
    where,
    cfg,
    opts.backend ?? getBackend(),
    ['lm_head.weight'],
    opts.gainsHeld ? 0 : (cfg.normOffset ?? 0),
  );
  const model = new RewardModel(cfg, params);
  storedDtypes.set(model, dtypes);
  return model;
}

/** The config (parsed from config.json's object unless it is one already) and the stored tensors (decoded from bytes). */
function checkpointInputs(
  config: ModelConfig | Record<string, unknown>,
  weights: Uint8Array | ReadonlyMap<string, StoredTensor>,
  opts: FromHfOptions,
): { where: string; cfg: ModelConfig; stored: ReadonlyMap<string, StoredTensor> } {
  const where = opts.source ?? '<memory>';
  const cfg = isModelConfig(config) ? config : fromHfConfig(config, `${where}/config.json`);
  const read =
    weights instanceof Uint8Array ? decodeSafetensors(weights, `${where}/model.safetensors`).tensors : weights;
  // Phi-3 stacks q/k/v and gate/up: split into the model's parameters
  const stored = cfg.fusedProjections ? splitFused(read, cfg, where) : read;
  return { where, cfg, stored };
}

/** config.json's label count: num_labels, else the size of id2label, else 1 (transformers' default for a score head). */
function labelCount(json: Record<string, unknown>): number {
  if (typeof json['num_labels'] === 'number') return json['num_labels'];
  const id2label = json['id2label'];
  return id2label && typeof id2label === 'object' ? Object.keys(id2label).length : 1;
}

/**
 * The tensors `specs` name, checked (present, exact shape, floating point) and put on the backend; any other tensor
 * is refused except buffers transformers also writes and the names in `alsoAllowed` (ignored).
 */
function paramsFromStored(
  specs: readonly ParamSpec[],
  stored: ReadonlyMap<string, StoredTensor>,
  where: string,
  cfg: ModelConfig,
  backend: Backend,
  alsoAllowed: readonly string[] = [],
  offset = 0,
  vacant?: ReadonlySet<string>,
): { params: Map<string, Tensor>; dtypes: Map<string, SafetensorsDtype> } {
  const params = new Map<string, Tensor>();
  const dtypes = new Map<string, SafetensorsDtype>();
  // offset: Gemma stores each norm gain minus 1 (config.normOffset); the model holds the gain
  for (const spec of specs) {
    const t = stored.get(spec.name);
    // A tied head may also be stored (some exporters write it); an untied one must be.
    if (!t)
      throw new FileFormatError(
        'E_MISSING_TENSOR',
        where,
        `tensor '${spec.name}' is missing from the checkpoint (a ${cfg.family} model with this config.json needs it)`,
        spec.name,
      );
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i]))
      throw new FileFormatError(
        'E_TENSOR_SHAPE',
        where,
        `shape [${t.shape}] but config.json implies [${spec.shape}]`,
        spec.name,
      );
    if (vacant?.has(spec.name)) {
      const p = vacantTensor(spec.shape, { backend, name: spec.name });
      p.requiresGrad = true;
      params.set(spec.name, p);
      dtypes.set(spec.name, t.dtype);
      continue;
    }
    if (!(t.data instanceof Float32Array))
      throw new FileFormatError('E_TENSOR_DTYPE', where, `dtype ${t.dtype} is not a floating-point type`, spec.name);
    const data = offset && spec.init === 'ones' ? t.data.map((x) => x + offset) : t.data;
    params.set(spec.name, tensor(data, spec.shape, { backend, requiresGrad: true, name: spec.name }));
    dtypes.set(spec.name, t.dtype);
  }
  const known = new Set([...specs.map((s) => s.name), ...alsoAllowed]);
  if (cfg.tieWordEmbeddings) known.add('lm_head.weight');
  const extra = [...stored.keys()].filter(
    (k) => !known.has(k) && !/(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$/.test(k),
  );
  if (extra.length)
    throw new FileFormatError(
      'E_UNKNOWN_TENSOR',
      where,
      `tensors this ${cfg.family} config does not use: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`,
    );
  return { params, dtypes };
}

/** A ModelConfig (ours) rather than a Hugging Face config.json object: it has our `family` field. */
function isModelConfig(c: ModelConfig | Record<string, unknown>): c is ModelConfig {
  return (c as { family?: unknown }).family === 'gpt2' || (c as { family?: unknown }).family === 'llama';
}
