/**
 * The run shared by `llmts reward`, `llmts dpo` and `llmts kto` (reward.ts, dpo.ts, kto.ts give the data, the model
 * and the objective), on the shared loop (src/train/run.ts) as SFT is (sft.ts):
 *   1. the run folder (`runs/<name>`), or the checkpoint being resumed, and its saved config;
 *   2. the model folder's tokenizer and chat template (ChatML when it has none);
 *   3. the recipe's data (`loadPairData` here for pairs: preference / ranking rows → pairs grouped by prompt, long
 *      pairs dropped and counted, the held-out split by prompt; kto_data.ts for KTO's unpaired rows);
 *   4. the recipe's model and objective (a reward model, or the DPO / KTO policy with its precomputed reference);
 *   5. the recipe's batches (whole prompt groups, pref_batches.ts; KTO's fixed batches) and fixed held-out batches;
 *   6. the loop with TRL's metric names in metrics.jsonl, checkpoints as Hugging Face folders with the tokenizer
 *      and chat template, Ctrl-C and exact resume, report.html.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Backend } from '../backend/backend.js';
import type { ModelConfig } from '../model/config.js';
import { loadConfig } from '../model/hf/folder.js';
import { countParams, flopsPerToken, formatCount } from '../pretrain/estimate.js';
import type { TextTokenizer } from '../tokenizer/index.js';
import { saveTrainingCheckpoint, type TrainerStateFile } from '../train/checkpoint.js';
import {
  loopSummary,
  modelShape,
  openRun,
  recipeResult,
  releaseRun,
  type RecipeOptions,
  type RecipeResult,
} from '../train/recipe.js';
import { runTraining } from '../train/run.js';
import type { Batch } from '../data/batcher.js';
import type { ChatTemplate } from '../chat/template.js';
import type { Tensor } from '../tensor/tensor.js';
import type { BatchSource, Trainer, TrainableModel } from '../train/trainer.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { PrefBatcher, prefEvalBatches } from './pref_batches.js';
import { encodePreferenceSets, readPreferenceFile, splitByGroup, type PrefPair, type PrefSet } from './pref_data.js';
import type { RewardConfig } from './reward_settings.js';
import { CHATML_JINJA, openModelFolder, saveTokenizerWithTemplate } from './sft.js';
import type { SftCodec } from './sft_data.js';

/** The settings every preference run has (reward_settings.ts and dpo_settings.ts both hold them). */
export type PrefConfig = Omit<RewardConfig, 'centerRewardsCoefficient' | 'scoreInitStd'>;

/** What a recipe's `loadData` gets. */
export interface PrefDataArgs<C extends PrefConfig = PrefConfig> {
  c: C;
  template: ChatTemplate;
  codec: SftCodec;
  /** Tokens of prompt + reply at most (the setting, or the model's context). */
  maxLength: number;
  log: (s: string) => void;
}

/** A run's data as the loop sees them (`loadPairData` for pairs; kto_data.ts for KTO's rows). */
export interface PrefRunData<I> {
  /** The training items, then the held-out ones (batches hold indices into this list). */
  items: I[];
  nTrain: number;
  /** sha256 of the encoded items: a resumed run checks it. */
  fingerprint: string;
  batcher: BatchSource & { readonly epoch: number; readonly numTokens: number };
  evalBatches: Batch[];
  finalEvalBatches?: Batch[];
  /** One epoch is `epochUnits` units (prompt groups; KTO: fixed batches), `unitsPerBatch` of them a micro-batch. */
  epochUnits: number;
  unitsPerBatch: number;
  /** What batchSize counts ('prompts', 'rows') and what an item is called ('pairs', 'rows'), for the log. */
  unit: string;
  noun: string;
  counts: PrefResult<unknown>['data'];
  /** The log line that says what was read. */
  describe: string;
}

/** A model and objective in the loop: what a recipe's `prepare` returns. */
export interface PrefModel {
  objective: TrainableModel;
  /** TRL-named metrics since the last call for training steps or evaluations (`prefix` '' or 'eval_'); resets them. */
  metrics(which: 'train' | 'eval', prefix: string): Record<string, number>;
  config: ModelConfig;
  /** Write the model (weights and config) into a checkpoint folder, with any files of the recipe's own. */
  save(dir: string): Promise<void>;
  /** Greedy samples for the log (DPO); none for a reward model. */
  sample?: () => Promise<{ prompt: string; text: string }[]>;
  describe: string;
  /** The models whose parameters the run frees when it ends (releaseRun). */
  models: readonly { params: Map<string, Tensor> }[];
}

