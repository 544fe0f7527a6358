/**
 * End to end through `pretrain`: a run interrupted after a few steps and resumed from its checkpoint takes exactly
 * the steps (bit-for-bit losses) of a run that never stopped; the checkpoint is a Hugging Face folder with the
 * layout of the shared fixtures; the report is self-contained; bad checkpoints give named errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { buildConfig } from '../src/pretrain/config.js';
import type { TrainConfig } from '../src/pretrain/settings.js';
import { pretrain } from '../src/pretrain/pretrain.js';
import { LineProgress } from '../src/train/progress.js';
import { readMetrics } from '../src/train/metrics.js';
import { loadModel } from '../src/model/hf/folder.js';
import { readSafetensorsHeader } from '../src/formats/safetensors.js';
import { Rng } from '../src/util/rng.js';
import { ConfigError, FileFormatError } from '../src/util/errors.js';
import { HF_FIXTURES } from './helpers.js';

let tmp: string;
let corpus: string;
const quiet = { log: () => {}, progress: new LineProgress(1000, () => {}), handleSigint: false };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-train-'));
  const words = [
    'the',
    'people',
    'of',
    'states',
    'congress',
    'shall',
    'and',
    'we',
    'have',
    'a',
    'nation',
    'peace',
    'law',
    'year',
  ];
  const rng = new Rng(11);
  const out: string[] = [];
  for (let i = 0; i < 3000; i++) out.push(words[rng.int(words.length)]! + (rng.int(9) === 0 ? '.\n' : ' '));
  corpus = path.join(tmp, 'corpus.txt');
  fs.writeFileSync(corpus, out.join(''));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cfg(over: Partial<TrainConfig>): TrainConfig {
  return buildConfig({
    overrides: {
      input: [corpus],
      tokenizer: 'char',
      nLayer: 2,
      nHead: 2,
      nEmbd: 32,
      blockSize: 16,
      batchSize: 4,
      gradAccum: 2,
      maxSteps: 10,
      warmupSteps: 3,
      lr: 3e-3,
      minLr: 3e-4,
      dropout: 0.1,
      evalInterval: 4,
      evalBatches: 2,
      sampleInterval: 5,
      sampleTokens: 8,
      samplePrompts: ['the'],
      checkpointInterval: 0,
      outDir: path.join(tmp, 'runs'),
      cacheDir: path.join(tmp, 'cache'),
      backend: (process.env['TRAIN_TEST_BACKEND'] as 'ref' | 'wasm' | undefined) ?? 'ref',
      quiet: true,
      report: true,
      ...over,
    },
  });
}

describe('pretrain: interrupt and resume', () => {
  it('a resumed run has exactly the losses of an uninterrupted one', async () => {
    const full = await pretrain({ ...quiet, config: cfg({ name: 'full' }) });
    expect(full.reason).toBe('done');
    expect(full.losses.size).toBe(10);
    expect(full.losses.get(9)!).toBeLessThan(full.losses.get(0)!);

    const part = await pretrain({ ...quiet, config: cfg({ name: 'part' }), haltAfterStep: 4 });
    expect(part.reason).toBe('interrupted');
    expect(part.steps).toBe(4);
    const rest = await pretrain({ ...quiet, resume: part.runDir });
    expect(rest.reason).toBe('done');
    expect([...rest.losses.keys()]).toEqual([4, 5, 6, 7, 8, 9]);
    for (let s = 0; s < 10; s++) {
      const got = s < 4 ? part.losses.get(s) : rest.losses.get(s);
      expect(got, `step ${s}`).toBe(full.losses.get(s));
    }
    // Same final weights, bit for bit, and one metrics record per step.
    const a = fs.readFileSync(path.join(full.checkpointDir, 'model.safetensors'));
    const b = fs.readFileSync(path.join(rest.checkpointDir, 'model.safetensors'));
    expect(Buffer.compare(a, b)).toBe(0);
    const steps = readMetrics(path.join(rest.runDir, 'metrics.jsonl'))
      .filter((r) => r.type === 'step')
      .map((r) => r.step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // steps completed, as the console counts
    // Resuming a finished run with a larger maxSteps continues it.
    const more = await pretrain({ ...quiet, resume: full.runDir, overrides: { maxSteps: 12 } });
    expect([...more.losses.keys()]).toEqual([10, 11]);
  });

  it('writes a self-contained report with curves and the sample strip', () => {
    const html = fs.readFileSync(path.join(tmp, 'runs/full/report.html'), 'utf8');
    expect(html).toMatch(/<canvas id="loss">/);
    expect(html).toContain('Chart.js v4');
    expect(html).toMatch(/step 5<br>|step 5</);
    for (const m of html.matchAll(/<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?([^"'\s>]+)/gi)) {
      expect(m[1]!, 'external resource').not.toMatch(/^(https?:)?\/\//);
    }
    expect(html).not.toMatch(/<script[^>]*\bsrc=/i);
    expect(html).not.toMatch(/<link[^>]*\bhref=["']?https?:/i);
  });

  it('refuses to resume or init from a checkpoint of another shape, naming what to change', async () => {
    const full = path.join(tmp, 'runs/full/checkpoint');
    await expect(pretrain({ ...quiet, config: cfg({ name: 'other', nEmbd: 48, initFrom: full }) })).rejects.toThrow(
      ConfigError,
    );
    await expect(pretrain({ ...quiet, config: cfg({ name: 'other', nEmbd: 48, initFrom: full }) })).rejects.toThrow(
      /--nEmbd=32/,
    );
    await expect(
      pretrain({
        ...quiet,
        config: cfg({ name: 'other', family: 'llama', nKvHead: 1, tieEmbeddings: false, initFrom: full }),
      }),
    ).rejects.toThrow(/family/);
    await expect(pretrain({ ...quiet, resume: path.join(tmp, 'nowhere') })).rejects.toThrow(FileFormatError);
    await expect(pretrain({ ...quiet, config: cfg({ name: 'full' }) })).rejects.toThrow(/already holds a run/);
    await expect(pretrain({ ...quiet, config: cfg({ name: 'big', batchSize: 256, blockSize: 128 }) })).rejects.toThrow(
      /smaller than one batch/,
    );
  });
});

describe('no tensor leaks', () => {
  it('evaluation, sampling and steps free what they allocate', async () => {
    const { initBackend } = await import('../src/backend/registry.js');
    const { initModel } = await import('../src/model/init.js');
    const { toModelConfig } = await import('../src/pretrain/settings.js');
    const { Trainer } = await import('../src/train/trainer.js');
    const { sampleIds } = await import('../src/train/sample.js');
    const { Batcher, fixedBatches } = await import('../src/data/batcher.js');
    const backend = await initBackend('ref', { setDefault: false });
    const c = cfg({ name: 'leak' });
    const model = initModel(toModelConfig(c, 40), new Rng(1), { backend });
    const split = {
      shards: [Uint16Array.from({ length: 2000 }, (_, i) => (i * 7) % 40)],
      tokens: 2000,
      bytes: 2000,
      documents: 1,
    };
    const trainer = new Trainer({
      model,
      batcher: new Batcher(split, 4, 16, new Rng(2)),
      evalBatches: fixedBatches(split, 4, 16, 2, 3),
      valBytesPerToken: 1,
      config: c,
      flopsPerToken: 1,
      vocabSize: 40,
    });
    await trainer.step();
    await trainer.evaluate();
    await sampleIds(model, [1, 2, 3], { maxTokens: 20, temperature: 1, topK: 0, seed: 1 });
    const before = backend.memory().inUse;
    for (let i = 0; i < 3; i++) {
      await trainer.step();
      await trainer.evaluate();
      await sampleIds(model, [1, 2, 3], { maxTokens: 20, temperature: 1, topK: 0, seed: 1 });
    }
    expect(backend.memory().inUse).toBe(before);
  });
});

describe('checkpoint layout matches the Hugging Face fixtures', () => {
  for (const family of ['gpt2', 'llama'] as const) {
    it(`${family}: same files, config fields, tensor names, dtypes and shapes; loads with loadModel`, async () => {
      const fixture = path.join(HF_FIXTURES, `${family}-tiny`);
      const fcfg = JSON.parse(fs.readFileSync(path.join(fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
      const shape: Partial<TrainConfig> =
        family === 'gpt2'
          ? {
              nLayer: fcfg['n_layer'] as number,
              nHead: fcfg['n_head'] as number,
              nEmbd: fcfg['n_embd'] as number,
              blockSize: 16,
              maxPositions: fcfg['n_positions'] as number,
            }
          : {
              family: 'llama',
              nLayer: fcfg['num_hidden_layers'] as number,
              nHead: fcfg['num_attention_heads'] as number,
              nKvHead: fcfg['num_key_value_heads'] as number,
              nEmbd: fcfg['hidden_size'] as number,
              intermediateSize: fcfg['intermediate_size'] as number,
              tieEmbeddings: fcfg['tie_word_embeddings'] as boolean,
              blockSize: 16,
              maxPositions: fcfg['max_position_embeddings'] as number,
            };
      const r = await pretrain({
        ...quiet,
        config: cfg({
          name: `layout-${family}`,
          maxSteps: 1,
          gradAccum: 1,
          batchSize: 2,
          dropout: 0,
          sampleTokens: 0,
          report: false,
          ...shape,
        }),
      });
      const ours = fs.readdirSync(r.checkpointDir);
      for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) {
        expect(fs.readdirSync(fixture)).toContain(f);
        expect(ours).toContain(f);
      }
      expect(ours).toEqual(
        expect.arrayContaining([
          'tokenizer.json',
          'tokenizer_config.json',
          'trainer_state.json',
          'optimizer.safetensors',
        ]),
      );
      const ocfg = JSON.parse(fs.readFileSync(path.join(r.checkpointDir, 'config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(Object.keys(ocfg).sort()).toEqual(
        expect.arrayContaining(
          Object.keys(fcfg)
            .filter((k) => k !== 'rope_theta')
            .sort(),
        ),
      );
      expect(ocfg['architectures']).toEqual(fcfg['architectures']);
      expect(ocfg['model_type']).toBe(fcfg['model_type']);
      const ft = await readSafetensorsHeader(path.join(fixture, 'model.safetensors'));
      const ot = await readSafetensorsHeader(path.join(r.checkpointDir, 'model.safetensors'));
      const V = ocfg['vocab_size'] as number,
        FV = fcfg['vocab_size'] as number;
      expect(ot.entries.map((e) => e.name).sort()).toEqual(ft.entries.map((e) => e.name).sort());
      const fByName = new Map(ft.entries.map((e) => [e.name, e]));
      for (const e of ot.entries) {
        const f = fByName.get(e.name)!;
        expect(e.dtype, e.name).toBe(f.dtype);
        expect(e.shape, e.name).toEqual(
          f.shape.map((d, i) => (d === FV && i === 0 && /embed|wte|lm_head/.test(e.name) ? V : d)),
        );
      }
      const m = await loadModel(r.checkpointDir);
      expect(m.config.family).toBe(family);
      expect(m.numParams()).toBeGreaterThan(0);
    });
  }
});
