/**
 * LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), as Hugging Face PEFT does it: a
 * frozen linear layer W gets a trainable low-rank update,
 *
 *   y = x·Wᵀ + b + s · (dropout(x)·Aᵀ)·Bᵀ        A (r, in), B (out, r), s = α / r   (rsLoRA: α / √r)
 *
 * A starts as PEFT's default (kaiming_uniform_ with a = √5: U(−1/√in, 1/√in)), B as zeros, so a fresh adapter leaves
 * the model's outputs exactly as they were. Only A and B train: their gradients, AdamW moments and checkpoints are
 * r·(in + out) numbers a layer instead of in·out.
 *
 * Names and layouts are PEFT's, so an adapter folder we write (adapter_config.json + adapter_model.safetensors:
 * ./hf/adapter.ts) is what `PeftModel.from_pretrained` reads, and the reverse: the tensors are
 * `base_model.model.<module>.lora_A.weight` (r, in) and `…lora_B.weight` (out, r) for the module `<module>` (a weight's
 * name without `.weight`); GPT-2's Conv1D weights are stored [in, out] (PEFT's fan_in_fan_out), A and B are not.
 * Target modules follow PEFT's matching: 'all-linear' (every linear layer of the blocks, not the output head), or
 * names matched as the module itself or its last dotted parts (`q_proj`, `attn.c_proj`).
 *
 * The model holds its adapters (CausalLM.lora, by weight name) and adds their term in its `linear`; `mergeLora` folds
 * them into the weights (W += s·B·A, transposed for Conv1D) for inference and export.
 */
