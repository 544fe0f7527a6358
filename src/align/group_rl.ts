/**
 * The trainers that sample a group of replies per prompt and need no value model — RLOO (rloo.ts) and GRPO
 * (grpo.ts) — on the shared loop (src/train/run.ts) and PPO's rollout machinery (rollout.ts, ppo_batches.ts):
 *
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed, and its saved config;
 *   2. the models: the policy (the SFT folder, or the checkpoint), the frozen reference (the SFT folder), and the
 *      reward: reward function modules (reward_fn.ts; a verifiable reward such as raters/arithmetic.mjs), several
 *      summed with rewardWeights as TRL's reward_funcs (each one's mean and std are metrics, rewards/<name>/mean),
 *      or a frozen reward model;
 *   3. the prompts (rl_data.ts), the last evalFraction held out; the reference's replies to the held-out prompts
 *      are the evaluation set (eval_loss: the policy's per-token cross-entropy on them), as PPO's;
 *   4. before the first step of each batch: batchSize / k prompts (ppo_batches.ts's order), k replies to each from
 *      the batched KV-cached sampler (batch_sampler.ts, temperature only), scored by the policy and the reference
 *      (log-probabilities of every reply token under logits / T) and by the reward → the trainer's advantages
 *      (`spec.prepare`);
 *   5. each step: one minibatch of replies, the trainer's clipped loss (`spec.objective`), one AdamW step; ppoEpochs
 *      passes over each batch (ppo_batches.ts's PpoBatcher);
 *   6. the loop (rl_loop.ts): metrics.jsonl, checkpoints as a causal-LM folder with its chat template plus the
 *      trainer's state file (the batch being learned from, so a run stopped mid-batch resumes exactly), Ctrl-C,
 *      report.html.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../model/hf/folder.js';
import type { CausalLM } from '../model/model.js';
import type { RewardModel } from '../model/reward.js';
import { countParams, formatCount } from '../pretrain/estimate.js';
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import type { RecipeOptions, RunSettings } from '../train/recipe.js';
import { FileFormatError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { batchReplySampler } from './batch_sampler.js';
import { batchPrompts, derivedSeed } from './ppo_batches.js';
import { loadRewardFunction, type RewardFunction } from './reward_fn.js';
import { openRewardModel, openRlData, type RlDataConfig } from './rl_data.js';
import {
  openRlRun,
  rlBatcher,
  runRlLoop,
  type RlBatch,
  type RlLoopConfig,
  type RlObjective,
  type RlResult,
} from './rl_loop.js';
import type { RlPrompt } from './rl_prompts.js';
import { RewardInput } from './reward_input.js';
import { perItem, replyLogprobs, type PromptReply, type ReplySampler } from './rollout.js';
import { CHATML_JINJA, openModelFolder } from './sft.js';
import { loadPolicy, referenceOf, type PeftValues } from './peft.js';

/** A sampled and scored reply of a group batch. */
export interface GroupRollout extends PromptReply {
  /** The prompt's index in the run's training prompts. */
  promptIndex: number;
  /** A stop token ended the reply. */
  ended: boolean;
  /** log π_old of each reply token (logits / T). */
  logprobs: number[];
  /** log π_ref of each reply token (logits / T). */
  refLogprobs: number[];
  /** The reward function's score of the reply. */
  score: number;
}

/** The settings every group trainer has (RlooConfig and GrpoConfig do). */
export type GroupRlConfig = RlLoopConfig &
  RunSettings &
  RlDataConfig &
  PeftValues & {
    model: string;
    reward: string[];
    rewardWeights: number[];
    rewardModel: string;
    backend: 'auto' | 'wasm' | 'webgpu' | 'ref';
    threads: number;
    maxSteps: number;
    totalEpisodes: number;
    samplerBatch: number;
  };

/** What makes a group trainer: its names, settings, advantages and loss. */
export interface GroupRlSpec<C extends GroupRlConfig, B extends RlBatch> {
  command: 'rloo' | 'grpo';
  trainer: 'RLOO' | 'GRPO';
  /** Its state file in a checkpoint (the batch being learned from). */
  stateFile: string;
  defaults: C;
  validate: (c: C) => C;
  /** Replies per prompt. */
  k(c: C): number;
  objective(policy: CausalLM, evalReplies: readonly PromptReply[], c: C): RlObjective<B>;
  /** A scored batch (k consecutive rollouts per prompt) → the objective's batch. */
  prepare(index: number, scored: GroupRollout[], c: C): B;
  /** The summary's line on the KL leash. */
  klLine(c: C): string;
}

interface GroupStateFile<B> {
  version: 1;
  batch: B | null;
}

export type GroupRlOptions<C> = RecipeOptions<C> & {
  /** Where replies are sampled (default: the batched KV-cached sampler on the policy). */
  sampler?: (policy: CausalLM) => ReplySampler;
};

