/**
 * `shakespeare-turns`: a line of a play as the user turn, the next speaker's answer as the reply. From the shipped
 * data/tinyshakespeare.txt (speeches are blocks "Speaker:\nline…" separated by blank lines): the user turn is the
 * first line a speaker says, or the first two when the first does not end with '.', '!' or '?'; the demonstration
 * is the next speaker's first line or two by the same rule. A prompt that occurs again keeps its first answer.
 * The split is by prompt text; the public rater (raters/shakespeare-turns.mjs) only exercises the plumbing.
 */
import fs from 'node:fs';
import { shakespeareFile } from '../../data/corpus.js';
import { FileFormatError } from '../../util/errors.js';
import { type AlignTask, raterFile, splitByKey, type TaskItem, type TaskSplit } from './task.js';

export const SHAKESPEARE_TURNS = 'shakespeare-turns';
export const SHAKESPEARE_HELDOUT = 400;

interface Speech {
  speaker: string;
  lines: string[];
}

/**
 * The blocks of a tinyshakespeare-style text, in order: a speech, or null for a block that is not one (no
 * "Speaker:" line, or nothing said), so that the speeches around it are not taken for a turn and its answer.
 */
export function speeches(text: string): (Speech | null)[] {
  const out: (Speech | null)[] = [];
  for (const block of text.replace(/\r\n/g, '\n').split(/\n\s*\n/)) {
    const lines = block.split('\n').map((l) => l.trim());
    const m = /^([A-Z][A-Za-z' ]*):$/.exec(lines[0] ?? '');
    const body = lines.slice(1).filter((l) => l);
    out.push(m && body.length ? { speaker: m[1]!, lines: body } : null);
  }
  return out;
}

/** The first line of a speech, or two when the first does not end a sentence. */
export function opening(s: Speech): string {
  const [a, b] = s.lines;
  return /[.!?]$/.test(a!) || b === undefined ? a! : `${a}\n${b}`;
}

function generate(): TaskItem[] {
  const file = shakespeareFile();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileFormatError(
      'E_FILE_MISSING',
      file,
      `cannot read the shipped tinyshakespeare (${(e as Error).message})`,
    );
  }
  const ss = speeches(text);
  const seen = new Set<string>();
  const items: TaskItem[] = [];
  for (let i = 0; i + 1 < ss.length; i++) {
    const a = ss[i],
      b = ss[i + 1];
    if (!a || !b || a.speaker === b.speaker) continue;
    const prompt = opening(a);
    if (seen.has(prompt)) continue;
    seen.add(prompt);
    items.push({ key: prompt, prompt: [{ role: 'user', content: prompt }], demonstration: opening(b) });
  }
  return items;
}

let splits: Record<TaskSplit, TaskItem[]> | null = null;

export const shakespeareTurns: AlignTask = {
  name: SHAKESPEARE_TURNS,
  description: "a speaker's opening line(s) from tinyshakespeare, answered by the next speaker's",
  oracleFile: raterFile(SHAKESPEARE_TURNS),
  items(split) {
    splits ??= splitByKey(SHAKESPEARE_TURNS, generate(), SHAKESPEARE_HELDOUT);
    return splits[split];
  },
};
