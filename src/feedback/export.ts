/**
 * The feedback store as training data: TRL's dataset types (src/data/trl.ts), conversational form, which `llmts
 * sft`, `reward`, `dpo` and `kto` read. The prompt of a judged reply is the path from the root of its
 * tree to the message it answers, as it happened.
 *
 *   --type        rows                                              from
 *   sft           {"messages": path to the correction}              each correction not itself corrected again
 *   preference    {"prompt", "chosen", "rejected"}                  edit: correction ≻ original;
 *                                                                   choice a / b: the chosen ≻ the other;
 *                                                                   ranking: its C(K,2) pairs (rankingToPairs)
 *   kto           {"prompt", "completion", "label"}                 thumbs up → true, down → false;
 *                                                                   choice both_bad: each reply → false
 *   ranking       {"prompt", "completions", "ranking"}              ranking: replies in the order shown, best first
 *
 * - A choice `tie` carries no preference and gives no row (counted as skipped); `both_bad` gives no preference pair
 *   either, but it is an absolute verdict on each reply, so `kto` has it as two `false` rows.
 * - A rater who judges the same thing again changes their mind: for thumbs (one reply), choice (one pair) and
 *   ranking (one set of replies) only a rater's latest judgment counts (the earlier ones stay in the store,
 *   counted as superseded). Edits all count: each is a new reply. Different raters' judgments are separate rows.
 * - Flags are not training rows: they are kept for review (and show in `llmts feedback stats`).
 * - Rows come in the order the judgments were made (a ranking's pairs together); nothing is deduplicated.
 */
import { rankingToPairs, type RankingRow, type TrlMessage, type TrlRow } from '../data/trl.js';
import { FeedbackInputError } from './errors.js';
import type { FeedbackStore } from './store.js';
import type { Judgment, Message } from './types.js';

export const EXPORT_TYPES = ['sft', 'preference', 'kto', 'ranking'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

export interface ExportOptions {
  /** Only this rater's judgments. */
  rater?: string;
}

export interface ExportResult {
  type: ExportType;
  rows: TrlRow[];
  /** What the rows came from and what was left out, by name (e.g. `edit`, `choice`, `tie skipped`, `superseded`). */
  counts: Record<string, number>;
}

/** The key under which a rater's later judgment replaces an earlier one; null where every judgment counts. */
function supersedeKey(j: Judgment): string | null {
  if (j.kind === 'thumbs') return `thumbs ${j.rater} ${j.messageId}`;
  if (j.kind === 'choice' || j.kind === 'ranking')
    return `${j.kind} ${j.rater} ${j.items
      .map((i) => i.messageId)
      .sort((a, b) => a - b)
      .join(',')}`;
  return null;
}

/** The judgments that count (see the header), oldest first, and how many were superseded. */
export function currentJudgments(all: readonly Judgment[]): { judgments: Judgment[]; superseded: number } {
  const latest = new Map<string, number>();
  for (const j of all) {
    const k = supersedeKey(j);
    if (k !== null) latest.set(k, j.id);
  }
  const judgments = all.filter((j) => {
    const k = supersedeKey(j);
    return k === null || latest.get(k) === j.id;
  });
  return { judgments, superseded: all.length - judgments.length };
}

/** Export the store as rows of one TRL type (see the header). */
export function exportFeedback(store: FeedbackStore, type: ExportType, o: ExportOptions = {}): ExportResult {
  return store.snapshot(() => exportSnapshot(store, type, o));
}

function exportSnapshot(store: FeedbackStore, type: ExportType, o: ExportOptions): ExportResult {
  if (!(EXPORT_TYPES as readonly string[]).includes(type))
    throw new FeedbackInputError(
      'E_FEEDBACK_FIELD',
      'type',
      `expected one of ${EXPORT_TYPES.join(', ')}; got ${JSON.stringify(type)}`,
    );
  const messages = store.allMessages();
  const msg = (id: number): Message => messages.get(id)!;
  const turn = (m: Message): TrlMessage => ({ role: m.role, content: m.content });
  /** Root … the message `m` answers. */
  const promptOf = (m: Message): TrlMessage[] => {
    const out: TrlMessage[] = [];
    for (
      let p = m.parentId === null ? undefined : msg(m.parentId);
      p;
      p = p.parentId === null ? undefined : msg(p.parentId)
    )
      out.push(turn(p));
    return out.reverse();
  };
  const reply = (m: Message): TrlMessage[] => [turn(m)];
  /** A ranking judgment as a TRL ranking row: the replies in the order shown, `ranking` best first. */
  const rankingRow = (j: Judgment): RankingRow => {
    const ms = j.items.map((i) => msg(i.messageId));
    const ranking = j.items
      .map((it, pos) => ({ pos, rank: it.rank! }))
      .sort((x, y) => x.rank - y.rank)
      .map((x) => x.pos);
    return { prompt: promptOf(ms[0]!), completions: ms.map(reply), ranking };
  };

  const every = store.allJudgments().filter((j) => o.rater === undefined || j.rater === o.rater);
  const { judgments, superseded } = currentJudgments(every);
  const counts: Record<string, number> = {};
  const count = (k: string, n = 1) => {
    counts[k] = (counts[k] ?? 0) + n;
  };
  const rows: TrlRow[] = [];

  switch (type) {
    case 'sft': {
      const corrected = new Set(judgments.filter((j) => j.kind === 'edit').map((j) => j.messageId));
      for (const j of judgments) {
        if (j.kind !== 'edit') continue;
        if (corrected.has(j.editMessageId!)) {
          count('corrected again');
          continue;
        }
        const fixed = msg(j.editMessageId!);
        rows.push({ messages: [...promptOf(fixed), turn(fixed)] });
        count('edit');
      }
      break;
    }
    case 'preference': {
      for (const j of judgments) {
        if (j.kind === 'edit') {
          const original = msg(j.messageId);
          const fixed = msg(j.editMessageId!);
          rows.push({ prompt: promptOf(original), chosen: reply(fixed), rejected: reply(original) });
          count('edit');
        } else if (j.kind === 'choice') {
          const [a, b] = j.items.map((i) => msg(i.messageId)) as [Message, Message];
          if (j.value === 'a' || j.value === 'b') {
            const [chosen, rejected] = j.value === 'a' ? [a, b] : [b, a];
            rows.push({ prompt: promptOf(a), chosen: reply(chosen), rejected: reply(rejected) });
            count('choice');
          } else count(`${j.value} skipped`);
        } else if (j.kind === 'ranking') {
          const pairs = rankingToPairs(rankingRow(j));
          rows.push(...pairs);
          count('ranking');
          count('ranking pairs', pairs.length);
        }
      }
      break;
    }
    case 'kto': {
      for (const j of judgments) {
        if (j.kind === 'thumbs') {
          const m = msg(j.messageId);
          rows.push({ prompt: promptOf(m), completion: reply(m), label: j.value === 'up' });
          count(`thumbs ${j.value}`);
        } else if (j.kind === 'choice' && j.value === 'both_bad') {
          for (const it of j.items) {
            const m = msg(it.messageId);
            rows.push({ prompt: promptOf(m), completion: reply(m), label: false });
          }
          count('both_bad');
        }
      }
      break;
    }
    case 'ranking': {
      for (const j of judgments) {
        if (j.kind !== 'ranking') continue;
        rows.push(rankingRow(j));
        count('ranking');
      }
      break;
    }
  }
  if (superseded) count('superseded', superseded);
  return { type, rows, counts };
}
