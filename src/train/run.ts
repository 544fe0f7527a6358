/**
 * A training run around the loop: the run folder's metrics.jsonl (cut back to the checkpoint on resume), the progress
 * display, the optimizer moments of a resumed run, Ctrl-C (finish the step, checkpoint, stop; twice quits), the
 * checkpoint hook, and report.html at the end. It knows nothing about GPT or tokenizers.
 *
 * How a trainer plugs in (pretraining does it in src/pretrain/pretrain.ts; SFT, reward-model and DPO trainers do
 * the same with their own settings table, model and batches):
 *   1. a settings table: the loop's groups (settings.ts) spread with the recipe's own (util/settings.ts);
 *   2. a `TrainableModel`: `params` and `loss(ids, targets, B, T, opts)` → a scalar tensor. SFT is the causal LM with
 *      prompt targets set to -100; DPO packs chosen rows then rejected rows in one batch and returns the DPO loss of
 *      the policy against a frozen reference; a reward model returns the pairwise ranking loss;
 *   3. a `BatchSource` (its RNG state goes into checkpoints) and fixed validation batches;
 *   4. `saveCheckpoint`, writing the model folder and trainer_state.json (`TrainerStateFile<YourConfig>`);
 *   5. `runTraining({ runDir, trainer: { model, batcher, evalBatches, config, … }, saveCheckpoint, report })`.
 *   6. optionally `stepMetrics` / `evalMetrics`: the recipe's own fields in each record of metrics.jsonl (SFT adds
 *      TRL's names: learning_rate, grad_norm, epoch, num_tokens, mean_token_accuracy, eval_loss); the report plots
 *      every numeric field;
 *   7. optionally `beforeStep`: asynchronous work before each step (PPO samples its next batch of rollouts there).
 * test/train_loop.test.ts drives it with a bigram table that is no GPT.
 */
import { MetricsLog } from './metrics.js';
import { makeProgress, type Progress } from './progress.js';
import { writeReport } from './report.js';
import type { TrainSettings } from './settings.js';
import { readOptimizerState } from './checkpoint.js';
import { Trainer, type LoopState, type TrainerHooks, type TrainerOptions } from './trainer.js';

export interface RunTrainingOptions {
  /** The run folder (metrics.jsonl and report.html go here). */
  runDir: string;
  /** The loop's inputs: model, batches, loop settings, FLOPs per token, … */
  trainer: Omit<TrainerOptions, 'metrics' | 'progress' | 'hooks' | 'state'>;
  /** Display and report settings. */
  display: Pick<TrainSettings, 'quiet' | 'logInterval' | 'report'>;
  /** A resumed run: the saved loop state and the checkpoint folder holding the optimizer moments. */
  resume?: { state: LoopState; dir: string };
  /** Write a checkpoint (at checkpointInterval, at the end, and when stopped); returns the folder written. */
  saveCheckpoint: (t: Trainer) => Promise<string>;
  /** Samples for the log and the report's sample strip. */
  sample?: TrainerHooks['sample'];
  /** A recipe's own fields in each step's / evaluation's record (e.g. TRL's metric names). */
  stepMetrics?: TrainerHooks['stepMetrics'];
  evalMetrics?: TrainerHooks['evalMetrics'];
  /** The report's "Run" table, once the loop has ended. */
  summary?: (t: Trainer, reason: string) => Record<string, string | number>;
  /** Progress display (default: from `display`). */
  progress?: Progress;
  /** Stop (as Ctrl-C does: finish the step, checkpoint) once this many steps are done; for tests. */
  haltAfterStep?: number;
  /** Install the SIGINT handler (default true). */
  handleSigint?: boolean;
  /** Work before each step that may be asynchronous (PPO samples its next batch of rollouts here). */
  beforeStep?: (t: Trainer) => Promise<void>;
}

export interface RunTrainingResult {
  trainer: Trainer;
  reason: 'done' | 'interrupted' | 'time-limit';
  /** Loss of every step taken in this call, by step index (0 = the run's first step). */
  losses: Map<number, number>;
  reportPath: string | null;
}

/** Run (or continue) the loop with its files, display and Ctrl-C; see the header for how a trainer plugs in. */
export async function runTraining(o: RunTrainingOptions): Promise<RunTrainingResult> {
  const metrics = new MetricsLog(o.runDir);
  if (o.resume) metrics.truncateAfter(o.resume.state.step);
  const progress = o.progress ?? makeProgress(o.display);
  const trainer = new Trainer({
    ...o.trainer,
    metrics,
    progress,
    hooks: {
      ...(o.sample ? { sample: o.sample } : {}),
      ...(o.stepMetrics ? { stepMetrics: o.stepMetrics } : {}),
      ...(o.evalMetrics ? { evalMetrics: o.evalMetrics } : {}),
      checkpoint: async (t, reason) => {
        const dir = await o.saveCheckpoint(t);
        if (reason === 'interrupt') progress.log(`checkpoint written at step ${t.state.step}: ${dir}`);
      },
    },
    ...(o.resume ? { state: o.resume.state } : {}),
  });
  if (o.resume) trainer.loadOptimizerState(await readOptimizerState(o.resume.dir));
  if (o.beforeStep) {
    const before = o.beforeStep;
    const step = trainer.step.bind(trainer);
    trainer.step = async () => {
      await before(trainer);
      return step();
    };
  }
  if (o.haltAfterStep !== undefined) {
    const step = trainer.step.bind(trainer);
    trainer.step = async () => {
      const r = await step();
      if (trainer.state.step >= o.haltAfterStep!) trainer.requestStop('halt');
      return r;
    };
  }
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints === 1) {
      trainer.requestStop('interrupted');
      progress.log('Ctrl-C: finishing this step, then writing a checkpoint (Ctrl-C again to quit without one)');
    } else process.exit(130);
  };
  if (o.handleSigint !== false) process.on('SIGINT', onSigint);
  let result: Awaited<ReturnType<Trainer['run']>>;
  try {
    result = await trainer.run();
  } finally {
    if (o.handleSigint !== false) process.off('SIGINT', onSigint);
  }
  const reportPath = o.display.report
    ? writeReport(o.runDir, o.summary ? { summary: o.summary(trainer, result.reason) } : {})
    : null;
  return { trainer, reason: result.reason, losses: result.losses, reportPath };
}