export interface PrefRecipe<C extends PrefConfig, I = PrefPair> {
  command: 'reward' | 'dpo' | 'kto';
  defaults: Readonly<C>;
  validate(c: C): C;
  /** Read, encode and split the data, and make the batches (`loadPairData` for pairs). */
  loadData(a: PrefDataArgs<C>): PrefRunData<I>;
  /**
   * The model and objective: from the starting folder `modelDir` (a new run) or from the checkpoint (`resumeDir`).
   * `items` are the training items (pairs, or KTO's rows) then the held-out ones; `nTrain` of them train.
   */
  prepare(a: {
    c: C;
    modelDir: string;
    resumeDir: string | null;
    backend: Backend;
    tok: TextTokenizer;
    items: I[];
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
  /** Counts of the data (pairs; for KTO, rows). */
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
export async function runPreference<C extends PrefConfig, I>(
  recipe: PrefRecipe<C, I>,
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

  // ---- 3. data, and 5. batches (the recipe's: pairs grouped by prompt, or KTO's rows)
  const codec = { encode: (t: string) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
  const data = recipe.loadData({ c, template, codec, maxLength, log });
  const fp = data.fingerprint;
  if (saved && saved.corpusFingerprint !== fp)
    log(
      'warning: the data differ from those this run started with; the resumed run will not match an uninterrupted one',
    );
  log(`${data.describe}; template ${template.kind}${source === CHATML_JINJA ? ' (ChatML)' : ''}`);
  const counts = data.counts;

  // ---- 4. model and objective
  const m = await recipe.prepare({
    c,
    modelDir,
    resumeDir,
    backend,
    tok,
    items: data.items,
    nTrain: data.nTrain,
    fingerprint: fp,
    log,
  });

  const G = c.gradAccum;
  const maxSteps = c.maxSteps || Math.max(1, Math.ceil((c.epochs * data.epochUnits) / (data.unitsPerBatch * G)));
  const batcher = data.batcher;
  const nParams = countParams(m.config).total;
  log(
    `model: ${c.model}: ${m.describe}, ${formatCount(nParams)} parameters; ${maxSteps} steps of ${c.batchSize}×${G} ${data.unit}; backend ${backend.describe()}`,
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
      saveTokenizer: (d) => saveTokenizerWithTemplate(tok, source, d),
      state,
      moments: await t.optimizer.stateDict(),
    });
    return ckDir;
  };
  if (saved) log(`resuming ${runDir} at step ${saved.step} of ${maxSteps}`);
  fs.mkdirSync(runDir, { recursive: true });
  const done = await runTraining({
    runDir,
    trainer: {
      model: m.objective,
      batcher,
      evalBatches: data.evalBatches,
      ...(data.finalEvalBatches ? { finalEvalBatches: data.finalEvalBatches } : {}),
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
      ...m.metrics('train', ''),
    }),
    evalMetrics: (_t, rec) => ({
      eval_loss: rec.valLoss,
      ...m.metrics('eval', 'eval_'),
    }),
    ...(o.progress ? { progress: o.progress } : {}),
    ...(o.haltAfterStep !== undefined ? { haltAfterStep: o.haltAfterStep } : {}),
    ...(o.handleSigint !== undefined ? { handleSigint: o.handleSigint } : {}),
    summary: (t, why) => ({
      model: `${c.model} (${m.describe}, ${formatCount(nParams)} parameters)`,
      data: `${c.data.join(', ')}: ${counts.trainPairs} training / ${counts.evalPairs} held-out ${data.noun}; ${counts.skippedRows} bad rows skipped, ${counts.dropped} ${data.noun} dropped`,
      'chat template': source === CHATML_JINJA ? 'ChatML' : template.kind,
      steps: `${t.state.step} of ${maxSteps} (${why}), epoch ${batcher.epoch.toFixed(2)}`,
      ...loopSummary(t, ckDir, backend),
    }),
  });

  const { trainer } = done;
  const last = trainer.state.evals[trainer.state.evals.length - 1];
  const result = {
    ...recipeResult(run, done, c),
    maxSteps,
    finalEval: last ? (last as unknown as Record<string, number>) : null,
    data: counts,
  };
  releaseRun(done, m.models);
  return result;
}

/**
 * The data of `llmts reward` and `llmts dpo` (pref_data.ts, pref_batches.ts): preference / ranking rows → pairs
 * grouped by prompt, long pairs dropped and counted, the held-out split by prompt; batches of whole prompt groups
 * and fixed held-out batches.
 */
export function loadPairData(a: PrefDataArgs): PrefRunData<PrefPair> {
  const { c, template, codec, maxLength, log } = a;
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
  const fingerprint = crypto
    .createHash('sha256')
    .update(JSON.stringify(pairs.map((p) => [p.prompt, p.chosen, p.rejected, p.margin, p.group])))
    .digest('hex');
  const evalBatches = prefEvalBatches(held.pairs, held.groups, c.batchSize, train.pairs.length, c.evalBatches);
  const finalEvalBatches =
    c.finalEvalBatches > c.evalBatches
      ? prefEvalBatches(held.pairs, held.groups, c.batchSize, train.pairs.length, c.finalEvalBatches)
      : undefined;
  return {
    items: pairs,
    nTrain: train.pairs.length,
    fingerprint,
    batcher: new PrefBatcher(train.pairs, train.groups, c.batchSize, c.seed),
    evalBatches,
    ...(finalEvalBatches ? { finalEvalBatches } : {}),
    epochUnits: train.groups.length,
    unitsPerBatch: c.batchSize,
    unit: 'prompts',
    noun: 'pairs',
    counts: {
      trainPairs: train.pairs.length,
      evalPairs: held.pairs.length,
      trainPrompts: train.groups.length,
      evalPrompts: held.groups.length,
      skippedRows,
      dropped,
    },
    describe: `data: ${trainSets[0]!.kind} (${trainSets[0]!.form}) rows → ${train.pairs.length} training pairs (${train.groups.length} prompts) / ${held.pairs.length} held-out pairs (${held.groups.length} prompts)`,
  };
}
