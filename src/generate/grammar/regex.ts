/**
 * Regular expressions → grammar, for JSON Schema's `pattern`: the byte-level expression of the strings a pattern
 * matches, with JSON Schema's semantics (ECMA-262 syntax and meaning with the `u` flag, as Ajv compiles it; an
 * unanchored search, so `ab` matches "xaby": a top-level alternative is wrapped in "any characters" at each end
 * where it has no `^` / `$`, as llama.cpp's json-schema-to-grammar `_visit_pattern` would if it did not insist on
 * both anchors).
 *
 *   regexExpr(pattern, where, jsonEscape = true): Expr. With jsonEscape (the default) it matches each string as it
 *     is written between the quotes of a JSON string, the way JSON.stringify writes it: `"` as \", `\` as \\,
 *     U+0000..U+001F as \b \t \n \f \r or \u00xx (lowercase hex); everything else, non-ASCII included, as its
 *     UTF-8 bytes. Without it, the raw UTF-8 of the string.
 *
 * Supported: literals; escapes \d \D \w \W \s \S, \t \n \v \f \r \0 \cX \xHH \uXXXX (surrogate pairs combine)
 * \u{X…}, and escaped syntax characters ^ $ \ . * + ? ( ) [ ] { } | /; character classes with ranges, negation
 * and the class escapes (plus \b = backspace and \- inside one); `.` (any code point but the line terminators
 * \n \r U+2028 U+2029, as in JS); groups ( ) and (?: ); alternation; quantifiers * + ? {m} {m,} {m,n} and their
 * lazy forms (the same language); `^` at the start and `$` at the end of the pattern or of a top-level alternative.
 * Refused with a GrammarError naming the construct: backreferences (\1, \k<name>), lookahead and lookbehind,
 * \b / \B, named groups, inline flags and modifiers, \p{…} property escapes, anchors anywhere else, repetition
 * bounds above MAX_REGEX_REPEAT, patterns whose grammar would be too large, and anything that is not a valid
 * pattern under the `u` flag (a lone `{`, `]` or `}`, an unknown escape such as \q, …).
 *
 * Character sets are code point ranges until the end, where they become UTF-8 byte grammars (./utf8_ranges.ts):
 * members that are never valid text (lone surrogates) match nothing.
 */
import { alt, chars, type Expr, GrammarError, lit, rep, seq, star } from './grammar.js';
import { codepointClass, MAX_CODEPOINT } from './utf8_ranges.js';

/** Largest repetition bound a pattern may use ({m}, {m,}, {m,n}). */
export const MAX_REGEX_REPEAT = 1000;
/** Largest grammar (in byte elements once repetitions are spelled out) a pattern may produce. */
const MAX_REGEX_SIZE = 250_000;
/** Deepest nesting of groups. */
const MAX_DEPTH = 200;

type Range = [number, number];

/** Sorted, merged copy of a set of inclusive code point ranges. */
function union(...sets: readonly (readonly Range[])[]): Range[] {
  const all = sets.flat().map(([a, b]): Range => [a, b]);
  all.sort((x, y) => x[0] - y[0]);
  const out: Range[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push(r);
  }
  return out;
}

/** The code points U+0000..U+10FFFF not in the set. */
function complement(set: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [a, b] of union(set)) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_CODEPOINT) out.push([next, MAX_CODEPOINT]);
  return out;
}

function intersection(a: readonly Range[], b: readonly Range[]): Range[] {
  return complement(union(complement(a), complement(b)));
}

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
/** ECMA-262 WhiteSpace and LineTerminator (\s). */
const SPACE: Range[] = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
/** What `.` does not match without the s flag. */
const LINE_TERMINATORS: Range[] = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];
const CLASS_ESCAPES: Record<string, Range[]> = {
  d: DIGIT,
  D: complement(DIGIT),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};
/** Code points JSON must escape inside a string. */
const JSON_SPECIAL: Range[] = [
  [0x00, 0x1f],
  [0x22, 0x22],
  [0x5c, 0x5c],
];
const JSON_PLAIN = complement(JSON_SPECIAL);
/** JSON's two-character escapes (JSON.stringify prefers them to \u00xx). */
const JSON_SHORT: Record<number, string> = {
  8: '\\b',
  9: '\\t',
  10: '\\n',
  12: '\\f',
  13: '\\r',
  34: '\\"',
  92: '\\\\',
};
const CONTROL_ESCAPES: Record<string, number> = { f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b };
/** ECMA-262 SyntaxCharacter, and `/`: the characters an escape may quote under the u flag. */
const IDENTITY_ESCAPES = '^$\\.*+?()[]{}|/';
const HEX = '0123456789abcdef';

