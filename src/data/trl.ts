/**
 * TRL's dataset types in JSONL, read and written (https://huggingface.co/docs/trl/dataset_formats): one JSON object
 * per line, every row of a file of the same type and the same form.
 *
 *   type                 plain form                                   conversational form
 *   language_modeling    {"text": "..."}                              {"messages": [{role, content}, ...]}
 *   prompt_completion    {"prompt": "...", "completion": "..."}       prompt/completion as message lists
 *   preference           {"prompt", "chosen", "rejected"} (+ "margin": a number)
 *   unpaired_preference  {"prompt", "completion", "label": true|false}   (thumbs up / down)
 *   ranking              {"prompt", "completions": [K replies], "ranking": [indices of the replies, best first]}
 *
 * A message is {"role": "system"|"user"|"assistant", "content": string}. The type and form are those of the first
 * valid row; a bad row (bad JSON, a missing or wrong-typed field, an unknown role, an empty conversation, a ranking
 * that is not a permutation of the completions, a row of another type or form) is a TrlRowError naming the file,
 * the line and the field, unless the caller asks to skip bad rows: then each skipped row is counted and listed.
 * Fields outside the type are ignored and their names reported. No model, tokenizer or chat template here.
 */
import fs from 'node:fs';
import { FileFormatError } from '../util/errors.js';
import { writeFileAtomicSync } from '../util/fs.js';

export type TrlRole = 'system' | 'user' | 'assistant';
export interface TrlMessage {
  role: TrlRole;
  content: string;
}
/** A text field: a string (plain form) or a list of messages (conversational form). */
export type TrlText = string | TrlMessage[];

export type TrlKind = 'language_modeling' | 'prompt_completion' | 'preference' | 'unpaired_preference' | 'ranking';
export type TrlForm = 'plain' | 'conversational';

export type LanguageModelingRow = { text: string } | { messages: TrlMessage[] };
export interface PromptCompletionRow {
  prompt: TrlText;
  completion: TrlText;
}
export interface PreferenceRow {
  prompt: TrlText;
  chosen: TrlText;
  rejected: TrlText;
  /** How much better chosen is than rejected (TRL's optional `margin`). */
  margin?: number;
}
export interface UnpairedPreferenceRow {
  prompt: TrlText;
  completion: TrlText;
  /** true: a good completion (thumbs up); false: a bad one. */
  label: boolean;
}
export interface RankingRow {
  prompt: TrlText;
  completions: TrlText[];
  /** Indices into `completions`, best first: a permutation of 0..K-1. */
  ranking: number[];
}

export interface TrlRows {
  language_modeling: LanguageModelingRow;
  prompt_completion: PromptCompletionRow;
  preference: PreferenceRow;
  unpaired_preference: UnpairedPreferenceRow;
  ranking: RankingRow;
}
export type TrlRow = TrlRows[TrlKind];

/** The fields of each type, in the order the writer puts them (optional ones last). */
export const TRL_FIELDS: Record<TrlKind, readonly string[]> = {
  language_modeling: ['text', 'messages'],
  prompt_completion: ['prompt', 'completion'],
  preference: ['prompt', 'chosen', 'rejected', 'margin'],
  unpaired_preference: ['prompt', 'completion', 'label'],
  ranking: ['prompt', 'completions', 'ranking'],
};

/** A bad row: which file, which line (1-based), which field, what was expected. */
export class TrlRowError extends FileFormatError {
  readonly line: number;
  readonly field: string;
  constructor(file: string, line: number, field: string, message: string) {
    super('E_TRL_ROW', file, `${field ? `${field}: ` : ''}${message}`, `line ${line}`);
    this.line = line;
    this.field = field;
  }
}

export interface SkippedRow {
  line: number;
  field: string;
  message: string;
}

