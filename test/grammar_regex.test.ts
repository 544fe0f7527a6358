/**
 * JSON Schema `pattern` → grammar (src/generate/grammar/regex.ts), checked against the JavaScript engine's own
 * regexes as the oracle: for each pattern, thousands of seeded candidate strings (random strings over characters
 * that matter to the pattern plus ASCII, non-ASCII, quotes, backslashes and control characters; mutations and
 * concatenations of matching examples) must be accepted by the grammar exactly when `new RegExp(pattern, 'u')`
 * finds a match — as JSON string contents (JSON.stringify's escaping) by default, and as raw UTF-8 without it.
 * Unsupported constructs and invalid patterns are GrammarErrors naming the construct.
 */
import { describe, expect, it } from 'vitest';
import { compileGrammar, type Expr, GrammarError } from '../src/generate/grammar/grammar.js';
import { GrammarMatcher, GrammarRuntime } from '../src/generate/grammar/matcher.js';
import { MAX_REGEX_REPEAT, regexExpr } from '../src/generate/grammar/regex.js';
import { Rng } from '../src/util/rng.js';

/** A whole-text acceptor for a grammar given as one expression. */
function acceptor(e: Expr): (text: string) => boolean {
  const rt = new GrammarRuntime(compileGrammar({ rules: new Map([['root', e]]), root: 'root' }));
  return (text) => {
    const m = new GrammarMatcher(rt);
    return m.acceptString(text) && m.isAccepting();
  };
}

/** JSON.stringify's escaping of a string, without the quotes. */
const jsonContents = (s: string): string => JSON.stringify(s).slice(1, -1);

interface Case {
  pattern: string;
  /** Strings that match (mutated and combined into candidates). */
  seeds: string[];
  /** Characters that matter to the pattern. */
  alphabet: string;
  /** Fewest candidates that must match, and that must not (default 25 each): both sides of the check are used. */
  minMatches?: number;
  minMisses?: number;
}

