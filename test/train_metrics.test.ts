import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect } from 'vitest';
import {
  detectOverfitting,
  detectStuck,
  detectDiverged,
  MetricsLog,
  readMetrics,
  type EvalRecord,
  type StepRecord,
} from '../src/train/metrics.js';
import { LineProgress, formatDuration } from '../src/train/progress.js';
import { renderReport } from '../src/train/report.js';
import { countParams, flopsPerToken, trainingMemory } from '../src/pretrain/estimate.js';
import { buildConfig } from '../src/pretrain/config.js';
import { toModelConfig } from '../src/pretrain/settings.js';

const ev = (step: number, valLoss: number, trainLoss: number): EvalRecord => ({
  type: 'eval',
  step,
  valLoss,
  valBpb: valLoss,
  trainLoss,
});
const st = (step: number, loss: number): StepRecord => ({
  type: 'step',
  step,
  loss,
  lr: 1e-3,
  gradNorm: 1,
  tokensPerSec: 1,
  mfu: 0,
  elapsed: 0,
});

describe('teacher warnings', () => {
  it('overfitting: validation rising while training falls', () => {
    expect(detectOverfitting([ev(100, 3.0, 3.1), ev(200, 2.5, 2.4), ev(300, 2.4, 2.0)])).toBeNull();
    const w = detectOverfitting([ev(100, 3.0, 3.1), ev(200, 2.5, 2.4), ev(300, 2.6, 2.0), ev(400, 2.8, 1.6)]);
    expect(w).toMatch(/memorising/);
    // both rising: not overfitting (diverging or a bad lr)
    expect(detectOverfitting([ev(100, 3.0, 3.1), ev(200, 2.5, 2.4), ev(300, 2.6, 2.6), ev(400, 2.8, 2.8)])).toBeNull();
  });
  it('stuck near ln(vocab) after warmup', () => {
    const V = 512;
    const flat = Array.from({ length: 200 }, (_, i) => st(i, Math.log(V) - 0.01));
    expect(detectStuck(flat, V, 50)).toMatch(/ln\(vocab\)/);
    const learning = Array.from({ length: 200 }, (_, i) => st(i, Math.log(V) - i * 0.02));
    expect(detectStuck(learning, V, 50)).toBeNull();
    expect(detectStuck(flat.slice(0, 60), V, 50)).toBeNull(); // still warming up
    expect(detectDiverged(NaN)).toMatch(/diverged/);
    expect(detectDiverged(2.5)).toBeNull();
  });
});

describe('metrics log, progress, report', () => {
  it('appends JSONL and truncates past a checkpoint on resume', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-metrics-'));
    const m = new MetricsLog(dir);
    for (let i = 1; i <= 6; i++) m.append(st(i, 6 - i));
    m.append(ev(4, 3, 2));
    m.append(ev(6, 3, 2));
    m.truncateAfter(4);
    const r = readMetrics(path.join(dir, 'metrics.jsonl'));
    expect(r.filter((x) => x.type === 'step').map((x) => x.step)).toEqual([1, 2, 3, 4]);
    expect(r.filter((x) => x.type === 'eval').map((x) => x.step)).toEqual([4]);
  });
  it('plain progress lines every N steps', () => {
    const lines: string[] = [];
    const p = new LineProgress(10, (s) => lines.push(s));
    p.start(30);
    for (let d = 1; d <= 30; d++) p.update({ done: d, loss: 2, lr: 1e-3, tokensPerSec: 4200, mfu: 0.1, eta: 65 });
    expect(lines.length).toBe(4); // 1, 10, 20, 30
    expect(lines[1]).toBe('step 10/30 | loss 2.0000 | lr 1.00e-3 | 4.2k tok/s | MFU 10.0% | ETA 1m05s');
    expect(formatDuration(3725)).toBe('1h02m');
  });
  it('escapes sample text and inlines chart.js', () => {
    const html = renderReport({
      title: 't',
      records: [st(0, 5), ev(1, 4, 4), { type: 'sample', step: 1, prompt: 'a', text: '</script><b>x' }],
    });
    expect(html).toContain('&lt;/script&gt;&lt;b&gt;x');
    expect(html).toContain('Chart.js v4');
    expect(html).not.toMatch(/<script[^>]*src=/);
  });
  it('memory and FLOPs estimates scale as expected', () => {
    const m = toModelConfig(buildConfig({ preset: 'tiny' }), 512);
    const n = countParams(m).total;
    const mem = trainingMemory(m, 8, 128);
    expect(mem.params + mem.grads + mem.adam).toBe(16 * n);
    expect(trainingMemory(m, 16, 128).activations).toBeCloseTo(2 * mem.activations, 6);
    expect(flopsPerToken(m, 256) - flopsPerToken(m, 128)).toBe(12 * 4 * 128 * 128);
  });
});
