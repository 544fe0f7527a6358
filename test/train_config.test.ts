import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { buildConfig, parseOverrides } from '../src/pretrain/config.js';
import { PRESETS } from '../src/pretrain/presets.js';
import { cacheDirOf, DEFAULTS, toModelConfig, validateConfig } from '../src/pretrain/settings.js';
import { configFromCommandLine, parseTrainArgs } from '../src/cli/train.js';
import { learningRate } from '../src/optim/schedule.js';
import { countParams, flopsPerToken } from '../src/pretrain/estimate.js';
import { paramSpecs } from '../src/model/params.js';
import { ConfigError } from '../src/util/errors.js';
import { FIXTURES } from './helpers.js';
import { TRAIN_SETTINGS } from '../src/pretrain/settings.js';
import { bool, defineSettings, float, int, numbers, oneOf, strings } from '../src/util/settings.js';
import { parseCommandLine } from '../src/cli/args.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('train config', () => {
  it('applies preset, file and overrides in that order', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-cfg-')), 'c.json');
    fs.writeFileSync(file, JSON.stringify({ preset: 'shakespeare-char', batchSize: 6, n_layer: 3 }));
    const c = buildConfig({ file, overrides: parseOverrides([['lr', '3e-4']]) });
    expect(c.tokenizer).toBe('char');
    expect(c.blockSize).toBe(64);
    expect(c.batchSize).toBe(6);
    expect(c.nLayer).toBe(3);
    expect(c.lr).toBe(3e-4);
  });
  it('shakespeare-char is the nanoGPT CPU recipe', () => {
    const c = buildConfig({ preset: 'shakespeare-char' });
    expect([c.nLayer, c.nHead, c.nEmbd, c.blockSize, c.batchSize, c.maxSteps]).toEqual([4, 4, 128, 64, 12, 2000]);
    expect([
      c.beta1,
      c.beta2,
      c.weightDecay,
      c.lr,
      c.minLr,
      c.warmupSteps,
      c.decaySteps,
      c.gradClip,
      c.dropout,
    ]).toEqual([0.9, 0.99, 0.1, 1e-3, 1e-4, 100, 2000, 1, 0]);
    expect(c.valFraction).toBe(0.1);
  });
  it('rejects unknown keys and suggests the closest', () => {
    const e = configError(() => parseOverrides([['learnig_rate', '1']]));
    expect(e.field).toBe('learnig_rate');
    expect(e.message).toMatch(/Did you mean 'lr'/);
    expect(configError(() => parseTrainArgs(['--batchsize=3'])).message).toMatch(/batchSize/);
    expect(configError(() => buildConfig({ preset: 'tinny' })).message).toMatch(/tiny/);
  });
  it('rejects wrong types naming the key and the expected type', () => {
    let e = configError(() => parseOverrides([['batchSize', 'eight']]));
    expect(e.field).toBe('batchSize');
    expect(e.message).toMatch(/expected an integer/);
    e = configError(() => parseOverrides([['batchSize', '2.5']]));
    expect(e.message).toMatch(/integer/);
    e = configError(() => parseOverrides([['quiet', 'maybe']]));
    expect(e.message).toMatch(/true or false/);
    e = configError(() => parseOverrides([['family', 'bert']]));
    expect(e.message).toMatch(/'gpt2', 'llama'/);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-cfg-')), 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ lr: '0.1' }));
    e = configError(() => buildConfig({ file }));
    expect(e.file).toBe(file);
    expect(e.field).toBe('lr');
  });
  it('checks ranges', () => {
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--lr=0']))).field).toBe('lr');
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--lr=-1e-3']))).field).toBe('lr');
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--batchSize=0']))).field).toBe('batchSize');
    expect(
      configError(() => configFromCommandLine(parseTrainArgs(['--blockSize=256', '--maxPositions=128']))).field,
    ).toBe('blockSize');
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--nEmbd=100', '--nHead=3']))).message).toMatch(
      /divisible/,
    );
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--minLr=1', '--lr=0.1']))).field).toBe('minLr');
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--dropout=1.5']))).field).toBe('dropout');
    expect(configError(() => configFromCommandLine(parseTrainArgs(['--valFraction=0']))).field).toBe('valFraction');
    expect(() => validateConfig({ ...DEFAULTS })).not.toThrow();
  });
  it('parses command lines: positionals, kebab and snake case, bare booleans, own flags', () => {
    const cl = parseTrainArgs([
      'a.txt',
      '--batch-size',
      '4',
      '--max_iters=10',
      '--quiet',
      '--resume',
      '--preset=tiny',
      'b.txt',
    ]);
    expect(cl.positionals).toEqual(['a.txt', 'b.txt']);
    expect(cl.flags.get('resume')).toBe('');
    const c = configFromCommandLine(cl);
    expect(c.input).toEqual(['a.txt', 'b.txt']);
    expect(c.batchSize).toBe(4);
    expect(c.maxSteps).toBe(10);
    expect(c.quiet).toBe(true);
    expect(parseTrainArgs(['--samplePrompts=["a, b","c"]']).pairs).toEqual([['samplePrompts', '["a, b","c"]']]);
    expect(parseOverrides([['samplePrompts', '["a, b","c"]']]).samplePrompts).toEqual(['a, b', 'c']);
  });
  it('every preset is valid', () => {
    for (const name of Object.keys(PRESETS)) expect(() => buildConfig({ preset: name })).not.toThrow();
  });
  it('maps onto ModelConfig; the gpt2 preset has 124M parameters', () => {
    const m = toModelConfig(buildConfig({ preset: 'gpt2' }), 50257);
    expect(m.maxPositions).toBe(1024);
    expect(countParams(m).total).toBe(124439808);
    expect(flopsPerToken(m, 1024)).toBe(6 * (124439808 - 1024 * 768) + 12 * 12 * 768 * 1024);
    const l = toModelConfig(buildConfig({ preset: 'llama-tiny' }), 512);
    expect(l.family).toBe('llama');
    expect(l.numKvHeads).toBe(2);
    expect(l.tieWordEmbeddings).toBe(false);
    // a Qwen3-style model from scratch: q/k norms, counted as the model holds them
    const q = toModelConfig(buildConfig({ preset: 'llama-tiny', overrides: { qkNorm: true } }), 512);
    expect(q.qkNorm).toBe(true);
    expect(countParams(q).total - countParams(l).total).toBe(2 * q.numLayers * q.headDim);
    expect(countParams(q).total).toBe(paramSpecs(q).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0));
    expect(() => buildConfig({ preset: 'tiny', overrides: { family: 'gpt2', qkNorm: true } })).toThrow(/qkNorm/);
    // Gemma 3 from scratch: its layout, five sliding layers then a full one, the sandwich norms counted
    const g = toModelConfig(buildConfig({ preset: 'llama-tiny', overrides: { family: 'gemma3', nLayer: 7 } }), 512);
    expect(g).toMatchObject({
      family: 'llama',
      sandwichNorms: true,
      slidingWindow: 512,
      embedScale: true,
      normOffset: 1,
    });
    expect(g.layerTypes).toEqual(['sliding', 'sliding', 'sliding', 'sliding', 'sliding', 'full', 'sliding']);
    expect(countParams(g).total).toBe(paramSpecs(g).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0));
    expect(() => buildConfig({ preset: 'tiny', overrides: { slidingWindow: 64 } })).toThrow(/family=gemma3/);
  });
});

