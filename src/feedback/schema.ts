/**
 * The feedback database on disk: its SQLite schema, the migrations between schema versions, and how a file is
 * created and opened.
 *
 * - The schema follows Open-Assistant's message trees: a conversation holds messages, each with a parent (null at
 *   the root), a role and its text; sibling replies under one parent are alternatives (regenerations, corrections).
 *   A model reply also records its checkpoint (sha256 of the weights), sampler settings, seed and per-token
 *   log-probs. A judgment is one rater's verdict on one reply (thumbs, flag, edit) or on a set of sibling replies
 *   (choice A/B, ranking), whose members are the judgment's items.
 * - Versions: `PRAGMA user_version` is the schema version; MIGRATIONS[i] takes a database from version i to i + 1,
 *   each in one transaction, so a failed migration leaves the file at its old version. `PRAGMA application_id`
 *   marks the file as a feedback store, so another SQLite file is refused instead of being written into.
 * - A new file is created atomically: the schema is written into a hidden temp file next to the target, which is
 *   closed (its WAL folded in), fsynced and then linked into place; a crash leaves no half-made database at the
 *   path, and two processes creating the same file at once end with one database.
 * - Every connection runs in WAL mode (readers never block the writer: the server writes while `llmts feedback
 *   export` reads) with foreign keys on, synchronous=FULL (a committed transaction survives a power cut, not only
 *   a killed process) and a busy timeout.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { makeDirSync, tempSibling } from '../util/fs.js';
import { FeedbackDatabaseError } from './errors.js';

let driver: typeof Database | undefined;

/**
 * better-sqlite3, loaded on first use: it is a native module, and the rest of the library (which never opens a
 * store) does not need it to load. A platform where it did not build gets a named error here, not at `import 'llmts'`.
 */
export function sqliteDriver(): typeof Database {
  if (!driver) {
    try {
      driver = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    } catch (e) {
      throw new FeedbackDatabaseError(
        'E_FEEDBACK_SQLITE',
        'better-sqlite3',
        `the SQLite driver did not load (${(e as Error).message.split('\n')[0]}); the feedback store needs its native module: run 'npm rebuild better-sqlite3'`,
      );
    }
  }
  return driver;
}

/** 'llmf' as a big-endian int32: the application_id of a feedback database. */
export const APPLICATION_ID = 0x6c6c6d66;

export interface Migration {
  /** What the migration does, for errors and the log. */
  description: string;
  /** SQL statements run in one transaction. */
  sql: string;
}

