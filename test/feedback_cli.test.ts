/**
 * `llmts feedback export|stats` (src/cli/feedback.ts) through the command table of src/cli/main.ts: the files and
 * stdout it writes, the rows read back as the alignment commands read them, the counts, --help, and bad input as one
 * line with exit code 1 (no database created, no file written).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readTrlDataset } from '../src/data/trl.js';
import { main } from '../src/cli/main.js';
import { exportFeedback } from '../src/feedback/export.js';
import { feedbackStats } from '../src/feedback/stats.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { replyRecorder } from '../src/server/feedback_api.js';
import { buildScenario, fakeClock } from './feedback_helpers.js';
import { makeTinyModel } from './sft_helpers.js';

let dir: string;
let db: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-feedback-cli-'));
  db = path.join(dir, 'feedback.db');
  const store = FeedbackStore.open(db, { now: fakeClock() });
  buildScenario(store, dir);
  store.close();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Run `llmts …` in this process; what it printed to stdout and stderr. */
async function llmts(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += `${a.join(' ')}\n`)),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += `${a.join(' ')}\n`)),
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true)),
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true)),
  ];
  try {
    const code = await main(argv);
    // calling main() many times in one process adds listeners to stdout: Node's warning about that is not ours
    err = err.replace(/^\(node:\d+\) MaxListenersExceededWarning.*\n(\(Use `node --trace-warnings.*\n)?/gm, '');
    return { code, out, err };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

describe('llmts feedback', () => {
  it('export -o writes each TRL type atomically, as the store exports it, readable by the alignment commands', async () => {
    const store = FeedbackStore.open(db, { create: false });
    const kinds = {
      sft: 'language_modeling',
      preference: 'preference',
      kto: 'unpaired_preference',
      ranking: 'ranking',
    };
    for (const [type, kind] of Object.entries(kinds)) {
      const out = path.join(dir, 'out', `${type}.jsonl`);
      const r = await llmts('feedback', 'export', '--db', db, '--type', type, '-o', out);
      expect(r.code, r.err).toBe(0);
      const expected = exportFeedback(store, type as 'sft');
      expect(readTrlDataset(out, { expect: [kind as 'ranking'] }).rows).toEqual(expected.rows);
      expect(r.err).toContain(`${expected.rows.length} ${type} rows → ${out}`);
    }
    store.close();
    expect(fs.readdirSync(path.join(dir, 'out')).sort()).toEqual([
      'kto.jsonl',
      'preference.jsonl',
      'ranking.jsonl',
      'sft.jsonl',
    ]);
    const pref = await llmts('feedback', 'export', '--db', db, '--type', 'preference');
    expect(pref.out).toBe(fs.readFileSync(path.join(dir, 'out', 'preference.jsonl'), 'utf8'));
    expect(pref.err).toMatch(
      /7 preference rows \(from edit 3, choice 1, tie skipped 1, both_bad skipped 1, ranking 1, ranking pairs 3, superseded 1\)/,
    );
    // one rater's judgments: carol's correction is her last word (dave's correction of it is dave's)
    const carol = await llmts('feedback', 'export', '--db', db, '--type', 'sft', '--rater', 'carol');
    expect(carol.code, carol.err).toBe(0);
    expect(JSON.parse(carol.out).messages.at(-1)).toEqual({ role: 'assistant', content: 'Berlin.' });
    const bob = await llmts(
      'feedback',
      'export',
      '--db',
      db,
      '--type',
      'sft',
      '--rater',
      'bob',
      '-o',
      path.join(dir, 'bob.jsonl'),
    );
    expect(bob.code).toBe(1);
    expect(bob.err.trim()).toMatch(
      /^llmts feedback: --type: no sft rows in .* from rater "bob" \(superseded 1\); 'llmts feedback stats/,
    );
    expect(fs.existsSync(path.join(dir, 'bob.jsonl'))).toBe(false);
  });

  it('stats prints the counts, and --json the same numbers', async () => {
    const t = await llmts('feedback', 'stats', '--db', db);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/1 conversations, 10 messages .* 12 judgments/);
    expect(t.out).toMatch(/thumbs +4 +\(up 2, down 2\)/);
    expect(t.out).toMatch(/oracle:length +1 +\(ranking 1\)/);
    const j = await llmts('feedback', 'stats', '--db', db, '--json');
    expect(JSON.parse(j.out)).toMatchObject({ judgments: 12, byKind: { edit: 3 }, byCheckpoint: [{ replies: 2 }, {}] });
  });

  it('--help prints and runs nothing; bad input is one line and exit code 1', async () => {
    const h = await llmts('feedback', 'export', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/--type <type>/);
    expect(h.out).toMatch(/sft, preference, kto, ranking|"sft", "preference", "kto", "ranking"/);
    const missing = path.join(dir, 'missing.db');
    const m = await llmts('feedback', 'stats', '--db', missing);
    expect(m.code).toBe(1);
    expect(m.err.trim()).toBe(`llmts feedback: ${missing}: no such feedback database (expected a .db file)`);
    expect(fs.existsSync(missing)).toBe(false);
    const t = await llmts('feedback', 'export', '--db', db, '--type', 'dpo');
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/argument 'dpo' is invalid. Allowed choices are sft, preference, kto, ranking/);
    const notDb = path.join(dir, 'out', 'sft.jsonl');
    const n = await llmts('feedback', 'stats', '--db', notDb);
    expect(n.code).toBe(1);
    expect(n.err).toMatch(/not a SQLite database/);
    expect(n.err.trim().split('\n')).toHaveLength(1);
    const w = await llmts('feedback', 'export', '--db', db, '--type', 'kto', '-o', '/proc/llmts-nope/kto.jsonl');
    expect(w.code).toBe(1);
    expect(w.err.trim()).toMatch(/^llmts feedback: cannot mkdir \/proc\/llmts-nope.*Choose a path you can write to\.$/);
    const none = await llmts('feedback');
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/export \[options\] +write the judgments as TRL JSONL/);
  });
});

describe('the exported files train', () => {
  it('llmts sft and llmts dpo take the exported sft and preference files of replies by a real checkpoint', async () => {
    const model = path.join(dir, 'tiny');
    await makeTinyModel(model);
    const file = path.join(dir, 'tiny-feedback.db');
    const store = FeedbackStore.open(file);
    const record = replyRecorder(store, model);
    const c = store.createConversation();
    for (const [i, color] of ['red', 'blue', 'green', 'pink'].entries()) {
      const u = store.addMessage({ conversationId: c.id, parentId: null, role: 'user', content: `color ${color}` });
      const a = record({ parentId: u.id, content: `I like ${color}!`, seed: i });
      const b = record({ parentId: u.id, content: `I like ${color}?`, seed: 100 + i });
      store.addJudgment({ kind: 'choice', rater: 'oracle:dot', messageIds: [a.id, b.id], value: i % 2 ? 'a' : 'b' });
      store.addJudgment({ kind: 'edit', rater: 'oracle:dot', messageId: a.id, content: `I like ${color}.` });
    }
    const weights = fs.readFileSync(path.join(model, 'model.safetensors'));
    const hash = crypto.createHash('sha256').update(weights).digest('hex');
    expect(feedbackStats(store).byCheckpoint).toEqual([{ hash, path: model, replies: 8, judgments: 8 }]);
    store.close();
    const prefs = path.join(dir, 'tiny-prefs.jsonl');
    const fixes = path.join(dir, 'tiny-sft.jsonl');
    expect((await llmts('feedback', 'export', '--db', file, '--type', 'preference', '-o', prefs)).code).toBe(0);
    expect((await llmts('feedback', 'export', '--db', file, '--type', 'sft', '-o', fixes)).code).toBe(0);
    const runs = path.join(dir, 'runs');
    const common = ['--preset=tiny', '--maxSteps=2', '--backend=ref', `--outDir=${runs}`, '--report=false'];
    const d = await llmts('dpo', model, prefs, `--evalData=${prefs}`, '--name=fb-dpo', ...common);
    expect(d.code, d.err).toBe(0);
    expect(fs.existsSync(path.join(runs, 'fb-dpo', 'checkpoint', 'model.safetensors'))).toBe(true);
    const s = await llmts('sft', model, fixes, `--evalData=${fixes}`, '--name=fb-sft', ...common);
    expect(s.code, s.err).toBe(0);
    expect(fs.existsSync(path.join(runs, 'fb-sft', 'checkpoint', 'model.safetensors'))).toBe(true);
  }, 60_000);
});
