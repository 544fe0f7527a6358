/**
 * llama.cpp's GBNF grammar text (grammars/README.md) → a Grammar (./grammar.ts).
 *
 *   rule      name ::= alternates, ended by a newline (or the end of the text); names are [a-zA-Z0-9_-]+
 *   alternates  sequence ("|" sequence)*        (an empty sequence is allowed: `ws ::= | " "`)
 *   sequence    item*, each item optionally followed by postfix operators * + ? {m} {m,} {m,n}
 *   item        "literal" | [class] | [^class] | . | name | ( alternates )
 *   comments    # to the end of the line
 *
 * Whitespace follows llama.cpp's parser: spaces, tabs and comments separate items anywhere; a newline ends the rule
 * unless it comes inside parentheses, right after `::=`, or right after `|`. Literals and classes denote Unicode
 * code points (raw UTF-8 text or the escapes \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH); they become the
 * bytes of their UTF-8 encodings (classes via ./utf8_ranges.ts), and `.` is any code point. Postfix operators
 * stack (`a+?` is `(a+)?`). Stricter than llama.cpp: a literal or class must close on its own line (write \n for a
 * newline), `[]` and reversed ranges like [z-a] are errors, and llama.cpp's token references (`<[id]>`, `<text>`,
 * `!<…>`) need a vocabulary and are refused.
 *
 * Errors are GrammarErrors whose `where` is `${source}:${line}:${column}` (1-based; columns count code points).
 * A rule defined twice is an error (llama.cpp keeps the last). Undefined rule names and left recursion are found by
 * compileGrammar.
 */
import { alt, empty, type Expr, type Grammar, GrammarError, lit, ref, rep, seq } from './grammar.js';
import { anyCodepoint, codepointClass, MAX_CODEPOINT } from './utf8_ranges.js';

/** Largest repetition bound accepted in `{m,n}` (each optional repetition costs the compiler a rule). */
export const MAX_REPETITION = 100_000;

const isNameChar = (c: string | undefined): boolean => c !== undefined && /^[a-zA-Z0-9_-]$/.test(c);
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Parse GBNF text into a Grammar whose root rule is `root`. `source` names the text in error locations. */
export function parseGbnf(text: string, source = 'grammar'): Grammar {
  return new Parser(text, source).parse();
}

class Parser {
  private pos = 0;
  private readonly rules = new Map<string, Expr>();
  private readonly definedAt = new Map<string, number>();

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  parse(): Grammar {
    this.space(true);
    while (this.pos < this.text.length) this.rule();
    if (!this.rules.has('root')) throw new GrammarError(`${this.source}:1:1`, 'the grammar has no "root" rule');
    return { rules: this.rules, root: 'root' };
  }

  // ---- positions and errors

