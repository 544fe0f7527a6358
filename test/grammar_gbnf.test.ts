/**
 * GBNF text → Grammar (src/generate/grammar/gbnf.ts) and code point classes as UTF-8 byte grammars
 * (src/generate/grammar/utf8_ranges.ts), checked through the recognizer (GrammarMatcher).
 *
 * codepointClass is checked by brute force against an independent oracle: TextEncoder for members, and a fatal
 * TextDecoder (which refuses overlong forms, surrogates, values above U+10FFFF, stray continuation bytes) for
 * which byte strings are one well-formed character at all. The example grammars are llama.cpp's grammars/*.gbnf
 * (MIT), embedded verbatim.
 */
import { describe, expect, it } from 'vitest';
import { parseGbnf } from '../src/generate/grammar/gbnf.js';
import { compileGrammar, type Expr, GrammarError } from '../src/generate/grammar/grammar.js';
import { GrammarMatcher, GrammarRuntime } from '../src/generate/grammar/matcher.js';
import { anyCodepoint, codepointClass } from '../src/generate/grammar/utf8_ranges.js';
import {
  JSON_GBNF,
  JSON_OLD_GBNF,
  ARITHMETIC_GBNF,
  LIST_GBNF,
  CHESS_GBNF,
  C_GBNF,
  JAPANESE_GBNF,
} from './gbnf_fixtures.js';

const enc = new TextEncoder();

/** A whole-text acceptor for a grammar given as one expression. */
function exprAcceptor(e: Expr): (bytes: ArrayLike<number>) => boolean {
  const rt = new GrammarRuntime(compileGrammar({ rules: new Map([['root', e]]), root: 'root' }));
  return (bytes) => {
    const m = new GrammarMatcher(rt);
    return m.acceptBytes(bytes) && m.isAccepting();
  };
}

/** A whole-text acceptor for GBNF text. */
function gbnf(text: string): (s: string | Uint8Array) => boolean {
  const rt = new GrammarRuntime(compileGrammar(parseGbnf(text)));
  return (s) => {
    const m = new GrammarMatcher(rt);
    return m.acceptBytes(typeof s === 'string' ? enc.encode(s) : s) && m.isAccepting();
  };
}

/** The GrammarError thrown by `f` (fails the test if none is thrown). */
function grammarError(f: () => unknown): GrammarError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GrammarError);
    return e as GrammarError;
  }
  throw new Error('expected a GrammarError');
}

const isSurrogate = (cp: number) => cp >= 0xd800 && cp <= 0xdfff;

/** Code points to try: windows around every interesting boundary, plus a stride over the whole space. */
function probePoints(): number[] {
  const pts = new Set<number>();
  const window = (lo: number, hi: number) => {
    for (let c = Math.max(0, lo); c <= Math.min(0x10ffff, hi); c++) pts.add(c);
  };
  window(0, 0x1000);
  for (const b of [0x7ff, 0xfff, 0x1fff, 0x3040, 0xd7ff, 0xdfff, 0xefff, 0xffff, 0x1f600, 0x3ffff, 0xfffff, 0x10ffff])
    window(b - 0x140, b + 0x140);
  for (let c = 0; c <= 0x10ffff; c += 61) pts.add(c);
  return [...pts].sort((a, b) => a - b);
}
const PROBES = probePoints();

/**
 * Brute-force check: accepted ⇔ member, for every probe code point (surrogates always rejected). Returns how many
 * probes were members.
 */
