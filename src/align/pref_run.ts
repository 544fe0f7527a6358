/**
 * The run shared by `llmts reward` and `llmts dpo` (reward.ts, dpo.ts give the model and objective), on the shared
 * loop (src/train/run.ts) as SFT is (sft.ts):
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed, and its saved config;
 *   2. the model folder's tokenizer and chat template (ChatML when it has none);
 *   3. the data (pref_data.ts): preference / ranking rows → pairs grouped by prompt, long pairs dropped and counted,
 *      the held-out split by prompt;
 *   4. the recipe's model and objective (a reward model, or the DPO policy with its precomputed reference);
 *   5. batches of whole prompt groups (pref_batches.ts) and fixed held-out batches;
 *   6. the loop with TRL's metric names in metrics.jsonl, checkpoints as Hugging Face folders with the tokenizer
 *      and chat template, Ctrl-C and exact resume, report.html.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Backend } from '../backend/backend.js';
import type { ModelConfig } from '../model/config.js';
import { loadConfig } from '../model/hf/folder.js';
import { countParams, flopsPerToken, formatCount } from '../pretrain/estimate.js';
import { saveTokenizer, type TextTokenizer } from '../tokenizer/index.js';
import { saveTrainingCheckpoint, type TrainerStateFile } from '../train/checkpoint.js';
import {
  loopSummary,
  modelShape,
  openRun,
  recipeResult,
  type RecipeOptions,
  type RecipeResult,
} from '../train/recipe.js';
import { runTraining } from '../train/run.js';
import type { Trainer, TrainableModel } from '../train/trainer.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { PrefBatcher, prefEvalBatches } from './pref_batches.js';
import { encodePreferenceSets, readPreferenceFile, splitByGroup, type PrefPair, type PrefSet } from './pref_data.js';
import type { RewardConfig } from './reward_settings.js';
import { statMetrics, type PrefStats } from './pref_stats.js';
import { CHATML_JINJA, openModelFolder } from './sft.js';

/** The settings every preference run has (reward_settings.ts and dpo_settings.ts both hold them). */
export type PrefConfig = Omit<RewardConfig, 'centerRewardsCoefficient' | 'scoreInitStd'>;

/** A model and objective in the loop: what a recipe's `prepare` returns. */
export interface PrefModel {
  objective: TrainableModel & { takeStats(which: 'train' | 'eval'): PrefStats };
  config: ModelConfig;
  /** Write the model (weights and config) into a checkpoint folder, with any files of the recipe's own. */
  save(dir: string): Promise<void>;
  /** Greedy samples for the log (DPO); none for a reward model. */
  sample?: () => Promise<{ prompt: string; text: string }[]>;
  describe: string;
}

export interface PrefRecipe<C extends PrefConfig> {
  command: 'reward' | 'dpo';
  defaults: Readonly<C>;
  validate(c: C): C;
  /**
   * The model and objective: from the starting folder `modelDir` (a new run) or from the checkpoint (`resumeDir`).
   * `pairs` are the training pairs then the held-out ones; `nTrain` of them train.
   */
  prepare(a: {
    c: C;
    modelDir: string;
    resumeDir: string | null;
    backend: Backend;
    tok: TextTokenizer;
    pairs: PrefPair[];
    nTrain: number;
    fingerprint: string;
    log: (s: string) => void;
  }): Promise<PrefModel>;
}

export type PrefOptions<C extends PrefConfig> = RecipeOptions<C>;

export interface PrefResult<C> extends RecipeResult<C> {
  maxSteps: number;
  /** The last evaluation's record (eval_loss and TRL's eval_* metrics), or null. */
  finalEval: Record<string, number> | null;
  data: {
    trainPairs: number;
    evalPairs: number;
    trainPrompts: number;
    evalPrompts: number;
    skippedRows: number;
    dropped: number;
  };
}

