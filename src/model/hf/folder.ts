/**
 * Hugging Face model folders in and out: `config.json` + `model.safetensors` (or a sharded index) ⇄ CausalLM.
 * Tensor names, shapes and dtypes are kept as transformers writes them (GPT-2's Conv1D `[in, out]` weights stay
 * so; a tied head is not stored twice), so a folder we write loads in transformers and the reverse. F16/BF16
 * checkpoints are widened to float32 (the master precision) on load; `saveModel` writes each tensor back in the
 * dtype it was loaded with (float32 for fresh models), so a load → save round trip is bit for bit. Building the model
 * from tensors already in memory is ./weights.ts (browser-safe).
 */
import path from 'node:path';
import type { Backend } from '../../backend/backend.js';
import { buildDirAtomic, readJsonFile, writeFileAtomic } from '../../util/fs.js';
import type { ModelConfig } from '../config.js';
import type { CausalLM } from '../model.js';
import type { RewardModel } from '../reward.js';
import { loadCheckpointTensors, saveCheckpointTensors } from '../../formats/checkpoint.js';
import { fromHfConfig, SEQUENCE_CLASSIFICATION_ARCHITECTURES, toHfConfig } from './config.js';
import { modelFromHf, rewardModelFromHf, storedDtypesOf } from './weights.js';
import type { TensorToWrite } from '../../formats/safetensors.js';
import { isGgufPath, loadGgufConfig, loadGgufModel } from '../gguf/file.js';

export interface LoadOptions {
  backend?: Backend;
}

/** Read a model's config.json only (or a GGUF file's hyper-parameters). */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  if (isGgufPath(dir)) return loadGgufConfig(dir);
  const file = path.join(dir, 'config.json');
  return fromHfConfig(await readJsonFile(file, 'a Hugging Face config.json'), file);
}

/** Load a Hugging Face model folder (or a GGUF file: a path ending in .gguf) onto a backend (default: the current one). */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<CausalLM> {
  if (isGgufPath(dir)) return loadGgufModel(dir, opts);
  const config = await loadConfig(dir);
  const stored = await loadCheckpointTensors(dir);
  return modelFromHf(config, stored, { ...opts, source: dir });
}

/**
 * Load a reward model folder (transformers' *ForSequenceClassification, one label: config.json + model.safetensors
 * with `score.weight`). A language-model folder is refused with a named error (start one with RewardModel.fromCausalLM).
 */
export async function loadRewardModel(dir: string, opts: LoadOptions = {}): Promise<RewardModel> {
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
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, p] of model.params) {
    tensors.set(name, { dtype: dtypes?.get(name) ?? 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
  }
  await buildDirAtomic(
    dir,
    async (tmp) => {
      await saveCheckpointTensors(tmp, tensors);
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
