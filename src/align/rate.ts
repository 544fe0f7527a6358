/**
 * Rating samples with a rater (`llmts rate`): sampled replies in, feedback in TRL JSONL out — the file the trainers
 * read, exactly as they will read what people give in the app (issue 11; AlpacaFarm's simulated annotators).
 *
 * Samples file: one JSON object a line, `{"prompt": [messages…], "completions": [K replies], "finish_reasons"?:
 * ["stop"|"length", …]}`; a reply is a string or a one-message list `[{"role": "assistant", "content": …}]`. A bad
 * line is a TrlRowError naming the file, the line and the field.
 *
 * Feedback (conversational form; each reply becomes `[{"role": "assistant", "content": reply}]`):
 *   ranking      {"prompt", "completions", "ranking"}: replies ordered by the rater's score, best first (equal scores
 *                keep their sample order); a prompt whose replies all score the same says nothing and is skipped.
 *   preference   {"prompt", "chosen", "rejected", "margin"}: every pair of a prompt's replies the rater's `compare`
 *                does not call a tie; margin = max(0, score(chosen) − score(rejected)).
 *   kto          {"prompt", "completion", "label"}: label = score above the prompt's mean score (or above
 *                `threshold` when given); a reply at it (within 1e-9) is skipped.
 * Skipped prompts, pairs and replies are counted in the result, never dropped silently.
 */
import fs from 'node:fs';
import {
  type PreferenceRow,
  type RankingRow,
  type TrlMessage,
  TrlRowError,
  type UnpairedPreferenceRow,
} from '../data/trl.js';
import { FileFormatError } from '../util/errors.js';
import type { CompareItem, ReplyMeta, ScoreItem, Verdict } from './oracle.js';

export type FeedbackType = 'ranking' | 'preference' | 'kto';
export const FEEDBACK_TYPES: readonly FeedbackType[] = ['ranking', 'preference', 'kto'];

/** One line of a samples file. */
export interface SampleRow {
  prompt: TrlMessage[];
  completions: string[];
  finishReasons?: ('stop' | 'length')[];
  /** The 1-based line in its file. */
  line: number;
}

/** What rates replies: an OracleProcess, or anything with its batch calls. */
export interface BatchRater {
  score(items: readonly ScoreItem[]): Promise<number[]>;
  compare(items: readonly CompareItem[]): Promise<Verdict[]>;
}

export type FeedbackRow = RankingRow | PreferenceRow | UnpairedPreferenceRow;

export interface RateResult {
  rows: FeedbackRow[];
  prompts: number;
  replies: number;
  /** Mean of every reply's score. */
  meanScore: number;
  /** Prompts (ranking), pairs (preference) or replies (kto) skipped as saying nothing. */
  skipped: number;
  /** Preference: pairs where `compare` chose the reply with the lower score (margin written as 0). */
  disagreements: number;
}

export interface RateOptions {
  type: FeedbackType;
  /** kto: label = score > threshold (default: the prompt's mean score). */
  threshold?: number;
  /** Prompts per batch of rater calls (default 32). */
  batchPrompts?: number;
  onProgress?: (donePrompts: number, totalPrompts: number) => void;
}

