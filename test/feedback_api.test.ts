/**
 * The feedback HTTP API (src/server/feedback_api.ts) through a real socket: a tiny node:http server built here
 * implements the RouteContext of src/server/routes.ts (bounded JSON body, HttpError → OpenAI's error object), as
 * `llmts serve` will. A rater's session — a conversation, the server recording model replies, every judgment kind —
 * ends in exactly the exported rows; bad requests get 400 naming the field, unknown ids 404, wrong methods 405.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportFeedback } from '../src/feedback/export.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { feedbackRoute, replyRecorder } from '../src/server/feedback_api.js';
import { HttpError, type Route, type RouteContext } from '../src/server/routes.js';
import { fakeCheckpoint, fakeClock } from './feedback_helpers.js';

const BODY_LIMIT = 64 * 1024;

/** A minimal server around routes: what llmts serve does, without the OpenAI API. */
function tinyServer(routes: Route[]): http.Server {
  return http.createServer(async (req, res) => {
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const ctx: RouteContext = {
      req,
      res,
      url: new URL(req.url ?? '/', 'http://127.0.0.1'),
      method: (req.method ?? 'GET').toUpperCase(),
      signal: ac.signal,
      json: async () => {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of req as AsyncIterable<Buffer>) {
          n += c.length;
          if (n > BODY_LIMIT) throw new HttpError(413, `request body over ${BODY_LIMIT} bytes`);
          chunks.push(c);
        }
        try {
          return JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (e) {
          throw new HttpError(400, `body is not JSON: ${(e as Error).message}`);
        }
      },
    };
    try {
      for (const r of routes) if (await r(ctx)) return;
      throw new HttpError(
        404,
        `no route for ${ctx.method} ${ctx.url.pathname}`,
        'invalid_request_error',
        null,
        'not_found',
      );
    } catch (e) {
      const h = e instanceof HttpError ? e : new HttpError(500, String(e), 'server_error');
      res.writeHead(h.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: h.message, type: h.type, param: h.param, code: h.code } }));
    }
  });
}

let dir: string;
let store: FeedbackStore;
let server: http.Server;
let base: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-feedback-api-'));
  store = FeedbackStore.open(path.join(dir, 'feedback.db'), { now: fakeClock() });
  server = tinyServer([feedbackRoute(store)]);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the answers are JSON, checked field by field with toMatchObject
