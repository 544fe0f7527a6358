/**
 * PPO with a KL leash (what `llmts ppo` runs), TRL's PPOTrainer on the shared loop (src/train/run.ts):
 *
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed, and its saved config;
 *   2. the models: the policy (the SFT folder, or the checkpoint), the frozen reference (the SFT folder), the frozen
 *      reward model (`rewardModel`), and the value model (a trained copy of the reward model, or a value head on the
 *      policy's body);
 *   3. the prompts (rl_data.ts), the last evalFraction held out; the reference's replies to the held-out prompts,
 *      sampled once with the run seed, are the evaluation set (eval_loss: the policy's per-token cross-entropy on
 *      them, which rises as the policy leaves the reference);
 *   4. before the first step of each batch: N rollouts (rollout.ts) → KL-shaped rewards, GAE, whitened advantages
 *      (ppo_objective.ts `prepareBatch`); the adaptive controller then moves β;
 *   5. each step: one minibatch of M rollouts, the clipped policy + value loss, one AdamW step over the policy and
 *      value parameters; ppoEpochs passes over each batch (ppo_batches.ts);
 *   6. the loop (rl_loop.ts): metrics.jsonl with TRL's names (objective/kl, objective/scores, objective/rlhf_reward,
 *      objective/non_score_reward, objective/entropy, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg,
 *      loss/value_avg, val/clipfrac_avg, val/ratio, val/num_eos_tokens, reply_length, eos_rate, objective/kl_coef),
 *      checkpoints as a causal-LM folder with its chat template plus `value_model/` and `ppo_state.json` (β and the
 *      batch of rollouts being learned from, so a run stopped mid-batch resumes exactly), Ctrl-C, report.html.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, loadRewardModel, saveRewardModel } from '../model/hf/folder.js';
import type { CausalLM } from '../model/model.js';
import { RewardModel, SCORE_WEIGHT } from '../model/reward.js';
import { countParams, formatCount } from '../pretrain/estimate.js';
import { tensor } from '../tensor/tensor.js';
import type { RecipeOptions } from '../train/recipe.js';
import { FileFormatError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { Rng } from '../util/rng.js';
import { batchPrompts, derivedSeed } from './ppo_batches.js';
import { PpoObjective, prepareBatch, type PpoBatch } from './ppo_objective.js';
import { PPO_DEFAULTS, validatePpoConfig, type PpoConfig } from './ppo_settings.js';
import { AdaptiveKlController, FixedKlController, type KlController } from './rl_math.js';
import { openRewardModel, openRlData } from './rl_data.js';
import { RewardInput } from './reward_input.js';
import { openRlRun, rlBatcher, runRlLoop, type RlResult } from './rl_loop.js';
import { engineReplySampler, scoreRollouts, type ReplySampler } from './rollout.js';
import { CHATML_JINJA, openModelFolder } from './sft.js';
import { loadPolicy, referenceOf } from './peft.js';

/** PPO's own file in a checkpoint: β and the batch of rollouts being learned from. */
export const PPO_STATE = 'ppo_state.json';
/** The value model's folder in a checkpoint. */
export const VALUE_MODEL_DIR = 'value_model';

interface PpoStateFile {
  version: 1;
  klCoef: number;
  batch: PpoBatch | null;
}

export type PpoOptions = RecipeOptions<PpoConfig> & {
  /** Where replies are sampled (default: the generation engine on the policy). */
  sampler?: (policy: CausalLM) => ReplySampler;
  /**
   * Called after each checkpoint is written (at checkpointInterval, at the end, when stopped) with its folder and
   * step, before the next step overwrites it: `align verify` keeps copies of the policy along the run this way.
   */
  onCheckpoint?: (dir: string, step: number) => void | Promise<void>;
};

export type PpoResult = RlResult<PpoConfig>;

function readState(dir: string): PpoStateFile {
  const file = path.join(dir, PPO_STATE);
  if (!fs.existsSync(file))
    throw new FileFormatError('E_FILE_MISSING', file, 'no PPO state: this checkpoint was not written by llmts ppo');
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as PpoStateFile;
    if (j.version !== 1 || typeof j.klCoef !== 'number') throw new Error('expected version 1 and a klCoef');
    return j;
  } catch (e) {
    throw new FileFormatError('E_JSON', file, `not a PPO state file (${(e as Error).message})`);
  }
}

/** The value model: a trained copy of the reward model, or a score head on the policy's body (sharing it). */
async function openValueModel(c: PpoConfig, policy: CausalLM, resumeDir: string | null): Promise<RewardModel> {
  const backend = policy.backend;
  const dir = resumeDir ? path.join(resumeDir, VALUE_MODEL_DIR) : c.rewardModel;
  if (c.valueModel === 'reward') return loadRewardModel(dir, { backend });
  let score: Float32Array;
  if (resumeDir)
    score = (await (await loadRewardModel(dir, { backend })).params.get(SCORE_WEIGHT)!.data()) as Float32Array;
  else {
    const rng = new Rng(derivedSeed(c.seed, 4, 0));
    score = Float32Array.from({ length: policy.config.hiddenSize }, () => rng.normal() * 0.02);
  }
  const w = tensor(score, [1, policy.config.hiddenSize], { backend, requiresGrad: true, name: SCORE_WEIGHT });
  return new RewardModel(policy.config, new Map([...policy.params, [SCORE_WEIGHT, w]]));
}

