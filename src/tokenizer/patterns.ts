/**
 * Pre-tokenizer split patterns: the regular expression that cuts text into "words" before BPE runs inside each
 * word (merges never cross a word boundary). Three named patterns:
 *  - 'gpt2'   GPT-2's (openai/gpt-2 encoder.py): contractions, ` ?letters`, ` ?digits`, ` ?other`, whitespace.
 *  - 'cl100k' GPT-4's cl100k_base (tiktoken): case-insensitive contractions, one leading non-letter glued to a
 *             letter run, numbers in groups of at most 3 digits, newlines kept apart from other whitespace.
 *  - 'llama3' Llama 3's (meta-llama tokenizer.json). Llama 3 adopted cl100k's pattern verbatim, so it is the same
 *             regex; the name exists so a config can say what it means.
 * Patterns are stored in the Oniguruma/Rust-regex dialect Hugging Face `tokenizer.json` uses (that is what we
 * write), and translated to a JavaScript RegExp by `compilePattern` (inline `(?i:…)` groups become explicit
 * case classes, possessive quantifiers become greedy ones).
 */
import { ConfigError } from '../util/errors.js';

export type PatternName = 'gpt2' | 'cl100k' | 'llama3';

export const PATTERN_NAMES: readonly PatternName[] = ['gpt2', 'cl100k', 'llama3'];

/** GPT-2's pattern; also what Hugging Face's ByteLevel pre-tokenizer uses when `use_regex` is true. */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** cl100k_base's pattern (tiktoken), in Oniguruma syntax as Hugging Face tokenizer.json files hold it. */
export const CL100K_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Llama 3's pattern: identical to cl100k's. */
export const LLAMA3_PATTERN = CL100K_PATTERN;

export function namedPattern(name: PatternName): string {
  switch (name) {
    case 'gpt2':
      return GPT2_PATTERN;
    case 'cl100k':
      return CL100K_PATTERN;
    case 'llama3':
      return LLAMA3_PATTERN;
  }
}

/** Parse a user-given pattern name (CLI flag, option); throws ConfigError naming `field`. */
export function parsePatternName(value: string, field = 'pattern'): PatternName {
  if ((PATTERN_NAMES as readonly string[]).includes(value)) return value as PatternName;
  throw new ConfigError(
    field,
    `unknown pre-tokenizer pattern ${JSON.stringify(value)}; expected one of ${PATTERN_NAMES.join(', ')}`,
  );
}

/** Both cases of an ASCII letter inside a character class, or the character itself. */
function caseVariants(ch: string): string {
  const lo = ch.toLowerCase();
  const up = ch.toUpperCase();
  return /^[a-zA-Z]$/.test(ch) && lo !== up ? lo + up : ch;
}

/**
 * Translate an Oniguruma/Rust pattern to JavaScript `u`-mode RegExp source. Handles what tokenizer patterns use:
 * `(?i:…)` groups (ASCII letters get both cases), possessive quantifiers (`?+ ++ *+ }+` → greedy), `\A` `\z`.
 * Anything else is passed through; `compilePattern` reports a pattern JavaScript cannot compile.
 */
export function onigurumaToJs(src: string): string {
  let out = '';
  let i = 0;
  let inClass = 0;
  const ciStack: boolean[] = []; // per open group: did it switch on case-insensitivity
  let ci = 0; // depth of case-insensitive groups we are inside
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === '\\') {
      const next = src[i + 1] ?? '';
      if (next === 'A' && !inClass) {
        out += '^';
        i += 2;
        continue;
      }
      if (next === 'z' && !inClass) {
        out += '$';
        i += 2;
        continue;
      }
      // copy the escape whole (\p{..}, \x{..}, \uXXXX, \n ...)
      let j = i + 2;
      if ((next === 'p' || next === 'P' || next === 'x') && src[j] === '{') {
        const close = src.indexOf('}', j);
        j = close < 0 ? src.length : close + 1;
        if (next === 'x') {
          out += `\\u{${src.slice(i + 3, j - 1)}}`;
          i = j;
          continue;
        }
      }
      out += src.slice(i, j);
      i = j;
      continue;
    }
    if (inClass) {
      if (ch === '[') inClass++;
      else if (ch === ']') inClass--;
      out += ci > 0 ? caseVariants(ch) : ch;
      i++;
      continue;
    }
    if (ch === '[') {
      inClass = 1;
      out += ch;
      i++;
      if (src[i] === '^') {
        out += '^';
        i++;
      }
      if (src[i] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (ch === '(') {
      if (src.startsWith('(?i:', i)) {
        out += '(?:';
        ciStack.push(true);
        ci++;
        i += 4;
        continue;
      }
      ciStack.push(false);
      out += ch;
      i++;
      continue;
    }
    if (ch === ')') {
      if (ciStack.pop()) ci--;
      out += ch;
      i++;
      continue;
    }
    if ((ch === '+' || ch === '?' || ch === '*' || ch === '}') && src[i + 1] === '+') {
      out += ch; // possessive → greedy
      i += 2;
      continue;
    }
    if (ci > 0 && /[a-zA-Z]/.test(ch)) {
      const v = caseVariants(ch);
      out += v.length > 1 ? `[${v}]` : v;
      i++;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

/**
 * Compile a pattern (Oniguruma syntax) to a global unicode JavaScript RegExp; throws ConfigError naming `field`
 * (and `file`) if it cannot be expressed.
 */
export function compilePattern(src: string, field = 'pattern', file?: string): RegExp {
  let js: string;
  try {
    js = onigurumaToJs(src);
    const re = new RegExp(js, 'gu');
    if (re.test('')) throw new Error('it matches the empty string, so it cannot split text');
    return re;
  } catch (e) {
    throw new ConfigError(field, `cannot use split pattern ${JSON.stringify(src)}: ${(e as Error).message}`, file);
  }
}