const CASES: Case[] = [
  { pattern: '^\\d{3}-\\d{4}$', seeds: ['555-1234', '000-9999'], alphabet: '0123456789-' },
  { pattern: '^[A-Z][a-z]+( [A-Z][a-z]+)*$', seeds: ['John Smith', 'Ab', 'Ann Lee Ro'], alphabet: 'AZJSazhn ' },
  { pattern: '^(foo|bar)+baz?$', seeds: ['foobarba', 'barbaz', 'foofooba'], alphabet: 'fobarz', minMatches: 15 },
  { pattern: '[0-9a-f]{8}', seeds: ['deadbeef', 'x0123abcdy', '9999999999'], alphabet: '0123456789abcdefg' },
  { pattern: '^\\w+@\\w+\\.com$', seeds: ['a@b.com', 'foo_1@BAR9.com'], alphabet: 'ab_1Z@.com' },
  { pattern: '^[^\\s"]{2,5}$', seeds: ['ab', 'é\\x', 'abcde', '\u0001\u007f'], alphabet: 'ab"\\ \t\n\u00a0\u2028é' },
  { pattern: '^.{0,3}$', seeds: ['', 'abc', '"\\', '\t€'], alphabet: 'ab\n\r\u2028\u2029\u0085"' },
  { pattern: '^(a|ab)(c|bcd)(d*)$', seeds: ['abcd', 'ac', 'abcdd', 'abcddd'], alphabet: 'abcd', minMatches: 10 },
  { pattern: 'ab', seeds: ['ab', 'xaby', '\nab\n'], alphabet: 'abx' },
  { pattern: '^a', seeds: ['a', 'abc', 'a\n'], alphabet: 'ab' },
  { pattern: 'b$', seeds: ['b', 'ab', '\nb'], alphabet: 'ab' },
  { pattern: 'a|^b|c$', seeds: ['xax', 'bxx', 'xxc'], alphabet: 'abcx' },
  { pattern: '^a$|^b', seeds: ['a', 'b', 'bcd'], alphabet: 'abc' },
  { pattern: '^caf\\u00e9$', seeds: ['café'], alphabet: 'cafée\u0301', minMatches: 1 },
  { pattern: '^[α-ω]+$', seeds: ['αβγ', 'ω'], alphabet: 'αβωΩa' },
  { pattern: '^[^α-ω]*$', seeds: ['abc', 'Ω😀', ''], alphabet: 'αβωΩa' },
  { pattern: '^\\u{1F600}[\\u{1F600}-\\u{1F64F}]?$', seeds: ['😀', '😀🙏'], alphabet: '😀😁🙏🙐', minMatches: 2 },
  { pattern: '^\\uD83D\\uDE00x$', seeds: ['😀x'], alphabet: '😀x', minMatches: 1 },
  { pattern: '^[\\d\\s-]+$', seeds: ['1 2-3', '\u3000\ufeff9'], alphabet: '0123456789 -\t\n\u00a0\u3000\u2028x' },
  { pattern: '^\\D\\W\\S$', seeds: ['a-b', ' \n-'], alphabet: 'a0_- \n' },
  { pattern: '^[\\w.-]+$', seeds: ['a.b-c_d'], alphabet: 'ab.-_ ' },
  { pattern: '^[^]\\.[]?$', seeds: ['\n.', 'x.'], alphabet: '.x\n', minMatches: 10 },
  { pattern: '^[a-c-e]$', seeds: ['a', 'b', '-', 'e'], alphabet: 'abcde-', minMatches: 5 },
  { pattern: '^[--/]+$', seeds: ['-./'], alphabet: '-./,' },
  { pattern: '^(a*)*b$', seeds: ['b', 'aab'], alphabet: 'ab', minMatches: 5 },
  { pattern: '^(a?)+$', seeds: ['', 'aa'], alphabet: 'ab', minMatches: 5 },
  { pattern: '^(a*|b)*c$', seeds: ['c', 'abac'], alphabet: 'abc' },
  { pattern: '^(?:ab|cd){2,3}$', seeds: ['abcd', 'cdcdab'], alphabet: 'abcd', minMatches: 5 },
  { pattern: '^x+?y*?z??w{2}?v{1,}?$', seeds: ['xwwv', 'xxyyzwwvv'], alphabet: 'xyzwv' },
  { pattern: '^a{0}b{2,}c{1,3}$', seeds: ['bbc', 'bbbccc'], alphabet: 'abc', minMatches: 5 },
  { pattern: '^"\\\\\\/"$', seeds: ['"\\/"'], alphabet: '"\\/', minMatches: 1 },
  {
    pattern: '^[\\x00-\\x1f"\\\\]+$',
    seeds: ['\u0000\n\t"\\\u001f\b\f\r\u000b'],
    alphabet: '\u0000\u0001\b\t\n\u000b\f\r\u001f"\\ ',
  },
  {
    pattern: '^\\t\\n\\v\\f\\r\\0\\cJ[\\b]\\x41$',
    seeds: ['\t\n\u000b\f\r\u0000\n\bA'],
    alphabet: '\t\n\u000b\f\r\u0000\bA',
    minMatches: 1,
  },
  {
    pattern: '^\\^\\$\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|$',
    seeds: ['^$.*+?()[]{}|'],
    alphabet: '^$.*+?()[]{}|',
    minMatches: 1,
  },
  { pattern: '^[\\^\\]\\-\\[]+$', seeds: ['^]-['], alphabet: '^]-[a' },
  { pattern: '^(?:[a-f]|\\d){3}$|^x', seeds: ['a1f', 'xyz'], alphabet: 'af19xg' },
  { pattern: '', seeds: ['', 'anything'], alphabet: 'a', minMisses: 0 },
  { pattern: '^$', seeds: [''], alphabet: 'a', minMatches: 1 },
  { pattern: '[]', seeds: [], alphabet: 'a[]', minMatches: 0 },
];

