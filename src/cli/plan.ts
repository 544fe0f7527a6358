/**
 * `llmts plan`: what a training config costs before running it: parameters, training FLOPs per token
 * (≈ 6·N + 12·L·C·T), training memory (parameters + gradients + two AdamW moments + activations), and the expected
 * wall time on this machine, from timing real training steps of the model on random token ids. With
 * `--backend webgpu`, also the device memory a step needs there, planned on a counting device without a GPU
 * (../pretrain/webgpu_memory.ts).
 *
 *   llmts plan [--preset=NAME] [--config=FILE.json] [--key=value …] [--measure=false]
 */
import os from 'node:os';
import { initBackend } from '../backend/registry.js';
import { initModel } from '../model/init.js';
import { backward } from '../tensor/autograd.js';
import { tidy } from '../tensor/tensor.js';
import { AdamW } from '../optim/adamw.js';
import { clipCoefficient, gradNorm } from '../optim/clip.js';
import { Rng } from '../util/rng.js';
import { toModelConfig, type TrainConfig } from '../pretrain/settings.js';
import { configFromCommandLine, parseTrainArgs } from './train.js';
import {
  countParams,
  flopsPerToken,
  formatBytes,
  formatCount,
  formatFlops,
  trainingMemory,
} from '../pretrain/estimate.js';
import { formatDuration } from '../train/progress.js';
import type { ModelConfig } from '../model/config.js';

/** Vocabulary size a config will have (without training its tokenizer). */
async function guessVocab(c: TrainConfig): Promise<{ size: number; note: string }> {
  if (c.tokenizer === 'bpe') return { size: c.vocabSize, note: `BPE trained on the corpus (up to ${c.vocabSize})` };
  if (c.tokenizer === 'char') {
    try {
      const { loadCorpus } = await import('../data/corpus.js');
      const docs = loadCorpus(c.input, { textField: c.textField, maxBytes: c.maxCorpusBytes });
      const chars = new Set<string>();
      for (const d of docs) for (const ch of d.text) chars.add(ch);
      return { size: chars.size, note: 'characters of the corpus' };
    } catch {
      return { size: 256, note: 'characters (corpus not readable: assumed 256)' };
    }
  }
  const { loadTokenizer } = await import('../tokenizer/index.js');
  const tok = await loadTokenizer(c.tokenizer);
  return { size: tok.vocabSize, note: `${c.tokenizer} tokenizer` };
}

export interface StepTiming {
  /** Seconds per optimizer step at the config's batch (scaled from the micro-batch measured). */
  stepSeconds: number;
  /** Micro-batch rows actually timed. */
  measuredB: number;
  backend: string;
}

/**
 * Time up to `steps` real training steps (forward, backward, clip, AdamW) on random ids: the first two are warm-ups
 * (JIT, allocator), the median of the rest counts; a slow model (first step > 5 s) takes only 3 steps.
 */
export async function measureStep(m: ModelConfig, c: TrainConfig, steps = 6): Promise<StepTiming> {
  const backend = await initBackend(c.backend, c.threads ? { threads: c.threads } : {});
  const model = initModel(m, new Rng(c.seed), { backend });
  const opt = new AdamW(model.params, { lr: c.lr, betas: [c.beta1, c.beta2], weightDecay: c.weightDecay });
  // Keep one measured step under ~15 s at an optimistic 30 GFLOP/s: time fewer rows and scale.
  const perRow = flopsPerToken(m, c.blockSize) * c.blockSize;
  const B = Math.max(1, Math.min(c.batchSize, Math.floor((30e9 * 15) / perRow)));
  const rng = new Rng(1);
  const T = c.blockSize;
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const ids = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
    const targets = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
    const t0 = performance.now();
    const l = tidy(() => {
      const l = model.loss(ids, targets, B, T, { training: true, dropoutSeed: s });
      backward(l);
      return l;
    });
    await l.item();
    l.dispose();
    const n = await gradNorm(model.params);
    opt.step({ lr: c.lr, gradScale: clipCoefficient(n, c.gradClip || Infinity) });
    opt.zeroGrad();
    times.push((performance.now() - t0) / 1000);
    if (times[0]! > 5 && times.length >= 3) break;
  }
  const timed = (times.length > 2 ? times.slice(2) : times.slice(-1)).sort((a, b) => a - b);
  const sec = timed[Math.floor(timed.length / 2)]!;
  opt.dispose();
  for (const p of model.params.values()) p.dispose();
  backend.dispose(); // worker threads of the wasm backend
  return { stepSeconds: (sec * c.batchSize * c.gradAccum) / B, measuredB: B, backend: backend.describe() };
}

