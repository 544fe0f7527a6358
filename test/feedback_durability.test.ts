/**
 * Durability of the feedback store: a child process (test/feedback_writer.mjs) writes a stream of feedback actions,
 * printing each judgment's id once its transaction has committed, and is killed with SIGKILL in the middle. On
 * reopening, every acknowledged judgment is there as it was acknowledged, each edit has both its correction and its
 * judgment (one transaction), and `PRAGMA integrity_check` says ok.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeedbackStore } from '../src/feedback/store.js';
import { fakeCheckpoint } from './feedback_helpers.js';
import { ensureCliBuilt } from './helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-feedback-kill-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('feedback store durability', () => {
  it('keeps every acknowledged judgment when the writer is killed with SIGKILL mid-stream', async () => {
    ensureCliBuilt();
    const file = path.join(dir, 'feedback.db');
    const ck = fakeCheckpoint(path.join(dir, 'ck'), 'weights');
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'feedback_writer.mjs'), file, ck], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: { id: number; kind: string; i: number }[] = [];
    let stderr = '';
    let partial = '';
    let walAtKill = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exit = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('ready')) continue;
        const [id, kind, i] = l.split(' ');
        acked.push({ id: Number(id), kind: kind!, i: Number(i) });
      }
      if (acked.length >= 300 && !child.killed) {
        walAtKill = fs.existsSync(`${file}-wal`);
        child.kill('SIGKILL');
      }
    });
    const signal = await exit;
    expect(signal, stderr).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(300);
    expect(walAtKill).toBe(true); // killed with a live WAL: reopening recovers from it

    const store = FeedbackStore.open(file, { create: false });
    try {
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(store.db.pragma('foreign_key_check')).toEqual([]);
      const all = new Map(store.allJudgments().map((j) => [j.id, j]));
      for (const a of acked) {
        const j = all.get(a.id);
        expect(j, `judgment ${a.id} (action ${a.i}) was acknowledged`).toBeDefined();
        expect(j!.kind).toBe(a.kind);
        if (a.kind === 'edit') expect(store.message(j!.editMessageId!).content).toBe(`correction ${a.i}`);
        if (a.kind === 'thumbs') expect(j!.value).toBe(a.i % 2 ? 'up' : 'down');
      }
      // at most the one action in flight at the kill committed without being acknowledged
      expect(all.size - acked.length).toBeLessThanOrEqual(1);
      // each edit was one transaction: no correction without its judgment, no judgment without its correction
      const corrections = [...store.allMessages().values()].filter((m) => m.editOf !== null).map((m) => m.id);
      const edits = [...all.values()].filter((j) => j.kind === 'edit').map((j) => j.editMessageId);
      expect(corrections.sort()).toEqual(edits.sort());
    } finally {
      store.close();
    }
  }, 120_000);
});
