/**
 * The 12-step PyTorch training fixture (test/fixtures/training, or `$LLMTS_FIXTURES/training`), as the tests run it:
 * its folders, its reference, and a Trainer set up to take its steps (./train_fixture.test.ts on ref,
 * ./webgpu_f16_train.test.ts on the webgpu f16 path).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../src/backend/backend.js';
import type { Batch } from '../src/data/batcher.js';
import { loadModel } from '../src/model/hf/folder.js';
import type { CausalLM } from '../src/model/model.js';
import { shiftTargets } from '../src/model/model.js';
import { Trainer, type BatchSource, type LoopConfig, type TrainerOptions } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { FIXTURES, HF_FIXTURES } from './helpers.js';

export const TRAINING_ROOT = path.join(FIXTURES, 'training');

export interface TrainingRef {
  batches: number[][][];
  adamw: { betas: [number, number]; eps: number; weight_decay: number };
  clip_grad_norm: number;
  steps: { step: number; lr: number; loss: number; grad_norm_before_clip: number }[];
}

/** The fixture folders (each with a reference.json); none where the folder is absent. */
export function trainingFixtures(): string[] {
  return fs.existsSync(TRAINING_ROOT)
    ? fs.readdirSync(TRAINING_ROOT).filter((d) => fs.existsSync(path.join(TRAINING_ROOT, d, 'reference.json')))
    : [];
}

/** The fixture's batches in order (HF labels = input ids: targets shifted inside each row, last one ignored). */
export class ListSource implements BatchSource {
  i = 0;
  constructor(
    readonly list: Batch[],
    readonly B: number,
    readonly T: number,
  ) {}
  next(): Batch {
    return this.list[this.i++]!;
  }
  getState() {
    return { rng: new Rng(0).getState(), drawn: this.i };
  }
  setState(s: { drawn: number }) {
    this.i = s.drawn;
  }
}

/**
 * Fixture `name`'s reference, its model (from the HF fixture of the same name, on `backend` or the default one) and
 * a Trainer with the fixture's settings (3 warmup steps to 3e-3, cosine to 3e-4 at step 11, AdamW, clipping).
 */
export async function fixtureTrainer(
  name: string,
  backend?: Backend,
  extra: Partial<TrainerOptions> = {},
): Promise<{ ref: TrainingRef; model: CausalLM; trainer: Trainer }> {
  const ref = JSON.parse(fs.readFileSync(path.join(TRAINING_ROOT, name, 'reference.json'), 'utf8')) as TrainingRef;
  const model = await loadModel(path.join(HF_FIXTURES, name), backend ? { backend } : {});
  const B = ref.batches[0]!.length,
    T = ref.batches[0]![0]!.length;
  const list = ref.batches.map((b) => {
    const ids = Int32Array.from(b.flat());
    return { ids, targets: shiftTargets(ids, B, T), B, T };
  });
  const config: LoopConfig = {
    seed: 0,
    maxSteps: 12,
    gradAccum: 1,
    lr: 3e-3,
    minLr: 3e-4,
    warmupSteps: 3,
    decaySteps: 11,
    schedule: 'cosine',
    beta1: ref.adamw.betas[0],
    beta2: ref.adamw.betas[1],
    eps: ref.adamw.eps,
    weightDecay: ref.adamw.weight_decay,
    decayOn: 'all',
    gradClip: ref.clip_grad_norm,
    evalInterval: 0,
    sampleInterval: 0,
    checkpointInterval: 0,
    peakFlops: 1e9,
    timeLimit: 0,
  };
  const trainer = new Trainer({
    model,
    batcher: new ListSource(list, B, T),
    evalBatches: [list[0]!],
    valBytesPerToken: 1,
    config,
    flopsPerToken: 1,
    vocabSize: model.config.vocabSize,
    ...extra,
  });
  return { ref, model, trainer };
}
