/**
 * The training loop, minGPT `trainer.py` / nanochat style: it knows nothing about GPT, only a model that exposes
 * `params` (a Map of tensors by name) and `loss(ids, targets, B, T, opts)`, a batcher, and a fixed set of
 * validation batches. Each optimizer step:
 *
 *   lr = schedule(step)                                         warmup + cosine (schedule.ts)
 *   for each of G micro-batches:  loss(training, dropoutSeed(seed, step, micro)) → backward, seed S (grads accumulate)
 *   norm = ‖Σ grads‖ / (G·S);  scale = min(1, clip / (norm + 1e-6)) / (G·S)   (clip_grad_norm_ on the mean gradient)
 *   AdamW step with (lr, gradScale = scale);  zero grads
 *
 * S is the loss scale: 1 (scaling off: the seed is the plain backward's) unless the model's backend multiplies in f16
 * (Backend.matmulPrecision 'f16', the webgpu f16 path) or `lossScaling` asks for it; then dynamic loss scaling
 * (loss_scale.ts, as torch.amp.GradScaler): a step whose gradient is not finite while the loss is finite is skipped —
 * no update, the step number, schedule and dropout seeds stay, its batch is consumed — and S halved; S doubles
 * after 2000 good steps in a row. The clipping norm and AdamW see the unscaled gradient.
 *
 * then evaluation (validation loss and bits per byte), samples and checkpoints at their intervals, via callbacks the
 * caller supplies (the trainer writes no files except through them and the metrics log).
 *
 * Divergence: a non-finite loss or gradient norm skips the update, logs the step and stops the run with a
 * TrainingDivergedError (step, last good checkpoint); weights that went non-finite are never checkpointed.
 *
 * Exact resume: everything a step depends on is either saved (parameters, AdamW moments and step count, the
 * batcher's RNG state) or derived from the step number (learning rate, dropout seeds), so a run restored from a
 * checkpoint takes bit-for-bit the steps an uninterrupted run would have taken.
 */
import { AdamW } from '../optim/adamw.js';
import { clipCoefficient, gradNorm } from '../optim/clip.js';
import { backward } from '../tensor/autograd.js';
import { full, noGrad, Scope } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { resolveLoss, type LossResult } from './staged_loss.js';
import { hashUniform } from '../util/rng.js';
import { LossScaler, type LossScalerOptions, type LossScaleState } from './loss_scale.js';
import { ConfigError, TrainingDivergedError } from '../util/errors.js';
import path from 'node:path';
import type { Batch, BatcherState } from '../data/batcher.js';
import type { TrainSettings } from './settings.js';
import {
  detectDiverged,
  detectExploding,
  detectOverfitting,
  detectStuck,
  type EvalRecord,
  type MetricsLog,
  type SampleRecord,
  type StepRecord,
  type WarningRecord,
} from './metrics.js';
import type { Progress } from './progress.js';
import { learningRate } from '../optim/schedule.js';

/**
 * What the trainer needs from a model. `loss` returns the loss tensor, or a StagedLoss (staged_loss.ts) when it must
 * read values from the device before it can finish (PPO's clipping, KTO's reference point, metrics).
 */
export interface TrainableModel {
  readonly params: Map<string, Tensor>;
  loss(
    ids: Int32Array,
    targets: Int32Array,
    B: number,
    T: number,
    opts?: { training?: boolean; dropoutSeed?: number },
  ): LossResult;
}

/** Where training batches come from (the data Batcher, or a fixed list in tests); its state goes into checkpoints. */
export interface BatchSource {
  readonly B: number;
  readonly T: number;
  next(): Batch;
  getState(): BatcherState;
  setState(s: BatcherState): void;
}

