/**
 * LoRA for the fine-tuning commands (sft, reward, dpo, kto, ppo, rloo, grpo): TRL's PEFT settings (`--usePeft --loraR 16 --loraAlpha 32
 * --loraDropout 0.05 --loraTargetModules all-linear`, also under TRL's names use_peft, lora_r, …) and the policy a run
 * trains: the starting model with fresh adapters (a new run), or the checkpoint's base with its adapters attached
 * (a resumed one). The math is src/model/lora.ts, the folder format src/model/hf/adapter.ts.
 */
import type { Backend } from '../backend/backend.js';
import { formatCount } from '../pretrain/estimate.js';
import { isAdapterFolder, setAdapterBase } from '../model/hf/adapter.js';
import { loadModel, loadRewardModel } from '../model/hf/folder.js';
import type { RewardModel } from '../model/reward.js';
import type { Tensor } from '../tensor/tensor.js';
import { addLora, ALL_LINEAR, targetModules, type LoraOptions } from '../model/lora.js';
import { CausalLM } from '../model/model.js';
import { Rng } from '../util/rng.js';
import { bool, float, group, int, strings } from '../util/settings.js';

/** The PEFT settings, one table for every command that fine-tunes a policy. */
export const PEFT_SETTINGS = group('LoRA (PEFT)', {
  usePeft: bool(
    false,
    'Train LoRA adapters (low-rank updates of the linear layers) instead of every weight: far fewer trainable parameters, optimizer state and checkpoint bytes. Checkpoints are PEFT adapter folders that every command loads. LoRA usually wants a higher lr than full fine-tuning (1e-4 to 2e-4 for SFT).',
    { aliases: ['use_peft', 'lora'] },
  ),
  loraR: int(16, 'LoRA rank r of each adapter (A: r × in, B: out × r).', { min: 1, aliases: ['lora_r'] }),
  loraAlpha: float(32, 'LoRA α: the adapters’ update is scaled by α / r (α / √r with useRslora).', {
    gt: 0,
    aliases: ['lora_alpha'],
  }),
  loraDropout: float(0.05, 'Dropout on the adapters’ inputs while training.', {
    min: 0,
    max: 0.9,
    aliases: ['lora_dropout'],
  }),
  loraTargetModules: strings(
    [ALL_LINEAR],
    "The linear layers that get adapters: 'all-linear' (every one of the blocks) or names as PEFT matches them (q_proj,v_proj for Llama; c_attn for GPT-2).",
    { aliases: ['lora_target_modules'] },
  ),
  useRslora: bool(false, 'rsLoRA: scale the update by α / √r instead of α / r.', { aliases: ['use_rslora'] }),
});

/** The PEFT settings' values, as a command's config holds them. */
export interface PeftValues {
  usePeft: boolean;
  loraR: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargetModules: readonly string[];
  useRslora: boolean;
}

/** The adapters' hyper-parameters a config asks for. */
export function loraOptionsOf(c: PeftValues): LoraOptions {
  return {
    r: c.loraR,
    alpha: c.loraAlpha,
    dropout: c.loraDropout,
    targetModules: c.loraTargetModules,
    rslora: c.useRslora,
  };
}

/**
 * The model a fine-tuning run trains, its trainable tensors requiring gradients. Resuming (`resumeDir`): the
 * checkpoint, an adapter folder's adapters kept apart (attached to its base). A new run: the model folder `modelDir`
 * (adapters of an adapter folder merged), and with usePeft fresh adapters on it (seeded from `seed`), their base
 * being `modelDir`. Logs what trains.
 */
export async function loadPolicy(
  c: PeftValues & { seed: number },
  modelDir: string,
  resumeDir: string | null,
  backend: Backend,
  log: (s: string) => void,
): Promise<CausalLM> {
  const dir = resumeDir ?? modelDir;
  const model = await loadModel(dir, {
    backend,
    adapters: resumeDir && isAdapterFolder(resumeDir) ? 'attach' : 'merge',
  });
  if (!resumeDir && c.usePeft) freshAdapters(model, c, modelDir);
  logLora(model, trainable(model), model.numParams(), log);
  return model;
}

/**
 * The frozen reference of an RL run (PPO, RLOO, GRPO): with LoRA the policy without its adapters — a model on the
 * same frozen tensors, PEFT's disable_adapter, so the weights are held once; else the starting model `modelDir`,
 * loaded again.
 */
export async function referenceOf(policy: CausalLM, modelDir: string, backend: Backend): Promise<CausalLM> {
  return policy.lora.size ? new CausalLM(policy.config, policy.params) : loadModel(modelDir, { backend });
}

/**
 * The reward model a `llmts reward` run trains: the checkpoint (its adapters attached) when resuming; else `lm`'s
 * body with a score head (`makeRm`), and with usePeft fresh adapters on the body (their base `modelDir`): then the
 * adapters and the score head train, the body's weights frozen.
 */
export async function loadRewardPolicy(
  c: PeftValues & { seed: number },
  modelDir: string,
  resumeDir: string | null,
  backend: Backend,
  makeRm: (lm: CausalLM) => RewardModel,
  log: (s: string) => void,
): Promise<RewardModel> {
  const rm = resumeDir
    ? await loadRewardModel(resumeDir, { backend, adapters: 'attach' })
    : makeRm(await loadModel(modelDir, { backend }));
  if (!resumeDir && c.usePeft) freshAdapters(rm.body, c, modelDir);
  let all = 0;
  for (const p of rm.params.values()) all += p.size;
  logLora(rm.body, trainable(rm), all, log);
  return rm;
}

/** Fresh adapters of the run's settings on `model`, seeded from the run seed, their base `base`. */
function freshAdapters(model: CausalLM, c: PeftValues & { seed: number }, base: string): void {
  addLora(model, loraOptionsOf(c), new Rng((c.seed ^ 0x4c6f5241) >>> 0)); // 'LoRA': apart from the data's stream
  setAdapterBase(model, base);
}

/** What trains of a model, each tensor requiring gradients now. */
function trainable(model: { trainableParams(): Map<string, Tensor> }): Map<string, Tensor> {
  const t = model.trainableParams();
  for (const p of t.values()) p.requiresGrad = true;
  return t;
}

/** The log line that says what trains, when `model` has adapters. */
function logLora(model: CausalLM, trainable: Map<string, Tensor>, total: number, log: (s: string) => void): void {
  if (!model.lora.size) return;
  const o = model.loraOptions!;
  let n = 0;
  for (const p of trainable.values()) n += p.size;
  const mods = targetModules(model.config, o.targetModules);
  const names = [...new Set(mods.map((m) => m.module.split('.').pop()!))];
  log(
    `LoRA: r ${o.r}, α ${o.alpha}${o.rslora ? ' (rsLoRA)' : ''}, dropout ${o.dropout} on ${mods.length} layers (${names.join(', ')}): ` +
      `${formatCount(n)} trainable parameters of ${formatCount(total)} (${((100 * n) / total).toFixed(2)} %)`,
  );
}
