import { describe, it, expect } from 'vitest';
import { main } from '../src/cli/plan.js';

describe('llmts plan', () => {
  it('prints parameters, FLOPs per token and training memory of a preset', async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => lines.push(String(s));
    try {
      expect(await main(['--preset=gpt2', '--measure=false'])).toBe(0);
    } finally {
      console.log = log;
    }
    const out = lines.join('\n');
    expect(out).toMatch(/parameters\s+124\.44 M/);
    expect(out).toMatch(/855 MFLOP per token/);
    expect(out).toMatch(/AdamW moments 949\.4 MiB/);
  });

  it('with --backend webgpu: the device memory a step needs, planned on the counting device', async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => lines.push(String(s));
    try {
      expect(await main(['--preset=tiny', '--backend=webgpu', '--measure=false', '--batchSize=4'])).toBe(0);
    } finally {
      console.log = log;
    }
    const out = lines.join('\n');
    const m = /webgpu\s+([\d.]+) MiB of device buffers at a step's peak \(live tensors ([\d.]+) MiB/.exec(out);
    expect(m, out).not.toBeNull();
    // the device holds the live tensors' peak and more (size classes, idle pooled buffers, scratch), not much more
    const [device, tensors] = [Number(m![1]), Number(m![2])];
    expect(device).toBeGreaterThanOrEqual(tensors);
    expect(device).toBeLessThan(1.5 * tensors);
  });
});