/** The settings the loop reads (a subset of the loop's settings table, settings.ts). */
export type LoopConfig = Pick<
  TrainSettings,
  | 'seed'
  | 'maxSteps'
  | 'gradAccum'
  | 'lr'
  | 'minLr'
  | 'warmupSteps'
  | 'decaySteps'
  | 'schedule'
  | 'beta1'
  | 'beta2'
  | 'eps'
  | 'weightDecay'
  | 'decayOn'
  | 'gradClip'
  | 'evalInterval'
  | 'sampleInterval'
  | 'checkpointInterval'
  | 'peakFlops'
  | 'timeLimit'
>;

/** The part of `trainer_state.json` the loop owns. */
export interface LoopState {
  /** Optimizer steps completed (the next step's index). */
  step: number;
  /** Run seed (dropout seeds derive from it and the step). */
  seed: number;
  /** Batcher RNG state and batches drawn (the data position). */
  batcher: BatcherState;
  /** AdamW's step count (equals `step`: a step skipped by loss scaling counts in neither). */
  optimizerStep: number;
  /** The dynamic loss scale and its good-step count (loss_scale.ts), while loss scaling is on; absent when off. */
  lossScale?: LossScaleState;
  bestValLoss: number | null;
  bestValStep: number | null;
  /** Training tokens consumed. */
  tokensSeen: number;
  /** Seconds spent training (summed over resumed parts). */
  trainSeconds: number;
  /** Every evaluation so far. */
  evals: EvalRecord[];
  /** Losses of the most recent steps (for the overfitting check and the eval record's training loss). */
  recentLosses: number[];
}

export interface TrainerHooks {
  /** Generate samples for the strip (called at sampleInterval and at the end). */
  sample?: (step: number) => Promise<{ prompt: string; text: string }[]>;
  /** Write a checkpoint (called at checkpointInterval, at the end, and when stopped). */
  checkpoint?: (trainer: Trainer, reason: 'interval' | 'end' | 'interrupt') => Promise<void>;
  /** More fields of a step's record in metrics.jsonl (a recipe's own metrics, e.g. TRL's names). */
  stepMetrics?: (trainer: Trainer, r: StepResult) => Record<string, number>;
  /** More fields of an evaluation's record in metrics.jsonl. */
  evalMetrics?: (trainer: Trainer, rec: EvalRecord) => Record<string, number>;
}

export interface TrainerOptions {
  model: TrainableModel;
  batcher: BatchSource;
  /** Fixed validation batches (the same at every evaluation). */
  evalBatches: Batch[];
  /** A larger fixed set for the evaluation after the last step (default: evalBatches). */
  finalEvalBatches?: Batch[];
  /** UTF-8 bytes per token of the validation text, for bits per byte (none: the run's data is not text, say pairs). */
  valBytesPerToken?: number;
  config: LoopConfig;
  /** Training FLOPs per token (for MFU). */
  flopsPerToken: number;
  /** Vocabulary size (for the "stuck at ln(vocab)" warning); 0: the loss is no cross-entropy (PPO's), no such checks. */
  vocabSize: number;
  metrics?: MetricsLog;
  progress?: Progress;
  hooks?: TrainerHooks;
  /** Restore this state (resume); the optimizer moments are restored separately with `loadOptimizerState`. */
  state?: LoopState;
  /**
   * Dynamic loss scaling (loss_scale.ts): default on exactly when a parameter lives on a backend whose matmuls take
   * f16 operands (Backend.matmulPrecision 'f16'); true (GradScaler's defaults) or the scaler's options turn it on
   * anyway, false off.
   */
  lossScaling?: boolean | LossScalerOptions;
}

export interface StepResult {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  seconds: number;
  /** Tokens the step computed on (Σ B·T of its micro-batches; batches may vary in length). */
  tokens: number;
  /** The loss or the gradient norm was not finite: the update was skipped and the step not counted. */
  diverged?: boolean;
  /**
   * Loss scaling found a non-finite gradient at scale `lossScale` (the loss finite): the update was skipped, the step
   * not counted (the next call takes the same step number with the next batch), and the scale halved.
   */
  skipped?: boolean;
  /** The loss scale this step's backward was seeded with (present while loss scaling is on). */
  lossScale?: number;
}

