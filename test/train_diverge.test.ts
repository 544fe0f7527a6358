/**
 * A run that diverges part-way (issue 16): the Trainer stops at the first non-finite loss with a
 * TrainingDivergedError naming the step and the last good checkpoint, never calls the checkpoint hook with bad
 * weights, leaves the weights of the last good step in memory, and logs the step and a warning to the metrics.
 * Also: resuming state past maxSteps is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/hf/folder.js';
import { shiftTargets } from '../src/model/model.js';
import { scale } from '../src/tensor/ops.js';
import { Trainer, type BatchSource, type LoopConfig, type TrainableModel } from '../src/train/trainer.js';
import { MetricsLog, readMetrics } from '../src/train/metrics.js';
import type { Batch } from '../src/data/batcher.js';
import { ConfigError, TrainingDivergedError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { HF_FIXTURES } from './helpers.js';

class Repeat implements BatchSource {
  drawn = 0;
  constructor(readonly b: Batch) {}
  get B() {
    return this.b.B;
  }
  get T() {
    return this.b.T;
  }
  next(): Batch {
    this.drawn++;
    return this.b;
  }
  getState() {
    return { rng: new Rng(0).getState(), drawn: this.drawn };
  }
  setState(s: { drawn: number }) {
    this.drawn = s.drawn;
  }
}

const config: LoopConfig = {
  seed: 0,
  maxSteps: 10,
  gradAccum: 1,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 0,
  decaySteps: 10,
  schedule: 'cosine',
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  decayOn: 'all',
  gradClip: 1,
  evalInterval: 0,
  sampleInterval: 0,
  checkpointInterval: 2,
  peakFlops: 1e9,
  timeLimit: 0,
};

async function setup(nanFromStep: number) {
  const model = await loadModel(path.join(HF_FIXTURES, 'gpt2-tiny'));
  const B = 1,
    T = 8;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % model.config.vocabSize);
  const batch = { ids, targets: shiftTargets(ids, B, T), B, T };
  const source = new Repeat(batch);
  // the loss turns NaN from step `nanFromStep` on (as an overflow would)
  const wrapped: TrainableModel = {
    params: model.params,
    loss: (i, t, b, tt, o) => {
      const l = model.loss(i, t, b, tt, o);
      return o?.training && source.drawn > nanFromStep ? scale(l, Number.NaN) : l;
    },
  };
  return { model, wrapped, source, batch };
}

describe('Trainer: divergence', () => {
  it('stops at the first NaN loss with a named error, keeps the last good checkpoint and weights', async () => {
    const { model, wrapped, source, batch } = await setup(5);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-diverge-'));
    try {
      const saved: number[] = [];
      let weightsAtSave: Float32Array | null = null;
      const trainer = new Trainer({
        model: wrapped,
        batcher: source,
        evalBatches: [batch],
        valBytesPerToken: 1,
        config,
        flopsPerToken: 1,
        vocabSize: model.config.vocabSize,
        metrics: new MetricsLog(dir),
        hooks: {
          checkpoint: async (t) => {
            saved.push(t.state.step);
            weightsAtSave = Float32Array.from(await model.params.get('transformer.wte.weight')!.data());
          },
        },
      });
      const err = await trainer.run().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TrainingDivergedError);
      const d = err as TrainingDivergedError;
      expect(d.step).toBe(6); // five good steps, the sixth went NaN
      expect(d.lastGoodStep).toBe(4);
      expect(d.runDir).toBe(dir);
      expect(d.message).toMatch(
        /training diverged at step 6 \(loss NaN\); the last good checkpoint \(step 4\) is kept\. Try a lower learning rate/,
      );
      expect(saved).toEqual([2, 4]); // no checkpoint at the end or on the way out
      expect(trainer.state.step).toBe(5); // the NaN step was not counted or applied
      const now = await model.params.get('transformer.wte.weight')!.data();
      expect(now.every((x) => Number.isFinite(x))).toBe(true);
      expect(Array.from(weightsAtSave!)).not.toEqual(Array.from(now)); // step 4 was applied after the save: weights moved on
      const recs = readMetrics(path.join(dir, 'metrics.jsonl'));
      expect(recs.filter((r) => r.type === 'step').map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(recs.find((r) => r.type === 'step' && r.step === 6)).toMatchObject({ loss: null });
      expect(recs.some((r) => r.type === 'warning' && r.code === 'diverged')).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('before any checkpoint: says none was written', async () => {
    const { model, wrapped, source, batch } = await setup(0);
    const trainer = new Trainer({
      model: wrapped,
      batcher: source,
      evalBatches: [batch],
      valBytesPerToken: 1,
      config,
      flopsPerToken: 1,
      vocabSize: model.config.vocabSize,
      hooks: { checkpoint: async () => expect.unreachable() },
    });
    await expect(trainer.run()).rejects.toThrow(/training diverged at step 1 \(loss NaN\); no checkpoint was written/);
  });

  it('refuses to resume state already past maxSteps', async () => {
    const { model, wrapped, source, batch } = await setup(99);
    const state = {
      step: 12,
      seed: 0,
      batcher: source.getState(),
      optimizerStep: 12,
      bestValLoss: null,
      bestValStep: null,
      tokensSeen: 0,
      trainSeconds: 0,
      evals: [],
      recentLosses: [],
    };
    expect(
      () =>
        new Trainer({
          model: wrapped,
          batcher: source,
          evalBatches: [batch],
          valBytesPerToken: 1,
          config,
          flopsPerToken: 1,
          vocabSize: model.config.vocabSize,
          state,
        }),
    ).toThrow(ConfigError);
  });
});
