/**
 * Hugging Face model folders in and out: `config.json` + `model.safetensors` (or a sharded index) ⇄ CausalLM.
 * Tensor names, shapes and dtypes are kept as transformers writes them (GPT-2's Conv1D `[in, out]` weights stay
 * so; a tied head is not stored twice), so a folder we write loads in transformers and the reverse. F16/BF16
 * checkpoints are widened to float32 (the master precision) on load; `saveModel` writes each tensor back in the
 * dtype it was loaded with (float32 for fresh models), so a load → save round trip is bit for bit.
 */
import path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/registry.js';
import { FileFormatError, ShapeError } from '../util/errors.js';
import { buildDirAtomic, readJsonFile, writeFileAtomic } from '../util/fs.js';
import { tensor } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ModelConfig } from '../model/config.js';
import { CausalLM } from '../model/model.js';
import { embeddingName, paramSpecs } from '../model/params.js';
import { loadCheckpointTensors, saveCheckpointTensors } from './checkpoint.js';
import { fromHfConfig, toHfConfig } from './hf_config.js';
import type { SafetensorsDtype, TensorToWrite } from './safetensors.js';

export interface LoadOptions {
  backend?: Backend;
}

/** The dtype each parameter had on disk, so saving writes it back the same way. */
const storedDtypes = new WeakMap<CausalLM, Map<string, SafetensorsDtype>>();

/** Read a model's config.json only. */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  const file = path.join(dir, 'config.json');
  return fromHfConfig(await readJsonFile(file, 'a Hugging Face config.json'), file);
}

/** Load a Hugging Face model folder onto a backend (default: the current one). */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<CausalLM> {
  const config = await loadConfig(dir);
  const stored = await loadCheckpointTensors(dir);
  const backend = opts.backend ?? getBackend();
  const params = new Map<string, Tensor>();
  const dtypes = new Map<string, SafetensorsDtype>();
  for (const spec of paramSpecs(config)) {
    let t = stored.get(spec.name);
    // A tied head may also be stored (some exporters write it); an untied one must be.
    if (!t) throw new FileFormatError('E_MISSING_TENSOR', dir, `tensor '${spec.name}' is missing from the checkpoint (a ${config.family} model with this config.json needs it)`, spec.name);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i]))
      throw new FileFormatError('E_TENSOR_SHAPE', dir, `shape [${t.shape}] but config.json implies [${spec.shape}]`, spec.name);
    if (!(t.data instanceof Float32Array)) throw new FileFormatError('E_TENSOR_DTYPE', dir, `dtype ${t.dtype} is not a floating-point type`, spec.name);
    params.set(spec.name, tensor(t.data, spec.shape, { backend, requiresGrad: true, name: spec.name }));
    dtypes.set(spec.name, t.dtype);
    t = undefined;
  }
  const known = new Set(paramSpecs(config).map((s) => s.name));
  if (config.tieWordEmbeddings) known.add('lm_head.weight');
  const extra = [...stored.keys()].filter((k) => !known.has(k) && !/(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$/.test(k));
  if (extra.length) throw new FileFormatError('E_UNKNOWN_TENSOR', dir, `tensors this ${config.family} config does not use: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  if (config.tieWordEmbeddings && stored.has('lm_head.weight')) {
    const a = stored.get('lm_head.weight')!.data, b = stored.get(embeddingName(config))!.data;
    if (a.length !== b.length) throw new ShapeError('lm_head.weight does not match the tied embedding');
  }
  const model = new CausalLM(config, params);
  storedDtypes.set(model, dtypes);
  return model;
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
  const dtypes = storedDtypes.get(model);
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, p] of model.params) {
    tensors.set(name, { dtype: dtypes?.get(name) ?? 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
  }
  const config = toHfConfig(model.config);
  const gen = opts.generationConfig ?? defaultGenerationConfig(model.config);
  await buildDirAtomic(
    dir,
    async (tmp) => {
      await saveCheckpointTensors(tmp, tensors);
      await writeFileAtomic(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      await writeFileAtomic(path.join(tmp, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
      for (const [n, d] of Object.entries(opts.extraFiles ?? {})) await writeFileAtomic(path.join(tmp, n), d);
    },
    { keep: opts.keep ?? ((n) => /^(tokenizer(_config)?\.json|special_tokens_map\.json|vocab\.json|merges\.txt|chat_template\.jinja)$/.test(n)) },
  );
}

function defaultGenerationConfig(c: ModelConfig): Record<string, unknown> {
  const g: Record<string, unknown> = { _from_model_config: true };
  if (c.bosTokenId !== null) g['bos_token_id'] = c.bosTokenId;
  if (c.eosTokenId !== null) g['eos_token_id'] = c.eosTokenId;
  if (c.padTokenId !== null) g['pad_token_id'] = c.padTokenId;
  g['transformers_version'] = (c.hf?.['transformers_version'] as string | undefined) ?? '5.17.0';
  return g;
}