function checkClass(ranges: [number, number][], negate: boolean, points: readonly number[] = PROBES): number {
  const accepts = exprAcceptor(codepointClass(ranges, negate));
  const inRanges = (cp: number) => ranges.some(([lo, hi]) => lo <= cp && cp <= hi);
  let members = 0;
  for (const cp of points) {
    if (isSurrogate(cp)) {
      // the 3-byte "encoding" of a surrogate (ED A0..BF xx) is not UTF-8
      const bytes = [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
      if (accepts(bytes)) throw new Error(`surrogate U+${cp.toString(16)} accepted`);
      continue;
    }
    const member = inRanges(cp) !== negate;
    const got = accepts(enc.encode(String.fromCodePoint(cp)));
    if (got !== member) throw new Error(`U+${cp.toString(16)}: accepted=${got}, member=${member}`);
    if (member) members++;
  }
  return members;
}

describe('codepointClass', () => {
  const cases: [string, [number, number][]][] = [
    ['everything', [[0, 0x10ffff]]],
    ['ASCII printable', [[0x20, 0x7e]]],
    ['across 0x7F/0x80', [[0x7f, 0x80]]],
    ['across 0x7FF/0x800', [[0x7ff, 0x800]]],
    ['across 0xFFFF/0x10000', [[0xffff, 0x10000]]],
    ['U+10FFFF alone', [[0x10ffff, 0x10ffff]]],
    ['spanning the surrogates', [[0xd7fe, 0xe001]]],
    [
      'ending and starting at the surrogate edges',
      [
        [0xd7ff, 0xd800],
        [0xdfff, 0xe000],
      ],
    ],
    ['a wide unaligned range', [[0x3a, 0x10fffe]]],
    ['misaligned inside one length', [[0x841, 0xfffd]]],
    [
      'several scripts',
      [
        [0x41, 0x5a],
        [0x3b1, 0x3c9],
        [0x3041, 0x309f],
        [0x4e00, 0x9fff],
        [0x1f600, 0x1f64f],
      ],
    ],
    [
      'unsorted and overlapping',
      [
        [0x800, 0x900],
        [0x61, 0x7a],
        [0x850, 0x10010],
        [0x7a, 0x7a],
        [0x10ff00, 0x10ffff],
      ],
    ],
    [
      'single points',
      [
        [0x22, 0x22],
        [0x5c, 0x5c],
        [0x85, 0x85],
        [0x2028, 0x2029],
        [0xfeff, 0xfeff],
        [0x10000, 0x10000],
      ],
    ],
  ];
  for (const [name, ranges] of cases) {
    it(`matches exactly the UTF-8 of its members: ${name}`, () => {
      expect(checkClass(ranges, false)).toBeGreaterThan(0);
    });
    it(`matches exactly the UTF-8 of its non-members when negated: ${name}`, () => {
      const members = checkClass(ranges, true);
      if (name === 'everything') expect(members).toBe(0);
      else expect(members).toBeGreaterThan(0);
    });
  }

  it('is exact over every code point for a negated class (list.gbnf line breaks)', () => {
    const all: number[] = [];
    for (let c = 0; c <= 0x10ffff; c++) all.push(c);
    const members = checkClass(
      [
        [0x0a, 0x0a],
        [0x0d, 0x0d],
        [0x0b, 0x0c],
        [0x85, 0x85],
        [0x2028, 0x2029],
      ],
      true,
      all,
    );
    expect(members).toBe(0x110000 - 0x800 - 7); // all scalars but 7 line breaks
  });

  it('turns an ASCII-only class into a single byte set', () => {
    const e = codepointClass(
      [
        [0x30, 0x39],
        [0x61, 0x66],
      ],
      false,
    );
    expect(e.k).toBe('set');
    if (e.k !== 'set') return;
    for (let b = 0; b < 256; b++) expect(e.set[b]).toBe((b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) ? 1 : 0);
  });

  it('an empty class, or the negation of everything, matches nothing', () => {
    for (const e of [
      codepointClass([], false),
      codepointClass([[0, 0x10ffff]], true),
      codepointClass([[0xd800, 0xdfff]], false),
    ]) {
      const accepts = exprAcceptor(e);
      for (const s of ['', 'a', '\0', 'é', '😀']) expect(accepts(enc.encode(s))).toBe(false);
    }
  });

  describe('anyCodepoint accepts exactly the well-formed single characters', () => {
    const accepts = exprAcceptor(anyCodepoint());
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    /** Oracle: the bytes are exactly one well-formed UTF-8 character. */
    const oneChar = (bytes: Uint8Array): boolean => {
      try {
        return [...decoder.decode(bytes)].length === 1;
      } catch {
        return false;
      }
    };
    it('every 1- and 2-byte string', () => {
      for (let a = 0; a < 256; a++) {
        expect(accepts([a])).toBe(oneChar(Uint8Array.of(a)));
        for (let b = 0; b < 256; b++) {
          const got = accepts([a, b]);
          if (got !== oneChar(Uint8Array.of(a, b))) throw new Error(`${a.toString(16)} ${b.toString(16)}: ${got}`);
        }
      }
    });
    it('3- and 4-byte strings with lead bytes E0..FF and every second byte', () => {
      const tails = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xff];
      let accepted = 0;
      for (let a = 0xe0; a < 256; a++)
        for (let b = 0; b < 256; b++)
          for (const c of tails) {
            const got3 = accepts([a, b, c]);
            if (got3 !== oneChar(Uint8Array.of(a, b, c))) throw new Error(`${[a, b, c].map((x) => x.toString(16))}`);
            for (const d of [0x7f, 0x80, 0xbf, 0xc0]) {
              const got4 = accepts([a, b, c, d]);
              if (got4 !== oneChar(Uint8Array.of(a, b, c, d)))
                throw new Error(`${[a, b, c, d].map((x) => x.toString(16))}`);
              if (got4) accepted++;
            }
            if (got3) accepted++;
          }
      expect(accepted).toBeGreaterThan(1000);
    });
    it('rejects overlong forms, surrogates, values past U+10FFFF and stray bytes by name', () => {
      for (const bad of [
        [0xc0, 0x80], // overlong NUL
        [0xc1, 0xbf], // overlong U+007F
        [0xe0, 0x80, 0x80], // overlong
        [0xe0, 0x9f, 0xbf], // overlong U+07FF
        [0xf0, 0x80, 0x80, 0x80], // overlong
        [0xf0, 0x8f, 0xbf, 0xbf], // overlong U+FFFF
        [0xed, 0xa0, 0x80], // U+D800
        [0xed, 0xbf, 0xbf], // U+DFFF
        [0xf4, 0x90, 0x80, 0x80], // U+110000
        [0xf5, 0x80, 0x80, 0x80],
        [0x80], // lone continuation
        [0xbf],
        [0xc3], // truncated
        [0xe2, 0x82], // truncated
        [0xff],
        [0xfe],
        [0x41, 0x41], // two characters
      ])
        expect(accepts(bad)).toBe(false);
      // an invalid lead byte is refused at once, not only at the end
      for (const b of [0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff]) {
        const m = new GrammarMatcher(compileGrammar({ rules: new Map([['root', anyCodepoint()]]), root: 'root' }));
        expect(m.acceptBytes([b])).toBe(false);
      }
      for (const good of [
        '\0',
        '\x7f',
        '\x80',
        'é',
        '\u07ff',
        '\u0800',
        '\ud7ff',
        '\ue000',
        '\uffff',
        '😀',
        '\u{10ffff}',
      ])
        expect(accepts(enc.encode(good))).toBe(true);
    });
  });
});

