/**
 * Hugging Face model folders in and out: `config.json` + `model.safetensors` (or a sharded index) ⇄ CausalLM.
 * Tensor names, shapes and dtypes are kept as transformers writes them (GPT-2's Conv1D `[in, out]` weights stay
 * so; a tied head is not stored twice), so a folder we write loads in transformers and the reverse. F16/BF16
 * checkpoints are widened to float32 (the master precision) on load; `saveModel` writes each tensor back in the
 * dtype it was loaded with (float32 for fresh models), so a load → save round trip is bit for bit. Building the model
 * from tensors already in memory is ./weights.ts (browser-safe).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../../backend/backend.js';
import { buildDirAtomic, readJsonFile, writeFileAtomic } from '../../util/fs.js';
import type { ModelConfig } from '../config.js';
import type { CausalLM } from '../model.js';
import { normGainNames } from '../params.js';
import { fuseForCheckpoint } from './fused_projections.js';
import { loadCheckpointTensors, saveCheckpointTensors } from '../../formats/checkpoint.js';
import { fromHfConfig, SEQUENCE_CLASSIFICATION_ARCHITECTURES, toHfConfig } from './config.js';
import { modelFromHf, rewardModelFromHf, storedDtypesOf } from './weights.js';
import { writeSafetensors, type TensorToWrite } from '../../formats/safetensors.js';
import { isGgufPath, loadGgufConfig, loadGgufModel } from '../gguf/file.js';
import { loadLora, mergeLora } from '../lora.js';
import { readSafetensors } from '../../formats/safetensors.js';
import { FileFormatError, UnsupportedError } from '../../util/errors.js';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterBaseOf,
  adapterConfigJson,
  adapterTensors,
  isAdapterFolder,
  readAdapterConfig,
  SCORE_ADAPTER_KEY,
  setAdapterBase,
} from './adapter.js';
import { RewardModel, SCORE_WEIGHT } from '../reward.js';
import { checkBaseRecord, writeBaseRecord } from './base_record.js';
import { tensor } from '../../tensor/tensor.js';
import { setWeightSources, undecodedMatrix } from '../weight_source.js';
import { safetensorsSources } from './sources.js';

export interface LoadOptions {
  backend?: Backend;
  /**
   * A LoRA adapter folder (./adapter.ts): 'merge' (default) folds the adapters into the base model's weights, a plain
   * model for inference or as a new run's start; 'attach' keeps them apart and trainable (resuming a LoRA run).
   */
  adapters?: 'merge' | 'attach';
  /**
   * Leave the linear weights and the token embedding undecoded, their parameters vacant, for quantizeModel to store
   * them quantised from the file's bytes a matrix (and a slice of rows) at a time: a GGUF file
   * (FromGgufOptions.vacantLinears) or a safetensors checkpoint (./sources.ts). The model must be quantised before it
   * runs.
   */
  vacantLinears?: boolean;
}

/** Adapter folders may sit on adapter folders (DPO's adapters on an SFT's): this deep at most. */
const MAX_ADAPTER_DEPTH = 8;

/** Read a model's config.json only (or a GGUF file's hyper-parameters); an adapter folder without one: its base's. */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  if (isGgufPath(dir)) return loadGgufConfig(dir);
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file) && isAdapterFolder(dir)) return loadConfig(readAdapterConfig(dir).base);
  return fromHfConfig(await readJsonFile(file, 'a Hugging Face config.json'), file);
}

/**
 * Load a Hugging Face model folder (or a GGUF file: a path ending in .gguf) onto a backend (default: the current one).
 * A LoRA adapter folder loads its base model and puts the adapters on it (merged unless `adapters: 'attach'`).
 */
export async function loadModel(dir: string, opts: LoadOptions = {}, depth = 0): Promise<CausalLM> {
  if (isGgufPath(dir))
    return loadGgufModel(dir, {
      ...(opts.backend ? { backend: opts.backend } : {}),
      ...(opts.vacantLinears ? { vacantLinears: true } : {}),
    });
  if (isAdapterFolder(dir)) {
    if (depth >= MAX_ADAPTER_DEPTH)
      throw new FileFormatError(
        'E_ADAPTER_CONFIG',
        path.join(dir, ADAPTER_CONFIG),
        `adapters on adapters more than ${MAX_ADAPTER_DEPTH} deep (a loop of base_model_name_or_path?)`,
        'base_model_name_or_path',
      );
    const { base, task, loraFor } = readAdapterConfig(dir);
    if (task === 'SEQ_CLS')
      throw new FileFormatError(
        'E_ADAPTER_CONFIG',
        path.join(dir, ADAPTER_CONFIG),
        "a reward model's adapters (task_type SEQ_CLS): load it with loadRewardModel",
        'task_type',
      );
    checkBaseRecord(dir, base); // the base they were trained on, before loading it
    // the adapters merge into float32 weights: the base is read whole (quantise after, as the commands do)
    const model = await loadModel(base, { ...opts, adapters: 'merge', vacantLinears: false }, depth + 1);
    const { tensors, file } = await readAdapterWeights(dir);
    loadLora(model, loraFor(model.config), tensors, file);
    setAdapterBase(model, base);
    if ((opts.adapters ?? 'merge') === 'merge') mergeLora(model);
    return model;
  }
  const config = await loadConfig(dir);
  const backend = opts.backend ? { backend: opts.backend } : {};
  if (!opts.vacantLinears) return modelFromHf(config, await loadCheckpointTensors(dir), { ...backend, source: dir });
  const stored = await loadCheckpointTensors(dir, { undecoded: undecodedMatrix });
  const { vacant, sources } = safetensorsSources(stored, dir);
  const model = modelFromHf(config, stored, { ...backend, source: dir, vacant });
  setWeightSources(model, sources, 'safetensors');
  return model;
}

