/**
 * What every training recipe on the loop shares (pretraining in src/pretrain, SFT and the preference trainers in
 * src/align): the options it takes, the fields of its result, and how it opens its run folder — a new
 * `<outDir>/<name or timestamp>` or the run it resumes (`--resume[=dir]`: the newest run under outDir by default),
 * with the saved config under the overrides. The recipe then builds its model and data and calls `runTraining`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../backend/backend.js';
import type { ModelConfig } from '../model/config.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { readTrainerState, recoverCheckpointDir, resolveCheckpointDir, type TrainerStateFile } from './checkpoint.js';
import { formatDuration, type Progress } from './progress.js';
import type { RunTrainingResult } from './run.js';
import type { Trainer } from './trainer.js';
import type { Tensor } from '../tensor/tensor.js';

/** The options of a recipe with settings `C`. */
export interface RecipeOptions<C> {
  /** The run's settings (a new run). */
  config?: C;
  /** Resume this run folder (or checkpoint folder); its saved config is used, with `overrides` on top. */
  resume?: string;
  /** Settings changed on resume (e.g. a larger maxSteps). */
  overrides?: Partial<C>;
  /** Where messages go (default console.log). */
  log?: (line: string) => void;
  /** Progress display (default: bar on a terminal, lines otherwise). */
  progress?: Progress;
  /** Stop (as Ctrl-C does: finish the step, checkpoint) once this many steps are done; for tests. */
  haltAfterStep?: number;
  /** Install the SIGINT handler (default true). */
  handleSigint?: boolean;
}

/** The fields every recipe's result has. */
export interface RecipeResult<C> {
  runDir: string;
  checkpointDir: string;
  reportPath: string | null;
  reason: 'done' | 'interrupted' | 'time-limit';
  /** Loss of every step taken in this call, by step index. */
  losses: Map<number, number>;
  /** Steps done. */
  steps: number;
  /** Seconds spent in training steps, summed over the parts of a resumed run (the report's "training time"). */
  seconds: number;
  config: C;
}

/** The settings a run folder needs. */
export interface RunSettings {
  outDir: string;
  name: string;
  resume: string;
}

/** A run folder opened by `openRun`. */
export interface OpenedRun<C extends object> {
  /** The run's settings: the new config, or the saved one under the overrides (validated). */
  config: C;
  runDir: string;
  /** `<runDir>/checkpoint`. */
  checkpointDir: string;
  /** The checkpoint being resumed, or null for a new run. */
  resumeDir: string | null;
  saved: TrainerStateFile<C> | null;
}

/** `YYYYMMDD-hhmmss` of now (local time), after `prefix`: a new run's default name. */
export function runStamp(prefix = ''): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${prefix}${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The most recent run folder under `outDir` that holds a checkpoint (a save a kill interrupted is recovered first). */
export function latestRun(outDir: string): string {
  if (!fs.existsSync(outDir))
    throw new ConfigError('resume', `no runs in '${outDir}' to resume; give the run folder: --resume=runs/<name>`);
  // a run whose last save was interrupted between the two renames keeps its checkpoint as .checkpoint.old-*
  for (const d of fs.readdirSync(outDir, { withFileTypes: true }))
    if (d.isDirectory()) recoverCheckpointDir(path.join(outDir, d.name, 'checkpoint'));
  const runs = fs
    .readdirSync(outDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(outDir, d.name, 'checkpoint', 'trainer_state.json')))
    .map((d) => ({
      dir: path.join(outDir, d.name),
      t: fs.statSync(path.join(outDir, d.name, 'checkpoint', 'trainer_state.json')).mtimeMs,
    }))
    .sort((a, b) => b.t - a.t);
  if (!runs.length)
    throw new ConfigError(
      'resume',
      `no run with a checkpoint in '${outDir}'; give the run folder: --resume=runs/<name>`,
    );
  return runs[0]!.dir;
}

/** How a recipe opens its runs. */
export interface RunSpec<C extends object> {
  /** The command, for messages ('pretrain', 'sft'). */
  command: string;
  /** outDir when neither the config nor the overrides name one. */
  defaultOutDir: string;
  /** Prefix of a new run's default name ('' for pretraining, 'sft-', …). */
  stampPrefix: string;
  /** The checked settings (throws a ConfigError); for a resumed run, of the saved config under the overrides. */
  validate: (c: C) => C;
  /** Throws when a resumed run's saved config is not this recipe's (e.g. resuming a pretraining run with `sft`). */
  checkSaved?: (saved: TrainerStateFile<C>, file: string) => void;
}