/** Characters every candidate pool includes: ASCII, JSON specials, control characters, non-ASCII of each length. */
const EXTRA = [...'aZ0 "\\/\n\t\r\u0000\u0001\u001f\u007f\u0080é€😀\u2028\u00a0'];

/** Seeded candidate strings for a case: random, mutated seeds, and concatenations of seeds. */
function candidates(c: Case, n: number, rng: Rng): string[] {
  const alphabet = [...c.alphabet];
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const char = (): string => (rng.random() < 0.8 ? pick(alphabet) : pick(EXTRA));
  const out = new Set<string>(c.seeds);
  while (out.size < n) {
    const kind = c.seeds.length === 0 ? 0 : rng.int(3);
    let s: string[];
    if (kind === 0) s = Array.from({ length: rng.int(12) }, char);
    else if (kind === 1) {
      s = [...pick(c.seeds)];
      for (let edits = rng.int(4); edits > 0; edits--) {
        const i = rng.int(s.length + 1);
        const op = rng.int(3);
        if (op === 0) s.splice(i, 0, char());
        else if (op === 1) s.splice(i, 1);
        else s[i] = char();
      }
    } else s = [...Array.from({ length: 1 + rng.int(3) }, () => pick(c.seeds)).join(rng.random() < 0.5 ? '' : char())];
    out.add(s.join(''));
  }
  return [...out];
}