// ---- llama.cpp's example grammars (MIT), verbatim

describe("llama.cpp's example grammars", () => {
  it('json.gbnf', () => {
    const ok = gbnf(JSON_GBNF);
    for (const s of [
      '{}',
      '{"a": 1}',
      '{"a":1,"b":[true, false, null],"c":{"d":"x\\n\\u00e9 é 😀 \\"q\\""}}',
      '{\n  "n": -12.5e3,\n  "list": []\n}',
      '{"k": [1, [2, [3]], {"z": 0}]} ',
    ])
      expect(ok(s), s).toBe(true);
    for (const s of [
      '',
      '[]', // root is an object
      '{"a" 1}',
      '{"a": 1,}',
      '{"a": 01}',
      '{"a": tru}',
      '{"a": "\u0001"}', // raw control character
      '{"a": "\\x"}', // bad escape
      '{"a": "\\u12G4"}',
      '{"a": "unterminated}',
      '{"a": 1}}',
    ])
      expect(ok(s), s).toBe(false);
    // an invalid UTF-8 byte inside a string
    expect(ok(Uint8Array.of(...enc.encode('{"a": "'), 0xc0, 0x80, ...enc.encode('"}')))).toBe(false);
    expect(ok(Uint8Array.of(...enc.encode('{"a": "'), 0xc3, 0xa9, ...enc.encode('"}')))).toBe(true);
  });

  it('json.gbnf (older, with a \\U0010FFFF range)', () => {
    const ok = gbnf(JSON_OLD_GBNF);
    for (const s of ['{}', '{"a": 1}', '{"a": "x\\/y \\u00E9 é 😀 \u{10ffff}", "b": [true,false]}', '{ "a": -7 }'])
      expect(ok(s), s).toBe(true);
    for (const s of ['{"a": null}', '{"a": "q"q"}', '{"a": 1.5}', '{"a": "\u001f"}', '{"a":1} '])
      expect(ok(s), s).toBe(false);
  });

  it('arithmetic.gbnf', () => {
    const ok = gbnf(ARITHMETIC_GBNF);
    for (const s of ['1+2=3\n', 'a = b\n', '(x1 +2)*y_2 = 42\n1=1\n', '( a )/b=c\n']) expect(ok(s), s).toBe(true);
    for (const s of ['', '1+2=3', '1++2=3\n', '1=2+3\n', 'A=1\n', '(1=1\n']) expect(ok(s), s).toBe(false);
  });

  it('list.gbnf', () => {
    const ok = gbnf(LIST_GBNF);
    for (const s of ['- a\n', '- one\n- two é\n- 😀\n', '- tab\there\n']) expect(ok(s), s).toBe(true);
    for (const s of ['', '- \n', '-a\n', '- a', '- a\rb\n', '- a\u2028b\n', '- a\u0085\n', '- a\x0bb\n'])
      expect(ok(s), s).toBe(false);
  });

  it('chess.gbnf', () => {
    const ok = gbnf(CHESS_GBNF);
    for (const s of [
      '1. e4 e5\n2. Nf3 Nc6\n',
      '1. d4 d5\n2. c4 dxc4\n3. e4 O-O\n',
      '1. e4 e5\n2. Qh5 Nc6\n3. Bc4 Nf6\n4. Qxf7# O-O-O\n',
      '1. e4 e5\n12. e8=Q+ Rxe8\n',
    ])
      expect(ok(s), s).toBe(true);
    for (const s of ['1. e4 e5\n', '1. e4 e5\n2. Zf3 Nc6\n', '1. e9 e5\n2. a3 a6\n', '1. e4 e5\n0. a3 a6\n'])
      expect(ok(s), s).toBe(false);
  });

  it('c.gbnf', () => {
    const ok = gbnf(C_GBNF);
    for (const s of [
      '',
      'int main(){return 0;}',
      'int f(int x){y = x+1;while(x<10){x = x-1;}return y;}',
      'float g(){if(a==b){c = d;}else{e = -f;}// hi\n/* multi * line */}',
      'char h(){for(int i = 0; i<n; i = i+1){p (i, k);}}',
    ])
      expect(ok(s), s).toBe(true);
    for (const s of ['int main()', 'int main(){return 0}', 'long f(){}', 'int f(){x = ;}', 'int f(){/* open}'])
      expect(ok(s), s).toBe(false);
  });

  it('japanese.gbnf (raw UTF-8 in classes)', () => {
    const ok = gbnf(JAPANESE_GBNF);
    for (const s of ['ひらがな', 'カタカナ、漢字。', 'こんにちは 世界']) expect(ok(s), s).toBe(true);
    for (const s of ['', 'abc', 'ひらがな ', '한국어', 'こんにちは  世界']) expect(ok(s), s).toBe(false);
  });
});

