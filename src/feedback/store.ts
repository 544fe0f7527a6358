/**
 * The feedback store: conversations as message trees and people's (or oracles') judgments of the model's replies,
 * in one SQLite file (schema.ts: WAL, foreign keys, versioned migrations, created atomically). Every action is one
 * transaction: a judgment with its items, an edit with its new message, a message with its conversation's
 * `updated_at`; when a method returns, what it wrote is committed (and synced: synchronous=FULL).
 *
 * Every input is checked before anything is written, and bad input is a named error (errors.ts): an id that names
 * nothing (UnknownRecordError), a message of the wrong role for its place in the tree (a user turn under a user turn,
 * an edit of a user message), replies that are not siblings, a ranking that is not a permutation, an unknown flag
 * label, a rater id that is empty or has control characters, text over MAX_TEXT characters.
 *
 * The server calls `recordReply` when a model reply finishes (with `registerCheckpoint(dir)`'s hash, computed once).
 */
import type Database from 'better-sqlite3';
import { checkpointHash } from './checkpoint_hash.js';
import { FeedbackInputError, inField, UnknownRecordError } from './errors.js';
import { openDatabase, type OpenOptions } from './schema.js';
import {
  CHOICES,
  FLAG_REASONS,
  JUDGMENT_KINDS,
  THUMBS,
  type Conversation,
  type Judgment,
  type JudgmentInput,
  type JudgmentItem,
  type JudgmentKind,
  type Message,
  type MessageInput,
  type ReplyInput,
  type Role,
  type TokenLogprob,
} from './types.js';

/** Longest message text, in characters. */
export const MAX_TEXT = 200_000;
/** Most replies one ranking may order. */
export const MAX_RANKED = 16;
/** Longest rater id, in characters. */
export const MAX_RATER = 200;

export interface StoreOptions extends OpenOptions {
  /** The clock (ISO timestamps are written from it); default the system clock. */
  now?: () => Date;
}

interface MessageRow {
  id: number;
  conversation_id: number;
  parent_id: number | null;
  role: Role;
  content: string;
  author: string | null;
  edit_of: number | null;
  checkpoint_hash: string | null;
  sampler: string | null;
  seed: number | null;
  logprobs: string | null;
  created_at: string;
}
interface JudgmentRow {
  id: number;
  kind: JudgmentKind;
  rater: string;
  message_id: number;
  value: string | null;
  reasons: string;
  edit_message_id: number | null;
  created_at: string;
}
interface ConversationRow {
  id: number;
  title: string;
  created_at: string;
  updated_at: string;
  message_count: number;
}

const bad = (code: string, field: string, message: string) => new FeedbackInputError(code, field, message);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

function checkId(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw bad('E_FEEDBACK_FIELD', field, `expected an id (an integer ≥ 1), got ${show(v)}`);
  return v;
}

function checkText(v: unknown, field: string, allowEmpty: boolean): string {
  if (typeof v !== 'string') throw bad('E_FEEDBACK_FIELD', field, `expected a string, got ${show(v)}`);
  if (!allowEmpty && v.trim() === '') throw bad('E_FEEDBACK_FIELD', field, 'expected text, got an empty string');
  if (v.length > MAX_TEXT)
    throw bad('E_FEEDBACK_FIELD', field, `${v.length} characters is over the limit of ${MAX_TEXT}`);
  return v;
}

