// `llmts serve` with its feedback store: a chat completion that names its stored user message (`"llmts":
// {"parent_id"}`, src/server/reply_link.ts) is recorded before the response ends, the response naming the stored
// replies (plain and streamed); a link that does not match the conversation is refused before anything generates; a
// request without one records nothing. Then the command as a process: the store at its default place, the feedback
// API at /api, and `kill -9` in the middle of a stream of judgments posted by four clients — on reopening every
// acknowledged (201) judgment is there and `PRAGMA integrity_check` says ok; `--no-db` keeps nothing.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { feedbackRoute, replyRecorder } from '../src/server/feedback_api.js';
import { replyLinker } from '../src/server/reply_link.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { ensureCliBuilt } from './helpers.js';
import { makeTinyModel } from './sft_helpers.js';

const BIN = path.join(import.meta.dirname, '..', 'bin', 'llmts.js');
let tmp: string;
let modelDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-feedback-'));
  modelDir = path.join(tmp, 'tiny');
  await makeTinyModel(modelDir, { context: 128 });
}, 60_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('chat completions linked to the store', () => {
  let store: FeedbackStore;
  let server: LlmServer;
  let url: string;
  let conv: number;
  let user: number;
  const MSGS = [{ role: 'user', content: 'color red' }];

  beforeAll(async () => {
    store = FeedbackStore.open(path.join(tmp, 'linked.sqlite'));
    const served = await loadServedModel(modelDir, { backend: 'ref', modelName: 'tiny' });
    server = createServer({
      served,
      port: 0,
      routes: [feedbackRoute(store)],
      replyLinker: replyLinker(store, replyRecorder(store, modelDir)),
    });
    url = await server.listen();
    conv = (await post(`${url}/api/conversations`, { title: 't' })).json['id'] as number;
    user = (
      await post(`${url}/api/conversations/${conv}/messages`, { parent_id: null, role: 'user', content: 'color red' })
    ).json['id'] as number;
  });
  afterAll(async () => {
    await server?.close();
    store?.close();
  });

  it('records each choice before answering, with its seed, sampler and log-probs, and names them', async () => {
    const r = await post(`${url}/v1/chat/completions`, {
      model: 'tiny',
      messages: MSGS,
      max_tokens: 5,
      n: 2,
      seed: 11,
      temperature: 0.7,
      logprobs: true,
      top_logprobs: 2,
      llmts: { parent_id: user },
    });
    expect(r.status).toBe(200);
    const link = r.json['llmts'] as { conversation_id: number; parent_id: number; message_ids: number[] };
    expect(link.conversation_id).toBe(conv);
    expect(link.parent_id).toBe(user);
    expect(link.message_ids).toHaveLength(2);
    const choices = r.json['choices'] as { message: { content: string }; logprobs: { content: { token: string }[] } }[];
    link.message_ids.forEach((id, i) => {
      const m = store.message(id);
      expect(m.role).toBe('assistant');
      expect(m.parentId).toBe(user);
      expect(m.content).toBe(choices[i]!.message.content);
      expect(m.seed).toBe(11 + i);
      expect(m.sampler).toMatchObject({ temperature: 0.7, max_tokens: 5 });
      expect(m.logprobs!.map((t) => t.token)).toEqual(choices[i]!.logprobs.content.map((t) => t.token));
      expect(m.logprobs![0]!.top_logprobs).toHaveLength(2);
      expect(m.checkpointHash).toMatch(/^[0-9a-f]{64}$/);
    });
  });

  it('a stream sends the link in a chunk of its own before [DONE]; log-probs are kept even when not asked', async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: MSGS, max_tokens: 4, stream: true, llmts: { parent_id: user } }),
    });
    const events = (await res.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    const last = JSON.parse(events.at(-2)!) as { choices: unknown[]; llmts: { message_ids: number[] } };
    expect(last.choices).toEqual([]);
    const text = events
      .slice(0, -2)
      .map((e) => (JSON.parse(e) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
      .join('');
    const m = store.message(last.llmts.message_ids[0]!);
    expect(m.content).toBe(text);
    expect(m.logprobs!.length).toBeGreaterThan(0);
    expect(m.logprobs!.every((t) => t.logprob <= 0)).toBe(true);
  });

  it('refuses a link that does not fit, before generating; without one records nothing', async () => {
    const before = store.messagesOf(conv).length;
    const bad = async (llmts: unknown, messages = MSGS) =>
      post(`${url}/v1/chat/completions`, { model: 'tiny', messages, max_tokens: 2, llmts });
    const unknown = await bad({ parent_id: 9999 });
    expect(unknown.status).toBe(404);
    expect((unknown.json['error'] as { param: string }).param).toBe('llmts.parent_id');
    const other = await bad({ parent_id: user }, [{ role: 'user', content: 'color blue' }]);
    expect(other.status).toBe(400);
    expect((other.json['error'] as { message: string }).message).toMatch(/not the stored conversation/);
    const reply = store.messagesOf(conv).find((m) => m.role === 'assistant')!;
    expect((await bad({ parent_id: reply.id })).status).toBe(400); // an assistant message answers nothing
    expect((await bad({ parent_id: user, conversation: 1 })).status).toBe(400);
    expect((await bad('12')).status).toBe(400);
    const plain = await post(`${url}/v1/chat/completions`, { model: 'tiny', messages: MSGS, max_tokens: 2 });
    expect(plain.status).toBe(200);
    expect(plain.json['llmts']).toBeUndefined();
    expect(store.messagesOf(conv).length).toBe(before);
  });
});

