/**
 * BPE training: the fast trainer (incremental pair counts + heap) makes exactly the merges a naive trainer that
 * recounts every pair from scratch after each merge makes (same tie rule: highest count, then smallest pair);
 * vocabulary layout; patterns; and the 10 MB → 8,192 speed bar (sotu).
 */
import { describe, it, expect } from 'vitest';
import {
  trainBpe,
  trainBpeWithStats,
  encodeUtf8,
  countWords,
  type PatternName,
  type Tokenizer,
} from '../src/tokenizer/index.js';
import { EDGE_STRINGS, shakespeare, sotu } from './tokenizer_fixtures.js';

/** Reference: minbpe-style training on distinct words, recounting all pairs each step. */
function naiveMerges(text: string, pattern: PatternName, nMerges: number, minFrequency: number): [number, number][] {
  const { counts } = countWords([text], pattern);
  const words = [...counts].map(([w, c]) => ({ ids: Array.from(encodeUtf8(w)), c }));
  const bytesOf: number[][] = [];
  for (let b = 0; b < 256; b++) bytesOf.push([b]);
  const idOf = new Map<string, number>(bytesOf.map((b, i) => [b.join(','), i]));
  const merges: [number, number][] = [];
  while (bytesOf.length < 256 + nMerges) {
    const pc = new Map<string, number>();
    for (const { ids, c } of words)
      for (let i = 0; i + 1 < ids.length; i++)
        pc.set(`${ids[i]},${ids[i + 1]}`, (pc.get(`${ids[i]},${ids[i + 1]}`) ?? 0) + c);
    let best: [number, number] | null = null;
    let bestC = 0;
    for (const [k, c] of pc) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestC || (c === bestC && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestC = c;
      }
    }
    if (!best || bestC < minFrequency) break;
    const joined = [...bytesOf[best[0]]!, ...bytesOf[best[1]]!];
    let x = idOf.get(joined.join(','));
    if (x === undefined) {
      x = bytesOf.length;
      bytesOf.push(joined);
      idOf.set(joined.join(','), x);
    }
    merges.push(best);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === best[0] && w.ids[i + 1] === best[1]) {
          out.push(x);
          i++;
        } else out.push(w.ids[i]!);
      }
      w.ids = out;
    }
  }
  return merges;
}

function mergesOf(t: Tokenizer): [number, number][] {
  const m = t.model;
  return Array.from({ length: m.mergeCount }, (_, r) => [m.mergeLeft[r]!, m.mergeRight[r]!] as [number, number]);
}

describe('trainBpe', () => {
  it('makes the same merges as a naive recount-everything trainer (gpt2 and cl100k patterns)', () => {
    const text = shakespeare().slice(0, 30_000) + EDGE_STRINGS.join('\n') + ' aaaa bbbbbb abababab aaaaaaa ';
    for (const pattern of ['gpt2', 'cl100k'] as const) {
      const t = trainBpe(text, { vocabSize: 256 + 300, pattern, minFrequency: 2 });
      expect(mergesOf(t)).toEqual(naiveMerges(text, pattern, 300, 2));
    }
  });

  it('handles repeated-symbol words (aaaa, abab) and reused tokens exactly like the reference', () => {
    const text = 'aaaaaaa aaa aaaa aa abababab ab aba bab abcabc bca cab ' + 'x'.repeat(33) + ' ' + 'xy'.repeat(20);
    const t = trainBpe(text, { vocabSize: 256 + 40, minFrequency: 1 });
    expect(mergesOf(t)).toEqual(naiveMerges(text, 'gpt2', 40, 1));
    expect(t.decode(t.encode(text))).toBe(text);
  });

  it('lays out the vocabulary: 256 bytes, learned tokens, then special tokens; total = vocabSize', () => {
    const t = trainBpe(shakespeare().slice(0, 100_000), {
      vocabSize: 600,
      specialTokens: ['<|endoftext|>', '<|pad|>'],
    });
    expect(t.vocabSize).toBe(600);
    for (let b = 0; b < 256; b++) expect(Array.from(t.tokenBytes(b))).toEqual([b]);
    expect(t.specialId('<|endoftext|>')).toBe(598);
    expect(t.specialId('<|pad|>')).toBe(599);
    expect(t.model.tokenBytes.length).toBe(598);
    // learned tokens shrink the text
    const text = shakespeare().slice(200_000, 300_000);
    expect(t.encode(text).length).toBeLessThan(encodeUtf8(text).length / 1.7);
  });

  it('keeps special-token text out of the statistics', () => {
    const corpus = 'hello<|endoftext|>world<|endoftext|>'.repeat(50);
    const t = trainBpe(corpus, { vocabSize: 300, specialTokens: ['<|endoftext|>'], minFrequency: 2 });
    for (let id = 256; id < t.model.tokenBytes.length; id++) expect(t.tokenText(id)).not.toMatch(/[<|>]/);
    expect(t.encode(corpus, { allowed: 'all' }).filter((i) => t.isSpecial(i)).length).toBe(100);
  });

  it('stops early when pairs run out, and rejects a bad vocabSize', () => {
    const t = trainBpe('ab ab ab', { vocabSize: 1000 });
    expect(t.vocabSize).toBeLessThan(1000);
    expect(() => trainBpe('x', { vocabSize: 100 })).toThrow(/vocabSize/);
    expect(() => trainBpe('x', { vocabSize: 257, specialTokens: ['<a>', '<b>'] })).toThrow(/vocabSize/);
  });

  it('splits with the chosen pattern (cl100k groups digits by 3; gpt2 keeps digit runs)', () => {
    const digits = '1234567 '.repeat(200);
    const g = trainBpe(digits, { vocabSize: 300, pattern: 'gpt2' });
    const c = trainBpe(digits, { vocabSize: 300, pattern: 'llama3' });
    expect(g.tokenText(g.encode('1234567')[0]!)).toBe('1234567');
    expect(c.encode('1234567').map((i) => c.tokenText(i))).toEqual(['123', '456', '7']);
  });

  // How long this takes is measured by bench/tokenizer.bench.mjs (case train-sotu-8192), not asserted here.
  it('trains on ~10 MB of State of the Union text to 8,192 tokens that round-trip and compress English', () => {
    const text = sotu();
    expect(text.length).toBeGreaterThan(10_000_000);
    const { tokenizer, stats } = trainBpeWithStats(text, { vocabSize: 8192, specialTokens: ['<|endoftext|>'] });
    expect(tokenizer.vocabSize).toBe(8192);
    expect(stats.merges).toBeGreaterThanOrEqual(8192 - 257);
    const sample = text.slice(5_000_000, 5_200_000);
    const ids = tokenizer.encode(sample);
    expect(tokenizer.decode(ids)).toBe(sample);
    expect(sample.length / ids.length).toBeGreaterThan(4); // English at 8k tokens: > 4 bytes/token
  });
});