const code = (s: string): number => s.codePointAt(0)!;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
/** The value of a hex digit, or -1. */
function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/** A class atom: one code point, or a class escape's set (which may not end a range). */
type ClassAtom = { cp: number } | { set: Range[] };

class RegexParser {
  private readonly cps: number[];
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly pattern: string,
    private readonly where: string,
    private readonly jsonEscape: boolean,
  ) {
    this.cps = Array.from(pattern, code);
  }

  private fail(message: string, at = this.pos): never {
    throw new GrammarError(this.where, `pattern ${JSON.stringify(this.pattern)}: ${message} (at position ${at})`);
  }

  private peek(k = 0): number | undefined {
    return this.cps[this.pos + k];
  }

  private is(ch: string, k = 0): boolean {
    return this.cps[this.pos + k] === code(ch);
  }

  private eat(ch: string): boolean {
    if (!this.is(ch)) return false;
    this.pos++;
    return true;
  }

  /** The strings of a code point set, as bytes (JSON-escaped if asked). An empty set matches nothing. */
  private charSet(set: readonly Range[]): Expr {
    if (!this.jsonEscape) return codepointClass(set, false);
    const parts: Expr[] = [];
    const plain = intersection(set, JSON_PLAIN);
    if (plain.length > 0) parts.push(codepointClass(plain, false));
    const uEscaped: string[][] = [[], []]; // \u00xx by the first hex digit x (0 or 1): the second digits
    for (const [a, b] of intersection(set, JSON_SPECIAL))
      for (let c = a; c <= b; c++) {
        const short = JSON_SHORT[c];
        if (short !== undefined) parts.push(lit(short));
        else uEscaped[c >> 4]!.push(HEX[c & 15]!);
      }
    uEscaped.forEach((digits, hi) => {
      if (digits.length > 0) parts.push(seq(lit(`\\u00${hi}`), chars(digits.join(''))));
    });
    return parts.length === 0 ? codepointClass([], false) : alt(...parts);
  }

  parse(): Expr {
    const anyChars = star(this.charSet([[0, MAX_CODEPOINT]]));
    const alts: Expr[] = [];
    for (;;) {
      let anchoredStart = false;
      while (this.eat('^')) anchoredStart = true;
      const body = this.alternative(true);
      let anchoredEnd = false;
      while (this.eat('$')) anchoredEnd = true;
      alts.push(seq(...(anchoredStart ? [] : [anyChars]), body, ...(anchoredEnd ? [] : [anyChars])));
      if (this.pos >= this.cps.length) break;
      if (!this.eat('|')) this.fail('unbalanced parenthesis: ")" without a "("');
    }
    return alt(...alts);
  }

  /** Terms up to `|`, `)`, the end, or (at the top level) a final `$`. */
  private alternative(top: boolean): Expr {
    const items: Expr[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || this.is('|') || this.is(')')) break;
      if (this.is('$')) {
        let j = this.pos;
        while (this.cps[j] === code('$')) j++;
        if (top && (j === this.cps.length || this.cps[j] === code('|'))) break;
        this.fail('the end anchor "$" is supported only at the end of the pattern (or of a top-level alternative)');
      }
      if (this.is('^'))
        this.fail('the start anchor "^" is supported only at the start of the pattern (or of a top-level alternative)');
      items.push(this.term());
    }
    return seq(...items);
  }

  private term(): Expr {
    const atom = this.atom();
    let min: number, max: number;
    const at = this.pos;
    if (this.eat('*')) [min, max] = [0, Infinity];
    else if (this.eat('+')) [min, max] = [1, Infinity];
    else if (this.eat('?')) [min, max] = [0, 1];
    else if (this.is('{')) [min, max] = this.bounds();
    else return atom;
    this.eat('?'); // lazy: the same set of strings
    if (this.is('*') || this.is('+') || this.is('?') || this.is('{'))
      this.fail('nothing to repeat (a quantifier follows a quantifier)');
    if (min > MAX_REGEX_REPEAT || (max !== Infinity && max > MAX_REGEX_REPEAT))
      this.fail(`a repetition bound above ${MAX_REGEX_REPEAT} (the grammar would be too large)`, at);
    return rep(atom, min, max);
  }

  /** {m}, {m,} or {m,n}; under the u flag any other `{` is an error. */
  private bounds(): [number, number] {
    const at = this.pos;
    this.pos++;
    const bad = (): never =>
      this.fail('"{" that is not a quantifier {m}, {m,} or {m,n} (write \\{ for the character)', at);
    const min = this.number() ?? bad();
    let max = min;
    if (this.eat(',')) max = this.number() ?? Infinity;
    if (!this.eat('}')) bad();
    if (min > max) this.fail(`numbers out of order in the quantifier {${min},${max}}`, at);
    return [min, max];
  }

  private number(): number | null {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    return this.pos === start ? null : Number(String.fromCodePoint(...this.cps.slice(start, this.pos)));
  }

  private atom(): Expr {
    const c = this.peek()!;
    const ch = String.fromCodePoint(c);
    switch (ch) {
      case '(':
        return this.group();
      case '[':
        return this.charSet(this.characterClass());
      case '.':
        this.pos++;
        return this.charSet(complement(LINE_TERMINATORS));
      case '\\':
        return this.atomEscape();
      case '*':
      case '+':
      case '?':
      case '{':
        return this.fail(`nothing to repeat before "${ch}"`);
      case ']':
      case '}':
        return this.fail(`a lone "${ch}" (write \\${ch} for the character)`);
      default:
        this.pos++;
        return this.charSet([[c, c]]);
    }
  }

  private group(): Expr {
    const at = this.pos;
    this.pos++;
    if (this.eat('?')) {
      if (this.is('=')) this.fail('lookahead (?=…) is not supported', at);
      if (this.is('!')) this.fail('negative lookahead (?!…) is not supported', at);
      if (this.is('<') && this.is('=', 1)) this.fail('lookbehind (?<=…) is not supported', at);
      if (this.is('<') && this.is('!', 1)) this.fail('negative lookbehind (?<!…) is not supported', at);
      if (this.is('<')) this.fail('named groups (?<name>…) are not supported (use (…) or (?:…))', at);
      if (!this.eat(':')) this.fail('inline flags and modifiers (?flags…) are not supported', at);
    }
    if (++this.depth > MAX_DEPTH) this.fail(`groups nested more than ${MAX_DEPTH} deep`, at);
    const alts: Expr[] = [this.alternative(false)];
    while (this.eat('|')) alts.push(this.alternative(false));
    if (!this.eat(')')) this.fail('unterminated group: a "(" without its ")"', at);
    this.depth--;
    return alt(...alts);
  }

  /** After `\` outside a class. */
  private atomEscape(): Expr {
    const at = this.pos;
    this.pos++;
    const c = this.peek();
    if (c === undefined) return this.fail('the pattern ends in a lone "\\"', at);
    const ch = String.fromCodePoint(c);
    const set = CLASS_ESCAPES[ch];
    if (set) {
      this.pos++;
      return this.charSet(set);
    }
    if (ch === 'b') this.fail('the word boundary assertion \\b is not supported', at);
    if (ch === 'B') this.fail('the non-word-boundary assertion \\B is not supported', at);
    if (ch >= '1' && ch <= '9') this.fail(`backreferences (\\${ch}) are not supported`, at);
    if (ch === 'k') this.fail('named backreferences \\k<name> are not supported', at);
    if (ch === 'p' || ch === 'P') this.fail(`Unicode property escapes \\${ch}{…} are not supported`, at);
    const cp = this.characterEscape(at, false);
    return this.charSet([[cp, cp]]);
  }

  /** The character a CharacterEscape names; `pos` is just past the `\`. */
  private characterEscape(at: number, inClass: boolean): number {
    const ch = String.fromCodePoint(this.peek()!);
    this.pos++;
    const control = CONTROL_ESCAPES[ch];
    if (control !== undefined) return control;
    if (ch === '0') {
      if (isDigit(this.peek())) this.fail('octal escapes (\\0 followed by a digit) are not allowed', at);
      return 0;
    }
    if (ch === 'c') {
      const l = this.peek();
      if (l === undefined || !/[A-Za-z]/.test(String.fromCodePoint(l)))
        this.fail('\\c must be followed by a letter', at);
      this.pos++;
      return l % 32;
    }
    if (ch === 'x') return this.hex(2, at);
    if (ch === 'u') return this.unicodeEscape(at);
    if (IDENTITY_ESCAPES.includes(ch) || (inClass && ch === '-')) return code(ch);
    return this.fail(`the unknown escape \\${ch}`, at);
  }

  private hex(n: number, at: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const d = hexValue(this.peek());
      if (d < 0) this.fail(`a malformed escape (expected ${n} hex digits)`, at);
      v = v * 16 + d;
      this.pos++;
    }
    return v;
  }

  /** \uXXXX (a surrogate pair of two of them is one code point) or \u{X…}; `pos` is past the `u`. */
  private unicodeEscape(at: number): number {
    if (this.eat('{')) {
      let v = 0;
      let n = 0;
      for (; hexValue(this.peek()) >= 0; n++) {
        v = Math.min(v * 16 + hexValue(this.peek()), MAX_CODEPOINT + 1);
        this.pos++;
      }
      if (n === 0 || !this.eat('}') || v > MAX_CODEPOINT) this.fail('a malformed \\u{…} escape', at);
      return v;
    }
    const v = this.hex(4, at);
    if (v >= 0xd800 && v <= 0xdbff && this.is('\\') && this.is('u', 1)) {
      const save = this.pos;
      this.pos += 2;
      const lo = hexValue(this.peek()) >= 0 ? this.hex(4, at) : -1;
      if (lo >= 0xdc00 && lo <= 0xdfff) return 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
      this.pos = save;
    }
    return v;
  }

  /** `[…]` or `[^…]` as a code point set. */
  private characterClass(): Range[] {
    const at = this.pos;
    this.pos++;
    const negate = this.eat('^');
    const members: Range[] = [];
    for (;;) {
      if (this.peek() === undefined) this.fail('unterminated character class: a "[" without its "]"', at);
      if (this.eat(']')) break;
      const rangeAt = this.pos;
      const a = this.classAtom();
      if (this.is('-') && this.peek(1) !== undefined && !this.is(']', 1)) {
        this.pos++;
        const b = this.classAtom();
        if (!('cp' in a) || !('cp' in b)) this.fail('a class escape (\\d, \\w, \\s, …) as the end of a range', rangeAt);
        if (a.cp > b.cp) this.fail('a character class range out of order', rangeAt);
        members.push([a.cp, b.cp]);
      } else if ('cp' in a) members.push([a.cp, a.cp]);
      else members.push(...a.set);
    }
    return negate ? complement(members) : union(members);
  }

  private classAtom(): ClassAtom {
    const c = this.peek()!;
    if (c !== code('\\')) {
      this.pos++;
      return { cp: c };
    }
    const at = this.pos;
    this.pos++;
    const e = this.peek();
    if (e === undefined) this.fail('the pattern ends in a lone "\\"', at);
    const ch = String.fromCodePoint(e);
    const set = CLASS_ESCAPES[ch];
    if (set) {
      this.pos++;
      return { set };
    }
    if (ch === 'b') {
      this.pos++;
      return { cp: 0x08 };
    }
    if (ch === 'B') this.fail('\\B inside a character class', at);
    if (ch >= '1' && ch <= '9') this.fail(`\\${ch} inside a character class (backreferences are not supported)`, at);
    if (ch === 'k') this.fail('named backreferences \\k<name> are not supported', at);
    if (ch === 'p' || ch === 'P') this.fail(`Unicode property escapes \\${ch}{…} are not supported`, at);
    return { cp: this.characterEscape(at, true) };
  }
}