/** An adapter folder's adapter_model.safetensors, float tensors by name. */
async function readAdapterWeights(
  dir: string,
): Promise<{ tensors: Map<string, { shape: readonly number[]; data: Float32Array }>; file: string }> {
  const file = path.join(dir, ADAPTER_WEIGHTS);
  if (!fs.existsSync(file))
    throw new FileFormatError('E_FILE_MISSING', file, `the adapter folder ${dir} has no ${ADAPTER_WEIGHTS}`);
  const st = await readSafetensors(file);
  const tensors = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name, t] of st.tensors) {
    if (!(t.data instanceof Float32Array))
      throw new FileFormatError('E_ADAPTER_WEIGHTS', file, `expected floating-point weights, got ${t.dtype}`, name);
    tensors.set(name, { shape: t.shape, data: t.data });
  }
  return { tensors, file };
}

/**
 * A reward model's adapter folder (task_type SEQ_CLS): the base language model's body, the adapters on it, and the
 * score head from the adapter file (saved whole, PEFT's modules_to_save).
 */
async function loadRewardAdapters(dir: string, opts: LoadOptions): Promise<RewardModel> {
  const { base, task, loraFor } = readAdapterConfig(dir);
  if (task !== 'SEQ_CLS')
    throw new FileFormatError(
      'E_ADAPTER_CONFIG',
      path.join(dir, ADAPTER_CONFIG),
      "a language model's adapters (task_type CAUSAL_LM), not a reward model's: load it with loadModel",
      'task_type',
    );
  checkBaseRecord(dir, base);
  const lm = await loadModel(base, { ...opts, adapters: 'merge' }, 1);
  const { tensors, file } = await readAdapterWeights(dir);
  const score = tensors.get(SCORE_ADAPTER_KEY);
  if (!score)
    throw new FileFormatError(
      'E_MISSING_TENSOR',
      file,
      `the score head '${SCORE_ADAPTER_KEY}' is missing`,
      SCORE_ADAPTER_KEY,
    );
  tensors.delete(SCORE_ADAPTER_KEY);
  const params = new Map(lm.params);
  params.set(
    SCORE_WEIGHT,
    tensor(score.data, score.shape, { backend: lm.backend, requiresGrad: true, name: SCORE_WEIGHT }),
  );
  const rm = new RewardModel(lm.config, params);
  loadLora(rm.body, loraFor(lm.config), tensors, file);
  setAdapterBase(rm.body, base);
  if ((opts.adapters ?? 'merge') === 'merge') rm.mergeLora();
  return rm;
}

/**
 * Load a reward model folder (transformers' *ForSequenceClassification, one label: config.json + model.safetensors
 * with `score.weight`), or a reward model's LoRA adapter folder (SEQ_CLS). A language-model folder is refused with a
 * named error (start one with RewardModel.fromCausalLM).
 */
export async function loadRewardModel(dir: string, opts: LoadOptions = {}): Promise<RewardModel> {
  if (isAdapterFolder(dir)) return loadRewardAdapters(dir, opts);
  const config = await loadConfig(dir);
  const stored = await loadCheckpointTensors(dir);
  return rewardModelFromHf(config, stored, { ...opts, source: dir });
}

export interface SaveOptions {
  /** Written as generation_config.json. */
  generationConfig?: Record<string, unknown>;
  /** Extra files to put in the folder (e.g. tokenizer.json), name → content. */
  extraFiles?: Record<string, string | Uint8Array>;
  /** Keep these files of an existing folder that the new one does not write (default: tokenizer files). */
  keep?: (name: string) => boolean;
}

/** Save a model as a Hugging Face folder, atomically (the folder appears complete or not at all). */
export async function saveModel(model: CausalLM, dir: string, opts: SaveOptions = {}): Promise<void> {
  const gen = opts.generationConfig ?? defaultGenerationConfig(model.config);
  await saveFolder(model, toHfConfig(model.config), dir, { ...opts, generationConfig: gen });
}

/**
 * A model with LoRA adapters is saved as an adapter folder: adapter_config.json (naming the base folder) and
 * adapter_model.safetensors in place of model.safetensors, beside config.json and generation_config.json.
 */