export async function main(argv: string[]): Promise<number> {
  const cl = parseTrainArgs(argv, { measure: 'bool' });
  if (cl.flags.has('help')) {
    console.log(
      'usage: llmts plan [--preset=NAME] [--config=FILE.json] [--key=value …] [--measure=false]\n(same settings as llmts train)',
    );
    return 0;
  }
  const c = configFromCommandLine(cl);
  const vocab = await guessVocab(c);
  const m = toModelConfig(c, vocab.size);
  const p = countParams(m);
  const fpt = flopsPerToken(m, c.blockSize);
  const mem = trainingMemory(m, c.batchSize, c.blockSize);
  const tokensPerStep = c.batchSize * c.blockSize * c.gradAccum;
  const lines = [
    `model       ${m.family}: ${c.nLayer} layers × ${c.nEmbd} wide, ${c.nHead} heads${m.numKvHeads !== m.numHeads ? ` (${m.numKvHeads} kv)` : ''}, MLP ${m.intermediateSize}, context ${c.blockSize}, vocab ${vocab.size} (${vocab.note})`,
    `parameters  ${formatCount(p.total)} (embeddings ${formatCount(p.embedding)}, positions ${formatCount(p.positions)}, blocks ${formatCount(p.blocks)})`,
    `FLOPs       ${formatFlops(fpt)} per token (6·N + 12·L·C·T); ${formatFlops(fpt * tokensPerStep)} per step of ${formatCount(tokensPerStep)} tokens`,
    `memory      ${formatBytes(mem.total)} for training: parameters ${formatBytes(mem.params)} + gradients ${formatBytes(mem.grads)} + AdamW moments ${formatBytes(mem.adam)} + activations ≈ ${formatBytes(mem.activations)} (batch ${c.batchSize} × ${c.blockSize})`,
    `run         ${c.maxSteps} steps × ${formatCount(tokensPerStep)} tokens = ${formatCount(c.maxSteps * tokensPerStep)} tokens; ${formatFlops(fpt * tokensPerStep * c.maxSteps)} in all`,
  ];
  console.log(lines.join('\n'));
  const free = os.totalmem();
  // on webgpu the step's memory is the device's (the line below), not this machine's
  if (c.backend !== 'webgpu' && mem.total > 0.8 * free)
    console.log(
      `warning     that is more than this machine's ${formatBytes(free)} of memory: lower --batchSize or --blockSize (or use --gradAccum)`,
    );
  if (c.backend === 'webgpu') {
    const { planWebGpuStep } = await import('../pretrain/webgpu_memory.js');
    const g = await planWebGpuStep(m, c.batchSize, c.blockSize);
    console.log(
      `webgpu      ${formatBytes(g.devicePeak)} of device buffers at a step's peak (live tensors ${formatBytes(g.tensorPeak)}, ` +
        `${formatBytes(g.between)} between steps), planned on a counting device: the real step, no GPU used`,
    );
  }
  if (cl.flags.get('measure') === 'false') return 0;
  const t = await measureStep(m, c);
  const evals = c.evalInterval > 0 ? Math.floor(c.maxSteps / c.evalInterval) + 1 : 1;
  // An evaluation is evalBatches forward passes of one micro-batch: ≈ 1/3 of a training micro-step each.
  const forwards = (evals - 1) * c.evalBatches + Math.max(c.evalBatches, c.finalEvalBatches);
  const evalSec = (forwards * t.stepSeconds) / (3 * c.gradAccum);
  const total = t.stepSeconds * c.maxSteps + evalSec;
  const tps = tokensPerStep / t.stepSeconds;
  console.log(
    `measured    ${t.stepSeconds.toFixed(3)} s per step (${formatCount(tps)} tokens/s, ${((tps * fpt) / 1e9).toFixed(1)} GFLOP/s, MFU ${((100 * tps * fpt) / c.peakFlops).toFixed(1)}% of ${(c.peakFlops / 1e9).toFixed(0)} GFLOP/s) on ${t.backend}` +
      (t.measuredB < c.batchSize ? ` (timed with ${t.measuredB} rows, scaled)` : ''),
  );
  console.log(
    `expected    ${formatDuration(total)} on this machine (${formatDuration(t.stepSeconds * c.maxSteps)} of steps + ${formatDuration(evalSec)} of evaluation)`,
  );
  return 0;
}
