/**
 * LoRA adapter folders as Hugging Face PEFT writes them (../lora.ts has the math):
 *   adapter_config.json         PEFT's LoraConfig: peft_type LORA, r, lora_alpha, lora_dropout, target_modules,
 *                               use_rslora, fan_in_fan_out, base_model_name_or_path, task_type CAUSAL_LM, …
 *   adapter_model.safetensors   base_model.model.<module>.lora_A.weight (r, in), …lora_B.weight (out, r), float32
 * A folder that `llmts sft --usePeft` (or dpo, kto) writes also holds config.json, generation_config.json and the
 * tokenizer, so every command loads it like a model folder: `loadModel` reads the base model named by
 * base_model_name_or_path (a folder path; relative paths count from the adapter folder, then the working directory),
 * then puts the adapters on it and, for inference, merges them into the weights. PEFT's features beyond plain LoRA
 * (DoRA, bias training, modules_to_save, per-layer ranks) are refused by name rather than loaded wrong.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FileFormatError } from '../../util/errors.js';
import { readJsonFileSync } from '../../util/fs.js';
import type { ModelConfig } from '../config.js';
import type { CausalLM } from '../model.js';
import { ALL_LINEAR, linearModules, loraParams, type LoraOptions } from '../lora.js';
import type { TensorToWrite } from '../../formats/safetensors.js';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
/** A reward model's score head in its adapter file (PEFT's modules_to_save, SEQ_CLS): trained whole, saved whole. */
export const SCORE_ADAPTER_KEY = 'base_model.model.score.weight';

/** What an adapter folder adapts: a language model, or a reward model (a sequence classifier with its score head). */
export type AdapterTask = 'CAUSAL_LM' | 'SEQ_CLS';

/** Whether a folder is a LoRA adapter folder (it has adapter_config.json). */
export function isAdapterFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, ADAPTER_CONFIG));
}

/** An adapter folder's settings: the adapters' hyper-parameters and the base model's folder. */
export interface AdapterConfig {
  /** The adapters' hyper-parameters on a model of `config` (a regular-expression target_modules resolved on it). */
  loraFor: (config: ModelConfig) => LoraOptions;
  /** The base model folder, resolved (it exists). */
  base: string;
  /** base_model_name_or_path as written. */
  baseAsWritten: string;
  /** task_type: SEQ_CLS for a reward model (its score head in the adapter file), else CAUSAL_LM. */
  task: AdapterTask;
}