import { ConfigError, ShapeError, UnsupportedError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import * as O from '../tensor/ops.js';
import { applyInPlace } from '../tensor/record.js';
import { freeData, isGradEnabled, noGrad, tensor, tidy, type Tensor } from '../tensor/tensor.js';
import type { ModelConfig } from './config.js';
import type { CausalLM } from './model.js';
import { paramSpecs } from './params.js';

/** PEFT's value of `target_modules` for every linear layer of the blocks. */
export const ALL_LINEAR = 'all-linear';

/** An adapter's hyper-parameters (PEFT's LoraConfig fields of the same meaning). */
export interface LoraOptions {
  /** Rank r of A (r, in) and B (out, r). */
  r: number;
  /** α: the update is scaled by α / r (α / √r with rsLoRA). */
  alpha: number;
  /** Dropout on the adapter's input while training (PEFT's lora_dropout). */
  dropout: number;
  /** Which linear layers get an adapter: ['all-linear'] or module names (PEFT's target_modules). */
  targetModules: readonly string[];
  /** rsLoRA (Kalajdzievski 2023): scale α / √r instead of α / r. */
  rslora: boolean;
}

/** One linear layer's adapter. */
export interface LoraWeight {
  /** (r, in) */
  A: Tensor;
  /** (out, r) */
  B: Tensor;
  /** s: α / r, or α / √r. */
  scale: number;
}

/** A linear layer an adapter can sit on: its module name (PEFT's), its weight's name and its sizes. */
export interface LinearModule {
  module: string;
  weight: string;
  in: number;
  out: number;
  /** How the weight is stored: [out, in] (nn.Linear), or [in, out] (GPT-2's Conv1D: PEFT's fan_in_fan_out). */
  layout: 'out_in' | 'in_out';
}

/** Every linear layer of the blocks (not the embeddings, not the output head), in checkpoint order. */
export function linearModules(c: ModelConfig): LinearModule[] {
  const layout = c.family === 'gpt2' ? 'in_out' : 'out_in';
  const block = c.family === 'gpt2' ? /^transformer\.h\.\d+\./ : /^model\.layers\.\d+\./;
  return paramSpecs(c)
    .filter((s) => s.shape.length === 2 && s.name.endsWith('.weight') && block.test(s.name))
    .map((s) => {
      const [d0, d1] = s.shape as [number, number];
      return {
        module: s.name.slice(0, -'.weight'.length),
        weight: s.name,
        in: layout === 'in_out' ? d0 : d1,
        out: layout === 'in_out' ? d1 : d0,
        layout,
      };
    });
}

/** The modules `targets` select, as PEFT matches them; a ConfigError naming what there is when one matches nothing. */
export function targetModules(c: ModelConfig, targets: readonly string[], field = 'loraTargetModules'): LinearModule[] {
  const all = linearModules(c);
  if (targets.length === 0) throw new ConfigError(field, `no target modules: give '${ALL_LINEAR}' or module names`);
  if (targets.includes(ALL_LINEAR)) return all;
  const hit = (m: string, t: string) => m === t || m.endsWith('.' + t);
  for (const t of targets) {
    if (!all.some((m) => hit(m.module, t))) {
      const names = [...new Set(all.map((m) => m.module.replace(/^.*\.\d+\./, '')))];
      throw new ConfigError(
        field,
        `'${t}' matches no linear layer of this ${c.family} model; its layers are ${names.join(', ')} (or '${ALL_LINEAR}')`,
      );
    }
  }
  return all.filter((m) => targets.some((t) => hit(m.module, t)));
}

/** PEFT's tensor names for a module's adapter. */
export function loraKeys(module: string): { A: string; B: string } {
  return { A: `base_model.model.${module}.lora_A.weight`, B: `base_model.model.${module}.lora_B.weight` };
}

/** The scale s of an adapter's update. */
export function loraScale(o: Pick<LoraOptions, 'r' | 'alpha' | 'rslora'>): number {
  return o.rslora ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
}

function checkOptions(o: LoraOptions): void {
  if (!Number.isInteger(o.r) || o.r < 1) throw new ConfigError('loraR', `must be a whole number ≥ 1, got ${o.r}`);
  if (!(o.alpha > 0)) throw new ConfigError('loraAlpha', `must be > 0, got ${o.alpha}`);
  if (!(o.dropout >= 0 && o.dropout < 1)) throw new ConfigError('loraDropout', `must be in [0, 1), got ${o.dropout}`);
}

/**
 * Put fresh adapters on the model's target modules (A from `rng`, B zeros: the outputs do not change) and freeze
 * everything else: afterwards only the adapters require gradients (`loraParams`). Refused on a model that already
 * has adapters (merge them first) or quantised weights.
 */
export function addLora(model: CausalLM, o: LoraOptions, rng: Rng): void {
  checkOptions(o);
  if (model.config.fusedProjections)
    throw new UnsupportedError(
      'LoRA on a Phi-3 model: its checkpoints stack q/k/v (qkv_proj) and gate/up (gate_up_proj), so adapters on the parts have no PEFT form; fine-tune it whole (no --usePeft)',
    );
  attach(model, o, (m) => {
    const bound = 1 / Math.sqrt(m.in); // kaiming_uniform_(a=√5): gain·√(3 / fan_in) = 1/√fan_in
    const a = new Float32Array(o.r * m.in);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.random() - 1) * bound;
    return { A: a, B: new Float32Array(m.out * o.r) };
  });
}

/**
 * Put saved adapters on the model: `tensors` by PEFT name (adapter_model.safetensors). Every target module's A and B
 * must be there with its shape, and nothing else; `source` names the file in errors.
 */
export function loadLora(
  model: CausalLM,
  o: LoraOptions,
  tensors: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>,
  source: string,
): void {
  checkOptions(o);
  const wanted = new Set(
    targetModules(model.config, o.targetModules).flatMap((m) => Object.values(loraKeys(m.module))),
  );
  const extra = [...tensors.keys()].filter((k) => !wanted.has(k));
  if (extra.length)
    throw new ShapeError(
      `${source}: '${extra[0]}'${extra.length > 1 ? ` and ${extra.length - 1} more` : ''} belong to no target module of the adapter config (only LoRA A/B weights of the targets are read)`,
    );
  attach(model, o, (m) => {
    const k = loraKeys(m.module);
    const get = (key: string, shape: number[]) => {
      const t = tensors.get(key);
      if (!t)
        throw new ShapeError(`${source}: missing '${key}' (the adapter config targets ${m.module} at rank ${o.r})`);
      if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1])
        throw new ShapeError(`${source}: '${key}' has shape [${t.shape}], expected [${shape}] (rank ${o.r})`);
      return t.data;
    };
    return { A: get(k.A, [o.r, m.in]), B: get(k.B, [m.out, o.r]) };
  });
}