describe('parseGbnf: operators', () => {
  const cases: [string, string[], string[]][] = [
    ['root ::= "ab"*', ['', 'ab', 'abab'], ['a', 'aba', 'b']],
    ['root ::= "ab"+', ['ab', 'ababab'], ['', 'a', 'abb']],
    ['root ::= "ab"? "c"', ['c', 'abc'], ['ababc', 'ab']],
    ['root ::= [a-c]{3}', ['abc', 'ccc'], ['ab', 'abca', '']],
    ['root ::= "x"{2,}', ['xx', 'xxxxx'], ['', 'x']],
    ['root ::= "x"{1,3} "y"', ['xy', 'xxxy'], ['y', 'xxxxy']],
    ['root ::= "x"{0,2}', ['', 'x', 'xx'], ['xxx']],
    ['root ::= "x"{ 2 , 3 }', ['xx', 'xxx'], ['x', 'xxxx']],
    ['root ::= "x"{0}', [''], ['x']],
    ['root ::= "x"{1}', ['x'], ['', 'xx']],
    ['root ::= ("a" | "bc")+ "d"', ['ad', 'bcad', 'abcbcd'], ['d', 'bd', 'abc']],
    ['root ::= "a"+? "b"', ['b', 'ab', 'aaab'], ['a', 'abb']], // stacked: ("a"+)?
    ['root ::= "a" * "b"', ['b', 'aab'], ['ba']], // space before the operator
    ['root ::= item{2}\nitem ::= [0-9] ","', ['1,2,'], ['1,', '1,2,3,']],
    ['root ::= ("a" "b"?){2}', ['aa', 'aba', 'abab', 'aab'], ['a', 'abb', 'aaa']],
    ['root ::= .', ['a', 'é', '😀', '\0'], ['', 'ab']],
    ['root ::= .* "!"', ['!', 'héllo wörld 😀!'], ['x']],
    ['root ::= ""', [''], ['a']],
    ['root ::= "" "a" ""*', ['a'], ['']],
    ['root ::= | "a"', ['', 'a'], ['aa']],
    ['root ::= ()', [''], ['a']],
    ['root ::= [^a-z]', ['A', '0', 'é', '😀'], ['a', 'q', 'z', '']],
    ['root ::= [a-]', ['a', '-'], ['b']],
    ['root ::= [-a]', ['a', '-'], ['b']],
    ['root ::= [αβγ-ε]', ['α', 'β', 'δ', 'ε'], ['a', 'ζ', 'αβ']],
    ['root ::= "日本" [語]', ['日本語'], ['日本', '日本人']],
    ['r-1_x ::= "a"\nroot ::= r-1_x 2b\n2b ::= "b"', ['ab'], ['a']],
  ];
  for (const [text, good, bad] of cases)
    it(JSON.stringify(text), () => {
      const ok = gbnf(text);
      for (const s of good) expect(ok(s), JSON.stringify(s)).toBe(true);
      for (const s of bad) expect(ok(s), JSON.stringify(s)).toBe(false);
    });
});