/** Read and check `dir/adapter_config.json`. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const file = path.join(dir, ADAPTER_CONFIG);
  const j = readJsonFileSync(file, 'a PEFT adapter_config.json (LoRA)') as Record<string, unknown>;
  const bad = (field: string, msg: string) => new FileFormatError('E_ADAPTER_CONFIG', file, msg, field);
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw bad('', 'expected a JSON object');
  if (j['peft_type'] !== 'LORA')
    throw bad('peft_type', `only LoRA adapters are supported, got ${JSON.stringify(j['peft_type'])}`);
  const r = j['r'];
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw bad('r', `expected a whole number ≥ 1, got ${JSON.stringify(r)}`);
  const alpha = j['lora_alpha'] ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0))
    throw bad('lora_alpha', `expected a number > 0, got ${JSON.stringify(alpha)}`);
  const dropout = j['lora_dropout'] ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1))
    throw bad('lora_dropout', `expected a number in [0, 1), got ${JSON.stringify(dropout)}`);
  const unsupported: [string, (v: unknown) => boolean, string][] = [
    ['use_dora', (v) => v === true, 'DoRA adapters are not supported'],
    ['bias', (v) => v !== undefined && v !== 'none', "only bias 'none' is supported (the adapter trains no biases)"],
    [
      'modules_to_save',
      // a sequence classifier's head (PEFT adds `score` / `classifier` to SEQ_CLS adapters) is the one module read whole
      (v) =>
        Array.isArray(v) && v.some((m) => !(j['task_type'] === 'SEQ_CLS' && (m === 'score' || m === 'classifier'))),
      "fully trained extra modules are not supported (a SEQ_CLS adapter's score head is)",
    ],
    [
      'rank_pattern',
      (v) => !!v && typeof v === 'object' && Object.keys(v).length > 0,
      'per-layer ranks are not supported',
    ],
    [
      'alpha_pattern',
      (v) => !!v && typeof v === 'object' && Object.keys(v).length > 0,
      'per-layer alphas are not supported',
    ],
    ['layers_to_transform', (v) => v !== undefined && v !== null, 'adapters on some layers only are not supported'],
  ];
  for (const [k, isBad, msg] of unsupported) if (isBad(j[k])) throw bad(k, `${msg} (got ${JSON.stringify(j[k])})`);
  // target_modules: names, 'all-linear', or (PEFT) a regular expression the whole module name must match, resolved
  // against the model's layers once its config is known (the base's)
  const t = j['target_modules'];
  let targetsFor: (config: ModelConfig) => string[];
  if (Array.isArray(t) && t.length && t.every((x) => typeof x === 'string')) targetsFor = () => t as string[];
  else if (t === ALL_LINEAR) targetsFor = () => [ALL_LINEAR];
  else if (typeof t === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${t})$`);
    } catch {
      throw bad('target_modules', `not a valid regular expression: ${JSON.stringify(t)}`);
    }
    targetsFor = (config) => {
      const names = linearModules(config)
        .map((m) => m.module)
        .filter((m) => re.test(m));
      if (!names.length) throw bad('target_modules', `${JSON.stringify(t)} matches no linear layer of the model`);
      return names;
    };
  } else
    throw bad(
      'target_modules',
      `expected a list of module names, '${ALL_LINEAR}' or a regular expression, got ${JSON.stringify(t)}`,
    );
  const written = j['base_model_name_or_path'];
  if (typeof written !== 'string' || !written)
    throw bad('base_model_name_or_path', 'expected the path of the base model folder');
  const candidates = path.isAbsolute(written) ? [written] : [path.resolve(dir, written), path.resolve(written)];
  const base = candidates.find(
    (p) => fs.existsSync(path.join(p, 'config.json')) || (p.toLowerCase().endsWith('.gguf') && fs.existsSync(p)),
  );
  if (!base)
    throw bad(
      'base_model_name_or_path',
      `the base model ${JSON.stringify(written)} is not a model folder here (looked in ${candidates.join(', ')}): put the base model's folder there, or write its path into this field`,
    );
  return {
    loraFor: (config) => ({ r, alpha, dropout, targetModules: targetsFor(config), rslora: j['use_rslora'] === true }),
    base,
    baseAsWritten: written,
    task: j['task_type'] === 'SEQ_CLS' ? 'SEQ_CLS' : 'CAUSAL_LM',
  };
}

/**
 * adapter_config.json for a model's adapters, as PEFT writes it (`base`: the base model folder; SEQ_CLS: a reward
 * model's body, its score head saved whole).
 */
export function adapterConfigJson(
  model: CausalLM,
  base: string,
  task: AdapterTask = 'CAUSAL_LM',
): Record<string, unknown> {
  const o = model.loraOptions!;
  // 'all-linear' is written as PEFT writes it after resolving: the layers' own names
  const targets = o.targetModules.includes(ALL_LINEAR)
    ? [...new Set(linearModules(model.config).map((m) => m.module.split('.').pop()!))].sort()
    : [...o.targetModules];
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: base,
    bias: 'none',
    fan_in_fan_out: model.config.family === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    modules_to_save: task === 'SEQ_CLS' ? ['score'] : null,
    peft_type: 'LORA',
    r: o.r,
    rank_pattern: {},
    revision: null,
    target_modules: targets,
    task_type: task,
    use_dora: false,
    use_rslora: o.rslora,
  };
}

/** The adapters' tensors as adapter_model.safetensors holds them (float32, PEFT names). */
export async function adapterTensors(model: CausalLM): Promise<Map<string, TensorToWrite>> {
  const out = new Map<string, TensorToWrite>();
  for (const [name, t] of loraParams(model))
    out.set(name, { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array });
  return out;
}

/** Where each model's adapters came from or sit on: the base model folder, for adapter_config.json. */
const bases = new WeakMap<CausalLM, string>();

/** Record the base model folder of a model's adapters (written into adapter_config.json when it is saved). */
export function setAdapterBase(model: CausalLM, base: string): void {
  bases.set(model, path.resolve(base));
}

/** The base model folder of a model's adapters (undefined when unknown). */
export function adapterBaseOf(model: CausalLM): string | undefined {
  return bases.get(model);
}