/** Dropout seed of micro-batch `micro` of step `step`: a hash of (run seed, step, micro), independent of history. */
export function dropoutSeed(seed: number, step: number, micro: number): number {
  return Math.floor(hashUniform(seed >>> 0, step * 1024 + micro) * 4294967296) >>> 0;
}

const RECENT = 50;

export class Trainer {
  readonly model: TrainableModel;
  readonly batcher: BatchSource;
  readonly optimizer: AdamW;
  readonly config: LoopConfig;
  private readonly o: TrainerOptions;
  state: LoopState;
  private stopReason: string | null = null;
  private steps: StepRecord[] = [];
  private warned = new Set<string>();
  /** Step of the last checkpoint written (or resumed from): what a diverged run leaves behind. */
  private lastGoodStep: number | null;
  /** Dynamic loss scaling, when on (TrainerOptions.lossScaling). */
  readonly scaler: LossScaler | null;

  constructor(o: TrainerOptions) {
    this.o = o;
    this.model = o.model;
    this.batcher = o.batcher;
    this.config = o.config;
    const c = o.config;
    this.optimizer = new AdamW(o.model.params, {
      lr: c.lr,
      betas: [c.beta1, c.beta2],
      eps: c.eps,
      weightDecay: c.weightDecay,
      decay: c.decayOn === 'all' ? () => true : (name) => (o.model.params.get(name)?.shape.length ?? 0) >= 2,
    });
    this.state = o.state
      ? structuredClone(o.state)
      : {
          step: 0,
          seed: c.seed,
          batcher: o.batcher.getState(),
          optimizerStep: 0,
          bestValLoss: null,
          bestValStep: null,
          tokensSeen: 0,
          trainSeconds: 0,
          evals: [],
          recentLosses: [],
        };
    if (o.state && o.state.step > c.maxSteps) {
      throw new ConfigError(
        'maxSteps',
        `the run being resumed is already at step ${o.state.step}, past maxSteps = ${c.maxSteps}; pass --maxSteps greater than ${o.state.step} to train on`,
      );
    }
    if (o.state) o.batcher.setState(o.state.batcher);
    this.lastGoodStep = o.state ? o.state.step : null;
    const f16 = [...o.model.params.values()].some((p) => p.backend.matmulPrecision === 'f16');
    const ls = o.lossScaling ?? f16;
    this.scaler = ls === false ? null : new LossScaler(ls === true ? {} : ls, this.state.lossScale);
    if (this.scaler) this.state.lossScale = this.scaler.getState();
    else delete this.state.lossScale;
  }

  /** The learning rate of step `s`. */
  lrAt(s: number): number {
    const c = this.config;
    return learningRate(s, {
      lr: c.lr,
      minLr: c.minLr,
      warmupSteps: c.warmupSteps,
      decaySteps: c.decaySteps || c.maxSteps,
      kind: c.schedule,
    });
  }

  /** Restore AdamW moments (by parameter name) saved with a checkpoint. */
  loadOptimizerState(moments: Record<string, Float32Array>): void {
    this.optimizer.loadStateDict(moments, this.state.optimizerStep);
  }

  /** Ask the loop to stop after the current step (Ctrl-C); it then writes a checkpoint and returns. */
  requestStop(reason = 'interrupted'): void {
    this.stopReason = reason;
  }

  get stopRequested(): boolean {
    return this.stopReason !== null;
  }