export interface TrlDataset<K extends TrlKind = TrlKind> {
  file: string;
  kind: K;
  form: TrlForm;
  rows: TrlRows[K][];
  /** The 1-based line of each row. */
  lines: number[];
  /** Rows skipped as bad (only with onBadRow: 'skip'). */
  skipped: SkippedRow[];
  /** Names of fields outside the type that were ignored, with how many rows held each. */
  ignoredFields: Record<string, number>;
}

export interface ReadTrlOptions {
  /** The types the caller can use; a file of another type is an error at its first row. */
  expect?: readonly TrlKind[];
  /** 'error' (default): the first bad row throws a TrlRowError. 'skip': bad rows are counted in `skipped`. */
  onBadRow?: 'error' | 'skip';
}

/** A bad row found while checking a value (caught by the reader, which adds the line). */
class Bad {
  constructor(
    readonly field: string,
    readonly message: string,
  ) {}
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The type a row's keys announce, or null. */
export function detectKind(row: Record<string, unknown>): TrlKind | null {
  if ('messages' in row || 'text' in row) return 'language_modeling';
  if ('completions' in row || 'ranking' in row) return 'ranking';
  if ('chosen' in row || 'rejected' in row) return 'preference';
  if ('label' in row) return 'unpaired_preference';
  if ('completion' in row) return 'prompt_completion';
  return null;
}

function messages(v: unknown, field: string): TrlMessage[] {
  if (!Array.isArray(v)) throw new Bad(field, `expected a list of {"role", "content"} messages, got ${describe(v)}`);
  if (v.length === 0) throw new Bad(field, 'expected at least one message, got an empty conversation');
  return v.map((m, i) => {
    const f = `${field}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      throw new Bad(f, `expected a {"role", "content"} message, got ${describe(m)}`);
    const o = m as Record<string, unknown>;
    if (o['role'] !== 'system' && o['role'] !== 'user' && o['role'] !== 'assistant')
      throw new Bad(`${f}.role`, `expected "system", "user" or "assistant", got ${describe(o['role'])}`);
    if (typeof o['content'] !== 'string')
      throw new Bad(`${f}.content`, `expected a string, got ${describe(o['content'])}`);
    return { role: o['role'], content: o['content'] };
  });
}

/** A text field in the dataset's form. */
function text(v: unknown, field: string, form: TrlForm): TrlText {
  if (form === 'plain') {
    if (typeof v !== 'string')
      throw new Bad(field, `expected a string (the file is in plain form), got ${describe(v)}`);
    return v;
  }
  if (typeof v === 'string')
    throw new Bad(field, 'expected a list of messages (the file is in conversational form), got a string');
  return messages(v, field);
}

/** The form a row is in: conversational when its messages or its prompt is a list. */
function formOf(kind: TrlKind, row: Record<string, unknown>): TrlForm {
  if (kind === 'language_modeling') return 'messages' in row ? 'conversational' : 'plain';
  return Array.isArray(row['prompt']) ? 'conversational' : 'plain';
}

function required(row: Record<string, unknown>, field: string, kind: TrlKind): unknown {
  if (!(field in row))
    throw new Bad(
      field,
      `missing (a ${kind} row holds ${TRL_FIELDS[kind]
        .filter((f) => f !== 'margin')
        .map((f) => `"${f}"`)
        .join(', ')})`,
    );
  return row[field];
}

/** Check one parsed row against a type and form; returns the row with only the type's fields. */
export function checkRow(row: Record<string, unknown>, kind: TrlKind, form: TrlForm): TrlRow {
  const req = (f: string) => required(row, f, kind);
  switch (kind) {
    case 'language_modeling': {
      if ('text' in row && 'messages' in row) throw new Bad('messages', 'a row holds "text" or "messages", not both');
      if (form === 'plain') {
        if (!('text' in row)) throw new Bad('text', 'missing (the file is in plain form: {"text": "..."})');
        if (typeof row['text'] !== 'string') throw new Bad('text', `expected a string, got ${describe(row['text'])}`);
        return { text: row['text'] };
      }
      if (!('messages' in row))
        throw new Bad('messages', 'missing (the file is in conversational form: {"messages": [...]})');
      return { messages: messages(row['messages'], 'messages') };
    }
    case 'prompt_completion':
      return { prompt: text(req('prompt'), 'prompt', form), completion: text(req('completion'), 'completion', form) };
    case 'preference': {
      const out: PreferenceRow = {
        prompt: text(req('prompt'), 'prompt', form),
        chosen: text(req('chosen'), 'chosen', form),
        rejected: text(req('rejected'), 'rejected', form),
      };
      if ('margin' in row) {
        if (typeof row['margin'] !== 'number' || !Number.isFinite(row['margin']))
          throw new Bad('margin', `expected a finite number, got ${describe(row['margin'])}`);
        out.margin = row['margin'];
      }
      return out;
    }
    case 'unpaired_preference': {
      const label = req('label');
      if (typeof label !== 'boolean') throw new Bad('label', `expected true or false, got ${describe(label)}`);
      return {
        prompt: text(req('prompt'), 'prompt', form),
        completion: text(req('completion'), 'completion', form),
        label,
      };
    }
    case 'ranking': {
      const prompt = text(req('prompt'), 'prompt', form);
      const cs = req('completions');
      if (!Array.isArray(cs) || cs.length < 2)
        throw new Bad('completions', `expected a list of at least 2 completions, got ${describe(cs)}`);
      const completions = cs.map((c, i) => text(c, `completions[${i}]`, form));
      const r = req('ranking');
      const K = completions.length;
      if (!Array.isArray(r) || r.length !== K)
        throw new Bad('ranking', `expected a list of ${K} indices into completions (best first), got ${describe(r)}`);
      const seen = new Set<number>();
      r.forEach((x, i) => {
        if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= K)
          throw new Bad(`ranking[${i}]`, `expected an index 0..${K - 1} into completions, got ${describe(x)}`);
        if (seen.has(x))
          throw new Bad(`ranking[${i}]`, `index ${x} appears twice: the ranking must be a permutation of 0..${K - 1}`);
        seen.add(x);
      });
      return { prompt, completions, ranking: r as number[] };
    }
  }
}

/** Parse JSONL text of one TRL type (see the header). `file` names the source in errors. */
export function parseTrlJsonl<K extends TrlKind = TrlKind>(
  content: string,
  file: string,
  o: ReadTrlOptions = {},
): TrlDataset<K> {
  const skip = o.onBadRow === 'skip';
  const out: TrlDataset = {
    file,
    kind: 'language_modeling',
    form: 'plain',
    rows: [],
    lines: [],
    skipped: [],
    ignoredFields: {},
  };
  let fixed = false;
  const lines = content.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const src = lines[i]!.replace(/\r$/, '');
    if (!src.trim()) continue;
    const line = i + 1;
    try {
      let v: unknown;
      try {
        v = JSON.parse(src);
      } catch (e) {
        throw new Bad('', `not valid JSON (${(e as Error).message})`);
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new Bad('', `expected a JSON object, got ${describe(v)}`);
      const row = v as Record<string, unknown>;
      const kind = detectKind(row);
      if (!fixed) {
        if (!kind)
          throw new Bad(
            '',
            `no TRL dataset fields: expected "messages" or "text", "prompt" + "completion", "chosen" + "rejected", "label" or "completions" + "ranking"; got keys ${describe(Object.keys(row))}`,
          );
        if (o.expect && !o.expect.includes(kind)) {
          // the file's type does not fit the command: that is about the file, never a row to skip
          throw new TrlRowError(
            file,
            line,
            '',
            `a ${kind} dataset, but this needs ${o.expect.join(' or ')} rows (${o.expect.map((k) => TRL_FIELDS[k].filter((f) => f !== 'margin').join(' + ')).join('; ')})`,
          );
        }
        const form = formOf(kind, row);
        const checked = checkRow(row, kind, form);
        out.kind = kind;
        out.form = form;
        fixed = true;
        out.rows.push(checked);
      } else {
        if (kind !== null && kind !== out.kind)
          throw new Bad(
            '',
            `expected a ${out.kind} row like the rows before it (${TRL_FIELDS[out.kind].join(', ')}), got keys ${describe(Object.keys(row))}`,
          );
        out.rows.push(checkRow(row, out.kind, out.form));
      }
      out.lines.push(line);
      for (const k of Object.keys(row))
        if (!TRL_FIELDS[out.kind].includes(k)) out.ignoredFields[k] = (out.ignoredFields[k] ?? 0) + 1;
    } catch (e) {
      if (!(e instanceof Bad)) throw e;
      if (!skip) throw new TrlRowError(file, line, e.field, e.message);
      out.skipped.push({ line, field: e.field, message: e.message });
    }
  }
  if (!out.rows.length) {
    const why = out.skipped.length
      ? `every row was bad (${out.skipped.length} skipped; the first, line ${out.skipped[0]!.line}: ${out.skipped[0]!.message})`
      : 'no rows';
    throw new FileFormatError('E_TRL_EMPTY', file, `${why}; expected JSON lines of a TRL dataset type`);
  }
  return out as unknown as TrlDataset<K>;
}

/** Read a TRL JSONL file (see the header). */
export function readTrlDataset<K extends TrlKind = TrlKind>(file: string, o: ReadTrlOptions = {}): TrlDataset<K> {
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a folder, not a JSONL file'
          : `cannot read (${code ?? (e as Error).message})`,
    );
  }
  return parseTrlJsonl<K>(content, file, o);
}

/** One row as a JSON line, fields in the type's order. */
export function formatTrlRow(row: TrlRow): string {
  const r = row as unknown as Record<string, unknown>;
  const kind = detectKind(r);
  if (!kind) throw new FileFormatError('E_TRL_ROW', '(row)', `not a TRL row: keys ${describe(Object.keys(r))}`);
  const o: Record<string, unknown> = {};
  for (const f of TRL_FIELDS[kind]) if (r[f] !== undefined) o[f] = r[f];
  return JSON.stringify(o);
}

/** Rows as JSONL text (one line each, a newline after each). Reading it back gives the same rows. */
export function formatTrlJsonl(rows: readonly TrlRow[]): string {
  return rows.map((r) => formatTrlRow(r) + '\n').join('');
}

/** Write rows as a TRL JSONL file, atomically. Rows are checked first (all of one type and form). */
export function writeTrlDataset(file: string, rows: readonly TrlRow[]): void {
  const text = formatTrlJsonl(rows);
  parseTrlJsonl(text, file); // a row that would not read back is an error now, not a file that fails later
  writeFileAtomicSync(file, text);
}

/**
 * The C(K,2) preference pairs of a ranked row: for every i < j of the ranking, chosen = the reply ranked i-th,
 * rejected = the one ranked j-th. Pairs come best-chosen first: (1st, 2nd), (1st, 3rd), …, (2nd, 3rd), ….
 */
export function rankingToPairs(row: RankingRow): PreferenceRow[] {
  const K = row.completions.length;
  if (
    row.ranking.length !== K ||
    new Set(row.ranking).size !== K ||
    row.ranking.some((x) => !Number.isInteger(x) || x < 0 || x >= K)
  )
    throw new FileFormatError(
      'E_TRL_ROW',
      '(row)',
      `ranking ${describe(row.ranking)} is not a permutation of the ${K} completions' indices`,
      'ranking',
    );
  const out: PreferenceRow[] = [];
  for (let i = 0; i < K; i++)
    for (let j = i + 1; j < K; j++)
      out.push({
        prompt: row.prompt,
        chosen: row.completions[row.ranking[i]!]!,
        rejected: row.completions[row.ranking[j]!]!,
      });
  return out;
}