/** Run (or resume) PPO. */
export async function ppo(o: PpoOptions): Promise<PpoResult> {
  const log = o.log ?? ((s: string) => console.log(s));

  // ---- 1. run folder and config
  const run = openRlRun(o, 'ppo', PPO_DEFAULTS, validatePpoConfig);
  const { config: c, resumeDir } = run;

  // ---- 2. models
  const { backend, modelDir, tok, template, source } = await openModelFolder(c, resumeDir);
  const policy = await loadPolicy(c, c.model, resumeDir, backend, log);
  const reference = await referenceOf(policy, c.model, backend);
  const reward = await openRewardModel(c.rewardModel, backend, policy);
  const value = await openValueModel(c, policy, resumeDir);
  // the value model trains whole, except a body it shares with a LoRA policy: frozen there, only its score head trains
  const frozen = new Set(policy.lora.size ? policy.params.values() : []);
  for (const p of value.params.values()) p.requiresGrad = !frozen.has(p);
  const pstate = resumeDir ? readState(resumeDir) : null;
  const kl: KlController =
    c.targetKl > 0
      ? new AdaptiveKlController(pstate?.klCoef ?? c.klCoef, c.targetKl, c.horizon)
      : new FixedKlController(pstate?.klCoef ?? c.klCoef);

  // ---- 3. prompts, the held-out split, the stop tokens, the evaluation replies
  const maxPositions = (await loadConfig(modelDir)).maxPositions;
  const { read, train, held, stopTokens, sampling, evalReplies } = await openRlData({
    c,
    trainer: 'PPO',
    modelDir,
    maxPositions,
    tok,
    template,
    reference: engineReplySampler(reference),
    log,
  });
  log(
    `data: ${read.form} prompts → ${train.length} training / ${held.length} held-out (${evalReplies.length} reference replies to score); template ${template.kind}${source === CHATML_JINJA ? ' (ChatML)' : ''}; stop tokens ${stopTokens.join(', ')}`,
  );

  // ---- 4./5. rollouts, objective, batches
  const objective = new PpoObjective(policy, value, evalReplies, {
    cliprange: c.cliprange,
    cliprangeValue: c.cliprangeValue,
    vfCoef: c.vfCoef,
    temperature: c.temperature,
  });
  objective.batch = pstate?.batch ?? null;
  const batcher = rlBatcher(c, objective);
  const nBatches = Math.ceil(c.totalEpisodes / c.batchSize);
  const maxSteps = c.maxSteps || nBatches * batcher.stepsPerBatch;
  const sampler = (o.sampler ?? engineReplySampler)(policy);
  const models = { policy, reference, value, reward };
  // the reward model reads each reply as text, encoded as in its training (reward_input.ts)
  const rewardInput = new RewardInput(tok, template, stopTokens, reward.config.maxPositions);
  const rollouts = async (k: number): Promise<PpoBatch> => {
    const idx = batchPrompts(c.seed, k, c.batchSize, train.length);
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
    }));
    const scored = await scoreRollouts(models, items, c.temperature, (x) =>
      rewardInput.ids(train[x.promptIndex]!, x.prompt, x.reply),
    );
    const b = prepareBatch(k, scored, {
      klCoef: kl.value,
      klEstimator: c.klEstimator,
      gamma: c.gamma,
      lam: c.lam,
      missingEosPenalty: c.missingEosPenalty,
      whitenAdvantages: c.whitenAdvantages,
    });
    kl.update(b.meanKl, c.batchSize);
    return b;
  };
  const nParams = countParams(policy.config).total;
  log(
    `model: ${c.model}: ${policy.config.family} policy, ${formatCount(nParams)} parameters; value model ${c.valueModel === 'reward' ? `from ${c.rewardModel}` : "a head on the policy's body"}; ${maxSteps} steps (${nBatches} batches of ${c.batchSize} rollouts, ${c.ppoEpochs} epochs of ${c.batchSize / c.miniBatchSize} minibatches); backend ${backend.describe()}`,
  );

  // ---- 6. the loop
  return runRlLoop({
    command: 'ppo',
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
      const ps: PpoStateFile = { version: 1, klCoef: kl.value, batch: objective.batch };
      await saveRewardModel(value, path.join(d, VALUE_MODEL_DIR));
      await writeFileAtomic(path.join(d, PPO_STATE), JSON.stringify(ps) + '\n');
    },
    summary: (t, why) => ({
      model: `${c.model} (${policy.config.family}, ${formatCount(nParams)} parameters)`,
      'reward model': c.rewardModel,
      data: `${c.data.join(', ')}: ${train.length} training / ${held.length} held-out prompts; ${read.skipped} bad rows skipped, ${read.dropped} prompts dropped`,
      'chat template': source === CHATML_JINJA ? 'ChatML' : template.kind,
      steps: `${t.state.step} of ${maxSteps} (${why}), ${Math.ceil(t.state.step / batcher.stepsPerBatch)} batches of rollouts`,
      'KL coefficient': `${kl.value.toPrecision(4)}${c.targetKl > 0 ? ` (adaptive, target ${c.targetKl})` : ' (fixed)'}`,
    }),
    data: { trainPrompts: train.length, evalPrompts: held.length, skippedRows: read.skipped, dropped: read.dropped },
    release: [policy, reference, reward, value],
    ...(o.onCheckpoint ? { onCheckpoint: o.onCheckpoint } : {}),
    log,
  });
}