function readState<B>(dir: string, spec: { command: string; trainer: string; stateFile: string }): GroupStateFile<B> {
  const file = path.join(dir, spec.stateFile);
  if (!fs.existsSync(file))
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      `no ${spec.trainer} state: this checkpoint was not written by llmts ${spec.command}`,
    );
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as GroupStateFile<B>;
    if (j.version !== 1) throw new Error('expected version 1');
    return j;
  } catch (e) {
    throw new FileFormatError(
      'E_JSON',
      file,
      `not ${spec.trainer === 'RLOO' ? 'an' : 'a'} ${spec.trainer} state file (${(e as Error).message})`,
    );
  }
}

async function read(fn: () => Tensor): Promise<ArrayLike<number>> {
  const t = tidy(() => noGrad(fn));
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

/** Run (or resume) a group trainer (see the header). */
export async function runGroupRl<C extends GroupRlConfig, B extends RlBatch>(
  spec: GroupRlSpec<C, B>,
  o: GroupRlOptions<C>,
): Promise<RlResult<C>> {
  const log = o.log ?? ((s: string) => console.log(s));

  // ---- 1. run folder and config
  const run = openRlRun(o, spec.command, spec.defaults, spec.validate);
  const { config: c, resumeDir } = run;
  const K = spec.k(c);

  // ---- 2. models and the reward (the reward module first: a bad file fails before any model loads)
  const rewardFns: RewardFunction[] = [];
  for (const f of c.reward) rewardFns.push(await loadRewardFunction(f, { seed: c.seed }));
  // the reward sources: the functions, then the reward model (TRL's reward_funcs may mix both), one weight each
  const nSources = rewardFns.length + (c.rewardModel ? 1 : 0);
  const weights = c.rewardWeights.length ? c.rewardWeights : Array.from({ length: nSources }, () => 1);
  // each source's metric name: a function's own, made unique by position where two share one; the model's folder
  const sourceNames = [
    ...rewardFns.map((f, i) => (rewardFns.filter((g) => g.name === f.name).length > 1 ? `${f.name}_${i}` : f.name)),
    ...(c.rewardModel ? [path.basename(path.resolve(c.rewardModel))] : []),
  ];
  const weighted = (i: number) => (weights[i] !== 1 || nSources > 1 ? `, weight ${weights[i]}` : '');
  const rewardLine =
    nSources === 1 && c.rewardModel && weights[0] === 1
      ? `model ${c.rewardModel}`
      : [
          ...rewardFns.map((f, i) => `${f.name} (${c.reward[i]}${weighted(i)})`),
          ...(c.rewardModel ? [`model (${c.rewardModel}${weighted(rewardFns.length)})`] : []),
        ].join(' + ');
  const { backend, modelDir, tok, template, source } = await openModelFolder(c, resumeDir);
  const policy = await loadPolicy(c, c.model, resumeDir, backend, log);
  const reference = await referenceOf(policy, c.model, backend);
  const rewardModel: RewardModel | null = c.rewardModel ? await openRewardModel(c.rewardModel, backend, policy) : null;
  const pstate = resumeDir ? readState<B>(resumeDir, spec) : null;

  // ---- 3. prompts, the held-out split, the stop tokens, the evaluation replies
  const maxPositions = (await loadConfig(modelDir)).maxPositions;
  const {
    read: rd,
    train,
    held,
    stopTokens,
    sampling,
    evalReplies,
  } = await openRlData({
    c,
    trainer: spec.trainer,
    modelDir,
    maxPositions,
    tok,
    template,
    reference: batchReplySampler(reference, c.samplerBatch),
    log,
  });
  log(
    `data: ${rd.form} prompts → ${train.length} training / ${held.length} held-out (${evalReplies.length} reference replies to score); template ${template.kind}${source === CHATML_JINJA ? ' (ChatML)' : ''}; stop tokens ${stopTokens.join(', ')}; reward ${rewardLine}`,
  );

  // ---- 4./5. rollouts, objective, batches
  const objective = spec.objective(policy, evalReplies, c);
  objective.batch = pstate?.batch ?? null;
  const batcher = rlBatcher(c, objective);
  const nBatches = Math.ceil(c.totalEpisodes / c.batchSize);
  const maxSteps = c.maxSteps || nBatches * batcher.stepsPerBatch;
  const sampler = (o.sampler ?? ((m: CausalLM) => batchReplySampler(m, c.samplerBatch)))(policy);
  const nPrompts = c.batchSize / K;
  // a reward model reads each reply as text, encoded as in its training (reward_input.ts)
  const rewardInput = new RewardInput(tok, template, stopTokens, rewardModel?.config.maxPositions);
  /** Each item's reward, and each source's scores (one row per function, then the reward model's). */
  const scoreOf = async (
    items: readonly (PromptReply & { ended: boolean; p: RlPrompt })[],
  ): Promise<{ total: number[]; perFn: number[][] }> => {
    const perFn: number[][] = rewardFns.map(() => []);
    for (const x of items) {
      const prompt = x.p.messages ?? [{ role: 'user' as const, content: x.p.text }];
      const text = rewardInput.text(x.reply);
      for (let f = 0; f < rewardFns.length; f++)
        perFn[f]!.push(await rewardFns[f]!.score(prompt, text, { finishReason: x.ended ? 'stop' : 'length' }));
    }
    if (rewardModel) {
      const m = rewardModel;
      const out: number[] = [];
      for (let s = 0; s < items.length; s += 16) {
        const part = items.slice(s, s + 16);
        out.push(...Array.from(await read(() => m.rewards(part.map((x) => rewardInput.ids(x.p, x.prompt, x.reply))))));
      }
      perFn.push(out);
    }
    // the weighted sum, in the sources' order (TRL: (rewards_per_func · weights).sum)
    const total = items.map((_, i) => perFn.reduce((s, row, f) => s + weights[f]! * row[i]!, 0));
    return { total, perFn };
  };
  const rollouts = async (k: number): Promise<B> => {
    // prompt j of the batch gets rollouts j·K … j·K + K − 1 (the objectives' layout)
    const idx = batchPrompts(c.seed, k, nPrompts, train.length).flatMap((i) => Array.from({ length: K }, () => i));
    const replies = await sampler.sample(
      idx.map((i) => train[i]!.ids),
      { ...sampling, seed: derivedSeed(c.seed, 3, k) },
    );
    const items = replies.map((r, i) => ({
      prompt: train[idx[i]!]!.ids,
      // a reply of no tokens (the window was full) is scored as the stop token alone
      reply: r.ids.length ? r.ids : [stopTokens[0]!],
      ended: r.ended,
      promptIndex: idx[i]!,
      p: train[idx[i]!]!,
    }));
    const scored: GroupRollout[] = [];
    const perFn: number[][] = sourceNames.map(() => []);
    for (let s = 0; s < items.length; s += 16) {
      const part = items.slice(s, s + 16);
      const lp = perItem(await read(() => replyLogprobs(policy, part, c.temperature)), part);
      const rl = perItem(await read(() => replyLogprobs(reference, part, c.temperature)), part);
      const { total: sc, perFn: fs_ } = await scoreOf(part);
      fs_.forEach((row, f) => perFn[f]!.push(...row));
      part.forEach((x, i) =>
        scored.push({
          prompt: [...x.prompt],
          reply: [...x.reply],
          promptIndex: x.promptIndex,
          ended: x.ended,
          logprobs: lp[i]!,
          refLogprobs: rl[i]!,
          score: sc[i]!,
        }),
      );
    }
    const b = spec.prepare(k, scored, c);
    // several reward sources: each one's mean and std over the batch (TRL's rewards/<name>/mean, /std)
    if (nSources > 1)
      perFn.forEach((row, f) => {
        const m = row.reduce((a, x) => a + x, 0) / row.length;
        b.stats[`rewards/${sourceNames[f]}/mean`] = m;
        b.stats[`rewards/${sourceNames[f]}/std`] =
          row.length > 1 ? Math.sqrt(row.reduce((a, x) => a + (x - m) ** 2, 0) / (row.length - 1)) : 0;
      });
    return b;
  };
  const nParams = countParams(policy.config).total;
  log(
    `model: ${c.model}: ${policy.config.family} policy, ${formatCount(nParams)} parameters; ${maxSteps} steps (${nBatches} batches of ${nPrompts} prompts × ${K} replies, ${c.ppoEpochs} epochs of ${c.batchSize / c.miniBatchSize} minibatches); backend ${backend.describe()}`,
  );

  // ---- 6. the loop
  return runRlLoop({
    command: spec.command,
    options: o,
    run,
    policy,
    tok,
    source,
    objective,
    batcher,
    maxSteps,
    maxPositions,
    evalReplies,
    sample: { prompt: held[0]!, stopId: stopTokens[stopTokens.length - 1]! },
    rollouts,
    saveOwn: async (d) => {
      const rs: GroupStateFile<B> = { version: 1, batch: objective.batch };
      await writeFileAtomic(path.join(d, spec.stateFile), JSON.stringify(rs) + '\n');
    },
    summary: (t, why) => ({
      model: `${c.model} (${policy.config.family}, ${formatCount(nParams)} parameters)`,
      reward: rewardFns.length ? rewardLine : `reward ${rewardLine}`,
      data: `${c.data.join(', ')}: ${train.length} training / ${held.length} held-out prompts; ${rd.skipped} bad rows skipped, ${rd.dropped} prompts dropped`,
      'chat template': source === CHATML_JINJA ? 'ChatML' : template.kind,
      steps: `${t.state.step} of ${maxSteps} (${why}), ${Math.ceil(t.state.step / batcher.stepsPerBatch)} batches of ${nPrompts} prompts × ${K} replies`,
      'KL coefficient': spec.klLine(c),
    }),
    data: { trainPrompts: train.length, evalPrompts: held.length, skippedRows: rd.skipped, dropped: rd.dropped },
    release: [policy, reference, rewardModel],
    log,
  });
}
