/**
 * The loop apart from GPT: `runTraining` (src/train/run.ts) drives a bigram table, a model with no Transformer and no
 * tokenizer, with its own settings table built from the loop's groups. It learns, logs metrics.jsonl, writes the
 * report and a checkpoint through the recipe's hook, and a run stopped and resumed takes exactly the same steps.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/registry.js';
import type { Backend } from '../src/backend/backend.js';
import { Batcher, fixedBatches } from '../src/data/batcher.js';
import type { TokenSplit } from '../src/data/shards.js';
import { readSafetensors, writeSafetensors } from '../src/formats/safetensors.js';
import * as O from '../src/tensor/ops.js';
import { tensor, type Tensor } from '../src/tensor/tensor.js';
import { readTrainerState, saveTrainingCheckpoint, type TrainerStateFile } from '../src/train/checkpoint.js';
import { readMetrics } from '../src/train/metrics.js';
import { QuietProgress } from '../src/train/progress.js';
import { runTraining } from '../src/train/run.js';
import { LOOP_SETTINGS } from '../src/train/settings.js';
import type { Trainer } from '../src/train/trainer.js';
import { defineSettings, float, type Values } from '../src/util/settings.js';
import { Rng } from '../src/util/rng.js';
import { parseCommandLine } from '../src/cli/args.js';

const V = 12;
/** A "future trainer's" settings: the loop's groups plus one of its own. */
const TOY = defineSettings(
  { ...LOOP_SETTINGS, init: float(0.1, 'Scale of the initial table.', { min: 0 }) },
  'llmts toy',
);
type ToyConfig = Values<typeof TOY.table>;

/** logits = table[id]: a bigram model, no GPT anywhere. */
class Bigram {
  readonly params: Map<string, Tensor>;
  constructor(data: Float32Array, backend: Backend) {
    this.params = new Map([['table', tensor(data, [V, V], { requiresGrad: true, backend })]]);
  }
  loss(ids: Int32Array, targets: Int32Array, B: number, T: number): Tensor {
    const table = this.params.get('table')!;
    const logits = O.embedding(table, O.ids(ids, [B, T], table)); // (B, T, V)
    return O.scale(O.sum(O.crossEntropy(logits, O.ids(targets, [B * T], table))), 1 / (B * T));
  }
}

let tmp = '';
let backend: Backend;
const split: TokenSplit = {
  shards: [Uint16Array.from({ length: 3000 }, (_, i) => (i * 5 + (i % 7 === 0 ? 1 : 0)) % V)],
  tokens: 3000,
  bytes: 3000,
  documents: 1,
};

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-loop-'));
  backend = await initBackend('ref', { setDefault: false });
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Train (or resume) the toy run in `runDir`. */
async function toyRun(c: ToyConfig, runDir: string, o: { haltAfterStep?: number; resume?: boolean } = {}) {
  const ck = path.join(runDir, 'checkpoint');
  const saved = o.resume ? (readTrainerState(ck) as TrainerStateFile<ToyConfig>) : null;
  const init = saved
    ? ((await readSafetensors(path.join(ck, 'table.safetensors'))).tensors.get('table')!.data as Float32Array)
    : Float32Array.from({ length: V * V }, (_, i) => c.init * Math.sin(i));
  const model = new Bigram(init, backend);
  const batcher = new Batcher(split, 4, 8, new Rng(c.seed).fork(), 'train');
  const saveCheckpoint = async (t: Trainer) => {
    const data = (await model.params.get('table')!.data()) as Float32Array;
    await saveTrainingCheckpoint({
      dir: ck,
      saveModel: (d) => writeSafetensors(path.join(d, 'table.safetensors'), { table: { shape: [V, V], data } }),
      state: { version: 1, ...t.state, config: c, savedAt: new Date().toISOString() },
      moments: await t.optimizer.stateDict(),
    });
    return ck;
  };
  return runTraining({
    runDir,
    trainer: {
      model,
      batcher,
      evalBatches: fixedBatches(split, 4, 8, 2, 9, 'validation'),
      valBytesPerToken: 1,
      config: c,
      flopsPerToken: 6 * V * V,
      vocabSize: V,
    },
    display: c,
    ...(saved ? { resume: { state: saved, dir: ck } } : {}),
    saveCheckpoint,
    summary: (t) => ({ model: `bigram ${V}×${V}`, steps: t.state.step }),
    progress: new QuietProgress(() => {}),
    handleSigint: false,
    ...(o.haltAfterStep !== undefined ? { haltAfterStep: o.haltAfterStep } : {}),
  });
}

describe('the training loop drives a model that is no GPT', () => {
  const config = (over: string[]): ToyConfig => {
    const cl = parseCommandLine(
      ['--lr=0.3', '--max_iters=24', '--warmupSteps=2', '--evalInterval=8', '--checkpointInterval=0', ...over],
      TOY,
    );
    return TOY.checkRanges({ ...TOY.defaults(), ...TOY.fromPairs(cl.pairs) });
  };

  it('learns, logs one record per step counted from 1, writes the report and the checkpoint', async () => {
    const runDir = path.join(tmp, 'full');
    const r = await toyRun(config([]), runDir);
    expect(r.reason).toBe('done');
    expect(r.losses.get(23)!).toBeLessThan(0.5 * r.losses.get(0)!);
    const recs = readMetrics(path.join(runDir, 'metrics.jsonl'));
    expect(recs.filter((x) => x.type === 'step').map((x) => x.step)).toEqual(
      Array.from({ length: 24 }, (_, i) => i + 1),
    );
    expect(recs.filter((x) => x.type === 'eval').map((x) => x.step)).toEqual([8, 16, 24]);
    expect(fs.readFileSync(r.reportPath!, 'utf8')).toMatch(/bigram 12×12/);
    expect(readTrainerState(path.join(runDir, 'checkpoint')).step).toBe(24);
  });

  it('stopped after 10 steps and resumed, it takes bit for bit the steps of the uninterrupted run', async () => {
    const full = await toyRun(config([]), path.join(tmp, 'ref'));
    const runDir = path.join(tmp, 'part');
    const part = await toyRun(config(['--report=false']), runDir, { haltAfterStep: 10 });
    expect(part.reason).toBe('interrupted');
    expect(part.reportPath).toBeNull();
    const rest = await toyRun(config([]), runDir, { resume: true });
    expect([...rest.losses.keys()][0]).toBe(10);
    for (let s = 0; s < 24; s++) expect((s < 10 ? part : rest).losses.get(s), `step ${s}`).toBe(full.losses.get(s));
    expect(readMetrics(path.join(runDir, 'metrics.jsonl')).filter((x) => x.type === 'step').length).toBe(24);
  });
});