function attach(
  model: CausalLM,
  o: LoraOptions,
  init: (m: LinearModule) => { A: Float32Array; B: Float32Array },
): void {
  if (model.lora.size) throw new ConfigError('lora', 'the model already has LoRA adapters: merge them first');
  if (model.quantized.size || model.fused.size)
    throw new ConfigError('lora', 'LoRA adapters go on a float32, unfused model (this one is quantised or fused)');
  const mods = targetModules(model.config, o.targetModules);
  const backend = model.backend;
  const s = loraScale(o);
  const values = mods.map(init); // every module's values first: a bad one leaves the model as it was
  for (const [i, m] of mods.entries()) {
    const { A, B } = values[i]!;
    model.lora.set(m.weight, {
      A: tensor(A, [o.r, m.in], { backend, requiresGrad: true, name: loraKeys(m.module).A }),
      B: tensor(B, [m.out, o.r], { backend, requiresGrad: true, name: loraKeys(m.module).B }),
      scale: s,
    });
  }
  for (const p of model.params.values()) p.requiresGrad = false;
  model.loraOptions = { ...o, targetModules: [...o.targetModules] };
}

function removeLora(model: CausalLM): void {
  for (const w of model.lora.values()) w.A.dispose(), w.B.dispose();
  model.lora.clear();
  model.loraOptions = null;
}

/** The adapters' tensors by PEFT name (A then B, module by module): what trains, and what an adapter file holds. */
export function loraParams(model: CausalLM): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [w, l] of model.lora) {
    const k = loraKeys(w.slice(0, -'.weight'.length));
    out.set(k.A, l.A);
    out.set(k.B, l.B);
  }
  return out;
}

/**
 * The adapter's term of one linear layer: s · (x·Aᵀ)·Bᵀ, x (…, in) → (…, out). `drop` is the caller's dropout on
 * the adapter's input (identity outside training).
 */
export function loraDelta(x: Tensor, l: LoraWeight, drop: (t: Tensor) => Tensor = (t) => t): Tensor {
  const h = O.linear(drop(x), l.A, null); // (…, r)
  const z = O.linear(h, l.B, null); // (…, out)
  const d = O.scale(z, l.scale);
  if (isGradEnabled()) freeData(z); // no rule reads it (matmul's reads its inputs, scale's none)
  return d;
}

/**
 * The adapter's term added into a linear layer's output in place, for inference (no tape): y += s·(x·Aᵀ)·Bᵀ, in two
 * kernel calls (the second accumulates into y, scaled) instead of loraDelta's four and an add — a decode step of a
 * small model is bound by its kernel calls. y (…, out) must be the layer's own fresh output.
 */
export function loraAccumulate(y: Tensor, x: Tensor, l: LoraWeight): void {
  const r = l.A.shape[0]!,
    out = l.B.shape[0]!;
  const h = O.reshape(O.linear(x, l.A, null), [-1, r]); // (N, r)
  applyInPlace('matmul', [h, l.B], [O.reshape(y, [-1, out])], { transB: true, accumulate: true, alpha: l.scale });
}

/**
 * Fold every adapter into its weight, W += s·B·A ([in, out] weights: += s·(B·A)ᵀ), and remove the adapters: the
 * model computes the same function with plain linears (and can be quantised, fused, exported). The merged weights
 * are new tensors; the model is a plain one again, every parameter requiring gradients as a loaded model's do.
 */
export function mergeLora(model: CausalLM): void {
  if (!model.lora.size) return;
  const layouts = new Map(linearModules(model.config).map((m) => [m.weight, m.layout]));
  noGrad(() => {
    for (const [name, l] of model.lora) {
      const W = model.params.get(name)!;
      const delta =
        layouts.get(name) === 'in_out'
          ? O.matmul(l.A, l.B, { transA: true, transB: true }) // (in, out) = (B·A)ᵀ
          : O.matmul(l.B, l.A); // (out, in)
      const merged = tidy(() => O.add(W, O.scale(delta, l.scale)));
      delta.dispose();
      if (W.name) merged.name = W.name;
      model.params.set(name, merged);
      W.dispose();
    }
  });
  removeLora(model);
  for (const p of model.params.values()) p.requiresGrad = true;
}
