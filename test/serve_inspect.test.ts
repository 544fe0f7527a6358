// POST /v1/inspect (src/server/inspect_route.ts): the views of `llmts inspect` for a conversation and a reply the
// server produced. Checked against an independent path, the server's own chat completion with logprobs: the last
// layer of the logit lens after the prompt must give the probabilities /v1/chat/completions reported for the reply's
// first token (two code paths: the captured full forward vs the KV-cached decoder, both from the same prompt building).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import type { PageData } from '../src/inspect/page_client.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import type { ServedModel } from '../src/server/served_model.js';
import { makeTinyModel } from './sft_helpers.js';

const TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let dir: string;
let served: ServedModel;
let server: LlmServer;
let base: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-inspect-'));
  await makeTinyModel(dir, { context: 256 });
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, chat_template: TEMPLATE }));
  served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
  server = createServer({ served, port: 0, maxTokens: 64 });
  base = await server.listen();
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const post = (body: unknown) =>
  fetch(`${base}/v1/inspect`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('POST /v1/inspect', () => {
  it("the lens's last layer after the prompt gives the chat completion's top logprobs of its first token", async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'the king' }];
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 6,
      seed: 7,
      temperature: 1,
      logprobs: true,
      top_logprobs: 5,
    });
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp.length).toBeGreaterThan(0);
    // the prompt alone: its last position's distribution chose the reply's first token
    const res = await post({ messages, format: 'json', top_k: 5 });
    expect(res.status).toBe(200);
    const d = (await res.json()) as PageData;
    const T = d.tokens.length;
    expect(d.lens.length).toBe(d.model.layers + 1);
    expect(d.model.vocab).toBe(served.model.config.vocabSize);
    const last = d.lens[d.lens.length - 1]!;
    const probs = last.probs.slice((T - 1) * d.topk, T * d.topk);
    const top = lp[0]!.top_logprobs;
    expect(top.length).toBe(5);
    // the same top probabilities, most likely first (the lens keeps 5 significant digits)
    for (let j = 0; j < 5; j++) expect(Math.abs(probs[j]! - Math.exp(top[j]!.logprob))).toBeLessThan(2e-6);
    // a reply is appended as plain text after the prompt: the prompt's positions are unchanged
    const reply = 'ab c';
    const withReply = (await (await post({ messages, reply, format: 'json', top_k: 5 })).json()) as PageData;
    expect(withReply.ids.slice(0, T)).toEqual(d.ids);
    expect(withReply.ids.slice(T)).toEqual(served.codec.encodePlain!(reply));
    const last2 = withReply.lens[withReply.lens.length - 1]!;
    expect(last2.probs.slice((T - 1) * d.topk, T * d.topk)).toEqual(probs);
    // the attention rows are distributions over the keys up to the query (causal)
    const bytes = Buffer.from(d.attention, 'base64');
    const a = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
    for (let q = 0; q < T; q++) {
      let s = 0;
      for (let k = 0; k < T; k++) {
        const v = a[q * T + k]! / 65535;
        if (k > q) expect(v).toBe(0);
        s += v;
      }
      expect(s).toBeCloseTo(1, 2);
    }
  }, 60_000);

  it('answers the offline page by default, untrusted text stays data', async () => {
    const res = await post({ messages: [{ role: 'user', content: '<script>alert(1)</script>' }] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('Content-Security-Policy');
    expect(html).not.toContain('<script>alert(1)</script>');
  }, 30_000);

  it('bad requests are OpenAI errors naming the field', async () => {
    const cases: [unknown, number, string][] = [
      [{ messages: [] }, 400, 'messages'],
      [{ messages: [{ role: 'user', content: 'hi' }], format: 'pdf' }, 400, 'format'],
      [{ messages: [{ role: 'user', content: 'hi' }], top_k: 99 }, 400, 'top_k'],
      [{ messages: [{ role: 'user', content: 'hi' }], model: 'other' }, 404, 'model'],
      [{ messages: [{ role: 'user', content: 'hi' }], colour: 1 }, 400, 'colour'],
      [{ messages: [{ role: 'user', content: 'x'.repeat(400) }] }, 400, 'messages'],
    ];
    for (const [body, status, param] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      const e = (await res.json()) as { error: { param: string | null } };
      expect(e.error.param).toBe(param);
    }
    const get = await fetch(`${base}/v1/inspect`);
    expect(get.status).toBe(405);
  }, 30_000);
});
