/**
 * The feedback store (src/feedback): the SQLite schema and its settings, migrations, atomic creation, the message
 * trees, every judgment kind → the exported TRL rows exactly (rules of src/feedback/export.ts), the rows read back by
 * src/data/trl.ts as the alignment commands read them, stats, and every bad action → a named error that writes nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseTrlJsonl, formatTrlJsonl } from '../src/data/trl.js';
import { checkpointHash } from '../src/feedback/checkpoint_hash.js';
import { FeedbackDatabaseError, FeedbackInputError, UnknownRecordError } from '../src/feedback/errors.js';
import { exportFeedback } from '../src/feedback/export.js';
import {
  APPLICATION_ID,
  createDatabaseFile,
  MIGRATIONS,
  migrate,
  openDatabase,
  SCHEMA_VERSION,
} from '../src/feedback/schema.js';
import { feedbackStats, formatStats } from '../src/feedback/stats.js';
import { FeedbackStore } from '../src/feedback/store.js';
import type { JudgmentInput } from '../src/feedback/types.js';
import { buildScenario, fakeCheckpoint, fakeClock } from './feedback_helpers.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-feedback-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const fresh = (name: string) => FeedbackStore.open(path.join(dir, name), { now: fakeClock() });

/** The error a call throws (fails the test if it throws none). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('feedback database file', () => {
  it('is WAL, with foreign keys, synchronous=FULL, our application_id and the latest schema version', () => {
    const store = fresh('schema.db');
    const p = (k: string) => store.db.pragma(k, { simple: true });
    expect(p('journal_mode')).toBe('wal');
    expect(p('foreign_keys')).toBe(1);
    expect(p('synchronous')).toBe(2);
    expect(p('application_id')).toBe(APPLICATION_ID);
    expect(p('user_version')).toBe(SCHEMA_VERSION);
    const tables = store.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all()
      .map((r) => (r as { name: string }).name);
    expect(tables).toEqual(['checkpoints', 'conversations', 'judgment_items', 'judgments', 'messages']);
    // the foreign keys hold: a message of a conversation that does not exist is refused by SQLite itself
    expect(() =>
      store.db
        .prepare("INSERT INTO messages (conversation_id, role, content, created_at) VALUES (99, 'user', 'x', 'now')")
        .run(),
    ).toThrow(/FOREIGN KEY/);
    store.close();
  });

  it('is created atomically: a failed creation leaves nothing, and an existing file is never replaced', () => {
    const sub = path.join(dir, 'atomic');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'f.db');
    expect(() =>
      createDatabaseFile(file, (db) => {
        db.exec('CREATE TABLE t (x)');
        throw new Error('crash in the middle of creating');
      }),
    ).toThrow(/crash/);
    expect(fs.readdirSync(sub)).toEqual([]); // no f.db, no temp file
    createDatabaseFile(file, (db) => db.exec('CREATE TABLE first (x)'));
    createDatabaseFile(file, (db) => db.exec('CREATE TABLE second (x)')); // another process got there first
    const db = new Database(file);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: 'first' }]);
    db.close();
    expect(fs.readdirSync(sub)).toEqual(['f.db']);
    // a new store: the file appears whole, with its schema, and nothing else is left beside it once closed
    const store = FeedbackStore.open(path.join(sub, 'store.db'));
    store.close();
    expect(fs.readdirSync(sub).sort()).toEqual(['f.db', 'store.db']);
  });

  it('migrates one transaction a step; a failed step keeps the old version; a newer file is refused', () => {
    const file = path.join(dir, 'migrate.db');
    FeedbackStore.open(file).close();
    const v2 = { description: 'add a note column', sql: 'ALTER TABLE judgments ADD COLUMN note TEXT;' };
    const broken = { description: 'broken', sql: 'CREATE TABLE extra (x); SELECT * FROM no_such_table;' };
    const db = new Database(file);
    expect(() => migrate(db, file, [...MIGRATIONS, v2, broken])).toThrow(/no_such_table/);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1); // v2 applied, the broken step not
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'extra'").get()).toEqual({ n: 0 });
    expect(
      db
        .prepare('PRAGMA table_info(judgments)')
        .all()
        .map((c) => (c as { name: string }).name),
    ).toContain('note');
    db.close();
    const e = thrown(() => openDatabase(file));
    expect(e).toBeInstanceOf(FeedbackDatabaseError);
    expect(e.message).toMatch(/schema version 2 was written by a newer llm\.ts; this one reads versions up to 1/);
  });

  it('refuses what is not a feedback store, and a missing file when asked not to create one', () => {
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'just some text, long enough to not be a SQLite header at all.....................');
    expect(thrown(() => FeedbackStore.open(text))).toMatchObject({ code: 'E_FEEDBACK_NOT_DB' });
    const other = path.join(dir, 'other.db');
    const o = new Database(other);
    o.exec('CREATE TABLE customers (name TEXT)');
    o.close();
    const e = thrown(() => FeedbackStore.open(other));
    expect(e).toMatchObject({ code: 'E_FEEDBACK_NOT_DB' });
    expect(e.message).toMatch(/refusing to write into it/);
    expect(thrown(() => FeedbackStore.open(path.join(dir, 'nope.db'), { create: false }))).toMatchObject({
      code: 'E_FEEDBACK_MISSING',
    });
    expect(fs.existsSync(path.join(dir, 'nope.db'))).toBe(false);
    expect(thrown(() => FeedbackStore.open(dir))).toMatchObject({ code: 'E_FEEDBACK_NOT_DB' });
  });
});

describe('checkpoint hash', () => {
  it('is the sha256 of model.safetensors (of the shards, in order, when sharded), computed once per checkpoint', () => {
    const ck = fakeCheckpoint(path.join(dir, 'hash-ck'), 'some weights');
    const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
    const spy = vi.spyOn(fs, 'readSync');
    expect(checkpointHash(ck)).toBe(sha('some weights'));
    const reads = spy.mock.calls.length;
    expect(reads).toBeGreaterThan(0);
    expect(checkpointHash(ck)).toBe(sha('some weights'));
    expect(spy.mock.calls.length).toBe(reads); // remembered: not read again
    spy.mockRestore();
    fs.writeFileSync(path.join(ck, 'model.safetensors'), 'other weights!'); // rewritten in place: hashed again
    expect(checkpointHash(ck)).toBe(sha('other weights!'));
    const sharded = path.join(dir, 'hash-sharded');
    fs.mkdirSync(sharded);
    fs.writeFileSync(path.join(sharded, 'model-00002-of-00002.safetensors'), 'B');
    fs.writeFileSync(path.join(sharded, 'model-00001-of-00002.safetensors'), 'A');
    fs.writeFileSync(
      path.join(sharded, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { x: 'model-00002-of-00002.safetensors', y: 'model-00001-of-00002.safetensors' } }),
    );
    expect(checkpointHash(sharded)).toBe(sha('AB'));
    expect(thrown(() => checkpointHash(path.join(dir, 'no-such-ck')))).toMatchObject({ code: 'E_FILE_MISSING' });
    expect(thrown(() => checkpointHash(dir))).toMatchObject({ code: 'E_FILE_MISSING' });
  });
});

describe('message trees and judgments', () => {
  let store: FeedbackStore;
  let x: ReturnType<typeof buildScenario>;
  beforeAll(() => {
    store = fresh('scenario.db');
    x = buildScenario(store, path.join(dir, 'scenario'));
  });
  afterAll(() => store.close());

  it('keeps the tree, the replies with checkpoint, sampler, seed and log-probs, and each judgment as given', () => {
    expect(x.a3).toMatchObject({
      role: 'assistant',
      parentId: x.u1.id,
      conversationId: x.conv.id,
      checkpointHash: x.hashB,
      seed: 3,
      sampler: { temperature: 0.8, top_p: 0.95 },
      logprobs: [{ token: 'Pa', logprob: -0.5, top_logprobs: [{ token: 'x', logprob: -2 }] }],
      author: null,
    });
    expect(x.hashA).toBe(crypto.createHash('sha256').update('weights of A').digest('hex'));
    // a correction is a sibling of the reply it corrects, written by the rater, from no checkpoint
    expect(x.e1).toMatchObject({
      parentId: x.u1.id,
      role: 'assistant',
      author: 'alice',
      editOf: x.a1.id,
      checkpointHash: null,
    });
    expect(store.pathTo(x.e3.id).map((m) => m.content)).toEqual([
      'Be brief.',
      'Capital of France?',
      'Paris.',
      'And Germany?',
      'Berlin, since 1990.',
    ]);
    expect(x.j7).toMatchObject({
      kind: 'ranking',
      rater: 'oracle:length',
      messageId: x.a1.id,
      items: [
        { messageId: x.a1.id, rank: 2 },
        { messageId: x.a2.id, rank: 0 },
        { messageId: x.a3.id, rank: 1 },
      ],
    });
    expect(x.j4.items).toEqual([
      { messageId: x.a1.id, rank: null },
      { messageId: x.a2.id, rank: null },
    ]);
    expect(x.j1).toMatchObject({ kind: 'thumbs', value: 'down', reasons: ['fails_task'] });
    expect(x.j8).toMatchObject({ kind: 'flag', value: null, reasons: ['fails_task', 'spam'] });
    expect(store.messagesOf(x.conv.id)).toHaveLength(10);
    expect(store.judgmentsOf(x.conv.id).map((j) => j.id)).toEqual(store.allJudgments().map((j) => j.id));
    expect(store.conversation(x.conv.id)).toMatchObject({ title: 'capitals', messageCount: 10 });
    expect(store.listConversations()[0]!.id).toBe(x.conv.id);
  });

  it('exports every judgment kind to exactly the TRL rows of the documented rules', () => {
    const sys = { role: 'system', content: 'Be brief.' } as const;
    const q1 = { role: 'user', content: 'Capital of France?' } as const;
    const p1 = [sys, q1];
    const p2 = [sys, q1, { role: 'assistant', content: 'Paris.' }, { role: 'user', content: 'And Germany?' }];
    const r = (content: string) => [{ role: 'assistant', content }];
    const sft = exportFeedback(store, 'sft');
    expect(sft.rows).toEqual([
      { messages: [...p1, ...r('Paris is the capital of France.')] },
      // carol's correction was corrected again by dave: only the last one is a training conversation
      { messages: [...p2, ...r('Berlin, since 1990.')] },
    ]);
    expect(sft.counts).toEqual({ edit: 2, 'corrected again': 1, superseded: 1 });

    const pref = exportFeedback(store, 'preference');
    expect(pref.rows).toEqual([
      { prompt: p1, chosen: r('Paris is the capital of France.'), rejected: r('Lyon.') }, // j3 edit
      { prompt: p1, chosen: r('Paris.'), rejected: r('Lyon.') }, // j4 choice b; j5 tie and j6 both_bad: none
      { prompt: p1, chosen: r('Paris.'), rejected: r('Paris, France.') }, // j7 ranking a2 > a3 > a1
      { prompt: p1, chosen: r('Paris.'), rejected: r('Lyon.') },
      { prompt: p1, chosen: r('Paris, France.'), rejected: r('Lyon.') },
      { prompt: p2, chosen: r('Berlin.'), rejected: r('Bonn.') }, // j11 edit
      { prompt: p2, chosen: r('Berlin, since 1990.'), rejected: r('Berlin.') }, // j12 edit of the edit
    ]);
    expect(pref.counts).toEqual({
      edit: 3,
      choice: 1,
      'tie skipped': 1,
      'both_bad skipped': 1,
      ranking: 1,
      'ranking pairs': 3,
      superseded: 1,
    });

    const kto = exportFeedback(store, 'kto');
    expect(kto.rows).toEqual([
      { prompt: p1, completion: r('Lyon.'), label: false }, // j1
      { prompt: p1, completion: r('Paris.'), label: true }, // j2
      { prompt: p1, completion: r('Lyon.'), label: false }, // j6 both_bad: each reply
      { prompt: p1, completion: r('Paris, France.'), label: false },
      { prompt: p1, completion: r('Paris, France.'), label: true }, // j10 (bob's j9 down is superseded)
    ]);
    expect(kto.counts).toEqual({ 'thumbs down': 1, 'thumbs up': 2, both_bad: 1, superseded: 1 });

    const ranking = exportFeedback(store, 'ranking');
    expect(ranking.rows).toEqual([
      { prompt: p1, completions: [r('Lyon.'), r('Paris.'), r('Paris, France.')], ranking: [1, 2, 0] },
    ]);

    // one rater's judgments only
    expect(exportFeedback(store, 'preference', { rater: 'carol' }).rows).toEqual([pref.rows[5]]);
    expect(thrown(() => exportFeedback(store, 'dpo' as 'sft'))).toMatchObject({ code: 'E_FEEDBACK_FIELD' });
  });

  it('writes rows the alignment commands read back as the TRL type they expect', () => {
    const expectations = {
      sft: ['language_modeling', 'conversational'],
      preference: ['preference', 'conversational'],
      kto: ['unpaired_preference', 'conversational'],
      ranking: ['ranking', 'conversational'],
    } as const;
    for (const [type, [kind, form]] of Object.entries(expectations)) {
      const rows = exportFeedback(store, type as keyof typeof expectations).rows;
      const back = parseTrlJsonl(formatTrlJsonl(rows), `${type}.jsonl`, { expect: [kind] });
      expect([back.kind, back.form, back.rows]).toEqual([kind, form, rows]);
    }
  });

  it('counts by kind, value, rater and checkpoint', () => {
    const s = feedbackStats(store);
    expect(s).toMatchObject({
      conversations: 1,
      messages: { total: 10, system: 1, user: 2, replies: 4, corrections: 3 },
      judgments: 12,
      byKind: { thumbs: 4, flag: 1, edit: 3, choice: 3, ranking: 1 },
      byValue: {
        thumbs: { up: 2, down: 2 },
        choice: { a: 0, b: 1, tie: 1, both_bad: 1 },
        flag: { fails_task: 1, spam: 1, pii: 0 },
      },
      byRater: {
        alice: { total: 4, thumbs: 2, edit: 1, choice: 1 },
        bob: { total: 5, thumbs: 2, choice: 2, flag: 1 },
        carol: { total: 1, edit: 1 },
        dave: { total: 1, edit: 1 },
        'oracle:length': { total: 1, ranking: 1 },
      },
    });
    // A: a1, a2 — judged by j1 j2 j3 j4 j5 j6 j7 j8; B: a3, a4 — by j5 j6 j7 j9 j10 j11
    expect(s.byCheckpoint.map((c) => [c.hash, c.replies, c.judgments])).toEqual([
      [x.hashA, 2, 8],
      [x.hashB, 2, 6],
    ]);
    const text = formatStats(s, 'f.db').join('\n');
    expect(text).toMatch(
      /1 conversations, 10 messages \(2 user, 1 system, 4 model replies, 3 corrections\), 12 judgments/,
    );
    expect(text).toMatch(/choice +3 +\(b 1, tie 1, both_bad 1\)/);
  });

  it('refuses bad actions with named errors, and writes nothing for them', () => {
    const before = { j: store.allJudgments().length, m: store.allMessages().size };
    const cases: [() => unknown, string, string | RegExp][] = [
      [
        () => store.addJudgment({ kind: 'thumbs', rater: 'a', messageId: 999, value: 'up' }),
        'E_UNKNOWN_MESSAGE',
        'message_id',
      ],
      [
        () => store.addJudgment({ kind: 'thumbs', rater: 'a', messageId: x.u1.id, value: 'up' }),
        'E_FEEDBACK_ROLE',
        'message_id',
      ],
      [
        () => store.addJudgment({ kind: 'thumbs', rater: 'a', messageId: x.a1.id, value: 'meh' as 'up' }),
        'E_FEEDBACK_FIELD',
        'value',
      ],
      [
        () => store.addJudgment({ kind: 'thumbs', rater: 'a', messageId: x.a1.id, value: 'up', reasons: ['spam'] }),
        'E_FEEDBACK_FIELD',
        'reasons',
      ],
      [
        () => store.addJudgment({ kind: 'flag', rater: 'a', messageId: x.a1.id, reasons: [] }),
        'E_FEEDBACK_REASON',
        'reasons',
      ],
      [
        () => store.addJudgment({ kind: 'flag', rater: 'a', messageId: x.a1.id, reasons: ['spam', 'boring'] }),
        'E_FEEDBACK_REASON',
        'reasons[1]',
      ],
      [
        () => store.addJudgment({ kind: 'edit', rater: 'a', messageId: x.a1.id, content: 'Lyon.' }),
        'E_FEEDBACK_FIELD',
        'content',
      ],
      [
        () => store.addJudgment({ kind: 'edit', rater: 'a', messageId: x.u2.id, content: 'Hi' }),
        'E_FEEDBACK_ROLE',
        'message_id',
      ],
      [
        () => store.addJudgment({ kind: 'choice', rater: 'a', messageIds: [x.a1.id, x.a4.id], value: 'a' }),
        'E_FEEDBACK_TREE',
        'message_ids[1]',
      ],
      [
        () => store.addJudgment({ kind: 'choice', rater: 'a', messageIds: [x.a1.id, x.a1.id], value: 'a' }),
        'E_FEEDBACK_FIELD',
        'message_ids[1]',
      ],
      [
        () => store.addJudgment({ kind: 'choice', rater: 'a', messageIds: [x.a1.id] as never, value: 'a' }),
        'E_FEEDBACK_FIELD',
        'message_ids',
      ],
      [
        () =>
          store.addJudgment({
            kind: 'ranking',
            rater: 'a',
            messageIds: [x.a1.id, x.a2.id, x.a3.id],
            ranking: [0, 0, 1],
          }),
        'E_FEEDBACK_RANKING',
        'ranking[1]',
      ],
      [
        () => store.addJudgment({ kind: 'ranking', rater: 'a', messageIds: [x.a1.id, x.a2.id], ranking: [0, 1, 2] }),
        'E_FEEDBACK_RANKING',
        'ranking',
      ],
      [
        () => store.addJudgment({ kind: 'ranking', rater: 'a', messageIds: [x.a1.id, x.a2.id], ranking: [0, 2] }),
        'E_FEEDBACK_RANKING',
        'ranking[1]',
      ],
      [() => store.addJudgment({ kind: 'like', rater: 'a' } as unknown as JudgmentInput), 'E_FEEDBACK_FIELD', 'kind'],
      [
        () => store.addJudgment({ kind: 'thumbs', rater: '', messageId: x.a1.id, value: 'up' }),
        'E_FEEDBACK_RATER',
        'rater',
      ],
      [
        () => store.addJudgment({ kind: 'thumbs', rater: 'oracle:', messageId: x.a1.id, value: 'up' }),
        'E_FEEDBACK_RATER',
        'rater',
      ],
      [
        () => store.addJudgment({ kind: 'thumbs', rater: 'a\nb', messageId: x.a1.id, value: 'up' }),
        'E_FEEDBACK_RATER',
        'rater',
      ],
      [
        () => store.addMessage({ conversationId: x.conv.id, parentId: x.u1.id, role: 'user', content: 'again?' }),
        'E_FEEDBACK_ROLE',
        'parent_id',
      ],
      [
        () => store.addMessage({ conversationId: x.conv.id, parentId: x.u1.id, role: 'system', content: 'x' }),
        'E_FEEDBACK_ROLE',
        'parent_id',
      ],
      [
        () =>
          store.addMessage({ conversationId: x.conv.id, parentId: null, role: 'assistant' as 'user', content: 'x' }),
        'E_FEEDBACK_ROLE',
        'role',
      ],
      [
        () => store.addMessage({ conversationId: 77, parentId: null, role: 'user', content: 'x' }),
        'E_UNKNOWN_CONVERSATION',
        'conversation_id',
      ],
      [
        () => store.addMessage({ conversationId: x.conv.id, parentId: null, role: 'user', content: '  ' }),
        'E_FEEDBACK_FIELD',
        'content',
      ],
      [
        () => store.recordReply({ parentId: x.a1.id, content: 'x', checkpointHash: x.hashA }),
        'E_FEEDBACK_ROLE',
        'parent_id',
      ],
      [
        () => store.recordReply({ parentId: x.u1.id, content: 'x', checkpointHash: 'f'.repeat(64) }),
        'E_UNKNOWN_CHECKPOINT',
        'checkpoint_hash',
      ],
      [
        () => store.recordReply({ parentId: x.u1.id, content: 'x', checkpointHash: 'abc' }),
        'E_FEEDBACK_FIELD',
        'checkpoint_hash',
      ],
      [
        () =>
          store.recordReply({
            parentId: x.u1.id,
            content: 'x',
            checkpointHash: x.hashA,
            logprobs: [{ token: 'a', logprob: 0.5 }],
          }),
        'E_FEEDBACK_FIELD',
        'logprobs[0].logprob',
      ],
      [
        () => store.recordReply({ parentId: x.u1.id, content: 'x', checkpointHash: x.hashA, seed: 1.5 }),
        'E_FEEDBACK_FIELD',
        'seed',
      ],
    ];
    for (const [f, code, field] of cases) {
      const e = thrown(f);
      expect(e, String(f)).toBeInstanceOf(FeedbackInputError);
      expect([(e as FeedbackInputError).code, (e as FeedbackInputError).field], String(f)).toEqual([code, field]);
    }
    expect(thrown(() => store.message(999))).toBeInstanceOf(UnknownRecordError);
    // a parent in another conversation
    const other = store.createConversation('other');
    expect(
      thrown(() => store.addMessage({ conversationId: other.id, parentId: x.a1.id, role: 'user', content: 'hi' })),
    ).toMatchObject({ code: 'E_FEEDBACK_TREE', field: 'parent_id' });
    expect({ j: store.allJudgments().length, m: store.allMessages().size }).toEqual(before);
  });

  it('writes a batch of judgments (an oracle) in one transaction: all of them, or none naming the bad one', () => {
    const before = store.allJudgments().length;
    const batch: JudgmentInput[] = [
      { kind: 'thumbs', rater: 'oracle:dot', messageId: x.a1.id, value: 'down' },
      { kind: 'choice', rater: 'oracle:dot', messageIds: [x.a2.id, x.a3.id], value: 'a' },
      { kind: 'thumbs', rater: 'oracle:dot', messageId: 4242, value: 'up' },
    ];
    const e = thrown(() => store.addJudgments(batch));
    expect(e).toBeInstanceOf(UnknownRecordError);
    expect(e).toMatchObject({ code: 'E_UNKNOWN_MESSAGE', field: 'judgments[2].message_id' });
    const e2 = thrown(() => store.addJudgments([batch[0]!, { ...batch[1]!, value: 'c' } as unknown as JudgmentInput]));
    expect(e2).toMatchObject({ code: 'E_FEEDBACK_FIELD', field: 'judgments[1].value' });
    expect(e2.message).toMatch(/^judgments\[1\]\.value: expected "a", "b", "tie", "both_bad"; got "c"$/);
    expect(store.allJudgments().length).toBe(before);
    const done = store.addJudgments(batch.slice(0, 2));
    expect(done.map((j) => [j.kind, j.value])).toEqual([
      ['thumbs', 'down'],
      ['choice', 'a'],
    ]);
    expect(store.allJudgments().length).toBe(before + 2);
  });

  it('reads one snapshot for an export while another connection (the server) writes', () => {
    const server = FeedbackStore.open(path.join(dir, 'scenario.db'), { create: false });
    const rows = store.snapshot(() => {
      const first = exportFeedback(store, 'kto').rows.length;
      server.addJudgment({ kind: 'thumbs', rater: 'erin', messageId: x.a2.id, value: 'up' }); // committed meanwhile
      expect(exportFeedback(store, 'kto').rows.length).toBe(first);
      return first;
    });
    expect(exportFeedback(store, 'kto').rows.length).toBe(rows + 1);
    server.close();
  });
});