  /** One optimizer step (G micro-batches). */
  async step(): Promise<StepResult> {
    const c = this.config;
    const s = this.state.step;
    const G = c.gradAccum;
    const lr = this.lrAt(s);
    const t0 = performance.now();
    let lossSum = 0;
    let tokens = 0;
    const S = this.scaler?.scale ?? 1;
    for (let micro = 0; micro < G; micro++) {
      const b = this.batcher.next();
      tokens += b.B * b.T;
      const seed = dropoutSeed(this.state.seed, s, micro);
      // the forward (and any staged reads, staged_loss.ts) on one tape in one scope; intermediates freed at close
      const scope = new Scope();
      const r = scope.run(() => this.model.loss(b.ids, b.targets, b.B, b.T, { training: true, dropoutSeed: seed }));
      const l = await resolveLoss(r, scope);
      scope.run(() => {
        // loss scaling: d(S·loss) = S·d(loss), every gradient S times larger (the tape stays the loss's)
        if (this.scaler) backward(l, full(l.shape, S, { backend: l.backend, dtype: l.dtype }));
        else backward(l);
      });
      scope.close(l);
      lossSum += await l.item();
      l.dispose();
    }
    const norm = (await gradNorm(this.model.params)) / G / S; // exact for S a power of two (the default's are)
    const scaled = this.scaler ? { lossScale: S } : {};
    if (this.scaler && Number.isFinite(lossSum) && this.scaler.update(Number.isFinite(norm)) === 'skip') {
      // the scale was too large (an f16 operand overflowed): no update, the step is taken again with the next batch
      this.optimizer.zeroGrad();
      const seconds = (performance.now() - t0) / 1000;
      this.state.lossScale = this.scaler.getState();
      this.state.batcher = this.batcher.getState();
      this.state.tokensSeen += tokens;
      this.state.trainSeconds += seconds;
      return { step: s, loss: lossSum / G, lr, gradNorm: norm, seconds, tokens, skipped: true, ...scaled };
    }
    if (!Number.isFinite(lossSum) || !Number.isFinite(norm)) {
      // never apply a non-finite update: the weights stay those of the last good step
      this.optimizer.zeroGrad();
      return {
        step: s,
        loss: lossSum / G,
        lr,
        gradNorm: norm,
        seconds: (performance.now() - t0) / 1000,
        tokens,
        diverged: true,
        ...scaled,
      };
    }
    const coef = c.gradClip > 0 ? clipCoefficient(norm, c.gradClip) : 1;
    this.optimizer.step({ lr, gradScale: coef / G / S });
    this.optimizer.zeroGrad();
    const seconds = (performance.now() - t0) / 1000;
    const loss = lossSum / G;
    this.state.step = s + 1;
    this.state.optimizerStep = this.optimizer.stepCount;
    this.state.batcher = this.batcher.getState();
    this.state.tokensSeen += tokens;
    this.state.trainSeconds += seconds;
    this.state.recentLosses.push(loss);
    if (this.state.recentLosses.length > RECENT) this.state.recentLosses.shift();
    if (this.scaler) this.state.lossScale = this.scaler.getState();
    return { step: s, loss, lr, gradNorm: norm, seconds, tokens, ...scaled };
  }

  /** Mean validation loss over the fixed batches (no dropout, no tape), and bits per byte. */
  async evaluate(batches: Batch[] = this.o.evalBatches): Promise<{ valLoss: number; valBpb?: number }> {
    let sum = 0;
    for (const b of batches) {
      const scope = new Scope();
      const r = scope.run(() => noGrad(() => this.model.loss(b.ids, b.targets, b.B, b.T, { training: false })));
      const l = scope.close(await resolveLoss(r, scope, noGrad)); // intermediates freed
      sum += await l.item();
      l.dispose();
    }
    const valLoss = sum / batches.length;
    const bytes = this.o.valBytesPerToken;
    return bytes ? { valLoss, valBpb: valLoss / (bytes * Math.LN2) } : { valLoss };
  }

  private warn(step: number, code: WarningRecord['code'], message: string): void {
    if (this.warned.has(code)) return;
    this.warned.add(code);
    const r: WarningRecord = { type: 'warning', step, code, message };
    this.o.metrics?.append(r);
    this.o.progress?.log(`warning: ${message}`);
  }

