/**
 * Dynamic loss scaling (src/train/loss_scale.ts, in the loop: src/train/trainer.ts), on ref in float32:
 *
 *  - the scaler alone: ×2 after `growthInterval` good steps in a row, ×0.5 and 'skip' on a non-finite gradient (the
 *    count restarts), 'diverged' at the smallest scale; GradScaler's defaults (2^16, ×2 per 2000, ×0.5);
 *  - in the loop, a tiny Llama: with scaling forced on (S = 2^16, 2^5), losses, grad norms (the unscaled ones) and the
 *    final weights equal bit for bit those of the unscaled run — S is a power of two, so the scaled backward is
 *    exact, and clipping and AdamW see the gradient divided back;
 *  - a scale so large the gradient overflows (2^126): the step is skipped (weights, step number, AdamW's count
 *    untouched, the batch consumed), S halves until the gradient is finite, then training goes on;
 *  - off by default on a float32 backend: no scaler, no lossScale in the state;
 *  - resume: the state saved in trainer_state.json brings the scale and its good-step count back, and the resumed
 *    run grows the scale at the step the uninterrupted one does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Batch } from '../src/data/batcher.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { shiftTargets } from '../src/model/model.js';
import { readTrainerState, saveTrainingCheckpoint } from '../src/train/checkpoint.js';
import { LossScaler, type LossScalerOptions } from '../src/train/loss_scale.js';
import { type LoopConfig, Trainer } from '../src/train/trainer.js';
import { ConfigError, FileFormatError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { ListSource } from './train_fixture_run.js';

/** The batches in order, round and round. */
class CycleSource extends ListSource {
  override next(): Batch {
    return this.list[this.i++ % this.list.length]!;
  }
}

describe('LossScaler', () => {
  it("GradScaler's defaults: 2^16, ×2 after 2000 good steps, ×0.5 on inf", () => {
    const s = new LossScaler();
    expect(s.scale).toBe(65536);
    for (let i = 0; i < 1999; i++) expect(s.update(true)).toBe('step');
    expect(s.scale).toBe(65536);
    s.update(true);
    expect(s.getState()).toEqual({ scale: 131072, goodSteps: 0 });
    expect(s.update(false)).toBe('skip');
    expect(s.getState()).toEqual({ scale: 65536, goodSteps: 0 });
  });

  it('a non-finite gradient restarts the count of good steps; at scale 1 it is a divergence', () => {
    const s = new LossScaler({ initScale: 4, growthInterval: 3 });
    s.update(true);
    s.update(true);
    expect(s.update(false)).toBe('skip'); // 2 good steps, then inf: no growth, halved, count from 0
    expect(s.getState()).toEqual({ scale: 2, goodSteps: 0 });
    s.update(true);
    s.update(true);
    expect(s.scale).toBe(2);
    s.update(true);
    expect(s.scale).toBe(4);
    expect(s.update(false)).toBe('skip');
    expect(s.update(false)).toBe('skip');
    expect(s.scale).toBe(1);
    expect(s.update(false)).toBe('diverged');
    expect(s.scale).toBe(1);
  });

  it('refuses settings that cannot work', () => {
    expect(() => new LossScaler({ initScale: 0.5 })).toThrow(ConfigError);
    expect(() => new LossScaler({ growthFactor: 1 })).toThrow(ConfigError);
    expect(() => new LossScaler({ backoffFactor: 1 })).toThrow(ConfigError);
    expect(() => new LossScaler({ growthInterval: 0 })).toThrow(ConfigError);
  });
});

const config: ModelConfig = {
  family: 'llama',
  vocabSize: 64,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  intermediateSize: 64,
  maxPositions: 32,
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  attentionBias: false,
  attentionOutBias: false,
  mlpBias: false,
  dropout: 0,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
};

const loop: LoopConfig = {
  seed: 0,
  maxSteps: 50,
  gradAccum: 2,
  lr: 1e-2,
  minLr: 1e-3,
  warmupSteps: 2,
  decaySteps: 8,
  schedule: 'cosine',
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  decayOn: 'all',
  gradClip: 0.5, // clips: the coefficient must come from the unscaled norm
  evalInterval: 0,
  sampleInterval: 0,
  checkpointInterval: 0,
  peakFlops: 1e9,
  timeLimit: 0,
};

const B = 2,
  T = 12;
const batches: Batch[] = Array.from({ length: 40 }, (_, n) => {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + n * 3 + ((i * i) % 7)) % config.vocabSize);
  return { ids, targets: shiftTargets(ids, B, T), B, T };
});

function trainer(lossScaling: boolean | LossScalerOptions | undefined, state?: Trainer['state']): Trainer {
  const model = initModel(config, new Rng(4), { std: 0.2 });
  return new Trainer({
    model,
    batcher: new CycleSource(batches, B, T),
    evalBatches: [batches[0]!],
    config: loop,
    flopsPerToken: 1,
    vocabSize: config.vocabSize,
    ...(lossScaling !== undefined ? { lossScaling } : {}),
    ...(state ? { state } : {}),
  });
}

