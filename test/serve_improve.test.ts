// "Improve the model" (src/server/improve_job.ts) over HTTP: with nothing to learn it refuses (400); with a correction
// a choice and thumbs in the store it exports them, runs `llmts sft`, `llmts dpo` then `llmts kto` (2 steps each, in
// child processes),
// refuses a second start while running (409), and ends with a checkpoint folder the server could serve.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { feedbackRoute, replyRecorder } from '../src/server/feedback_api.js';
import { ImproveJob, improveRoute } from '../src/server/improve_job.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { switchServedModel } from '../src/server/switch_model.js';
import { ensureCliBuilt } from './helpers.js';
import { makeTinyModel } from './sft_helpers.js';

let tmp: string;
let modelDir: string;
let store: FeedbackStore;
let server: LlmServer;
let url: string;
let jobs = 0;

beforeAll(async () => {
  ensureCliBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-improve-'));
  modelDir = path.join(tmp, 'tiny');
  await makeTinyModel(modelDir);
  store = FeedbackStore.open(path.join(tmp, 'f.sqlite'));
  const served = await loadServedModel(modelDir, { backend: 'ref', modelName: 'tiny' });
  const job = new ImproveJob({
    store,
    modelDir,
    outDir: path.join(tmp, 'runs'),
    backend: 'ref',
    name: () => (jobs++ === 0 ? 'imp' : `imp${jobs}`),
    switchTo: async (dir) =>
      switchServedModel(server.state, await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' }), 2),
  });
  server = createServer({ served, port: 0, routes: [feedbackRoute(store), improveRoute(job)] });
  url = await server.listen();
}, 120_000);

afterAll(async () => {
  await server?.close();
  store?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const start = (body: unknown = { steps: 2 }) =>
  fetch(`${url}/api/improve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** The job once it is no longer running (polled as the page polls). */
async function finished(): Promise<{ state: string; log: string[]; checkpoint: string | null }> {
  for (;;) {
    const job = (await (await fetch(`${url}/api/improve`)).json()) as {
      state: string;
      log: string[];
      checkpoint: string | null;
    };
    if (job.state !== 'running') return job;
    await new Promise((res) => setTimeout(res, 250));
  }
}

describe('POST /api/improve', () => {
  it('refuses with nothing to learn and with bad steps', async () => {
    const r = await start();
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/nothing to learn from yet/);
    expect((await start({ steps: 0 })).status).toBe(400);
    expect((await start({ step: 2 })).status).toBe(400);
    for (const lr of [0, 2, '1e-3']) {
      const bad = await start({ steps: 2, lr });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('lr');
    }
    const badLora = await start({ steps: 2, lora: 'yes' });
    expect(badLora.status).toBe(400);
    expect(((await badLora.json()) as { error: { param: string } }).error.param).toBe('lora');
  });

  it('trains SFT on the corrections, DPO on the choices, then KTO on the thumbs, and names the checkpoint', async () => {
    const record = replyRecorder(store, modelDir);
    const c = store.createConversation();
    for (const color of ['red', 'blue']) {
      const u = store.addMessage({ conversationId: c.id, parentId: null, role: 'user', content: `color ${color}` });
      const a = record({ parentId: u.id, content: `I like ${color}?`, seed: 1 });
      const b = record({ parentId: u.id, content: `I like ${color}!`, seed: 2 });
      store.addJudgment({ kind: 'choice', rater: 'ann', messageIds: [a.id, b.id], value: 'b' });
      store.addJudgment({ kind: 'edit', rater: 'ann', messageId: a.id, content: `I like ${color}.` });
      store.addJudgment({ kind: 'thumbs', rater: 'bob', messageId: b.id, value: 'up' });
      store.addJudgment({ kind: 'thumbs', rater: 'bob', messageId: a.id, value: 'down' });
    }
    const r = await start();
    expect(r.status).toBe(202);
    expect(await r.json()).toMatchObject({ state: 'running', rows: { sft: 2, preference: 4, kto: 4 } });
    expect((await start()).status).toBe(409);
    const job = await finished();
    expect(job.state, job.log.join('\n')).toBe('done');
    const runs = path.join(tmp, 'runs');
    expect(job.checkpoint).toBe(path.join(runs, 'imp-kto', 'checkpoint'));
    expect(job.log.some((l) => l.startsWith(`$ llmts sft ${modelDir} `))).toBe(true);
    expect(job.log.some((l) => l.startsWith(`$ llmts dpo ${path.join(runs, 'imp-sft', 'checkpoint')} `))).toBe(true);
    expect(job.log.some((l) => l.startsWith(`$ llmts kto ${path.join(runs, 'imp-dpo', 'checkpoint')} `))).toBe(true);
    expect(fs.existsSync(path.join(job.checkpoint!, 'model.safetensors'))).toBe(true);
    const sft = fs
      .readFileSync(path.join(runs, 'imp', 'sft.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(sft.map((l) => (JSON.parse(l) as { messages: { content: string }[] }).messages[1]!.content)).toEqual([
      'I like red.',
      'I like blue.',
    ]);
  }, 180_000);

  it('switches the server to the improved checkpoint: same model name, the new weights’ fingerprint', async () => {
    const ask = async () => {
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'color red' }], max_tokens: 2 }),
      });
      expect(r.status).toBe(200);
      return ((await r.json()) as { system_fingerprint: string }).system_fingerprint;
    };
    const before = await ask();
    // a page of another origin may send a form or text/plain without asking: refused
    const form = await fetch(`${url}/api/improve/switch`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
    const text = await fetch(`${url}/api/improve`, { method: 'POST', body: '{"steps": 2}' }); // text/plain
    expect(text.status).toBe(415);
    // refused where the server reads every body (server.ts), the one place that holds bodies to JSON
    for (const r of [form, text])
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
    expect(await ask()).toBe(before);
    const r = await fetch(`${url}/api/improve/switch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { serving: string; checkpoint: string };
    expect(j.serving).toBe(j.checkpoint);
    const after = await ask();
    expect(after).toMatch(/^fp_[0-9a-f]{16}$/);
    expect(after).not.toBe(before);
  }, 60_000);

  it('with lora: the runs train LoRA adapters (10× each lr), each on the last; the server serves the adapter folder', async () => {
    const r = await start({ steps: 2, lora: true });
    expect(r.status).toBe(202);
    const job = await finished();
    expect(job.state, job.log.join('\n')).toBe('done');
    const sftLine = job.log.find((l) => l.startsWith('$ llmts sft '))!;
    expect(sftLine).toContain('--usePeft');
    expect(sftLine).toContain('--lr=0.0002'); // SFT's 2e-5 × 10
    expect(fs.existsSync(path.join(job.checkpoint!, 'adapter_model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(job.checkpoint!, 'model.safetensors'))).toBe(false);
    const sw = await fetch(`${url}/api/improve/switch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(sw.status).toBe(200);
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'color red' }], max_tokens: 2 }),
    });
    expect(chat.status).toBe(200);
  }, 180_000);

  it('a request that waited across a switch answers 503 model_switched; the next one is served', async () => {
    const chat = (max: number) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'color red' }], max_tokens: max }),
      });
    const next = await loadServedModel(modelDir, { backend: 'ref', modelName: 'tiny' });
    // hold the queue (as a long reply would) while the switch and then a request line up behind it
    let release!: () => void;
    const held = server.state.queue.run(new AbortController().signal, () => new Promise<void>((r) => (release = r)));
    const switched = switchServedModel(server.state, next, 2);
    const waited = chat(2);
    await new Promise((r) => setTimeout(r, 100)); // the request has arrived and waits behind the switch
    release();
    await held;
    await switched;
    const w = await waited;
    expect(w.status).toBe(503);
    expect(((await w.json()) as { error: { code: string } }).error.code).toBe('model_switched');
    expect((await chat(2)).status).toBe(200);
  }, 60_000);
});