  private due(interval: number, done: number): boolean {
    return done === this.config.maxSteps || (interval > 0 && done % interval === 0);
  }

  /** Run an evaluation now, log it and update the best validation loss. */
  async runEval(): Promise<EvalRecord> {
    const done = this.state.step;
    const final = done >= this.config.maxSteps && this.o.finalEvalBatches !== undefined;
    const { valLoss, valBpb } = await this.evaluate(final ? this.o.finalEvalBatches : this.o.evalBatches);
    const rl = this.state.recentLosses;
    const tail = rl.slice(-Math.min(rl.length, 20));
    const trainLoss = tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : NaN;
    const base: EvalRecord = {
      type: 'eval',
      step: done,
      valLoss,
      ...(valBpb !== undefined ? { valBpb } : {}),
      trainLoss,
    };
    const rec: EvalRecord = this.o.hooks?.evalMetrics
      ? { ...base, ...this.o.hooks.evalMetrics(this, base), ...base }
      : base;
    this.state.evals.push(rec);
    if (this.state.bestValLoss === null || valLoss < this.state.bestValLoss) {
      this.state.bestValLoss = valLoss;
      this.state.bestValStep = done;
    }
    this.o.metrics?.append(rec);
    this.o.progress?.log(
      `step ${done}: val loss ${valLoss.toFixed(4)}${valBpb !== undefined ? ` (${valBpb.toFixed(3)} bits/byte)` : ''}, train loss ${trainLoss.toFixed(4)}`,
    );
    const over = detectOverfitting(this.state.evals);
    if (over) this.warn(done, 'overfitting', over);
    return rec;
  }

  /**
   * Train until maxSteps (or a stop request, or the time limit). Returns why it stopped. Each step's loss is also
   * returned in `losses` (index = step) for callers that compare runs.
   */
  async run(): Promise<{ reason: 'done' | 'interrupted' | 'time-limit'; losses: Map<number, number> }> {
    const c = this.config;
    const losses = new Map<number, number>();
    const startWall = performance.now();
    const recentSec: number[] = [];
    this.o.progress?.start(c.maxSteps, this.state.step);
    let reason: 'done' | 'interrupted' | 'time-limit' = 'done';
    try {
      while (this.state.step < c.maxSteps) {
        if (this.stopRequested) {
          reason = 'interrupted';
          break;
        }
        if (c.timeLimit > 0 && (performance.now() - startWall) / 1000 >= c.timeLimit) {
          reason = 'time-limit';
          break;
        }
        const r = await this.step();
        if (r.diverged) await this.diverged(r, startWall);
        if (r.skipped) {
          this.o.progress?.log(
            `step ${r.step + 1}: a gradient was not finite at loss scale ${r.lossScale}: update skipped, scale now ${this.scaler?.scale}`,
          );
          continue;
        }
        // CPU backends resolve every await at once (microtasks only): give the event loop a turn so Ctrl-C (SIGINT)
        // and the progress bar's timers are handled between steps.
        await new Promise<void>((resolve) => setImmediate(resolve));
        losses.set(r.step, r.loss);
        recentSec.push(r.seconds);
        if (recentSec.length > 20) recentSec.shift();
        const tps = r.tokens / r.seconds;
        const mfu = (tps * this.o.flopsPerToken) / c.peakFlops;
        const rec: StepRecord = {
          type: 'step',
          step: this.state.step, // steps completed, as the console, evaluations and checkpoints count them
          loss: r.loss,
          lr: r.lr,
          gradNorm: r.gradNorm,
          tokensPerSec: tps,
          mfu,
          elapsed: (performance.now() - startWall) / 1000,
          ...(r.lossScale !== undefined ? { lossScale: r.lossScale } : {}),
        };
        if (this.o.hooks?.stepMetrics) Object.assign(rec, this.o.hooks.stepMetrics(this, r), { ...rec }); // the loop's own fields win
        this.steps.push(rec);
        if (this.steps.length > 200) this.steps.shift();
        this.o.metrics?.append(rec);
        const meanSec = recentSec.reduce((a, b) => a + b, 0) / recentSec.length;
        this.o.progress?.update({
          done: this.state.step,
          loss: r.loss,
          lr: r.lr,
          tokensPerSec: tps,
          mfu,
          eta: meanSec * (c.maxSteps - this.state.step),
        });
        const exploding = this.o.vocabSize > 0 ? detectExploding(r.loss, this.o.vocabSize) : null;
        if (exploding) this.warn(this.state.step, 'exploding', exploding);
        const stuck = this.o.vocabSize > 0 ? detectStuck(this.steps, this.o.vocabSize, c.warmupSteps) : null;
        if (stuck) this.warn(this.state.step, 'stuck', stuck);

        const done = this.state.step;
        if (this.due(c.evalInterval, done)) await this.runEval();
        if (this.o.hooks?.sample && this.due(c.sampleInterval, done)) await this.logSamples(done);
        if (
          this.o.hooks?.checkpoint &&
          done < c.maxSteps &&
          c.checkpointInterval > 0 &&
          done % c.checkpointInterval === 0 &&
          !this.stopRequested
        ) {
          await this.checkpoint('interval');
        }
      }
      await this.checkpoint(reason === 'done' && this.state.step >= c.maxSteps ? 'end' : 'interrupt');
    } finally {
      this.o.progress?.stop();
    }
    return { reason, losses };
  }