async function weights(t: Trainer): Promise<Float32Array[]> {
  return Promise.all([...t.model.params.values()].map(async (p) => (await p.data()) as Float32Array));
}

describe('loss scaling in the training loop', () => {
  it('off by default in float32: no scaler, no lossScale in the loop state, seed 1', async () => {
    const t = trainer(undefined);
    expect(t.scaler).toBeNull();
    expect(t.state.lossScale).toBeUndefined();
    const r = await t.step();
    expect(r.lossScale).toBeUndefined();
  });

  it('scaled by 2^16 or 2^5: losses, unscaled grad norms and weights equal the unscaled run bit for bit', async () => {
    const plain = trainer(false);
    const runs = [trainer(true), trainer({ initScale: 32 })];
    expect(runs.map((t) => t.scaler?.scale)).toEqual([65536, 32]);
    for (let s = 0; s < 6; s++) {
      const want = await plain.step();
      expect(want.gradNorm).toBeGreaterThan(loop.gradClip); // clipping is on in these steps
      for (const t of runs) {
        const r = await t.step();
        expect(r.skipped ?? false).toBe(false);
        expect(r.loss).toBe(want.loss);
        expect(r.gradNorm).toBe(want.gradNorm);
      }
    }
    const w = await weights(plain);
    for (const t of runs) {
      const got = await weights(t);
      got.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(w[i]!)));
    }
  });

  it('a gradient that overflows skips the step (weights and counts kept, batch consumed) and halves S until finite', async () => {
    const t = trainer({ initScale: 2 ** 126 });
    const before = await weights(t);
    const r = await t.step();
    expect(r.skipped).toBe(true);
    expect(r.diverged).toBeUndefined();
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.lossScale).toBe(2 ** 126);
    expect(t.scaler!.scale).toBe(2 ** 125);
    expect(t.state.step).toBe(0);
    expect(t.state.optimizerStep).toBe(0);
    expect(t.optimizer.stepCount).toBe(0);
    expect(t.state.batcher.drawn).toBe(loop.gradAccum); // its micro-batches are used up
    expect(t.state.lossScale).toEqual({ scale: 2 ** 125, goodSteps: 0 });
    (await weights(t)).forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(before[i]!)));
    let skipped = 1;
    for (;;) {
      const q = await t.step();
      if (!q.skipped) {
        expect(q.step).toBe(0);
        expect(Number.isFinite(q.gradNorm)).toBe(true);
        break;
      }
      skipped++;
      expect(skipped).toBeLessThan(126);
    }
    if (process.env['LLMTS_F16_LOG']) console.log(`skipped ${skipped} steps from 2^126`);
    expect(t.scaler!.scale).toBe(2 ** (126 - skipped));
    expect(t.state.step).toBe(1);
    expect(t.optimizer.stepCount).toBe(1);
  });

  it('run() goes on past skipped steps to maxSteps', async () => {
    const t = trainer({ initScale: 2 ** 126 });
    (t.config as { maxSteps: number }).maxSteps = 3;
    const { reason, losses } = await t.run();
    expect(reason).toBe('done');
    expect(t.state.step).toBe(3);
    expect([...losses.keys()]).toEqual([0, 1, 2]);
  });

  it('resume: trainer_state.json brings S and its good-step count back; S grows at the same step', async () => {
    const opts = { initScale: 1024, growthInterval: 3 };
    const whole = trainer(opts);
    const scales: number[] = [];
    for (let s = 0; s < 5; s++) scales.push((await whole.step()).lossScale!);
    expect(scales).toEqual([1024, 1024, 1024, 2048, 2048]);

    const first = trainer(opts);
    await first.step();
    await first.step();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-lossscale-'));
    try {
      await saveTrainingCheckpoint({
        dir,
        saveModel: async () => {},
        state: { version: 1, ...first.state, config: {}, savedAt: new Date().toISOString() },
        moments: await first.optimizer.stateDict(),
      });
      const saved = readTrainerState(dir);
      expect(saved.lossScale).toEqual({ scale: 1024, goodSteps: 2 });
      // the rest of the run: a model with the weights reached, the moments and the loop state of the checkpoint
      const resumed = trainer(opts, saved);
      const w = await weights(first);
      [...resumed.model.params.values()].forEach((p, i) => p.backend.write(p.buf, w[i]!));
      resumed.loadOptimizerState(await first.optimizer.stateDict());
      expect(resumed.scaler!.getState()).toEqual({ scale: 1024, goodSteps: 2 });
      const later: number[] = [];
      for (let s = 2; s < 5; s++) later.push((await resumed.step()).lossScale!);
      expect(later).toEqual(scales.slice(2));
      const end = await weights(resumed),
        want = await weights(whole);
      end.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(want[i]!)));

      // a damaged lossScale is refused by name
      const file = path.join(dir, 'trainer_state.json');
      const bad = JSON.parse(fs.readFileSync(file, 'utf8'));
      bad.lossScale = { scale: -1, goodSteps: 0 };
      fs.writeFileSync(file, JSON.stringify(bad));
      expect(() => readTrainerState(dir)).toThrow(FileFormatError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