describe('parseGbnf: escapes', () => {
  const cases: [string, string[], string[]][] = [
    [String.raw`root ::= "\n\r\t"`, ['\n\r\t'], ['nrt', '\n\r']],
    [String.raw`root ::= "\\\"\[\]\-"`, ['\\"[]-'], ['"[]-']],
    [String.raw`root ::= "\x41\x7a\xe9"`, ['Azé'], ['Az', 'Aze']],
    [String.raw`root ::= "\u00e9\u20AC\uFFFF"`, ['é€\uffff'], ['é€']],
    [String.raw`root ::= "\U0001F600\U0010ffff"`, ['😀\u{10ffff}'], ['😀']],
    [String.raw`root ::= "\x00"`, ['\0'], ['', '0']],
    [String.raw`root ::= [\n\t]`, ['\n', '\t'], ['n', 't', '\\']],
    [String.raw`root ::= [\[\]\\\-]+`, ['[]\\-'], ['a', '^']],
    [String.raw`root ::= [\x30-\x39\u0100-\u017f]`, ['5', 'ą', 'ſ'], ['a', 'ƀ', 'ÿ']],
    [String.raw`root ::= [^\x00-\x7f]`, ['é', '😀'], ['a', '\0', '\x7f']],
    [String.raw`root ::= [\U0001F600-\U0001F64F]`, ['😀', '🙏'], ['🚀', 'a']],
    [`root ::= ["]`, ['"'], ["'"]],
    [`root ::= [#] "#" # a comment`, ['##'], ['#']],
  ];
  for (const [text, good, bad] of cases)
    it(text, () => {
      const ok = gbnf(text);
      for (const s of good) expect(ok(s), JSON.stringify(s)).toBe(true);
      for (const s of bad) expect(ok(s), JSON.stringify(s)).toBe(false);
    });
});

describe('parseGbnf: layout (llama.cpp rules for newlines)', () => {
  it('continues a rule after "::=", after "|" and inside parentheses', () => {
    const ok = gbnf(
      [
        '# leading comment',
        '',
        'root ::=',
        '  "a" | # comment after the bar',
        '',
        '  "b" (',
        '    "c"',
        '    # comment inside a group',
        '    | "d"',
        '  ) "e"{2}   ',
        'other ::= "z"   # trailing comment',
        '',
      ].join('\n'),
    );
    for (const s of ['a', 'bcee', 'bdee']) expect(ok(s), s).toBe(true);
    for (const s of ['b', 'bce', 'ab']) expect(ok(s), s).toBe(false);
  });

  it('accepts CRLF and CR line endings', () => {
    const ok = gbnf('root ::= a b\r\na ::= "a" |\r\n "A"\rb ::= "b"\r\n');
    for (const s of ['ab', 'Ab']) expect(ok(s)).toBe(true);
  });

  it('a newline outside parentheses ends the rule', () => {
    // the second line starts a new rule, so "|" there is not a continuation
    const e = grammarError(() => parseGbnf('root ::= "a"\n  | "b"\n'));
    expect(e.where).toBe('grammar:2:3');
    // and a symbol alone on the next line is read as a rule name without "::="
    expect(grammarError(() => parseGbnf('root ::= "a"\n  "b"\n')).where).toBe('grammar:2:3');
    expect(grammarError(() => parseGbnf('root ::= "a"\n  b\n')).where).toBe('grammar:2:4');
  });

  it('returns the rules by name with root as the root', () => {
    const g = parseGbnf('root ::= a\na ::= "x"\n');
    expect(g.root).toBe('root');
    expect([...g.rules.keys()].sort()).toEqual(['a', 'root']);
    expect(g.rules.get('a')).toEqual({ k: 'lit', bytes: enc.encode('x') });
  });
});

