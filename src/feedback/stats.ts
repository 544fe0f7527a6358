/**
 * What a feedback store holds, counted (what `llmts feedback stats` prints): conversations and messages by kind,
 * judgments by kind and value (thumbs up/down, choice a/b/tie/both_bad, flags by reason), by rater, and by the
 * checkpoint whose replies were judged (a judgment of replies of two checkpoints, a blind choice, counts for both).
 */
import type { FeedbackStore } from './store.js';
import { FLAG_REASONS, JUDGMENT_KINDS, type JudgmentKind } from './types.js';

export interface CheckpointStats {
  hash: string;
  /** Where the checkpoint was when first seen. */
  path: string;
  replies: number;
  judgments: number;
}

export interface FeedbackStats {
  conversations: number;
  messages: { total: number; system: number; user: number; replies: number; corrections: number };
  judgments: number;
  byKind: Record<JudgmentKind, number>;
  /** thumbs: up/down; choice: a/b/tie/both_bad; flag: its reasons (one flag may carry several). */
  byValue: { thumbs: Record<string, number>; choice: Record<string, number>; flag: Record<string, number> };
  /** rater → kind → count, and `total`. */
  byRater: Record<string, Record<string, number>>;
  byCheckpoint: CheckpointStats[];
}

export function feedbackStats(store: FeedbackStore): FeedbackStats {
  return store.snapshot(() => countAll(store));
}

function countAll(store: FeedbackStore): FeedbackStats {
  const db = store.db;
  const one = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
  const byKind = Object.fromEntries(JUDGMENT_KINDS.map((k) => [k, 0])) as Record<JudgmentKind, number>;
  for (const r of db.prepare('SELECT kind, count(*) AS n FROM judgments GROUP BY kind').all() as {
    kind: JudgmentKind;
    n: number;
  }[])
    byKind[r.kind] = r.n;
  const values = (kind: string, keys: readonly string[]) => {
    const out = Object.fromEntries(keys.map((k) => [k, 0]));
    for (const r of db
      .prepare('SELECT value, count(*) AS n FROM judgments WHERE kind = ? GROUP BY value')
      .all(kind) as {
      value: string;
      n: number;
    }[])
      out[r.value] = r.n;
    return out;
  };
  const flag = Object.fromEntries(FLAG_REASONS.map((k) => [k, 0])) as Record<string, number>;
  for (const r of db.prepare("SELECT reasons FROM judgments WHERE kind = 'flag'").all() as { reasons: string }[])
    for (const reason of JSON.parse(r.reasons) as string[]) flag[reason] = (flag[reason] ?? 0) + 1;
  const byRater: Record<string, Record<string, number>> = {};
  for (const r of db
    .prepare('SELECT rater, kind, count(*) AS n FROM judgments GROUP BY rater, kind ORDER BY rater')
    .all() as {
    rater: string;
    kind: string;
    n: number;
  }[]) {
    const x = (byRater[r.rater] ??= { total: 0 });
    x[r.kind] = r.n;
    x['total']! += r.n;
  }
  const byCheckpoint = db
    .prepare(
      `SELECT c.hash, c.path,
         (SELECT count(*) FROM messages m WHERE m.checkpoint_hash = c.hash) AS replies,
         (SELECT count(DISTINCT j.id) FROM judgments j
            LEFT JOIN judgment_items i ON i.judgment_id = j.id
            JOIN messages m ON m.id = j.message_id OR m.id = i.message_id
          WHERE m.checkpoint_hash = c.hash) AS judgments
       FROM checkpoints c ORDER BY c.created_at, c.hash`,
    )
    .all() as CheckpointStats[];
  return {
    conversations: one('SELECT count(*) AS n FROM conversations'),
    messages: {
      total: one('SELECT count(*) AS n FROM messages'),
      system: one("SELECT count(*) AS n FROM messages WHERE role = 'system'"),
      user: one("SELECT count(*) AS n FROM messages WHERE role = 'user'"),
      replies: one('SELECT count(*) AS n FROM messages WHERE checkpoint_hash IS NOT NULL'),
      corrections: one('SELECT count(*) AS n FROM messages WHERE edit_of IS NOT NULL'),
    },
    judgments: one('SELECT count(*) AS n FROM judgments'),
    byKind,
    byValue: {
      thumbs: values('thumbs', ['up', 'down']),
      choice: values('choice', ['a', 'b', 'tie', 'both_bad']),
      flag,
    },
    byRater,
    byCheckpoint,
  };
}

/** The stats as text lines (what the command prints without --json). */
export function formatStats(s: FeedbackStats, file: string): string[] {
  const list = (o: Record<string, number>) =>
    Object.entries(o)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const kinds = JUDGMENT_KINDS.map((k) => {
    const detail = k === 'thumbs' || k === 'choice' || k === 'flag' ? list(s.byValue[k]) : '';
    return `  ${k.padEnd(8)} ${String(s.byKind[k]).padStart(6)}${detail ? `  (${detail})` : ''}`;
  });
  const raters = Object.entries(s.byRater).map(
    ([r, x]) =>
      `  ${r.padEnd(24)} ${String(x['total']).padStart(6)}  (${list(Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'total')))})`,
  );
  const cps = s.byCheckpoint.map(
    (c) =>
      `  ${c.hash.slice(0, 12)}  ${String(c.replies).padStart(6)} replies ${String(c.judgments).padStart(6)} judged  ${c.path}`,
  );
  return [
    `${file}: ${s.conversations} conversations, ${s.messages.total} messages (${s.messages.user} user, ${s.messages.system} system, ${s.messages.replies} model replies, ${s.messages.corrections} corrections), ${s.judgments} judgments`,
    'by kind:',
    ...kinds,
    `by rater:${raters.length ? '' : ' none'}`,
    ...raters,
    `by checkpoint:${cps.length ? '' : ' none'}`,
    ...cps,
  ];
}