/** MIGRATIONS[i] takes schema version i to version i + 1; the latest version is MIGRATIONS.length. */
export const MIGRATIONS: readonly Migration[] = [
  {
    description: 'message trees, checkpoints, judgments',
    sql: `
      CREATE TABLE checkpoints (
        hash TEXT PRIMARY KEY CHECK (length(hash) = 64),   -- sha256 (hex) of the checkpoint's weights
        path TEXT NOT NULL,                                 -- where it was when first seen
        created_at TEXT NOT NULL
      );
      CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id),
        parent_id INTEGER REFERENCES messages (id),
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        author TEXT,                                        -- the rater who wrote it (user/system turns, corrections)
        edit_of INTEGER REFERENCES messages (id),           -- a correction: the reply it corrects (its sibling)
        checkpoint_hash TEXT REFERENCES checkpoints (hash), -- a model reply: the weights that wrote it
        sampler TEXT,                                       -- a model reply: sampler settings (JSON object)
        seed INTEGER,                                       -- a model reply: the sampler's seed
        logprobs TEXT,                                      -- a model reply: per-token log-probs (JSON list)
        created_at TEXT NOT NULL
      );
      CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
      CREATE INDEX messages_by_parent ON messages (parent_id);
      CREATE TABLE judgments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('thumbs', 'flag', 'edit', 'choice', 'ranking')),
        rater TEXT NOT NULL CHECK (length(rater) > 0),
        message_id INTEGER NOT NULL REFERENCES messages (id), -- the judged reply (choice: A; ranking: the first shown)
        value TEXT,                                         -- thumbs: up|down; choice: a|b|tie|both_bad; else null
        reasons TEXT NOT NULL DEFAULT '[]',                 -- JSON list of labels (flag, thumbs)
        edit_message_id INTEGER REFERENCES messages (id),   -- edit: the corrected reply
        created_at TEXT NOT NULL
      );
      CREATE INDEX judgments_by_message ON judgments (message_id);
      CREATE TABLE judgment_items (
        judgment_id INTEGER NOT NULL REFERENCES judgments (id),
        position INTEGER NOT NULL,                          -- the order shown to the rater (choice: 0 = A, 1 = B)
        message_id INTEGER NOT NULL REFERENCES messages (id),
        rank INTEGER,                                       -- ranking: 0 = best; choice: null
        PRIMARY KEY (judgment_id, position)
      );
      CREATE INDEX judgment_items_by_message ON judgment_items (message_id);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The schema version of an open database. */
export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Bring `db` to the latest version of `migrations`, one transaction per step. A database newer than the code is
 * refused (nothing is written to it). Returns the versions it went from and to.
 */
export function migrate(
  db: Database.Database,
  file: string,
  migrations: readonly Migration[] = MIGRATIONS,
): { from: number; to: number } {
  const from = schemaVersion(db);
  if (from > migrations.length)
    throw new FeedbackDatabaseError(
      'E_FEEDBACK_SCHEMA',
      file,
      `schema version ${from} was written by a newer llm.ts; this one reads versions up to ${migrations.length}`,
    );
  for (let v = from; v < migrations.length; v++) {
    const m = migrations[v]!;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return { from, to: migrations.length };
}

function configure(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort: some platforms cannot open folders; the link itself is atomic
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Create a database file atomically: `init(db)` fills a fresh temp database next to `file`; it is then closed,
 * fsynced and linked to `file` (never over an existing file: if another process created `file` meanwhile, that one
 * is kept). If `init` throws, the temp file is removed and `file` does not appear.
 */
export function createDatabaseFile(file: string, init: (db: Database.Database) => void): void {
  makeDirSync(path.dirname(path.resolve(file)));
  const tmp = tempSibling(file, 'creating');
  try {
    const db = new (sqliteDriver())(tmp);
    try {
      init(db);
    } finally {
      db.close(); // folds the WAL into the file and removes -wal / -shm
    }
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        // a file system without hard links: rename (still atomic; only the race with another creator is lost)
        if (fs.existsSync(file)) throw e;
        fs.renameSync(tmp, file);
      }
    }
    fsyncDir(path.dirname(path.resolve(file)));
  } finally {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) fs.rmSync(f, { force: true });
  }
}

export interface OpenOptions {
  /** Create the file when it does not exist (default true); false: a missing file is an error. */
  create?: boolean;
  /** The migrations to apply (tests); default MIGRATIONS. */
  migrations?: readonly Migration[];
}

/** Open (creating or migrating as needed) a feedback database file; see the header. */
export function openDatabase(file: string, o: OpenOptions = {}): Database.Database {
  const migrations = o.migrations ?? MIGRATIONS;
  const Driver = sqliteDriver();
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch {
    st = undefined;
  }
  if (!st) {
    if (o.create === false)
      throw new FeedbackDatabaseError('E_FEEDBACK_MISSING', file, 'no such feedback database (expected a .db file)');
    createDatabaseFile(file, (db) => {
      db.pragma('journal_mode = WAL');
      db.pragma(`application_id = ${APPLICATION_ID}`);
      migrate(db, file, migrations);
    });
  } else if (!st.isFile()) {
    throw new FeedbackDatabaseError('E_FEEDBACK_NOT_DB', file, 'is a folder, not a feedback database file');
  }
  let db: Database.Database;
  try {
    db = new Driver(file, { fileMustExist: true });
    configure(db);
  } catch (e) {
    throw new FeedbackDatabaseError(
      'E_FEEDBACK_NOT_DB',
      file,
      `not a SQLite database (${(e as Error).message}); expected a feedback store made by llm.ts`,
    );
  }
  try {
    const app = db.pragma('application_id', { simple: true }) as number;
    if (app !== APPLICATION_ID) {
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
      if (tables.n > 0 || app !== 0)
        throw new FeedbackDatabaseError(
          'E_FEEDBACK_NOT_DB',
          file,
          'a SQLite database of something else (no llm.ts feedback application_id); refusing to write into it',
        );
      db.pragma(`application_id = ${APPLICATION_ID}`); // an empty database file: make it ours
    }
    migrate(db, file, migrations);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}
