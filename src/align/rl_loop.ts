/**
 * The loop of the RL trainers (ppo.ts, rloo.ts) on the shared loop (src/train/run.ts), once their models, prompts
 * (rl_data.ts) and objective are set up:
 *
 *   - the batcher: ppo_batches.ts's PpoBatcher (ppoEpochs passes over each batch of batchSize rollouts, in
 *     minibatches of miniBatchSize), each rollout as long as its prompt and reply;
 *   - before the first step of each batch, its rollouts (the trainer's `rollouts(k)`; sampling and scoring count as
 *     training time); one optimizer step per minibatch;
 *   - the evaluation: one batch naming the reference's replies to the held-out prompts (the objective's eval_loss is
 *     the policy's per-token cross-entropy on them);
 *   - TRL's step metrics (learning_rate, grad_norm, episode, the batch's objective/*, the step's policy/* and loss/*);
 *   - the checkpoint: a causal-LM folder with its chat template, the trainer state, and the trainer's own files
 *     (`saveOwn`: its state file, PPO's value model) so that a run stopped mid-batch resumes exactly;
 *   - the sample: the greedy reply to the first held-out prompt;
 *   - the result, and the models and optimizer freed (releaseRun).
 */
import fs from 'node:fs';
import { saveModel } from '../model/hf/folder.js';
import { FileFormatError } from '../util/errors.js';
import type { CausalLM } from '../model/model.js';
import { flopsPerToken } from '../pretrain/estimate.js';
import type { Tensor } from '../tensor/tensor.js';
import type { TextTokenizer } from '../tokenizer/index.js';
import { saveTrainingCheckpoint, type TrainerStateFile } from '../train/checkpoint.js';
import {
  loopSummary,
  modelShape,
  openRun,
  recipeResult,
  releaseRun,
  type OpenedRun,
  type RecipeOptions,
  type RunSettings,
  type RecipeResult,
} from '../train/recipe.js';
import { runTraining } from '../train/run.js';
import { sampleIds } from '../train/sample.js';
import type { TrainSettings } from '../train/settings.js';
import type { LoopConfig, Trainer, TrainableModel } from '../train/trainer.js';
import { PpoBatcher } from './ppo_batches.js';
import type { RlPrompt } from './rl_prompts.js';
import type { PromptReply } from './rollout.js';
import { saveTokenizerWithTemplate } from './sft.js';

/** What an RL trainer returns. */
export interface RlResult<C> extends RecipeResult<C> {
  maxSteps: number;
  /** objective/* of the last batch of rollouts. */
  lastBatch: Record<string, number> | null;
  finalEvalLoss: number | null;
  data: { trainPrompts: number; evalPrompts: number; skippedRows: number; dropped: number };
}

/** A batch of rollouts as the loop sees it. */
export interface RlBatch {
  /** The batch's index in the run. */
  index: number;
  rollouts: readonly { prompt: readonly number[]; reply: readonly number[] }[];
  /** objective/* and the rollout metrics of the batch. */
  stats: Record<string, number>;
}

/** An RL objective: the batch it learns from, and the statistics of the steps since the last call. */
export interface RlObjective<B extends RlBatch> extends TrainableModel {
  batch: B | null;
  takeStats(): Record<string, number>;
}

/** The settings the loop reads (PpoConfig and RlooConfig have them). */
export type RlLoopConfig = Omit<LoopConfig, 'gradAccum' | 'maxSteps'> &
  Pick<TrainSettings, 'quiet' | 'logInterval' | 'report'> & {
    resume: string;
    responseLength: number;
    batchSize: number;
    miniBatchSize: number;
    ppoEpochs: number;
  };

/** The batcher of an RL run: PpoBatcher over the objective's batch, each rollout as long as prompt + reply − 1. */
export function rlBatcher(c: RlLoopConfig, objective: RlObjective<RlBatch>): PpoBatcher {
  const batcher = new PpoBatcher(c.seed, c.batchSize, c.miniBatchSize, c.ppoEpochs);
  batcher.lengthOf = (i) => {
    const r = objective.batch?.rollouts[i];
    return r ? r.prompt.length + r.reply.length - 1 : 1;
  };
  return batcher;
}

/**
 * Open the run folder of an RL trainer (`openRun`): new runs named `<command>-<stamp>` under the defaults' outDir,
 * the config checked by `validate` over the defaults, and a resumed run refused unless `command` wrote it.
 */
export function openRlRun<C extends RlLoopConfig & RunSettings>(
  o: RecipeOptions<C>,
  command: 'ppo' | 'rloo' | 'grpo',
  defaults: C,
  validate: (c: C) => C,
): OpenedRun<C> {
  return openRun<C>(o, {
    command,
    defaultOutDir: defaults.outDir,
    stampPrefix: `${command}-`,
    validate: (c) => {
      const { command: _, ...rest } = c as C & { command?: unknown };
      return validate({ ...defaults, ...(rest as Partial<C>) });
    },
    checkSaved: (saved, file) => {
      if ((saved.config as unknown as Record<string, unknown>)['command'] !== command)
        throw new FileFormatError(
          'E_TRAINER_STATE',
          file,
          `not ${command === 'rloo' ? 'an' : 'a'} ${command} run: resume it with its own command`,
          'config',
        );
    },
  });
}

