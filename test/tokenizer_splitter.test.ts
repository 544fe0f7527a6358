/**
 * The hand-written GPT-2 scanner (gpt2_splitter.ts) cuts text exactly where GPT-2's RegExp does, on corpora, edge
 * strings and random strings over every character class (Unicode spaces, letters and numbers beyond ASCII, astral
 * letters, lone surrogates, apostrophes); and the onigurumaToJs translation of tokenizer.json patterns.
 */
import { describe, it, expect } from 'vitest';
import { cl100kWordEnd, gpt2WordEnd } from '../src/tokenizer/gpt2_splitter.js';
import { GPT2_PATTERN, CL100K_PATTERN, compilePattern, onigurumaToJs } from '../src/tokenizer/patterns.js';
import { EDGE_STRINGS, LONE_SURROGATES, shakespeare, sotu } from './tokenizer_fixtures.js';

type WordEnd = (text: string, i: number, n: number) => number;

function byRegex(text: string, pattern = GPT2_PATTERN): string[] {
  return text.match(compilePattern(pattern)) ?? [];
}
function byScanner(text: string, wordEnd: WordEnd = gpt2WordEnd): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const j = wordEnd(text, i, text.length);
    if (j <= i) throw new Error(`no progress at ${i}`);
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}
/** null when equal, else the first difference (cheap on 300k words; toEqual's diff would be slow). */
function firstDiff(a: string[], b: string[]): unknown {
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  return k === a.length && k === b.length ? null : { at: k, scanner: a.slice(k, k + 3), regex: b.slice(k, k + 3) };
}

const POOL = Array.from(
  " \t\n\r\u000b\u000c\u0085\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\u200bas'tmdlrevSTLMDRVE'’09²½Ⅻ٣०éßÆ中文한ªº_-.,!?<|>@#(\u0301\u0308" +
    '😀🏽𝒜𝟘𐍈\u{10ffff}',
).concat(['\ud800', '\udfff', '\ud83d', '\r\n', '\n\n', "'s", "'LL", "'Re"]);

function randomStrings(seed: number, count: number): string[] {
  let state = seed;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 8;
  };
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    let s = '';
    const n = next() % 24;
    for (let i = 0; i < n; i++) s += POOL[next() % POOL.length];
    out.push(s);
  }
  return out;
}

for (const [name, pattern, wordEnd] of [
  ['GPT-2', GPT2_PATTERN, gpt2WordEnd],
  ['cl100k / Llama 3', CL100K_PATTERN, cl100kWordEnd],
] as const) {
  describe(`${name} scanner = its RegExp`, () => {
    it('on corpora and edge strings', () => {
      for (const t of [
        shakespeare(),
        sotu(300_000, 11),
        ...EDGE_STRINGS,
        ...LONE_SURROGATES,
        EDGE_STRINGS.join(''),
        EDGE_STRINGS.join(' '),
      ]) {
        expect(firstDiff(byScanner(t, wordEnd), byRegex(t, pattern))).toBeNull();
      }
    });
    it('on random strings over every character class (seeded)', () => {
      for (const s of randomStrings(name.length, 4000))
        expect(firstDiff(byScanner(s, wordEnd), byRegex(s, pattern)), JSON.stringify(s)).toBeNull();
    });
  });
}

describe('pattern translation', () => {
  it('expands (?i:…) and drops possessive quantifiers', () => {
    expect(onigurumaToJs("(?i:'s|'ll)")).toBe("(?:'[sS]|'[lL][lL])");
    expect(onigurumaToJs('\\p{L}++[\\r\\n]*+\\s++$')).toBe('\\p{L}+[\\r\\n]*\\s+$');
    const re = compilePattern(CL100K_PATTERN);
    expect("I'LL DON'T it's 1234567 \n\n  x".match(re)).toEqual([
      'I',
      "'LL",
      ' DON',
      "'T",
      ' it',
      "'s",
      ' ',
      '123',
      '456',
      '7',
      ' \n\n',
      ' ',
      ' x',
    ]);
  });
  it('rejects a pattern JavaScript cannot compile, or one that matches nothing', () => {
    expect(() => compilePattern('(', 'f')).toThrow(/f: cannot use split pattern/);
    expect(() => compilePattern('x*', 'f')).toThrow(/empty string/);
  });
});