async function adapterFiles(model: CausalLM): Promise<Map<string, TensorToWrite>> {
  const base = adapterBaseOf(model);
  if (!base)
    throw new FileFormatError(
      'E_ADAPTER_CONFIG',
      ADAPTER_CONFIG,
      'the base model folder of these adapters is unknown (setAdapterBase): it is written into adapter_config.json',
    );
  return adapterTensors(model);
}

/**
 * Save a reward model as transformers saves `*ForSequenceClassification` with one label (architectures, id2label,
 * label2id; `score.weight` next to the body's tensors), atomically. No generation_config.json: it does not generate.
 */
export async function saveRewardModel(
  model: RewardModel,
  dir: string,
  opts: Omit<SaveOptions, 'generationConfig'> = {},
): Promise<void> {
  const config = toHfConfig(model.config);
  const type = String(config['model_type']);
  config['architectures'] = [SEQUENCE_CLASSIFICATION_ARCHITECTURES[type] ?? `${type}ForSequenceClassification`];
  config['id2label'] = { '0': 'LABEL_0' };
  config['label2id'] = { LABEL_0: 0 };
  const sorted = Object.fromEntries(
    Object.keys(config)
      .sort()
      .map((k) => [k, config[k]]),
  );
  await saveFolder(model, sorted, dir, opts);
}

async function saveFolder(
  model: CausalLM | RewardModel,
  config: Record<string, unknown>,
  dir: string,
  opts: SaveOptions,
): Promise<void> {
  const dtypes = storedDtypesOf(model);
  const lm = model instanceof RewardModel ? model.body : model;
  const adapter = lm.lora.size ? lm : null;
  const task = lm === model ? 'CAUSAL_LM' : 'SEQ_CLS';
  const tensors = new Map<string, TensorToWrite>();
  if (adapter) {
    if (lm.config.fusedProjections)
      throw new UnsupportedError(
        "a Phi-3 model's LoRA adapters have no PEFT form here (its checkpoints stack q/k/v as qkv_proj and gate/up as gate_up_proj, the adapters sit on the parts): merge them into the weights (mergeLora) and save the model",
      );
    for (const [k, v] of await adapterFiles(adapter)) tensors.set(k, v);
    const score = model.params.get(SCORE_WEIGHT);
    if (task === 'SEQ_CLS' && score)
      tensors.set(SCORE_ADAPTER_KEY, { dtype: 'F32', shape: score.shape, data: (await score.data()) as Float32Array });
  } else {
    // Gemma's checkpoints store each norm gain minus normOffset (its norms compute x̂·(1 + w))
    const offset = lm.config.normOffset ?? 0;
    const gains = offset ? normGainNames(lm.config) : null;
    for (const [name, p] of model.params) {
      const data = (await p.data()) as Float32Array;
      tensors.set(name, {
        dtype: dtypes?.get(name) ?? 'F32',
        shape: p.shape,
        data: gains?.has(name) ? data.map((x) => x - offset) : data,
      });
    }
    if (lm.config.fusedProjections) fuseForCheckpoint(tensors, lm.config); // Phi-3: qkv_proj, gate_up_proj
  }
  await buildDirAtomic(
    dir,
    async (tmp) => {
      if (adapter) {
        await writeSafetensors(path.join(tmp, ADAPTER_WEIGHTS), tensors, { format: 'pt' });
        const j = adapterConfigJson(adapter, adapterBaseOf(adapter)!, task);
        await writeFileAtomic(path.join(tmp, ADAPTER_CONFIG), JSON.stringify(j, null, 2) + '\n');
        await writeBaseRecord(tmp, adapterBaseOf(adapter)!); // which base weights they were trained on
      } else await saveCheckpointTensors(tmp, tensors);
      await writeFileAtomic(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      if (opts.generationConfig)
        await writeFileAtomic(
          path.join(tmp, 'generation_config.json'),
          JSON.stringify(opts.generationConfig, null, 2) + '\n',
        );
      for (const [n, d] of Object.entries(opts.extraFiles ?? {})) await writeFileAtomic(path.join(tmp, n), d);
    },
    {
      keep:
        opts.keep ??
        ((n) =>
          /^(tokenizer(_config)?\.json|special_tokens_map\.json|vocab\.json|merges\.txt|chat_template\.jinja)$/.test(
            n,
          )),
    },
  );
}

/** generation_config.json as transformers writes it from a model config (token ids, no sampling settings). */
export function defaultGenerationConfig(c: ModelConfig): Record<string, unknown> {
  const g: Record<string, unknown> = { _from_model_config: true };
  if (c.bosTokenId !== null) g['bos_token_id'] = c.bosTokenId;
  if (c.eosTokenId !== null) g['eos_token_id'] = c.eosTokenId;
  if (c.padTokenId !== null) g['pad_token_id'] = c.padTokenId;
  g['transformers_version'] = (c.hf?.['transformers_version'] as string | undefined) ?? '5.17.0';
  return g;
}