export interface RlLoop<C extends RlLoopConfig, B extends RlBatch> {
  command: 'ppo' | 'rloo' | 'grpo';
  options: RecipeOptions<C>;
  run: OpenedRun<C>;
  policy: CausalLM;
  /** The tokenizer and the chat template's source, saved with every checkpoint. */
  tok: TextTokenizer;
  source: string;
  objective: RlObjective<B>;
  batcher: PpoBatcher;
  maxSteps: number;
  /** The context window of the policy (for FLOPs per token). */
  maxPositions: number;
  /** The reference's replies to the held-out prompts: the evaluation set. */
  evalReplies: readonly PromptReply[];
  /** The prompt of the sample, and the token that ends it. */
  sample: { prompt: RlPrompt; stopId: number };
  /** Batch k of rollouts, ready for the objective. */
  rollouts: (k: number) => Promise<B>;
  /** Write the trainer's own files into a checkpoint folder (after the policy). */
  saveOwn: (dir: string) => Promise<void>;
  /** The summary's lines before the loop's (model, reward, data, …). */
  summary: (t: Trainer, why: string) => Record<string, string>;
  /** Counts of the prompts, for the result. */
  data: RlResult<C>['data'];
  /** The models to free once the result is built. */
  release: readonly ({ params: Map<string, Tensor> } | null)[];
  /** Called after each checkpoint is written (its folder, the step): align verify keeps copies for its curve. */
  onCheckpoint?: (dir: string, step: number) => void | Promise<void>;
  log: (line: string) => void;
}

/** Run the loop of an RL trainer to its end (or Ctrl-C, or the time limit); the models are freed after. */
export async function runRlLoop<C extends RlLoopConfig, B extends RlBatch>(l: RlLoop<C, B>): Promise<RlResult<C>> {
  const { run, objective, batcher, policy, maxSteps, options: o } = l;
  const { config: c, runDir, resumeDir, saved, checkpointDir: ckDir } = run;
  const writeCheckpoint = async (t: Trainer): Promise<string> => {
    const state: TrainerStateFile<C> = {
      version: 1,
      ...t.state,
      config: { ...c, resume: '', command: l.command } as C,
      model: modelShape(policy.config),
      savedAt: new Date().toISOString(),
    };
    await saveTrainingCheckpoint({
      dir: ckDir,
      saveModel: async (d) => {
        await saveModel(policy, d);
        await l.saveOwn(d);
      },
      saveTokenizer: (d) => saveTokenizerWithTemplate(l.tok, l.source, d),
      state,
      moments: await t.optimizer.stateDict(),
    });
    if (l.onCheckpoint) await l.onCheckpoint(ckDir, t.state.step);
    return ckDir;
  };
  if (saved) l.log(`resuming ${runDir} at step ${saved.step} of ${maxSteps}`);
  fs.mkdirSync(runDir, { recursive: true });
  const done = await runTraining({
    runDir,
    trainer: {
      model: objective,
      batcher,
      evalBatches: [
        {
          ids: Int32Array.from(l.evalReplies, (_, i) => i),
          targets: new Int32Array(l.evalReplies.length),
          B: l.evalReplies.length,
          T: 1,
        },
      ],
      config: { ...c, gradAccum: 1, maxSteps }, // one optimizer step per minibatch of rollouts
      flopsPerToken: flopsPerToken(policy.config, l.maxPositions),
      vocabSize: 0, // the loss is no cross-entropy over the vocabulary: no "stuck at ln(vocab)" warnings
    },
    display: c,
    ...(saved ? { resume: { state: saved, dir: resumeDir! } } : {}),
    saveCheckpoint: writeCheckpoint,
    beforeStep: async (t) => {
      const k = batcher.nextBatchIndex;
      if (objective.batch?.index === k) return;
      const t0 = performance.now();
      objective.batch = await l.rollouts(k);
      t.state.trainSeconds += (performance.now() - t0) / 1000; // sampling and scoring are part of training time
    },
    sample: async () => {
      const ids = await sampleIds(policy, l.sample.prompt.ids, {
        maxTokens: c.responseLength,
        temperature: 0,
        topK: 0,
        seed: c.seed,
        stopId: l.sample.stopId,
      });
      return [{ prompt: l.sample.prompt.text, text: l.tok.decode(ids, { continuation: true }) }];
    },
    stepMetrics: (_t, r) => ({
      learning_rate: r.lr,
      grad_norm: r.gradNorm,
      episode: (Math.floor(r.step / batcher.stepsPerBatch) + 1) * c.batchSize,
      ...(objective.batch?.stats ?? {}),
      ...objective.takeStats(),
    }),
    evalMetrics: (_t, rec) => ({ eval_loss: rec.valLoss }),
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.haltAfterStep !== undefined ? { haltAfterStep: o.haltAfterStep } : {}),
    ...(o.handleSigint !== undefined ? { handleSigint: o.handleSigint } : {}),
    summary: (t, why) => ({ ...l.summary(t, why), ...loopSummary(t, ckDir, policy.backend) }),
  });
  const last = done.trainer.state.evals[done.trainer.state.evals.length - 1];
  const result: RlResult<C> = {
    ...recipeResult(run, done, c),
    maxSteps,
    lastBatch: objective.batch?.stats ?? null,
    finalEvalLoss: last ? last.valLoss : null,
    data: l.data,
  };
  releaseRun(done, l.release);
  return result;
}