describe('parseGbnf: errors carry source:line:col', () => {
  const cases: [string, string, RegExp][] = [
    ['root ::= "a" @', 'grammar:1:14', /unexpected "@"/],
    ['root ::= "abc', 'grammar:1:10', /unterminated literal/],
    ['root ::= "abc\n"', 'grammar:1:10', /unterminated literal/],
    ['root ::= [abc', 'grammar:1:10', /unterminated character class/],
    ['root ::= []', 'grammar:1:10', /empty character class/],
    ['root ::= [z-a]', 'grammar:1:11', /range/],
    ['root ::= "a\\q"', 'grammar:1:12', /bad escape/],
    ['root ::= "\\x4"', 'grammar:1:14', /hex digits/],
    ['root ::= "\\u12"', 'grammar:1:15', /hex digits/],
    ['root ::= "\\U00110000"', 'grammar:1:11', /beyond U\+10FFFF/],
    ['root ::= "\\uD800"', 'grammar:1:11', /surrogate/],
    ['root = "a"', 'grammar:1:6', /expected "::="/],
    ['root\n::= "a"', 'grammar:1:5', /expected "::="/],
    ['root ::= "a" )', 'grammar:1:14', /without a matching/],
    ['root ::= ("a"', 'grammar:1:14', /expected "\)" to close the "\(" at grammar:1:10/],
    ['root ::= ("a"\n\n  "b"', 'grammar:3:6', /expected "\)"/],
    ['root ::= *', 'grammar:1:10', /must follow/],
    ['root ::= "a" | +', 'grammar:1:16', /must follow/],
    ['root ::= "a"{3,2}', 'grammar:1:13', /below the minimum/],
    ['root ::= "a"{,2}', 'grammar:1:14', /expected a number/],
    ['root ::= "a"{2', 'grammar:1:15', /expected "}" or ","/],
    ['root ::= "a"{2,3', 'grammar:1:17', /expected "}"/],
    ['root ::= "a"{999999999}', 'grammar:1:14', /larger than/],
    ['root ::= <think>', 'grammar:1:10', /token/],
    ['root ::= !<[12]>', 'grammar:1:10', /token/],
    ['root ::= "a"\nroot ::= "b"', 'grammar:2:1', /already defined at grammar:1:1/],
    ['a ::= "x"', 'grammar:1:1', /root/],
    ['', 'grammar:1:1', /root/],
    ['# only a comment\n', 'grammar:1:1', /root/],
    ['root ::= "é😀" ?? $', 'grammar:1:18', /unexpected "\$"/], // columns count code points
    ['root ::= "a"\n\n  x ::= "b" %', 'grammar:3:13', /unexpected "%"/],
  ];
  for (const [text, where, message] of cases)
    it(JSON.stringify(text), () => {
      const e = grammarError(() => parseGbnf(text));
      expect(e.where).toBe(where);
      expect(e.message).toMatch(message);
      expect(e.message.startsWith(`${where}: `)).toBe(true);
    });

  it('uses the given source name', () => {
    expect(grammarError(() => parseGbnf('root ::= "a"\nb ::= ?', 'my.gbnf')).where).toBe('my.gbnf:2:7');
  });

  it('undefined rule names are caught by compileGrammar', () => {
    const g = parseGbnf('root ::= "a" missing\n');
    const e = grammarError(() => compileGrammar(g));
    expect(e.message).toMatch(/undefined rule "missing"/);
  });

  it('left recursion is caught by compileGrammar', () => {
    const g = parseGbnf('root ::= expr\nexpr ::= expr "+" "1" | "1"\n');
    expect(grammarError(() => compileGrammar(g)).message).toMatch(/left recursion/);
  });
});