const ROLES = new Set(['system', 'user', 'assistant']);

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Parse a samples file's text (see the header). */
export function parseSamples(text: string, file: string): SampleRow[] {
  const out: SampleRow[] = [];
  text.split('\n').forEach((src, i) => {
    if (!src.trim()) return;
    const line = i + 1;
    const bad = (field: string, message: string) => new TrlRowError(file, line, field, message);
    let v: unknown;
    try {
      v = JSON.parse(src);
    } catch (e) {
      throw bad('', `not valid JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw bad('', `expected a JSON object, got ${describe(v)}`);
    const row = v as Record<string, unknown>;
    const p = row['prompt'];
    if (!Array.isArray(p) || p.length === 0)
      throw bad('prompt', `expected a non-empty list of {"role", "content"} messages, got ${describe(p)}`);
    const prompt = p.map((m, k): TrlMessage => {
      const o = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
      if (!ROLES.has(o['role'] as string))
        throw bad(`prompt[${k}].role`, `expected "system", "user" or "assistant", got ${describe(o['role'])}`);
      if (typeof o['content'] !== 'string')
        throw bad(`prompt[${k}].content`, `expected a string, got ${describe(o['content'])}`);
      return { role: o['role'] as TrlMessage['role'], content: o['content'] };
    });
    const cs = row['completions'];
    if (!Array.isArray(cs) || cs.length === 0)
      throw bad('completions', `expected a non-empty list of replies, got ${describe(cs)}`);
    const completions = cs.map((c, k) => {
      if (typeof c === 'string') return c;
      const m = Array.isArray(c) && c.length === 1 ? (c[0] as Record<string, unknown>) : null;
      if (m && m['role'] === 'assistant' && typeof m['content'] === 'string') return m['content'];
      throw bad(`completions[${k}]`, `expected a string or [{"role": "assistant", "content": …}], got ${describe(c)}`);
    });
    const fr = row['finish_reasons'];
    let finishReasons: ('stop' | 'length')[] | undefined;
    if (fr !== undefined) {
      if (!Array.isArray(fr) || fr.length !== completions.length)
        throw bad('finish_reasons', `expected a list of ${completions.length} "stop"/"length", got ${describe(fr)}`);
      fr.forEach((x, k) => {
        if (x !== 'stop' && x !== 'length')
          throw bad(`finish_reasons[${k}]`, `expected "stop" or "length", got ${describe(x)}`);
      });
      finishReasons = fr as ('stop' | 'length')[];
    }
    out.push({ prompt, completions, line, ...(finishReasons ? { finishReasons } : {}) });
  });
  if (!out.length)
    throw new FileFormatError('E_SAMPLES_EMPTY', file, 'no rows; expected {"prompt", "completions"} lines');
  return out;
}

/** Read a samples file (see the header). */
export function readSamples(file: string): SampleRow[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a folder, not a JSONL file'
          : `cannot read (${code})`,
    );
  }
  return parseSamples(text, file);
}

const asReply = (s: string): TrlMessage[] => [{ role: 'assistant', content: s }];
const metaOf = (r: SampleRow, k: number): ReplyMeta | undefined =>
  r.finishReasons ? { finishReason: r.finishReasons[k]! } : undefined;

/** Rate samples into feedback rows of one type (see the header). */
export async function rateSamples(
  rater: BatchRater,
  samples: readonly SampleRow[],
  o: RateOptions,
): Promise<RateResult> {
  const res: RateResult = { rows: [], prompts: samples.length, replies: 0, meanScore: 0, skipped: 0, disagreements: 0 };
  let sum = 0;
  const per = Math.max(1, o.batchPrompts ?? 32);
  for (let start = 0; start < samples.length; start += per) {
    const chunk = samples.slice(start, start + per);
    const scoreItems = chunk.flatMap((r) =>
      r.completions.map((reply, k) => {
        const meta = metaOf(r, k);
        return { prompt: r.prompt, reply, ...(meta ? { meta } : {}) };
      }),
    );
    const scores = await rater.score(scoreItems);
    let at = 0;
    const chunkScores = chunk.map((r) => {
      const s = scores.slice(at, at + r.completions.length);
      at += r.completions.length;
      return s;
    });
    for (const s of scores) sum += s;
    res.replies += scores.length;
    if (o.type === 'ranking') {
      chunk.forEach((r, n) => {
        const s = chunkScores[n]!;
        if (r.completions.length < 2 || s.every((x) => x === s[0])) {
          res.skipped++;
          return;
        }
        const ranking = s.map((_, k) => k).sort((a, b) => s[b]! - s[a]! || a - b);
        res.rows.push({ prompt: r.prompt, completions: r.completions.map(asReply), ranking });
      });
    } else if (o.type === 'preference') {
      const pairs: { n: number; i: number; j: number }[] = [];
      const items: CompareItem[] = [];
      chunk.forEach((r, n) => {
        for (let i = 0; i < r.completions.length; i++)
          for (let j = i + 1; j < r.completions.length; j++) {
            pairs.push({ n, i, j });
            const a = metaOf(r, i),
              b = metaOf(r, j);
            items.push({
              prompt: r.prompt,
              a: r.completions[i]!,
              b: r.completions[j]!,
              ...(a || b ? { meta: { ...(a ? { a } : {}), ...(b ? { b } : {}) } } : {}),
            });
          }
      });
      const verdicts = await rater.compare(items);
      pairs.forEach(({ n, i, j }, q) => {
        const v = verdicts[q]!;
        if (v === 'tie') {
          res.skipped++;
          return;
        }
        const [c, w] = v === 'a' ? [i, j] : [j, i];
        const r = chunk[n]!,
          s = chunkScores[n]!;
        const margin = s[c]! - s[w]!;
        if (margin < 0) res.disagreements++;
        res.rows.push({
          prompt: r.prompt,
          chosen: asReply(r.completions[c]!),
          rejected: asReply(r.completions[w]!),
          margin: Math.max(0, margin),
        });
      });
    } else {
      chunk.forEach((r, n) => {
        const s = chunkScores[n]!;
        const cut = o.threshold ?? s.reduce((a, b) => a + b, 0) / s.length;
        s.forEach((x, k) => {
          if (Math.abs(x - cut) <= 1e-9 * Math.max(1, Math.abs(cut))) res.skipped++;
          else res.rows.push({ prompt: r.prompt, completion: asReply(r.completions[k]!), label: x > cut });
        });
      });
    }
    o.onProgress?.(Math.min(samples.length, start + per), samples.length);
  }
  res.meanScore = res.replies ? sum / res.replies : 0;
  return res;
}
