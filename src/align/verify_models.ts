/**
 * The model side of `llmts align verify` (verify.ts): the tiny starting model it trains from scratch on a task (a
 * byte-level BPE and a GPT-2 of the settings' shape), and what the evaluation asks of a trained policy folder —
 * prompts encoded through the chat template's generation prompt, replies sampled at temperature 1 (the rollout
 * sampler: temperature only), and KL(π ‖ π_ref) estimated on π's own samples.
 *
 * KL(π ‖ π_ref) = E_{y∼π}[log π(y|x) − log π_ref(y|x)]: the mean over prompts of the summed per-token log-ratio of
 * the reply π sampled (k1, unbiased; Schulman 2020, "Approximating KL divergence"), both scored at temperature 1.
 *
 * The reward model's held-out pairs (for its calibration) are the ones its trainer held out: the feedback file read,
 * encoded and split by prompt group exactly as `llmts reward` does (pref_run.ts `loadPairData`).
 */
import fs from 'node:fs';
import type { Backend } from '../backend/backend.js';
import type { ChatTemplate } from '../chat/template.js';
import type { TrlMessage } from '../data/trl.js';
import { loadModel, saveModel } from '../model/hf/folder.js';
import { initModel } from '../model/init.js';
import type { CausalLM } from '../model/model.js';
import type { RewardModel } from '../model/reward.js';
import { DEFAULTS, toModelConfig } from '../pretrain/settings.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import { saveTokenizer, trainBpe, type TextTokenizer } from '../tokenizer/index.js';
import { ConfigError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { encodePreferenceSets, readPreferenceFile, splitByGroup } from './pref_data.js';
import { RewardInput } from './reward_input.js';
import { stopTokensOf } from './rl_data.js';
import { engineReplySampler, type PromptReply, replyLogprobs } from './rollout.js';
import { openModelFolder } from './sft.js';
import type { VerifySettings } from './verify_settings.js';

/** ChatML's special tokens (the SFT recipe renders conversations with ChatML when a folder has no template). */
const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/**
 * Write the starting model into `dir`: a BPE trained on `texts` (the train prompts and demonstrations) and a GPT-2 of
 * the settings' shape, initialised from `seed`.
 */
export async function writeBaseModel(
  dir: string,
  texts: readonly string[],
  m: VerifySettings['model'],
  backend: Backend,
  seed: number,
): Promise<void> {
  const tok = trainBpe(texts, {
    vocabSize: m.vocabSize,
    specialTokens: SPECIALS,
    config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
  });
  const cfg = toModelConfig(
    { ...DEFAULTS, nLayer: m.nLayer, nHead: m.nHead, nEmbd: m.nEmbd, blockSize: m.context, dropout: 0 },
    tok.vocabSize,
    { bos: tok.eosId ?? null, eos: tok.eosId ?? null },
  );
  fs.mkdirSync(dir, { recursive: true });
  await saveModel(initModel(cfg, new Rng(seed), { backend }), dir);
  await saveTokenizer(tok, dir);
}

/** A policy folder opened for evaluation: the model, its tokenizer, template and stop tokens. */
export interface OpenPolicy {
  model: CausalLM;
  tok: TextTokenizer;
  template: ChatTemplate;
  stopTokens: number[];
  backend: Backend;
}

/** Open a causal-LM folder (an SFT / PPO / DPO checkpoint) on `backend`. */
export async function openPolicy(dir: string, backend: VerifySettings['backend']): Promise<OpenPolicy> {
  const o = await openModelFolder({ backend, threads: 0, model: dir }, null);
  const model = await loadModel(dir, { backend: o.backend });
  const encode = (t: string) => o.tok.encode(t, { allowed: 'all' });
  // the stop tokens as `llmts ppo` takes them: EOS and the template's one-token stop strings
  const stopTokens = stopTokensOf(o.tok, o.template.stopStrings, encode);
  if (!stopTokens.length) throw new ConfigError('model', `${dir}: no EOS token and no stop token in the template`);
  return { model, tok: o.tok, template: o.template, stopTokens, backend: o.backend };
}

/** Free a policy's parameters (an evaluated checkpoint), so that opening the next one does not pile up the heap. */
export function closePolicy(p: OpenPolicy): void {
  for (const t of p.model.params.values()) t.dispose();
}

/** A conversation's ids through the generation prompt. */
export function promptIds(p: OpenPolicy, messages: readonly TrlMessage[]): number[] {
  return p.tok.encode(p.template.render([...messages], { addGenerationPrompt: true }), { allowed: 'all' });
}

/** A sampled reply: its text (without the stop token), its ids (with it), and whether a stop token ended it. */
export interface TextReply {
  text: string;
  ids: number[];
  ended: boolean;
}

/**
 * One reply per prompt at temperature 1 (prompts may repeat: each gets its own draw), `chunk` prompts per call of
 * the engine, chunk k seeded by `seedOf(k)`.
 */
export async function sampleReplies(
  p: OpenPolicy,
  prompts: readonly (readonly number[])[],
  maxTokens: number,
  seedOf: (chunk: number) => number,
  chunk = 256,
): Promise<TextReply[]> {
  const sampler = engineReplySampler(p.model);
  const out: TextReply[] = [];
  for (let s = 0, k = 0; s < prompts.length; s += chunk, k++) {
    const rs = await sampler.sample(prompts.slice(s, s + chunk), {
      maxTokens,
      temperature: 1,
      stopTokens: p.stopTokens,
      seed: seedOf(k),
    });
    for (const r of rs)
      out.push({ text: p.tok.decode(r.ended ? r.ids.slice(0, -1) : r.ids), ids: r.ids, ended: r.ended });
  }
  return out;
}

/** An item to score: a reply of no tokens (the window was full) is scored as the first stop token alone. */
function asItem(prompt: readonly number[], r: TextReply, stop: number): PromptReply {
  return { prompt, reply: r.ids.length ? r.ids : [stop] };
}

/** Σ over reply tokens of log π − log π_ref, per reply (see the header), `chunk` replies per forward. */
export async function replyLogRatios(
  policy: OpenPolicy,
  reference: CausalLM,
  prompts: readonly (readonly number[])[],
  replies: readonly TextReply[],
  chunk = 16,
): Promise<number[]> {
  const out: number[] = [];
  for (let s = 0; s < replies.length; s += chunk) {
    const items = replies.slice(s, s + chunk).map((r, i) => asItem(prompts[s + i]!, r, policy.stopTokens[0]!));
    const read = async (m: CausalLM) => {
      const t = tidy(() => noGrad(() => replyLogprobs(m, items, 1)));
      const d = Float64Array.from(await t.data());
      t.dispose();
      return d;
    };
    const lp = await read(policy.model),
      lr = await read(reference);
    let at = 0;
    for (const x of items) {
      let sum = 0;
      for (let j = 0; j < x.reply.length; j++) sum += lp[at + j]! - lr[at + j]!;
      at += x.reply.length;
      out.push(sum);
    }
  }
  return out;
}

/**
 * The reward model's score of each reply to its prompt, `chunk` per forward: each reply read as text and encoded as
 * in the reward model's training (reward_input.ts), as PPO scores its rollouts.
 */
export async function rewardScores(
  rm: RewardModel,
  p: OpenPolicy,
  prompts: readonly (readonly TrlMessage[])[],
  promptIdsOf: readonly (readonly number[])[],
  replies: readonly TextReply[],
  chunk = 32,
): Promise<number[]> {
  const input = new RewardInput(p.tok, p.template, p.stopTokens, rm.config.maxPositions);
  const out: number[] = [];
  for (let s = 0; s < replies.length; s += chunk) {
    const seqs = replies.slice(s, s + chunk).map((r, i) => {
      const x = asItem(promptIdsOf[s + i]!, r, p.stopTokens[0]!);
      return input.ids({ text: '', messages: [...prompts[s + i]!] }, x.prompt, x.reply);
    });
    const t = tidy(() => noGrad(() => rm.rewards(seqs)));
    out.push(...Array.from(await t.data()));
    t.dispose();
  }
  return out;
}

/**
 * The reward model's scores of the chosen and the rejected reply of each held-out pair of `feedback` (see the
 * header): `p` is the folder the reward model was trained from (its tokenizer and template), `maxLength` and
 * `evalFraction` the reward run's.
 */
export async function heldOutPairRewards(
  rm: RewardModel,
  p: OpenPolicy,
  feedback: string,
  o: { maxLength: number; evalFraction: number; chunk?: number },
): Promise<{ chosen: number[]; rejected: number[]; margin: number[] }> {
  const codec = { encode: (t: string) => p.tok.encode(t, { allowed: 'all' }), eosId: p.tok.eosId };
  const enc = encodePreferenceSets([readPreferenceFile(feedback, 'error', () => {})], p.template, codec, {
    maxLength: o.maxLength,
    badRows: 'error',
  });
  const held = splitByGroup(enc, o.evalFraction).eval.pairs;
  const chunk = o.chunk ?? 16;
  const chosen: number[] = [],
    rejected: number[] = [];
  const margin = held.map((x) => x.margin);
  for (let s = 0; s < held.length; s += chunk) {
    const ps = held.slice(s, s + chunk);
    const seqs = [...ps.map((x) => [...x.prompt, ...x.chosen]), ...ps.map((x) => [...x.prompt, ...x.rejected])];
    const t = tidy(() => noGrad(() => rm.rewards(seqs)));
    const r = Array.from(await t.data());
    t.dispose();
    chosen.push(...r.slice(0, ps.length));
    rejected.push(...r.slice(ps.length));
  }
  return { chosen, rejected, margin };
}
