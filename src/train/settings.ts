/**
 * The settings of the model-agnostic training loop, declared once (src/util/settings.ts): the run folder, the
 * optimizer and its schedule, evaluation and checkpoint intervals, and the display. Every trainer's command
 * (`train` for pretraining, and the SFT / reward / PPO / DPO commands) spreads these groups into its own table, so
 * the loop's names, defaults, ranges and help are the same everywhere.
 */
import { BACKEND_CHOICES } from '../backend/registry.js';
import { bool, float, group, int, oneOf, str, type Values } from '../util/settings.js';

/** The run: where it goes, its seed, where it computes. */
export const RUN_SETTINGS = group('run', {
  name: str('', "Name of the run folder under `outDir` ('' = a timestamp)."),
  outDir: str('runs', 'Folder holding run folders.', { aliases: ['out_dir'] }),
  seed: int(1337, 'Seed of everything random: initialisation, batches, dropout masks, samples.', { min: 0 }),
  backend: oneOf(
    BACKEND_CHOICES,
    'auto',
    "Compute backend: 'auto' (WebGPU on a GPU, else WASM SIMD when it works, else the plain TypeScript reference), " +
      "'wasm', 'webgpu' (in Node: the optional webgpu package; SwiftShader where there is no GPU) or 'ref'.",
  ),
  threads: int(0, 'Worker threads for the WASM backend (0 = one per core).', { min: 0, max: 256 }),
});

/** The optimizer: batch, steps, AdamW, schedule, clipping. */
export const OPTIM_SETTINGS = group('optimisation', {
  batchSize: int(8, 'Sequences per micro-batch (B).', { min: 1, aliases: ['batch_size'] }),
  gradAccum: int(
    1,
    'Micro-batches accumulated per optimizer step (tokens per step = gradAccum · batchSize · blockSize).',
    { min: 1, aliases: ['gradient_accumulation_steps'] },
  ),
  maxSteps: int(1000, 'Optimizer steps to take.', { min: 1, aliases: ['max_iters', 'steps', 'iters'] }),
  lr: float(1e-3, 'Peak learning rate (after warmup).', { gt: 0, max: 10, aliases: ['learning_rate'] }),
  minLr: float(1e-4, 'Learning rate at the end of the cosine decay.', { min: 0, aliases: ['min_lr'] }),
  warmupSteps: int(100, 'Steps of linear warmup: lr(s) = lr·(s+1)/warmupSteps for s < warmupSteps.', {
    min: 0,
    aliases: ['warmup_iters'],
  }),
  decaySteps: int(0, 'Step where the cosine decay reaches minLr (0 = maxSteps); minLr afterwards.', {
    min: 0,
    aliases: ['lr_decay_iters'],
  }),
  schedule: oneOf(
    ['cosine', 'constant'],
    'cosine',
    "Learning-rate schedule: 'cosine' (warmup + cosine) or 'constant' (warmup then lr).",
  ),
  beta1: float(0.9, 'AdamW β1.', { min: 0, max: 0.999999 }),
  beta2: float(0.99, 'AdamW β2.', { min: 0, max: 0.999999 }),
  eps: float(1e-8, 'AdamW ε.', { gt: 0 }),
  weightDecay: float(0.1, 'AdamW decoupled weight decay.', { min: 0, aliases: ['weight_decay'] }),
  decayOn: oneOf(
    ['matrices', 'all'],
    'matrices',
    "Which parameters decay: 'matrices' (2-D weights only, as nanoGPT) or 'all' (torch.optim.AdamW on every parameter).",
  ),
  gradClip: float(1.0, 'Clip the global gradient norm to this (0 = no clipping).', { min: 0, aliases: ['grad_clip'] }),
});

/** Evaluation and checkpoints. */
export const EVAL_SETTINGS = group('evaluation and checkpoints', {
  evalInterval: int(250, 'Evaluate every this many steps, and at the end (0 = only at the end).', {
    min: 0,
    aliases: ['eval_interval'],
  }),
  evalBatches: int(20, 'Validation batches per evaluation (a fixed set, the same every time).', {
    min: 1,
    aliases: ['eval_iters'],
  }),
  finalEvalBatches: int(
    100,
    'Validation batches of the evaluation after the last step (0 = evalBatches); more batches, a more precise final figure.',
    { min: 0 },
  ),
  sampleInterval: int(200, 'Print samples every this many steps, and at the end (0 = only at the end).', { min: 0 }),
  checkpointInterval: int(
    500,
    'Write a checkpoint every this many steps, and at the end (0 = only at the end / on Ctrl-C).',
    { min: 0 },
  ),
  resume: str('', "Continue the run in this folder exactly where it stopped ('' = new run)."),
});

/** What the user sees, and limits. */
export const DISPLAY_SETTINGS = group('display', {
  logInterval: int(10, 'Print a progress line every this many steps when not on a terminal.', { min: 1 }),
  quiet: bool(false, 'No progress bar and no per-step lines: only evaluations, samples, warnings and the summary.'),
  peakFlops: float(330e9, 'Peak FLOP/s of this machine for MFU (default 330e9: 2-core sgemm peak).', { gt: 0 }),
  timeLimit: float(0, 'Stop (with a checkpoint) after this many seconds of training (0 = no limit).', { min: 0 }),
  report: bool(true, 'Write report.html in the run folder at the end (--report=false: do not).'),
});

/** Every setting of the loop's groups. */
export const LOOP_SETTINGS = { ...RUN_SETTINGS, ...OPTIM_SETTINGS, ...EVAL_SETTINGS, ...DISPLAY_SETTINGS };
export type TrainSettings = Values<typeof LOOP_SETTINGS>;