/** Grammar elements an expression spells out to (repetitions unrolled), an upper bound on what compiling costs. */
function exprSize(e: Expr): number {
  switch (e.k) {
    case 'lit':
      return e.bytes.length;
    case 'set':
    case 'ref':
      return 1;
    case 'seq':
    case 'alt':
      return e.items.reduce((s, it) => s + exprSize(it), 1);
    case 'rep':
      return exprSize(e.item) * Math.max(1, e.max === Infinity ? e.min + 1 : e.max) + 1;
  }
}

/**
 * The strings that match a JSON Schema `pattern` (an unanchored ECMA-262 regex search under the u flag), as a
 * byte-level expression: by default JSON-escaped, i.e. the text between the quotes of the JSON string (see the top
 * of this file). `where` names the schema location in errors; an unsupported or invalid pattern is a GrammarError
 * naming the construct and its position.
 */
export function regexExpr(pattern: string, where: string, jsonEscape = true): Expr {
  const e = new RegexParser(pattern, where, jsonEscape).parse();
  if (exprSize(e) > MAX_REGEX_SIZE)
    throw new GrammarError(
      where,
      `pattern ${JSON.stringify(pattern)}: its repetitions make too large a grammar (over ${MAX_REGEX_SIZE} elements)`,
    );
  return e;
}
