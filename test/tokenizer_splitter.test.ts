/**
 * The hand-written GPT-2 scanner (gpt2_splitter.ts) cuts text exactly where GPT-2's RegExp does, on corpora, edge
 * strings and random strings over every character class (Unicode spaces, letters and numbers beyond ASCII, astral
 * letters, lone surrogates, apostrophes); and the onigurumaToJs translation of tokenizer.json patterns.
 */
import { describe, it, expect } from 'vitest';
import { gpt2WordEnd } from '../src/tokenizer/gpt2_splitter.js';
import { GPT2_PATTERN, CL100K_PATTERN, compilePattern, onigurumaToJs } from '../src/tokenizer/patterns.js';
import { EDGE_STRINGS, LONE_SURROGATES, shakespeare, sotu } from './tokenizer_fixtures.js';

function byRegex(text: string): string[] {
  return text.match(compilePattern(GPT2_PATTERN)) ?? [];
}
function byScanner(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const j = gpt2WordEnd(text, i, text.length);
    if (j <= i) throw new Error(`no progress at ${i}`);
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

describe('GPT-2 scanner = GPT-2 RegExp', () => {
  it('on corpora and edge strings', () => {
    for (const t of [shakespeare(), sotu(300_000, 11), ...EDGE_STRINGS, ...LONE_SURROGATES, EDGE_STRINGS.join(''), EDGE_STRINGS.join(' ')]) {
      const a = byScanner(t);
      const b = byRegex(t);
      // first difference (cheap on 300k words; toEqual's diff would be slow)
      let k = 0;
      while (k < a.length && k < b.length && a[k] === b[k]) k++;
      expect(k === a.length && k === b.length ? null : { at: k, scanner: a.slice(k, k + 3), regex: b.slice(k, k + 3) }).toBeNull();
    }
  });
  it('on random strings over every character class (seeded)', () => {
    const pool = Array.from(
      " \t\n\r\u000b\u000c\u0085\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\u200bas'tmdlrevSTLL'’09²½Ⅻ٣०éßÆ中文한ªº_-.,!?<|>@#\u0301\u0308" +
        '😀🏽𝒜𝟘𐍈\u{10ffff}',
    );
    pool.push('\ud800', '\udfff', '\ud83d');
    let state = 7;
    const next = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    for (let k = 0; k < 4000; k++) {
      let s = '';
      const n = next() % 24;
      for (let i = 0; i < n; i++) s += pool[next() % pool.length];
      expect(byScanner(s), JSON.stringify(s)).toEqual(byRegex(s));
    }
  });
});

describe('pattern translation', () => {
  it('expands (?i:…) and drops possessive quantifiers', () => {
    expect(onigurumaToJs("(?i:'s|'ll)")).toBe("(?:'[sS]|'[lL][lL])");
    expect(onigurumaToJs('\\p{L}++[\\r\\n]*+\\s++$')).toBe('\\p{L}+[\\r\\n]*\\s+$');
    const re = compilePattern(CL100K_PATTERN);
    expect("I'LL DON'T it's 1234567 \n\n  x".match(re)).toEqual(['I', "'LL", ' DON', "'T", ' it', "'s", ' ', '123', '456', '7', ' \n\n', ' ', ' x']);
  });
  it('rejects a pattern JavaScript cannot compile, or one that matches nothing', () => {
    expect(() => compilePattern('(', 'f')).toThrow(/f: cannot use split pattern/);
    expect(() => compilePattern('x*', 'f')).toThrow(/empty string/);
  });
});