/** Run (or resume) a preference run with a recipe. */
export async function runPreference<C extends PrefConfig>(
  recipe: PrefRecipe<C>,
  o: PrefOptions<C>,
): Promise<PrefResult<C>> {
  const log = o.log ?? ((s: string) => console.log(s));

  // ---- 1. run folder and config (a saved config holds the command that wrote it)
  const run = openRun(o, {
    command: recipe.command,
    defaultOutDir: recipe.defaults.outDir,
    stampPrefix: `${recipe.command}-`,
    validate: (c) => {
      const { command: _, ...rest } = c as C & { command?: unknown };
      return recipe.validate({ ...recipe.defaults, ...(rest as Partial<C>) } as C);
    },
    checkSaved: (saved, file) => {
      const sc = saved.config as unknown as Record<string, unknown>;
      if (sc['command'] !== recipe.command)
        throw new FileFormatError(
          'E_TRAINER_STATE',
          file,
          `not a '${recipe.command}' run${typeof sc['command'] === 'string' ? ` (an '${sc['command']}' run)` : ''}: resume it with its own command`,
          'config',
        );
    },
  });
  const { config: c, runDir, resumeDir, saved, checkpointDir: ckDir } = run;

  // ---- 2. backend, tokenizer, chat template
  const { backend, modelDir, tok, template, source } = await openModelFolder(c, resumeDir);
  const maxPositions = (await loadConfig(modelDir)).maxPositions;
  const maxLength = c.maxLength || maxPositions;
  if (maxLength > maxPositions)
    throw new ConfigError(
      'maxLength',
      `must be ≤ ${maxPositions}, the positions the model ${c.model} has (0 = all of them)`,
    );

  // ---- 3. data
  const codec = { encode: (t: string) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
  const trainSets = c.data.map((f) => readPreferenceFile(f, c.badRows, log));
  const enc = encodePreferenceSets(trainSets, template, codec, { maxLength, badRows: c.badRows });
  let train: PrefSet, held: PrefSet;
  let skippedRows = trainSets.reduce((n, d) => n + d.skipped.length, 0) + enc.skipped;
  let dropped = enc.dropped;
  if (c.evalData) {
    const e = encodePreferenceSets([readPreferenceFile(c.evalData, c.badRows, log)], template, codec, {
      maxLength,
      badRows: c.badRows,
    });
    train = enc;
    held = e;
    skippedRows += e.skipped;
    dropped += e.dropped;
  } else ({ train, eval: held } = splitByGroup(enc, c.evalFraction));
  if (!train.pairs.length) throw new ConfigError('data', `${c.data.join(', ')}: no usable pairs to train on`);
  if (!held.pairs.length) throw new ConfigError('evalData', `${c.evalData}: no usable pairs to evaluate on`);
  if (dropped)
    log(`warning: ${dropped} pair${dropped === 1 ? '' : 's'} longer than maxLength = ${maxLength} tokens dropped`);
  const unencodable = skippedRows - trainSets.reduce((n, d) => n + d.skipped.length, 0);
  if (unencodable)
    log(`warning: ${unencodable} row${unencodable === 1 ? '' : 's'} that could not be encoded skipped (badRows=skip)`);
  const pairs = [...train.pairs, ...held.pairs];
  const fp = crypto
    .createHash('sha256')
    .update(JSON.stringify(pairs.map((p) => [p.prompt, p.chosen, p.rejected, p.margin, p.group])))
    .digest('hex');
  if (saved && saved.corpusFingerprint !== fp)
    log(
      'warning: the data differ from those this run started with; the resumed run will not match an uninterrupted one',
    );
  log(
    `data: ${trainSets[0]!.kind} (${trainSets[0]!.form}) rows → ${train.pairs.length} training pairs (${train.groups.length} prompts) / ${held.pairs.length} held-out pairs (${held.groups.length} prompts); template ${template.kind}${source === CHATML_JINJA ? ' (ChatML)' : ''}`,
  );

  // ---- 4. model and objective
  const m = await recipe.prepare({
    c,
    modelDir,
    resumeDir,
    backend,
    tok,
    pairs,
    nTrain: train.pairs.length,
    fingerprint: fp,
    log,
  });

  // ---- 5. batches
  const G = c.gradAccum;
  const maxSteps = c.maxSteps || Math.max(1, Math.ceil((c.epochs * train.groups.length) / (c.batchSize * G)));
  const batcher = new PrefBatcher(train.pairs, train.groups, c.batchSize, c.seed);
  const evalSet = prefEvalBatches(held.pairs, held.groups, c.batchSize, train.pairs.length, c.evalBatches);
  const finalSet =
    c.finalEvalBatches > c.evalBatches
      ? prefEvalBatches(held.pairs, held.groups, c.batchSize, train.pairs.length, c.finalEvalBatches)
      : undefined;
  const nParams = countParams(m.config).total;
  log(
    `model: ${c.model}: ${m.describe}, ${formatCount(nParams)} parameters; ${maxSteps} steps of ${c.batchSize}×${G} prompts; backend ${backend.describe()}`,
  );

  // ---- 6. the loop
  const writeCheckpoint = async (t: Trainer): Promise<string> => {
    const state: TrainerStateFile<C> = {
      version: 1,
      ...t.state,
      config: { ...c, resume: '', command: recipe.command } as C,
      model: modelShape(m.config),
      corpusFingerprint: fp,
      savedAt: new Date().toISOString(),
    };
    await saveTrainingCheckpoint({
      dir: ckDir,
      saveModel: (d) => m.save(d),
      // the chat template the model was trained with travels with it
      saveTokenizer: async (d) => {
        const before = tok.config.chatTemplate;
        tok.config.chatTemplate = source;
        try {
          await saveTokenizer(tok, d);
        } finally {
          tok.config.chatTemplate = before;
        }
      },
      state,
      moments: await t.optimizer.stateDict(),
    });
    return ckDir;
  };
  if (saved) log(`resuming ${runDir} at step ${saved.step} of ${maxSteps}`);
  fs.mkdirSync(runDir, { recursive: true });
  const kind = recipe.command === 'reward' ? 'reward' : 'dpo';
  const done = await runTraining({
    runDir,
    trainer: {
      model: m.objective,
      batcher,
      evalBatches: evalSet,
      ...(finalSet ? { finalEvalBatches: finalSet } : {}),
      config: { ...c, maxSteps },
      flopsPerToken: flopsPerToken(m.config, maxLength),
      vocabSize: m.config.vocabSize,
    },
    display: c,
    ...(saved ? { resume: { state: saved, dir: resumeDir! } } : {}),
    saveCheckpoint: writeCheckpoint,
    ...(m.sample ? { sample: m.sample } : {}),
    // TRL's names, beside the loop's own
    stepMetrics: (_t, r) => ({
      learning_rate: r.lr,
      grad_norm: r.gradNorm,
      epoch: batcher.epoch,
      num_tokens: batcher.numTokens,
      ...statMetrics(m.objective.takeStats('train'), '', kind),
    }),
    evalMetrics: (_t, rec) => ({
      eval_loss: rec.valLoss,
      ...statMetrics(m.objective.takeStats('eval'), 'eval_', kind),
    }),
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.haltAfterStep !== undefined ? { haltAfterStep: o.haltAfterStep } : {}),
    ...(o.handleSigint !== undefined ? { handleSigint: o.handleSigint } : {}),
    summary: (t, why) => ({
      model: `${c.model} (${m.describe}, ${formatCount(nParams)} parameters)`,
      data: `${c.data.join(', ')}: ${train.pairs.length} training / ${held.pairs.length} held-out pairs; ${skippedRows} bad rows skipped, ${dropped} pairs dropped`,
      'chat template': source === CHATML_JINJA ? 'ChatML' : template.kind,
      steps: `${t.state.step} of ${maxSteps} (${why}), epoch ${batcher.epoch.toFixed(2)}`,
      ...loopSummary(t, ckDir, backend),
    }),
  });

  const { trainer } = done;
  const last = trainer.state.evals[trainer.state.evals.length - 1];
  return {
    ...recipeResult(run, done, c),
    maxSteps,
    finalEval: last ? (last as unknown as Record<string, number>) : null,
    data: {
      trainPairs: train.pairs.length,
      evalPairs: held.pairs.length,
      trainPrompts: train.groups.length,
      evalPrompts: held.groups.length,
      skippedRows,
      dropped,
    },
  };
}