describe('regexExpr: a grammar that accepts exactly what the JavaScript regex matches', () => {
  for (const [ci, c] of CASES.entries()) {
    it(`/${c.pattern}/`, () => {
      const re = new RegExp(c.pattern, 'u');
      const escaped = acceptor(regexExpr(c.pattern, 'pattern'));
      const raw = acceptor(regexExpr(c.pattern, 'pattern', false));
      const strings = candidates(c, 2500, new Rng(1000 + ci));
      const wrong: string[] = [];
      let matches = 0;
      for (const s of strings) {
        const want = re.test(s);
        if (want) matches++;
        if (escaped(jsonContents(s)) !== want) wrong.push(`escaped ${JSON.stringify(s)}: want ${want}`);
        if (raw(s) !== want) wrong.push(`raw ${JSON.stringify(s)}: want ${want}`);
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      for (const s of c.seeds) expect(re.test(s)).toBe(true);
      expect(matches).toBeGreaterThanOrEqual(c.minMatches ?? 25);
      expect(strings.length - matches).toBeGreaterThanOrEqual(c.minMisses ?? 25);
    });
  }

  it('JSON escaping: the grammar takes the escaped form, not the raw characters', () => {
    const accepts = acceptor(regexExpr('^"\\\\\\n\\u0001\\x7f$', 'p'));
    expect(accepts('\\"\\\\\\n\\u0001\u007f')).toBe(true);
    expect(accepts('"\\\n\u0001\u007f')).toBe(false);
    expect(accepts('\\"\\\\\\u000a\\u0001\u007f')).toBe(false); // JSON.stringify's short escape only
    expect(accepts('\\"\\\\\\n\\u0001\\u007f')).toBe(false); // DEL is written as itself
    const raw = acceptor(regexExpr('^"\\\\\\n\\u0001\\x7f$', 'p', false));
    expect(raw('"\\\n\u0001\u007f')).toBe(true);
    expect(raw('\\"\\\\\\n\\u0001\u007f')).toBe(false);
  });

  it('an unanchored pattern matches anywhere, line breaks and all', () => {
    const accepts = acceptor(regexExpr('b', 'p', false));
    for (const s of ['b', 'abc', '\n\rb\u2028', '😀b😀']) expect(accepts(s)).toBe(true);
    for (const s of ['', 'a', '\n']) expect(accepts(s)).toBe(false);
  });
});

describe('regexExpr: refusals', () => {
  const refused = (pattern: string, message: RegExp): void => {
    let err: unknown;
    try {
      regexExpr(pattern, 'schema.properties.x.pattern');
    } catch (e) {
      err = e;
    }
    expect(err, pattern).toBeInstanceOf(GrammarError);
    expect((err as GrammarError).where).toBe('schema.properties.x.pattern');
    expect((err as GrammarError).message, pattern).toMatch(message);
    expect((err as GrammarError).message).toContain(JSON.stringify(pattern));
  };

  it('valid patterns with constructs a grammar cannot express (or that this does not support)', () => {
    const cases: [string, RegExp][] = [
      ['^(?=a)ab', /lookahead \(\?=/],
      ['^(?!a)b', /negative lookahead \(\?!/],
      ['(?<=a)b', /lookbehind \(\?<=/],
      ['(?<!a)b', /negative lookbehind \(\?<!/],
      ['(?<year>\\d{4})', /named groups/],
      ['(a)\\1', /backreferences \(\\1\)/],
      ['(?<n>a)\\k<n>', /named groups/],
      ['\\bfoo', /word boundary assertion \\b/],
      ['a\\Bb', /non-word-boundary assertion \\B/],
      ['\\p{L}+', /Unicode property escapes \\p/],
      ['[\\P{L}]', /Unicode property escapes \\P/],
      ['a^b', /start anchor "\^".*only at the start/],
      ['(^a)', /start anchor/],
      ['a$b', /end anchor "\$".*only at the end/],
      ['(a$)|b', /end anchor/],
      [`a{${MAX_REGEX_REPEAT + 1}}`, /repetition bound above 1000/],
      [`a{2,${MAX_REGEX_REPEAT + 1}}`, /repetition bound above 1000/],
      [`a{${MAX_REGEX_REPEAT + 1},}`, /repetition bound above 1000/],
      ['(a{1000}){1000}', /too large a grammar/],
      ['(.{500}){100}', /too large a grammar/],
      ['('.repeat(300) + ')'.repeat(300), /nested more than/],
    ];
    for (const [p, m] of cases) {
      expect(() => new RegExp(p, 'u'), p).not.toThrow();
      refused(p, m);
    }
    // pattern modifiers (ES2025; Node 20 does not parse them yet)
    refused('(?i:a)', /inline flags and modifiers/);
    refused('(?-s:.)', /inline flags and modifiers/);
  });

  it('patterns that are not valid under the u flag', () => {
    const cases: [string, RegExp][] = [
      ['(a', /unterminated group/],
      ['a)', /unbalanced parenthesis/],
      ['[a', /unterminated character class/],
      ['*a', /nothing to repeat/],
      ['a|+', /nothing to repeat/],
      ['a**', /quantifier follows a quantifier/],
      ['a{2}{3}', /quantifier follows a quantifier/],
      ['a{', /"\{" that is not a quantifier/],
      ['a{,3}', /"\{" that is not a quantifier/],
      ['a{1', /"\{" that is not a quantifier/],
      ['{', /nothing to repeat/],
      [']', /lone "\]"/],
      ['a}', /lone "\}"/],
      ['a{3,2}', /out of order/],
      ['[z-a]', /range out of order/],
      ['[\\d-z]', /class escape .* as the end of a range/],
      ['[a-\\w]', /class escape .* as the end of a range/],
      ['a\\', /lone "\\"/],
      ['\\q', /unknown escape \\q/],
      ['\\-', /unknown escape \\-/],
      ['\\x4', /expected 2 hex digits/],
      ['\\u12', /expected 4 hex digits/],
      ['\\u{110000}', /malformed \\u\{…\}/],
      ['\\u{}', /malformed \\u\{…\}/],
      ['\\c1', /\\c must be followed by a letter/],
      ['\\01', /octal escapes/],
      ['[\\B]', /\\B inside a character class/],
      ['[\\1]', /\\1 inside a character class/],
    ];
    for (const [p, m] of cases) {
      expect(() => new RegExp(p, 'u'), p).toThrow(SyntaxError);
      refused(p, m);
    }
  });
});