  /** Write a checkpoint through the hook, unless the weights are no longer finite (then stop: diverged). */
  private async checkpoint(reason: 'interval' | 'end' | 'interrupt'): Promise<void> {
    if (!this.o.hooks?.checkpoint) return;
    for (const [name, p] of this.model.params) {
      const d = await p.data();
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i]!)) {
          throw this.divergedError(this.state.step - 1, `parameter ${name} holds ${d[i]}`);
        }
      }
    }
    await this.o.hooks.checkpoint(this, reason);
    this.lastGoodStep = this.state.step;
  }

  private divergedError(step: number, what: string): TrainingDivergedError {
    return new TrainingDivergedError(
      step,
      what,
      this.lastGoodStep,
      this.o.metrics ? path.dirname(this.o.metrics.file) : undefined,
    );
  }

  /** Log the step that went non-finite and stop the run with a TrainingDivergedError (no checkpoint is written). */
  private async diverged(r: StepResult, startWall: number): Promise<never> {
    const n = r.step + 1; // the step it would have completed, as steps are counted everywhere else
    const rec: StepRecord = {
      type: 'step',
      step: n,
      loss: r.loss,
      lr: r.lr,
      gradNorm: r.gradNorm,
      tokensPerSec: 0,
      mfu: 0,
      elapsed: (performance.now() - startWall) / 1000,
    };
    this.o.metrics?.append(rec);
    const what = Number.isFinite(r.loss) ? `gradient norm ${r.gradNorm}` : `loss ${r.loss}`;
    const msg =
      detectDiverged(r.loss) ??
      `the gradient norm became ${r.gradNorm}: training diverged. Lower the learning rate (--lr) or keep gradient clipping on (--gradClip=1).`;
    this.warn(n, 'diverged', msg);
    throw this.divergedError(n, what);
  }

  private async logSamples(done: number): Promise<void> {
    const samples = await this.o.hooks!.sample!(done);
    for (const s of samples) {
      const rec: SampleRecord = { type: 'sample', step: done, prompt: s.prompt, text: s.text };
      this.o.metrics?.append(rec);
      this.o.progress?.log(`--- sample at step ${done}\n${s.prompt}${s.text}\n---`);
    }
  }
}
