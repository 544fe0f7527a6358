/**
 * Training metrics: the records a run writes, one JSON object per line, to `metrics.jsonl` in its folder (appended as
 * the run goes, so a crash loses nothing and `tail -f` works), and the warnings a teacher would give on reading
 * them: validation loss rising while training loss falls (overfitting), loss stuck near ln(vocab) after the warmup
 * (the model predicts nothing better than uniform: learning rate, data or initialisation is wrong).
 */
import fs from 'node:fs';
import path from 'node:path';
import { makeDirSync } from '../util/fs.js';

/** One optimizer step. */
export interface StepRecord {
  type: 'step';
  /** Steps completed: 1 for the first step (as the console's "step 1/N", evaluations and checkpoints count). */
  step: number;
  /** Mean training loss of the step's micro-batches (nats per token). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens per second of this step. */
  tokensPerSec: number;
  /** Model FLOPs utilisation against `peakFlops`. */
  mfu: number;
  /** Seconds since the run (or the resumed part of it) started. */
  elapsed: number;
  /** The loss scale the step's backward was seeded with (only while loss scaling is on: f16 matmuls). */
  lossScale?: number;
}

/** One evaluation. */
export interface EvalRecord {
  type: 'eval';
  step: number;
  /** Mean validation loss over the fixed validation batches (nats per token). */
  valLoss: number;
  /** Bits per byte of the validation text: valLoss · tokens / (bytes · ln 2); absent when the data is not text. */
  valBpb?: number;
  /** Mean training loss over the last steps (for comparison). */
  trainLoss: number;
}

/** Text sampled from one prompt. */
export interface SampleRecord {
  type: 'sample';
  step: number;
  prompt: string;
  text: string;
}

/** A warning shown to the user (and kept in the report). */
export interface WarningRecord {
  type: 'warning';
  step: number;
  code: 'overfitting' | 'stuck' | 'diverged' | 'exploding';
  message: string;
}

export type MetricRecord = StepRecord | EvalRecord | SampleRecord | WarningRecord;

/** Appends records to `metrics.jsonl`. */
export class MetricsLog {
  readonly file: string;
  constructor(runDir: string) {
    makeDirSync(runDir);
    this.file = path.join(runDir, 'metrics.jsonl');
  }
  append(r: MetricRecord): void {
    fs.appendFileSync(this.file, JSON.stringify(r) + '\n');
  }
  /**
   * Keep only what was logged up to a checkpoint taken after `done` steps (a resumed run rewrites what the
   * interrupted run logged past it): every record at step ≤ done (a record's step counts the steps completed).
   */
  truncateAfter(done: number): void {
    const recs = readMetrics(this.file).filter((r) => r.step <= done);
    const tmp = `${this.file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, recs.map((r) => JSON.stringify(r) + '\n').join(''));
    fs.renameSync(tmp, this.file);
  }
}

/** Read a metrics file (missing file = no records; a torn last line is ignored). */
export function readMetrics(file: string): MetricRecord[] {
  if (!fs.existsSync(file)) return [];
  const out: MetricRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as MetricRecord);
    } catch {
      /* a line cut by a crash */
    }
  }
  return out;
}

/**
 * Overfitting: the last `window` evaluations show validation loss rising (each above the best so far by more than
 * `tolerance`) while training loss keeps falling.
 */
export function detectOverfitting(evals: readonly EvalRecord[], window = 2, tolerance = 0.01): string | null {
  if (evals.length < window + 1) return null;
  const best = Math.min(...evals.slice(0, evals.length - window).map((e) => e.valLoss));
  const last = evals.slice(-window - 1);
  let valUp = true,
    trainDown = true;
  for (let i = 1; i < last.length; i++) {
    if (!(last[i]!.valLoss > last[i - 1]!.valLoss && last[i]!.valLoss > best + tolerance)) valUp = false;
    if (!(last[i]!.trainLoss < last[i - 1]!.trainLoss)) trainDown = false;
  }
  if (!valUp || !trainDown) return null;
  const e = last[last.length - 1]!;
  return (
    `validation loss is rising (${last[0]!.valLoss.toFixed(3)} → ${e.valLoss.toFixed(3)}, best ${best.toFixed(3)}) while training loss falls ` +
    `(${last[0]!.trainLoss.toFixed(3)} → ${e.trainLoss.toFixed(3)}): the model is memorising its training text. ` +
    'Use more data, a smaller model, dropout (--dropout=0.1) or fewer steps; the best checkpoint is the one with the lowest validation loss.'
  );
}

/** Stuck: after the warmup, the recent mean training loss is still within `margin` of ln(vocab) (uniform guessing). */
export function detectStuck(
  steps: readonly StepRecord[],
  vocabSize: number,
  warmupSteps: number,
  margin = 0.1,
  window = 20,
): string | null {
  const after = steps.filter((s) => s.step >= Math.max(warmupSteps, 1) + window);
  if (after.length < window) return null;
  const recent = after.slice(-window);
  const mean = recent.reduce((a, s) => a + s.loss, 0) / recent.length;
  const uniform = Math.log(vocabSize);
  if (Math.abs(mean - uniform) > margin * uniform) return null;
  return (
    `the loss (${mean.toFixed(3)}) is still near ln(vocab) = ${uniform.toFixed(3)} after the warmup: the model predicts no better than ` +
    'a uniform guess. Check the learning rate (try --lr=1e-3), that the corpus is real text, and that gradients are not clipped to nothing.'
  );
}

/** Diverged: the loss is not finite. */
export function detectDiverged(loss: number): string | null {
  if (Number.isFinite(loss)) return null;
  return `the loss became ${loss}: training diverged. Lower the learning rate (--lr), keep gradient clipping on (--gradClip=1), or add warmup (--warmupSteps).`;
}

/**
 * Exploding: a finite loss far above ln(vocab), the loss of a uniform guess (an untrained model starts near it), so
 * the updates are making the model much worse than guessing: the learning rate is too high or clipping is off.
 */
export function detectExploding(loss: number, vocabSize: number, factor = 3): string | null {
  const uniform = Math.log(Math.max(2, vocabSize));
  if (!Number.isFinite(loss) || loss <= factor * uniform) return null;
  return (
    `the loss (${loss.toFixed(1)}) is far above ln(vocab) = ${uniform.toFixed(3)}, what a uniform guess scores: training is blowing up. ` +
    'Lower the learning rate (--lr), keep gradient clipping on (--gradClip=1), or add warmup (--warmupSteps).'
  );
}