/**
 * Open the run folder of `o`: a new run (the folder must not already hold one) or the run to resume (`o.resume`, or
 * `config.resume`: '' = the newest under outDir), its saved config under `o.overrides` (or under the whole new config).
 */
export function openRun<C extends RunSettings>(o: RecipeOptions<C>, spec: RunSpec<C>): OpenedRun<C> {
  let resume = o.resume;
  let overrides = o.overrides;
  if (resume === undefined) {
    if (!o.config) throw new ConfigError('config', `${spec.command} needs a config or a run to resume`);
    if (o.config.resume) {
      resume = o.config.resume;
      overrides = { ...o.config, resume: '' };
    }
  }
  if (resume === undefined) {
    const config = spec.validate(o.config!);
    const runDir = path.join(config.outDir, config.name || runStamp(spec.stampPrefix));
    if (fs.existsSync(path.join(runDir, 'checkpoint', 'trainer_state.json'))) {
      throw new ConfigError(
        'name',
        `'${runDir}' already holds a run. Continue it with --resume=${runDir}, or choose another --name.`,
      );
    }
    return { config, runDir, checkpointDir: path.join(runDir, 'checkpoint'), resumeDir: null, saved: null };
  }
  const base = resume || latestRun(overrides?.outDir ?? o.config?.outDir ?? spec.defaultOutDir);
  const resumeDir = resolveCheckpointDir(base);
  const saved = readTrainerState(resumeDir) as TrainerStateFile<C>;
  spec.checkSaved?.(saved, path.join(resumeDir, 'trainer_state.json'));
  const config = spec.validate({ ...saved.config, ...(overrides ?? {}), resume: resumeDir });
  const runDir = path.basename(resumeDir) === 'checkpoint' ? path.dirname(resumeDir) : resumeDir;
  return { config, runDir, checkpointDir: path.join(runDir, 'checkpoint'), resumeDir, saved };
}

/** The compact model shape a checkpoint's trainer_state.json keeps (for shape checks before loading weights). */
export function modelShape(c: ModelConfig): NonNullable<TrainerStateFile['model']> {
  const { family, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, maxPositions } = c;
  return { family, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, maxPositions };
}

/** The rows every recipe's report summary ends with: training time, best evaluation, checkpoint, backend. */
export function loopSummary(
  t: Trainer,
  checkpointDir: string,
  backend: Backend,
  evalName = 'eval',
): Record<string, string> {
  return {
    'training time': formatDuration(t.state.trainSeconds),
    [`best ${evalName} loss`]:
      t.state.bestValLoss !== null ? `${t.state.bestValLoss.toFixed(4)} at step ${t.state.bestValStep}` : '–',
    checkpoint: checkpointDir,
    backend: backend.describe(),
  };
}

/** The fields every recipe returns, once the loop has ended (a run that wrote no checkpoint is an error). */
export function recipeResult<C>(
  run: { runDir: string; checkpointDir: string },
  done: RunTrainingResult,
  config: C,
): RecipeResult<C> {
  if (!fs.existsSync(path.join(run.checkpointDir, 'trainer_state.json')))
    throw new FileFormatError('E_NO_CHECKPOINT', run.checkpointDir, 'the run ended without writing a checkpoint');
  const { trainer, reason, losses, reportPath } = done;
  return {
    runDir: run.runDir,
    checkpointDir: run.checkpointDir,
    reportPath,
    reason,
    losses,
    steps: trainer.state.step,
    seconds: trainer.state.trainSeconds,
    config,
  };
}

/**
 * Free what a finished run holds on its backend: the optimizer's moments and the parameters (with their gradients)
 * of the models it trained or scored with. A trainer calls it after its result is built and before it returns, so
 * that runs one after another in one process (`align verify`: SFT, reward model, PPO, DPO …) do not pile up device
 * memory (a WebAssembly heap is at most 4 GiB). Shared tensors are freed once (Tensor.dispose is idempotent); a
 * model's LoRA adapters go with it.
 */
export function releaseRun(
  done: RunTrainingResult,
  models: readonly ({ params: Map<string, Tensor>; trainableParams?: () => Map<string, Tensor> } | null | undefined)[],
): void {
  done.trainer.optimizer.dispose();
  for (const m of models) {
    if (!m) continue;
    for (const t of m.params.values()) t.dispose();
    if (m.trainableParams) for (const t of m.trainableParams().values()) t.dispose(); // LoRA adapters
  }
}