/** Start `llmts serve` on a free port; its URL and the process. */
async function serve(dir: string, ...extra: string[]): Promise<{ p: ChildProcess; url: string; out: () => string }> {
  const p = spawn(
    process.execPath,
    [BIN, 'serve', dir, '--port', '0', '--backend', 'ref', '--quiet', '--model-name', 'tiny', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  p.stderr!.on('data', (d) => (err += String(d)));
  const url = await new Promise<string>((resolve, reject) => {
    p.stdout!.on('data', (d) => {
      out += String(d);
      const m = /llmts serve: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m && out.includes('feedback store')) resolve(m[1]!);
    });
    p.on('exit', (c) => reject(new Error(`exited with ${c}: ${err}`)));
  });
  return { p, url, out: () => out };
}

describe('llmts serve --db (the command)', () => {
  beforeAll(() => ensureCliBuilt(), 120_000);

  it('keeps every acknowledged judgment when the server is killed with SIGKILL mid-stream', async () => {
    const { p, url, out } = await serve(modelDir);
    const file = path.join(modelDir, 'feedback.sqlite');
    expect(out()).toContain(`feedback store: ${file}`);
    const exited = new Promise<NodeJS.Signals | null>((r) => p.on('exit', (_c, s) => r(s)));
    const conv = (await post(`${url}/api/conversations`, {})).json['id'] as number;
    const user = (
      await post(`${url}/api/conversations/${conv}/messages`, { parent_id: null, role: 'user', content: 'hi' })
    ).json['id'] as number;
    const chat = await post(`${url}/v1/chat/completions`, {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      llmts: { parent_id: user },
    });
    const reply = (chat.json['llmts'] as { message_ids: number[] }).message_ids[0]!;
    const acked: { id: number; rater: string; value: string }[] = [];
    let killed = false;
    let failed = 0;
    const writer = async (w: number) => {
      for (let i = 0; !killed; i++) {
        const value = i % 2 ? 'up' : 'down';
        const rater = `rater${w}`;
        try {
          const r = await post(`${url}/api/judgments`, { kind: 'thumbs', rater, message_id: reply, value });
          if (r.status === 201) acked.push({ id: r.json['id'] as number, rater, value });
        } catch {
          failed++; // the connection died with the server
        }
        if (acked.length >= 200 && !killed) {
          killed = true;
          p.kill('SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(writer));
    expect(await exited).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(200);

    const store = FeedbackStore.open(file, { create: false });
    try {
      expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
      const all = new Map(store.allJudgments().map((j) => [j.id, j]));
      for (const a of acked) {
        const j = all.get(a.id);
        expect(j, `judgment ${a.id} was acknowledged`).toBeDefined();
        expect([j!.rater, j!.value, j!.messageId]).toEqual([a.rater, a.value, reply]);
      }
      // at most the requests in flight at the kill (one per writer) committed unacknowledged
      expect(all.size - acked.length).toBeLessThanOrEqual(4);
      expect(store.message(reply).parentId).toBe(user);
    } finally {
      store.close();
    }
    expect(failed).toBeLessThanOrEqual(4);
  }, 60_000);

  it('--no-db keeps nothing: no /api, no file, and a link is ignored', async () => {
    const folder = path.join(tmp, 'nodb');
    fs.cpSync(modelDir, folder, { recursive: true, filter: (s) => !s.includes('feedback.sqlite') });
    const { p, url, out } = await serve(folder, '--no-db');
    const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    try {
      expect(out()).toContain('feedback store: none (--no-db)');
      expect((await fetch(`${url}/api/conversations`)).status).toBe(404);
      const r = await post(`${url}/v1/chat/completions`, {
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 2,
        llmts: { parent_id: 1 },
      });
      expect(r.status).toBe(200);
      expect(r.json['llmts']).toBeUndefined();
    } finally {
      p.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(fs.readdirSync(folder).filter((f) => f.startsWith('feedback'))).toEqual([]);
  }, 60_000);
});