/** A rater id: a person's name, or `oracle:<name>` for a program. */
export function checkRater(v: unknown, field = 'rater'): string {
  if (typeof v !== 'string' || v.trim() === '')
    throw bad('E_FEEDBACK_RATER', field, `expected a rater id (a name, or "oracle:<name>"), got ${show(v)}`);
  if (v.length > MAX_RATER) throw bad('E_FEEDBACK_RATER', field, `longer than ${MAX_RATER} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(v)) throw bad('E_FEEDBACK_RATER', field, 'contains control characters');
  if (v.startsWith('oracle:') && v.slice('oracle:'.length).trim() === '')
    throw bad('E_FEEDBACK_RATER', field, 'an oracle rater is "oracle:<name>", with a name');
  return v;
}

function checkReasons(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) throw bad('E_FEEDBACK_FIELD', field, `expected a list of labels, got ${show(v)}`);
  const out: string[] = [];
  v.forEach((r, i) => {
    if (!(FLAG_REASONS as readonly unknown[]).includes(r))
      throw bad('E_FEEDBACK_REASON', `${field}[${i}]`, `expected one of ${FLAG_REASONS.join(', ')}; got ${show(r)}`);
    if (!out.includes(r as string)) out.push(r as string);
  });
  return out;
}

function checkLogprobs(v: unknown, field: string): TokenLogprob[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) throw bad('E_FEEDBACK_FIELD', field, `expected a list of {token, logprob}, got ${show(v)}`);
  const one = (x: unknown, f: string): void => {
    const o = x as Record<string, unknown>;
    if (typeof x !== 'object' || x === null || typeof o['token'] !== 'string')
      throw bad('E_FEEDBACK_FIELD', `${f}.token`, `expected a string, got ${show(o?.['token'])}`);
    const lp = o['logprob'];
    if (typeof lp !== 'number' || !(lp <= 0) || lp === Number.NEGATIVE_INFINITY)
      throw bad('E_FEEDBACK_FIELD', `${f}.logprob`, `expected a finite number ≤ 0, got ${show(lp)}`);
  };
  v.forEach((x, i) => {
    one(x, `${field}[${i}]`);
    const top = (x as Record<string, unknown>)['top_logprobs'];
    if (top !== undefined) {
      if (!Array.isArray(top)) throw bad('E_FEEDBACK_FIELD', `${field}[${i}].top_logprobs`, 'expected a list');
      top.forEach((t, j) => one(t, `${field}[${i}].top_logprobs[${j}]`));
    }
  });
  return v as TokenLogprob[];
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly unknown[]).includes(v))
    throw bad('E_FEEDBACK_FIELD', field, `expected ${allowed.map((a) => `"${a}"`).join(', ')}; got ${show(v)}`);
  return v as T;
}

export class FeedbackStore {
  readonly db: Database.Database;
  readonly file: string;
  private readonly now: () => Date;
  private readonly q;

  private constructor(db: Database.Database, file: string, now: () => Date) {
    this.db = db;
    this.file = file;
    this.now = now;
    this.q = {
      conversation: db.prepare<[number], ConversationRow>(
        `SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
         FROM conversations c WHERE c.id = ?`,
      ),
      conversations: db.prepare<[number, number], ConversationRow>(
        `SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
         FROM conversations c ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?`,
      ),
      insertConversation: db.prepare('INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)'),
      touch: db.prepare('UPDATE conversations SET updated_at = ? WHERE id = ?'),
      message: db.prepare<[number], MessageRow>('SELECT * FROM messages WHERE id = ?'),
      messagesOf: db.prepare<[number], MessageRow>('SELECT * FROM messages WHERE conversation_id = ? ORDER BY id'),
      allMessages: db.prepare<[], MessageRow>('SELECT * FROM messages ORDER BY id'),
      insertMessage: db.prepare(
        `INSERT INTO messages (conversation_id, parent_id, role, content, author, edit_of, checkpoint_hash, sampler,
           seed, logprobs, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      checkpoint: db.prepare<[string], { hash: string }>('SELECT hash FROM checkpoints WHERE hash = ?'),
      insertCheckpoint: db.prepare('INSERT OR IGNORE INTO checkpoints (hash, path, created_at) VALUES (?, ?, ?)'),
      judgment: db.prepare<[number], JudgmentRow>('SELECT * FROM judgments WHERE id = ?'),
      allJudgments: db.prepare<[], JudgmentRow>('SELECT * FROM judgments ORDER BY id'),
      judgmentsOfConversation: db.prepare<[number, number], JudgmentRow>(
        `SELECT * FROM judgments WHERE id IN (
           SELECT j.id FROM judgments j JOIN messages m ON m.id = j.message_id WHERE m.conversation_id = ?
           UNION SELECT i.judgment_id FROM judgment_items i JOIN messages m ON m.id = i.message_id
           WHERE m.conversation_id = ?) ORDER BY id`,
      ),
      items: db.prepare<[number], { message_id: number; rank: number | null }>(
        'SELECT message_id, rank FROM judgment_items WHERE judgment_id = ? ORDER BY position',
      ),
      insertJudgment: db.prepare(
        `INSERT INTO judgments (kind, rater, message_id, value, reasons, edit_message_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertItem: db.prepare(
        'INSERT INTO judgment_items (judgment_id, position, message_id, rank) VALUES (?, ?, ?, ?)',
      ),
    };
  }

  /** Open a store (creating the file, or migrating an older one, as needed). */
  static open(file: string, o: StoreOptions = {}): FeedbackStore {
    return new FeedbackStore(openDatabase(file, o), file, o.now ?? (() => new Date()));
  }

  close(): void {
    this.db.close();
  }

  /**
   * Run `read` on one consistent snapshot of the database (one read transaction: a writer in another process —
   * the server — cannot slip a judgment in between two of its queries).
   */
  snapshot<T>(read: () => T): T {
    return this.db.transaction(read)();
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  // ── checkpoints ────────────────────────────────────────────────────────────────────────────────────────────

  /** Hash a checkpoint's weights (once per checkpoint: see checkpoint_hash.ts) and record it; returns the hash. */
  registerCheckpoint(dir: string): string {
    const hash = checkpointHash(dir);
    this.q.insertCheckpoint.run(hash, dir, this.stamp());
    return hash;
  }

  // ── conversations and messages ────────────────────────────────────────────────────────────────────────────

  createConversation(title = ''): Conversation {
    const t = checkText(title, 'title', true);
    if (t.length > 500) throw bad('E_FEEDBACK_FIELD', 'title', 'longer than 500 characters');
    const ts = this.stamp();
    const id = Number(this.q.insertConversation.run(t, ts, ts).lastInsertRowid);
    return this.conversation(id);
  }

  /** A conversation by id (UnknownRecordError if none). */
  conversation(id: number, field = 'conversation_id'): Conversation {
    const r = this.q.conversation.get(checkId(id, field));
    if (!r) throw new UnknownRecordError('conversation', field, id);
    return {
      id: r.id,
      title: r.title,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      messageCount: r.message_count,
    };
  }

  /** Conversations, the most recently active first. */
  listConversations(limit = 50, offset = 0): Conversation[] {
    return this.q.conversations.all(limit, offset).map((r) => ({
      id: r.id,
      title: r.title,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      messageCount: r.message_count,
    }));
  }

  /** A message by id (UnknownRecordError if none). */
  message(id: number, field = 'message_id'): Message {
    const r = this.q.message.get(checkId(id, field));
    if (!r) throw new UnknownRecordError('message', field, id);
    return toMessage(r);
  }

  /** Every message of a conversation, in the order written (parents before children). */
  messagesOf(conversationId: number): Message[] {
    this.conversation(conversationId);
    return this.q.messagesOf.all(conversationId).map(toMessage);
  }

  /** Every message of the store, by id. */
  allMessages(): Map<number, Message> {
    return new Map(this.q.allMessages.all().map((r) => [r.id, toMessage(r)]));
  }

  /** The path from the root to `messageId` (inclusive), root first. */
  pathTo(messageId: number): Message[] {
    const out: Message[] = [];
    for (let m: Message | null = this.message(messageId); m; m = m.parentId === null ? null : this.message(m.parentId))
      out.push(m);
    return out.reverse();
  }

  /** Check that a message of `role` may hang under `parentId` in `conversationId` (Open-Assistant's alternation). */
  private checkPlace(conversationId: number, parentId: number | null, role: Role, field: string): void {
    if (parentId === null) {
      if (role === 'assistant')
        throw bad('E_FEEDBACK_ROLE', field, 'a reply needs the user message it answers (parent_id), not a root');
      return;
    }
    const parent = this.message(parentId, field);
    if (parent.conversationId !== conversationId)
      throw bad(
        'E_FEEDBACK_TREE',
        field,
        `message ${parentId} belongs to conversation ${parent.conversationId}, not ${conversationId}`,
      );
    const allowed: Record<Role, Role[]> = { system: [], user: ['system', 'assistant'], assistant: ['user'] };
    if (!allowed[role].includes(parent.role))
      throw bad(
        'E_FEEDBACK_ROLE',
        field,
        role === 'system'
          ? 'a system message is only a root (parent_id null)'
          : `a ${role} message follows ${allowed[role].map((r) => `a ${r} message`).join(' or ')}, but message ${parentId} is a ${parent.role} message`,
      );
  }

  /** Add a person's (user) turn or a system prompt to a conversation. */
  addMessage(m: MessageInput): Message {
    const conversationId = checkId(m.conversationId, 'conversation_id');
    const parentId = m.parentId === null || m.parentId === undefined ? null : checkId(m.parentId, 'parent_id');
    const role = m.role as unknown;
    if (role === 'assistant')
      throw bad(
        'E_FEEDBACK_ROLE',
        'role',
        'assistant messages are written when a model reply finishes (recordReply) or by an edit judgment',
      );
    oneOf(role, ['system', 'user'] as const, 'role');
    const content = checkText(m.content, 'content', false);
    const author = m.author === undefined || m.author === null ? null : checkRater(m.author, 'author');
    this.conversation(conversationId);
    this.checkPlace(conversationId, parentId, m.role, 'parent_id');
    return this.db.transaction(() => {
      const ts = this.stamp();
      const id = Number(
        this.q.insertMessage.run(conversationId, parentId, m.role, content, author, null, null, null, null, null, ts)
          .lastInsertRowid,
      );
      this.q.touch.run(ts, conversationId);
      return this.message(id);
    })();
  }

  /**
   * Record a finished model reply under the user message it answers: its text, the checkpoint's hash (from
   * `registerCheckpoint`), the sampler settings and seed, and the per-token log-probs (OpenAI's
   * `choices[].logprobs.content`). This is what the server calls when a generation ends.
   */
  recordReply(r: ReplyInput): Message {
    const parentId = checkId(r.parentId, 'parent_id');
    const content = checkText(r.content, 'content', true);
    if (typeof r.checkpointHash !== 'string' || !/^[0-9a-f]{64}$/.test(r.checkpointHash))
      throw bad('E_FEEDBACK_FIELD', 'checkpoint_hash', `expected a sha256 in hex, got ${show(r.checkpointHash)}`);
    if (!this.q.checkpoint.get(r.checkpointHash))
      throw new UnknownRecordError('checkpoint', 'checkpoint_hash', r.checkpointHash);
    const sampler = r.sampler ?? null;
    if (sampler !== null && (typeof sampler !== 'object' || Array.isArray(sampler)))
      throw bad('E_FEEDBACK_FIELD', 'sampler', `expected an object of settings, got ${show(sampler)}`);
    const seed = r.seed ?? null;
    if (seed !== null && (typeof seed !== 'number' || !Number.isSafeInteger(seed)))
      throw bad('E_FEEDBACK_FIELD', 'seed', `expected an integer, got ${show(seed)}`);
    const logprobs = checkLogprobs(r.logprobs, 'logprobs');
    const parent = this.message(parentId, 'parent_id');
    this.checkPlace(parent.conversationId, parentId, 'assistant', 'parent_id');
    return this.db.transaction(() => {
      const ts = this.stamp();
      const id = Number(
        this.q.insertMessage.run(
          parent.conversationId,
          parentId,
          'assistant',
          content,
          null,
          null,
          r.checkpointHash,
          sampler === null ? null : JSON.stringify(sampler),
          seed,
          logprobs === null ? null : JSON.stringify(logprobs),
          ts,
        ).lastInsertRowid,
      );
      this.q.touch.run(ts, parent.conversationId);
      return this.message(id);
    })();
  }

  // ── judgments ───────────────────────────────────────────────────────────────────────────────────────────────

  private assistant(id: unknown, field: string): Message {
    const m = this.message(checkId(id, field), field);
    if (m.role !== 'assistant')
      throw bad('E_FEEDBACK_ROLE', field, `message ${m.id} is a ${m.role} message; this judges assistant replies`);
    return m;
  }

  /** Distinct sibling assistant replies (same parent), for choice and ranking. */
  private siblings(ids: unknown, field: string, min: number, max: number): Message[] {
    if (!Array.isArray(ids) || ids.length < min || ids.length > max)
      throw bad(
        'E_FEEDBACK_FIELD',
        field,
        `expected a list of ${min === max ? min : `${min} to ${max}`} message ids, got ${show(ids)}`,
      );
    const ms = ids.map((id, i) => this.assistant(id, `${field}[${i}]`));
    const seen = new Set<number>();
    ms.forEach((m, i) => {
      if (seen.has(m.id)) throw bad('E_FEEDBACK_FIELD', `${field}[${i}]`, `message ${m.id} appears twice`);
      seen.add(m.id);
      if (m.parentId !== ms[0]!.parentId)
        throw bad(
          'E_FEEDBACK_TREE',
          `${field}[${i}]`,
          `message ${m.id} answers message ${m.parentId}, but message ${ms[0]!.id} answers ${ms[0]!.parentId}: only sibling replies (one prompt) are compared`,
        );
    });
    return ms;
  }

  /** Record one feedback action (one transaction); returns the judgment as stored. */
  addJudgment(input: JudgmentInput): Judgment {
    const write = this.checkJudgment(input);
    return this.db.transaction(write)();
  }

  /**
   * Record many feedback actions in one transaction (an oracle rating a batch: one commit, one sync, instead of one
   * per judgment): all are checked first, and either all are written or, on a bad one, none. The judged messages
   * must exist before the batch (an edit of a correction made in the same batch is refused as unknown).
   */
  addJudgments(inputs: readonly JudgmentInput[]): Judgment[] {
    if (!Array.isArray(inputs)) throw bad('E_FEEDBACK_FIELD', 'judgments', `expected a list, got ${show(inputs)}`);
    const writes = inputs.map((x, k) => this.checkJudgment(x, `judgments[${k}]`));
    return this.db.transaction(() => writes.map((w) => w()))();
  }

  /** Check one action (errors name `where` for a batch); returns the function that writes it (in a transaction). */
  private checkJudgment(input: JudgmentInput, where?: string): () => Judgment {
    try {
      return this.checkOne(input);
    } catch (e) {
      throw where !== undefined && e instanceof FeedbackInputError ? inField(e, where) : e;
    }
  }

  private checkOne(input: JudgmentInput): () => Judgment {
    if (typeof input !== 'object' || input === null)
      throw bad('E_FEEDBACK_FIELD', 'judgment', `expected an object, got ${show(input)}`);
    const kind = oneOf(input.kind, JUDGMENT_KINDS, 'kind');
    const rater = checkRater(input.rater);
    const i = input as unknown as Record<string, unknown>;
    // validate everything first, then write in one transaction
    let messageId: number;
    let value: string | null = null;
    let reasons: string[] = [];
    let items: JudgmentItem[] = [];
    let edit: { content: string; of: Message } | null = null;
    switch (kind) {
      case 'thumbs': {
        messageId = this.assistant(i['messageId'], 'message_id').id;
        value = oneOf(i['value'], THUMBS, 'value');
        reasons = i['reasons'] === undefined ? [] : checkReasons(i['reasons'], 'reasons');
        if (value === 'up' && reasons.length)
          throw bad('E_FEEDBACK_FIELD', 'reasons', 'reasons say what is wrong: a thumbs up has none');
        break;
      }
      case 'flag': {
        messageId = this.message(checkId(i['messageId'], 'message_id')).id;
        reasons = checkReasons(i['reasons'], 'reasons');
        if (!reasons.length)
          throw bad('E_FEEDBACK_REASON', 'reasons', `a flag needs at least one of ${FLAG_REASONS.join(', ')}`);
        break;
      }
      case 'edit': {
        const of = this.assistant(i['messageId'], 'message_id');
        const content = checkText(i['content'], 'content', false);
        if (content === of.content)
          throw bad('E_FEEDBACK_FIELD', 'content', `the correction is the same text as message ${of.id}`);
        messageId = of.id;
        edit = { content, of };
        break;
      }
      case 'choice': {
        const ms = this.siblings(i['messageIds'], 'message_ids', 2, 2);
        value = oneOf(i['value'], CHOICES, 'value');
        messageId = ms[0]!.id;
        items = ms.map((m) => ({ messageId: m.id, rank: null }));
        break;
      }
      case 'ranking': {
        const ms = this.siblings(i['messageIds'], 'message_ids', 2, MAX_RANKED);
        const r = i['ranking'];
        const K = ms.length;
        if (!Array.isArray(r) || r.length !== K)
          throw bad(
            'E_FEEDBACK_RANKING',
            'ranking',
            `expected ${K} indices into message_ids (best first), got ${show(r)}`,
          );
        const rank = new Array<number>(K);
        const seen = new Set<number>();
        r.forEach((x, pos) => {
          if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= K)
            throw bad('E_FEEDBACK_RANKING', `ranking[${pos}]`, `expected an index 0..${K - 1}, got ${show(x)}`);
          if (seen.has(x))
            throw bad(
              'E_FEEDBACK_RANKING',
              `ranking[${pos}]`,
              `index ${x} appears twice: the ranking must be a permutation of 0..${K - 1}`,
            );
          seen.add(x);
          rank[x] = pos;
        });
        messageId = ms[0]!.id;
        items = ms.map((m, k) => ({ messageId: m.id, rank: rank[k]! }));
        break;
      }
    }
    return () => {
      const ts = this.stamp();
      let editMessageId: number | null = null;
      if (edit) {
        editMessageId = Number(
          this.q.insertMessage.run(
            edit.of.conversationId,
            edit.of.parentId,
            'assistant',
            edit.content,
            rater,
            edit.of.id,
            null,
            null,
            null,
            null,
            ts,
          ).lastInsertRowid,
        );
        this.q.touch.run(ts, edit.of.conversationId);
      }
      const id = Number(
        this.q.insertJudgment.run(kind, rater, messageId, value, JSON.stringify(reasons), editMessageId, ts)
          .lastInsertRowid,
      );
      items.forEach((it, pos) => this.q.insertItem.run(id, pos, it.messageId, it.rank));
      return this.judgment(id);
    };
  }

  /** A judgment by id (UnknownRecordError if none). */
  judgment(id: number, field = 'judgment_id'): Judgment {
    const r = this.q.judgment.get(checkId(id, field));
    if (!r) throw new UnknownRecordError('judgment', field, id);
    return this.toJudgment(r);
  }

  /** Every judgment, oldest first. */
  allJudgments(): Judgment[] {
    return this.q.allJudgments.all().map((r) => this.toJudgment(r));
  }

  /** The judgments that touch a conversation's messages, oldest first. */
  judgmentsOf(conversationId: number): Judgment[] {
    this.conversation(conversationId);
    return this.q.judgmentsOfConversation.all(conversationId, conversationId).map((r) => this.toJudgment(r));
  }

  private toJudgment(r: JudgmentRow): Judgment {
    return {
      id: r.id,
      kind: r.kind,
      rater: r.rater,
      messageId: r.message_id,
      value: r.value,
      reasons: JSON.parse(r.reasons) as string[],
      editMessageId: r.edit_message_id,
      items: this.q.items.all(r.id).map((x) => ({ messageId: x.message_id, rank: x.rank })),
      createdAt: r.created_at,
    };
  }
}

function toMessage(r: MessageRow): Message {
  return {
    id: r.id,
    conversationId: r.conversation_id,
    parentId: r.parent_id,
    role: r.role,
    content: r.content,
    author: r.author,
    editOf: r.edit_of,
    checkpointHash: r.checkpoint_hash,
    sampler: r.sampler === null ? null : (JSON.parse(r.sampler) as Record<string, unknown>),
    seed: r.seed,
    logprobs: r.logprobs === null ? null : (JSON.parse(r.logprobs) as TokenLogprob[]),
    createdAt: r.created_at,
  };
}