async function call(method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(base + p, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

describe('feedback API', () => {
  it('keeps a conversation, the replies the server records, and every judgment kind; exports them exactly', async () => {
    const record = replyRecorder(store, fakeCheckpoint(path.join(dir, 'ck'), 'w'));
    const c = await call('POST', '/api/conversations', { title: 'greetings' });
    expect(c.status).toBe(201);
    expect(c.json).toMatchObject({ object: 'feedback.conversation', title: 'greetings', message_count: 0 });
    const cid = c.json.id as number;
    const u = await call('POST', `/api/conversations/${cid}/messages`, {
      parent_id: null,
      role: 'user',
      content: 'Say hi',
      author: 'alice',
    });
    expect(u.status).toBe(201);
    expect(u.json).toMatchObject({ role: 'user', parent_id: null, author: 'alice', conversation_id: cid });
    // the server, when a generation ends
    const logprobs = [{ token: 'Hi', logprob: -0.1, top_logprobs: [{ token: 'Hello', logprob: -2.5 }] }];
    const r1 = record({ parentId: u.json.id, content: 'Hi', seed: 7, sampler: { temperature: 1 }, logprobs });
    const r2 = record({ parentId: u.json.id, content: 'Go away', seed: 8, sampler: { temperature: 1 } });
    const r3 = record({ parentId: u.json.id, content: 'Hello there!', seed: 9, sampler: { temperature: 1 } });

    const m = await call('GET', `/api/messages/${r1.id}`);
    expect(m.json).toMatchObject({ id: r1.id, role: 'assistant', seed: 7, logprobs, sampler: { temperature: 1 } });
    expect(m.json.checkpoint_hash).toMatch(/^[0-9a-f]{64}$/);

    const post = (b: unknown) => call('POST', '/api/judgments', b);
    const thumbs = await post({
      kind: 'thumbs',
      rater: 'alice',
      message_id: r2.id,
      value: 'down',
      reasons: ['not_appropriate'],
    });
    expect(thumbs.status).toBe(201);
    expect(thumbs.json).toMatchObject({
      object: 'feedback.judgment',
      kind: 'thumbs',
      value: 'down',
      reasons: ['not_appropriate'],
    });
    expect((await post({ kind: 'flag', rater: 'alice', message_id: r2.id, reasons: ['spam'] })).status).toBe(201);
    const edit = await post({ kind: 'edit', rater: 'alice', message_id: r2.id, content: 'Hi! How can I help?' });
    expect(edit.status).toBe(201);
    expect(edit.json.message).toMatchObject({
      role: 'assistant',
      edit_of: r2.id,
      parent_id: u.json.id,
      author: 'alice',
    });
    expect(edit.json.edit_message_id).toBe(edit.json.message.id);
    expect((await post({ kind: 'choice', rater: 'alice', message_ids: [r1.id, r2.id], value: 'a' })).status).toBe(201);
    const rank = await post({
      kind: 'ranking',
      rater: 'oracle:len',
      message_ids: [r1.id, r2.id, r3.id],
      ranking: [2, 0, 1],
    });
    expect(rank.status).toBe(201);
    expect(rank.json).toMatchObject({ message_ids: [r1.id, r2.id, r3.id], ranking: [2, 0, 1] });
    expect((await call('GET', `/api/judgments/${rank.json.id}`)).json).toEqual(rank.json);

    // a scripted rater posts a batch: one transaction
    const batch = await post({ judgments: [{ kind: 'thumbs', rater: 'oracle:len', message_id: r3.id, value: 'up' }] });
    expect(batch.status).toBe(400); // not at /api/judgments
    const ok = await call('POST', '/api/judgments/batch', {
      judgments: [{ kind: 'thumbs', rater: 'oracle:len', message_id: r3.id, value: 'up' }],
    });
    expect(ok.status).toBe(201);
    expect(ok.json).toMatchObject({
      object: 'list',
      data: [{ kind: 'thumbs', rater: 'oracle:len', message_id: r3.id }],
    });

    const got = await call('GET', `/api/conversations/${cid}`);
    expect(got.json.conversation).toMatchObject({ id: cid, message_count: 5 });
    expect(got.json.messages.map((x: { content: string }) => x.content)).toEqual([
      'Say hi',
      'Hi',
      'Go away',
      'Hello there!',
      'Hi! How can I help?',
    ]);
    expect(got.json.judgments.map((x: { kind: string }) => x.kind)).toEqual([
      'thumbs',
      'flag',
      'edit',
      'choice',
      'ranking',
      'thumbs',
    ]);
    const list = await call('GET', '/api/conversations?limit=10');
    expect(list.json).toMatchObject({ object: 'list', data: [{ id: cid, message_count: 5 }] });

    const p = [{ role: 'user', content: 'Say hi' }];
    const a = (content: string) => [{ role: 'assistant', content }];
    expect(exportFeedback(store, 'preference').rows).toEqual([
      { prompt: p, chosen: a('Hi! How can I help?'), rejected: a('Go away') },
      { prompt: p, chosen: a('Hi'), rejected: a('Go away') },
      { prompt: p, chosen: a('Hello there!'), rejected: a('Hi') },
      { prompt: p, chosen: a('Hello there!'), rejected: a('Go away') },
      { prompt: p, chosen: a('Hi'), rejected: a('Go away') },
    ]);
    expect(exportFeedback(store, 'kto').rows).toEqual([
      { prompt: p, completion: a('Go away'), label: false },
      { prompt: p, completion: a('Hello there!'), label: true },
    ]);
    expect(exportFeedback(store, 'sft').rows).toEqual([{ messages: [...p, ...a('Hi! How can I help?')] }]);
  });

  it('answers bad requests with OpenAI error objects: 400 naming the field, 404, 405, 413', async () => {
    const c = (await call('POST', '/api/conversations', {})).json;
    const u = (
      await call('POST', `/api/conversations/${c.id}/messages`, { parent_id: null, role: 'user', content: 'x' })
    ).json;
    const before = store.allJudgments().length;
    const cases: [string, string, unknown, number, string | null, string | null][] = [
      [
        'POST',
        '/api/judgments',
        { kind: 'thumbs', rater: 'a', message_id: 12345, value: 'up' },
        404,
        'message_id',
        'E_UNKNOWN_MESSAGE',
      ],
      [
        'POST',
        '/api/judgments',
        { kind: 'thumbs', rater: 'a', message_id: u.id, value: 'up' },
        400,
        'message_id',
        'E_FEEDBACK_ROLE',
      ],
      [
        'POST',
        '/api/judgments',
        { kind: 'thumbs', rater: 'a', message_id: u.id, value: 'up', stars: 5 },
        400,
        'stars',
        null,
      ],
      ['POST', '/api/judgments', { kind: 'thumbs', message_id: u.id, value: 'up' }, 400, 'rater', 'E_FEEDBACK_RATER'],
      [
        'POST',
        '/api/judgments',
        { kind: 'ranking', rater: 'a', message_ids: ['1', 2], ranking: [0, 1] },
        400,
        'message_ids[0]',
        'E_FEEDBACK_FIELD',
      ],
      ['POST', '/api/judgments', [1, 2], 400, null, null],
      ['POST', '/api/judgments', '{"kind": ', 400, null, null],
      ['POST', '/api/judgments', { kind: 'x'.repeat(BODY_LIMIT) }, 413, null, null],
      [
        'POST',
        `/api/conversations/${c.id}/messages`,
        { parent_id: u.id, role: 'user', content: 'y' },
        400,
        'parent_id',
        'E_FEEDBACK_ROLE',
      ],
      [
        'POST',
        `/api/conversations/${c.id}/messages`,
        { parent_id: null, role: 'assistant', content: 'y' },
        400,
        'role',
        'E_FEEDBACK_ROLE',
      ],
      [
        'POST',
        '/api/conversations/999/messages',
        { parent_id: null, role: 'user', content: 'y' },
        404,
        'conversation_id',
        'E_UNKNOWN_CONVERSATION',
      ],
      ['GET', '/api/conversations/999', undefined, 404, 'conversation_id', 'E_UNKNOWN_CONVERSATION'],
      ['GET', '/api/judgments/999', undefined, 404, 'judgment_id', 'E_UNKNOWN_JUDGMENT'],
      [
        'POST',
        '/api/judgments/batch',
        {
          judgments: [
            { kind: 'flag', rater: 'o', message_id: u.id, reasons: ['pii'] },
            { kind: 'flag', rater: 'o', message_id: 999, reasons: ['pii'] },
          ],
        },
        404,
        'judgments[1].message_id',
        'E_UNKNOWN_MESSAGE',
      ],
      [
        'POST',
        '/api/judgments/batch',
        { judgments: [{ kind: 'flag', rater: 'o', msg: 1 }] },
        400,
        'judgments[0].msg',
        null,
      ],
      ['POST', '/api/judgments/batch', { judgments: [] }, 400, 'judgments', null],
      ['GET', '/api/conversations?limit=0', undefined, 400, 'limit', null],
      ['DELETE', `/api/conversations/${c.id}`, undefined, 405, null, 'method_not_allowed'],
      ['GET', '/api/nothing-here', undefined, 404, null, 'not_found'],
      ['GET', '/v1/models', undefined, 404, null, 'not_found'], // not the feedback route's: the next route's (none here)
    ];
    for (const [method, p, body, status, param, code] of cases) {
      const r = await call(method, p, body);
      const what = `${method} ${p} ${JSON.stringify(body)?.slice(0, 80)}`;
      expect(r.status, what).toBe(status);
      expect(r.json.error, what).toMatchObject({ type: 'invalid_request_error', param, code });
      expect(typeof r.json.error.message, what).toBe('string');
    }
    expect(store.allJudgments().length).toBe(before);
  });
});
