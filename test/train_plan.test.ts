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
});