  /** `${source}:line:col` for a UTF-16 offset into the text. */
  private where(at: number): string {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.text.length; i++) {
      const c = this.text[i];
      if (c === '\n' || (c === '\r' && this.text[i + 1] !== '\n')) {
        line++;
        lineStart = i + 1;
      }
    }
    let col = 1;
    for (let i = lineStart; i < at && i < this.text.length; i++) {
      const cp = this.text.codePointAt(i)!;
      if (cp > 0xffff) i++;
      col++;
    }
    return `${this.source}:${line}:${col}`;
  }

  private fail(at: number, message: string): never {
    throw new GrammarError(this.where(at), message);
  }

  /** The character at `at` for messages: quoted, or "the end of the text". */
  private describe(at: number): string {
    if (at >= this.text.length) return 'the end of the text';
    const cp = this.text.codePointAt(at)!;
    if (cp === 0x0a) return 'a newline';
    if (cp === 0x0d) return 'a carriage return';
    if (cp < 0x20 || cp === 0x7f) return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    return `"${String.fromCodePoint(cp)}"`;
  }

  private peek(offset = 0): string | undefined {
    return this.text[this.pos + offset];
  }

  // ---- lexical pieces

  /** Skip spaces, tabs and comments; newlines too when `newlineOk`. */
  private space(newlineOk: boolean): void {
    const t = this.text;
    for (;;) {
      const c = t[this.pos];
      if (c === ' ' || c === '\t') this.pos++;
      else if (c === '#') {
        while (this.pos < t.length && t[this.pos] !== '\n' && t[this.pos] !== '\r') this.pos++;
      } else if (newlineOk && (c === '\n' || c === '\r')) this.pos++;
      else return;
    }
  }

  private name(): string {
    const start = this.pos;
    while (isNameChar(this.peek())) this.pos++;
    if (this.pos === start) this.fail(start, `expected a rule name, found ${this.describe(start)}`);
    return this.text.slice(start, this.pos);
  }

  private int(): number {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    if (this.pos === start) this.fail(start, `expected a number, found ${this.describe(start)}`);
    const n = Number(this.text.slice(start, this.pos));
    if (n > MAX_REPETITION) this.fail(start, `repetition bound ${n} is larger than ${MAX_REPETITION}`);
    return n;
  }

  private hex(digits: number, escStart: number, esc: string): number {
    let v = 0;
    for (let i = 0; i < digits; i++) {
      const c = this.peek();
      if (c === undefined || !/^[0-9a-fA-F]$/.test(c))
        this.fail(this.pos, `bad escape \\${esc}: expected ${digits} hex digits, found ${this.describe(this.pos)}`);
      v = v * 16 + Number.parseInt(c, 16);
      this.pos++;
    }
    if (v > MAX_CODEPOINT) this.fail(escStart, `bad escape: U+${v.toString(16).toUpperCase()} is beyond U+10FFFF`);
    return v;
  }

  /** One character of a literal or class (raw or escaped) as a code point; the caller checks for the end. */
  private char(): number {
    const start = this.pos;
    const c = this.text.codePointAt(start)!;
    if (c !== 0x5c /* \ */) {
      this.pos += c > 0xffff ? 2 : 1;
      if (c >= 0xd800 && c <= 0xdfff) this.fail(start, 'a lone surrogate in the grammar text');
      return c;
    }
    const e = this.text[start + 1];
    this.pos += 2;
    switch (e) {
      case 'x':
        return this.hex(2, start, e);
      case 'u':
        return this.hex(4, start, e);
      case 'U':
        return this.hex(8, start, e);
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 't':
        return 0x09;
      case '\\':
      case '"':
      case '[':
      case ']':
      case '-':
        return e.charCodeAt(0);
      default:
        return this.fail(
          start,
          e === undefined ? 'unterminated escape at the end of the text' : `bad escape \\${this.describe(start + 1)}`,
        );
    }
  }

  // ---- structure

  private rule(): void {
    const start = this.pos;
    const name = this.name();
    this.space(false);
    if (!this.text.startsWith('::=', this.pos))
      this.fail(this.pos, `expected "::=" after the rule name "${name}", found ${this.describe(this.pos)}`);
    this.pos += 3;
    this.space(true);
    const body = this.alternates(false);
    const c = this.peek();
    if (c === '\r') this.pos += this.peek(1) === '\n' ? 2 : 1;
    else if (c === '\n') this.pos++;
    else if (c !== undefined)
      this.fail(
        this.pos,
        c === ')'
          ? 'unexpected ")" without a matching "("'
          : `unexpected ${this.describe(this.pos)}: expected a symbol, "|", or the end of the line`,
      );
    const first = this.definedAt.get(name);
    if (first !== undefined) this.fail(start, `the rule "${name}" is already defined at ${this.where(first)}`);
    this.definedAt.set(name, start);
    this.rules.set(name, body);
    this.space(true);
  }

  private alternates(nested: boolean): Expr {
    const items = [this.sequence(nested)];
    while (this.peek() === '|') {
      this.pos++;
      this.space(true);
      items.push(this.sequence(nested));
    }
    return alt(...items);
  }

  private sequence(nested: boolean): Expr {
    const items: Expr[] = [];
    for (;;) {
      const start = this.pos;
      const c = this.peek();
      if (c === '"') {
        items.push(this.literal());
      } else if (c === '[') {
        items.push(this.charClass());
      } else if (c === '.') {
        this.pos++;
        items.push(anyCodepoint());
      } else if (c === '(') {
        this.pos++;
        this.space(true);
        const inner = this.alternates(true);
        if (this.peek() !== ')')
          this.fail(
            this.pos,
            `expected ")" to close the "(" at ${this.where(start)}, found ${this.describe(this.pos)}`,
          );
        this.pos++;
        items.push(inner);
      } else if (isNameChar(c)) {
        items.push(ref(this.name()));
      } else if (c === '*' || c === '+' || c === '?' || c === '{') {
        const last = items.pop();
        if (last === undefined) this.fail(start, `"${c}" must follow a symbol, a literal, a class or a group`);
        items.push(this.postfix(last, nested));
      } else if (c === '<' || (c === '!' && this.peek(1) === '<')) {
        this.fail(start, 'token references (<…>) need a tokenizer vocabulary and are not supported');
      } else {
        break;
      }
      this.space(nested);
    }
    return seq(...items);
  }

  /** Apply the postfix operator at the current position to `item`. */
  private postfix(item: Expr, nested: boolean): Expr {
    const start = this.pos;
    const c = this.peek()!;
    this.pos++;
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else {
      this.space(nested);
      min = this.int();
      this.space(nested);
      if (this.peek() === '}') max = min;
      else if (this.peek() === ',') {
        this.pos++;
        this.space(nested);
        max = isDigit(this.peek()) ? this.int() : Infinity;
        this.space(nested);
        if (this.peek() !== '}') this.fail(this.pos, `expected "}", found ${this.describe(this.pos)}`);
      } else this.fail(this.pos, `expected "}" or ",", found ${this.describe(this.pos)}`);
      this.pos++;
      if (max < min) this.fail(start, `bad repetition {${min},${max}}: the maximum is below the minimum`);
    }
    // ε repeated is ε (and would be left-recursive once compiled)
    if (item.k === 'lit' && item.bytes.length === 0) return item;
    if (item.k === 'seq' && item.items.length === 0) return item;
    if (min === 1 && max === 1) return item;
    return rep(item, min, max);
  }

  private literal(): Expr {
    const open = this.pos;
    this.pos++;
    let s = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '\n' || c === '\r')
        this.fail(open, "unterminated literal: no closing '\"' on this line");
      if (c === '"') break;
      const at = this.pos;
      const cp = this.char();
      if (cp >= 0xd800 && cp <= 0xdfff)
        this.fail(at, `U+${cp.toString(16).toUpperCase()} is a surrogate, not a character`);
      s += String.fromCodePoint(cp);
    }
    this.pos++;
    return s === '' ? empty() : lit(s);
  }

  private charClass(): Expr {
    const open = this.pos;
    this.pos++;
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.pos++;
    }
    const ranges: [number, number][] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '\n' || c === '\r')
        this.fail(open, 'unterminated character class: no closing "]" on this line');
      if (c === ']') break;
      const at = this.pos;
      const lo = this.char();
      let hi = lo;
      const next = this.peek(1);
      if (this.peek() === '-' && next !== ']' && next !== undefined && next !== '\n' && next !== '\r') {
        this.pos++;
        hi = this.char();
        if (hi < lo) this.fail(at, 'bad character range: the end is below the start');
      }
      ranges.push([lo, hi]);
    }
    if (ranges.length === 0) this.fail(open, 'empty character class');
    this.pos++;
    return codepointClass(ranges, negate);
  }
}