describe('settings tables', () => {
  it('each setting is declared once: defaults, --help and validation come from the one table', () => {
    const help = TRAIN_SETTINGS.describe();
    for (const k of TRAIN_SETTINGS.keys) {
      expect(help.match(new RegExp(`^ +--${k}=`, 'gm'))?.length, k).toBe(1);
      expect(DEFAULTS[k], k).toEqual(TRAIN_SETTINGS.table[k].default);
    }
    expect(Object.keys(DEFAULTS).sort()).toEqual([...TRAIN_SETTINGS.keys].sort());
    expect(help).toMatch(
      /--nLayer=<integer> {2}Number of Transformer blocks\. \(default 4\) \[also --n_layer, --layers\]/,
    );
    expect(TRAIN_SETTINGS.resolveKey('max_iters')).toBe('maxSteps');
    expect(TRAIN_SETTINGS.resolveKey('grad-clip')).toBe('gradClip');
  });
  it('a new command builds its table from the same pieces: parse, aliases, ranges, enums, closest key', () => {
    const S = defineSettings(
      {
        beta: float(0.1, 'DPO β.', { gt: 0, aliases: ['dpo_beta'] }),
        epochs: int(1, 'Passes over the data.', { min: 1, max: 100 }),
        loss: oneOf(['sigmoid', 'ipo'], 'sigmoid', 'DPO loss.'),
        packing: bool(false, 'Pack sequences.'),
        files: strings([], 'Data files.'),
      },
      'llmts dpo',
    );
    const cl = parseCommandLine(
      ['a.jsonl', '--dpo_beta', '0.5', '--packing', '--loss=ipo', '--epochs=3', 'b.jsonl'],
      S,
    );
    const c = S.checkRanges({ ...S.defaults(), ...S.fromPairs(cl.pairs) });
    expect(c).toEqual({ beta: 0.5, epochs: 3, loss: 'ipo', packing: true, files: [] });
    expect(cl.positionals).toEqual(['a.jsonl', 'b.jsonl']);
    expect(configError(() => S.checkRanges({ ...c, epochs: 0 })).message).toMatch(/epochs: must be ≥ 1, got 0/);
    expect(configError(() => S.checkRanges({ ...c, beta: 0 })).message).toMatch(/beta: must be > 0/);
    expect(configError(() => S.fromPairs([['loss', 'hinge']])).message).toMatch(/one of 'sigmoid', 'ipo'/);
    expect(configError(() => parseCommandLine(['--epoch=2'], S)).message).toMatch(
      /Did you mean 'epochs'\? \('llmts dpo --help'/,
    );
    expect(S.describe()).toMatch(/--packing=<true or false> {2}Pack sequences\. \(default false\)/);
  });
  it('lists of numbers: "1,0.5" and "[1, 0.5]" on the command line, [1, 0.5] in a file; anything else named', () => {
    const S = defineSettings({ weights: numbers([], 'Weights.'), files: strings([], 'Files.') }, 'llmts x');
    expect(S.coerce('weights', '1,0.5')).toEqual([1, 0.5]);
    expect(S.coerce('weights', '[1, -2e-3]')).toEqual([1, -0.002]);
    expect(S.coerce('weights', '')).toEqual([]);
    expect(S.coerce('weights', [3, 4], 'f.json', true)).toEqual([3, 4]);
    for (const bad of ['1,a', '1,,2', 'NaN'])
      expect(configError(() => S.coerce('weights', bad)).message).toMatch(/weights: expected a list of numbers/);
    expect(configError(() => S.coerce('weights', '1,2', 'f.json', true)).message).toMatch(/a list of numbers/);
    expect(configError(() => S.coerce('weights', [1, Infinity], 'f.json', true)).message).toMatch(/a list of numbers/);
    // one string where a list of strings is expected, in a file (a setting that used to be one string): a list of one
    expect(S.coerce('files', 'a.mjs', 'f.json', true)).toEqual(['a.mjs']);
    expect(S.describe()).toMatch(/--weights=<list of numbers> {2}Weights\. \(default \[\]\)/);
  });
  it('--report and --quiet are true/false settings; --resume takes a following folder only when it exists', () => {
    expect(configFromCommandLine(parseTrainArgs(['--report=false'])).report).toBe(false);
    expect(configFromCommandLine(parseTrainArgs(['--report'])).report).toBe(true);
    expect(configFromCommandLine(parseTrainArgs(['--quiet=true'])).quiet).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-run-'));
    expect(parseTrainArgs(['--resume', dir]).flags.get('resume')).toBe(dir);
    const cl = parseTrainArgs(['--resume', 'corpus-that-is-not-here.txt']);
    expect(cl.flags.get('resume')).toBe('');
    expect(cl.positionals).toEqual(['corpus-that-is-not-here.txt']);
    expect(parseTrainArgs(['--report-only', 'runs/x']).flags.get('report-only')).toBe('runs/x');
    expect(configError(() => parseTrainArgs(['--report-only'])).field).toBe('report-only');
    expect(parseTrainArgs(['--measure=no', 'x.txt'], { measure: 'bool' }).flags.get('measure')).toBe('false');
    expect(parseTrainArgs(['--measure', 'x.txt'], { measure: 'bool' }).positionals).toEqual(['x.txt']);
  });
  it('the token cache defaults to <outDir>/.cache', () => {
    expect(cacheDirOf(buildConfig({ overrides: { outDir: 'elsewhere/runs' } }))).toBe('elsewhere/runs/.cache');
    expect(cacheDirOf(buildConfig({ overrides: { outDir: 'x', cacheDir: '/tmp/c' } }))).toBe('/tmp/c');
  });
});

describe('learning-rate schedule', () => {
  it('matches the shared training fixture exactly', () => {
    const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'training/gpt2-tiny/reference.json'), 'utf8')) as {
      steps: { step: number; lr: number }[];
    };
    for (const s of ref.steps)
      expect(learningRate(s.step, { lr: 3e-3, minLr: 3e-4, warmupSteps: 3, decaySteps: 11 })).toBe(s.lr);
  });
  it('warms up linearly, decays by cosine to minLr, then stays there', () => {
    const o = { lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 };
    expect(learningRate(0, o)).toBeCloseTo(1e-5, 12);
    expect(learningRate(99, o)).toBeCloseTo(1e-3, 12);
    expect(learningRate(1050, o)).toBeCloseTo(5.5e-4, 12);
    expect(learningRate(2000, o)).toBeCloseTo(1e-4, 12);
    expect(learningRate(5000, o)).toBe(1e-4);
  });
});
