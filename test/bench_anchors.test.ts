/**
 * The benches' rule for C figures (bench/anchors.mjs, issue 17): a figure is divided only when it was measured on
 * the same processor model under the same conditions; otherwise it is printed as "measured on <processor>" with no
 * ratio. Also the processor identity the benches print (bench/machine.mjs).
 */
import { describe, expect, it } from 'vitest';
import { anchorFor, compareToAnchor } from '../bench/anchors.mjs';
import { processor } from '../bench/machine.mjs';

const EPYC = 'AuthenticAMD/26/2';
const SPR = 'GenuineIntel/6/143';
const XEON = 'GenuineIntel/6/167';
const tiny = { peer: 'llm.c', threads: 2, B: 8, T: 128 };

describe('bench anchors', () => {
  it('divides by a figure measured on the same processor under the same conditions', () => {
    const a = anchorFor('train-tiny', EPYC, tiny);
    expect(a?.processor).toBe(EPYC);
    const c = compareToAnchor('train-tiny', EPYC, tiny, 2 * a!.value);
    expect(c.comparable).toBe(true);
    expect(c.ratio).toBeCloseTo(2, 12);
    expect(c.text).toMatch(/→ ×2\.00/);
  });

  it('prints a figure from another processor without a ratio', () => {
    const c = compareToAnchor('train-tiny', 'GenuineIntel/6/85', tiny, 5000);
    expect(c.comparable).toBe(false);
    expect(c.ratio).toBeNull();
    expect(c.text).toMatch(/measured on .* \(no ratio: another processor\)/);
    // the Sapphire Rapids figure is used on Sapphire Rapids only
    expect(compareToAnchor('train-tiny', SPR, tiny, 4593).ratio).toBeCloseTo(1, 12);
  });

  it('conditions must match: another top-p or thread count is not the same work', () => {
    const q = { peer: 'run.c', threads: 2, top_p: 0.5 };
    const c = compareToAnchor('decode-stories15M', EPYC, q, 500);
    expect(c.anchor).toBeNull();
    expect(c.ratio).toBeNull();
    expect(c.text).toMatch(/^no run\.c figure for .*top-p 0\.5/);
  });

  it('the Xeon of 2026-12-05 (family 6 model 167) has llm.c and run.c figures at 2 and 1 threads, for its own use', () => {
    for (const threads of [2, 1]) {
      const train = anchorFor('train-gpt2', XEON, { peer: 'llm.c', threads, B: 4, T: 64 });
      expect(train?.date).toBe('2026-12-05');
      expect(train!.range![0]).toBeLessThanOrEqual(train!.value);
      const q = { peer: 'run.c', threads, top_p: 1, weights: 'f32', model: 'random' };
      expect(compareToAnchor('decode-stories110M', XEON, q, 50).comparable).toBe(true);
    }
    // run.c's default top-p 0.9 was not measured there
    expect(anchorFor('decode-stories15M', XEON, { peer: 'run.c', threads: 2, top_p: 0.9 })).toBeNull();
    // elsewhere the Xeon's 1-thread figure is printed, never divided
    const other = compareToAnchor('train-tiny', EPYC, { ...tiny, threads: 1 }, 6000);
    expect(other.ratio).toBeNull();
    expect(other.anchor?.processor).toBe(XEON);
  });

  it('the processor the benches print has a key of vendor/family/model and a thread count', () => {
    const p = processor();
    expect(p.name.length).toBeGreaterThan(0);
    expect(p.threads).toBeGreaterThanOrEqual(1);
    if (process.platform === 'linux') expect(p.key).toMatch(/^[A-Za-z]+\/\d+\/\d+$/);
  });
});
