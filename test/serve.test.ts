// `llmts serve` (src/server/): the official `openai` npm client against a server on an ephemeral port, serving a tiny
// model with a tokenizer and a Jinja chat template. Replies are checked against the engine run directly (same prompt,
// same seed), log-probs against a teacher-forced forward of prompt + reply, errors against the client's error classes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Conversation } from '../src/chat/conversation.js';
import { stream } from '../src/generate/engine.js';
import type { DecoderModel } from '../src/generate/interfaces.js';
import { loadServedModel } from '../src/cli/serve.js';
import { StepBatcher } from '../src/generate/step_batcher.js';
import { GenerationQueue } from '../src/server/queue.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { chatStops, type ServedModel } from '../src/server/served_model.js';
import type { ChatCompletionRecord } from '../src/server/server_state.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { makeTinyModel } from './sft_helpers.js';

// A ChatML template that adds a default system prompt (as Qwen2's does): the server must render the model's own one.
const TEMPLATE =
  "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are tiny.<|im_end|>\\n' }}{% endif %}" +
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let dir: string;
let served: ServedModel;
let server: LlmServer;
let client: OpenAI;
let MODEL: string;
const records: ChatCompletionRecord[] = [];

/** A client that never retries (429/503 must reach the test). */
const clientFor = (url: string, apiKey = 'none') => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

/** The model made slow (a few ms per forward, spun), so a test can act while a reply is being generated. */
function slowed(s: ServedModel, ms: number): ServedModel {
  const m = s.model;
  const model: DecoderModel = {
    config: m.config,
    newCache: (b, n) => m.newCache(b, n),
    forward(ids, B, T, o) {
      const t = performance.now() + ms;
      while (performance.now() < t);
      return m.forward(ids, B, T, o);
    },
  };
  return { ...s, model };
}

/** The prompt ids the server should build: the template rendered, contents encoded as plain text. */
function promptIds(messages: { role: 'system' | 'user' | 'assistant'; content: string }[]): number[] {
  const sys = messages[0]?.role === 'system' ? messages[0].content : null;
  const conv = new Conversation({ system: sys, messages: messages.filter((m) => m.role !== 'system') });
  return conv.encode(served.template, (t) => served.codec.encode(t), served.codec.encodePlain?.bind(served.codec)).ids;
}

/** The reply the engine gives for these messages with this seed (no server in between). */
async function engineReply(messages: { role: 'user'; content: string }[], seed: number, maxTokens: number) {
  const stops = chatStops(served);
  let text = '';
  for await (const ev of stream(served.model, served.codec, promptIds(messages), {
    ...served.defaults,
    maxTokens,
    stopTokens: stops.tokens,
    stop: stops.strings,
    seed,
  }))
    text += ev.text;
  return text;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-'));
  await makeTinyModel(dir, { context: 256 });
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, chat_template: TEMPLATE }));
  served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
  MODEL = served.name;
  server = createServer({ served, port: 0, maxTokens: 200, onChatCompletion: (r) => void records.push(r) });
  client = clientFor(await server.listen());
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const HI = [{ role: 'user' as const, content: 'color red' }];

describe('llmts serve: the OpenAI API through the official client', () => {
  it('answers a chat completion with the reply the engine gives for the model’s own template and that seed', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: HI, seed: 7, max_tokens: 24 });
    expect(r.object).toBe('chat.completion');
    expect(r.id).toMatch(/^chatcmpl-/);
    expect(r.model).toBe('tiny');
    expect(r.system_fingerprint).toMatch(/^fp_[0-9a-f]{16}$/);
    const c = r.choices[0]!;
    expect(c.message.role).toBe('assistant');
    expect(['stop', 'length']).toContain(c.finish_reason);
    expect(c.message.content).toBe(await engineReply(HI, 7, 24));
    // the Jinja template's default system prompt is in the prompt: rendered by hand here
    const byHand =
      '<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\ncolor red<|im_end|>\n<|im_start|>assistant\n';
    expect(r.usage!.prompt_tokens).toBe(served.codec.encode(byHand).length);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it('streams the same reply as SSE chunks, role first, finish_reason last, usage in the final chunk', async () => {
    const s = await client.chat.completions.create({
      model: MODEL,
      messages: HI,
      seed: 7,
      max_tokens: 24,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const ch of s) chunks.push(ch);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    const whole = await client.chat.completions.create({ model: MODEL, messages: HI, seed: 7, max_tokens: 24 });
    expect(text).toBe(whole.choices[0]!.message.content);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0]!.finish_reason)).toEqual([whole.choices[0]!.finish_reason]);
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({
      prompt_tokens: whole.usage!.prompt_tokens,
      completion_tokens: whole.usage!.completion_tokens,
    });
    expect(chunks.every((c) => c.id === chunks[0]!.id && c.object === 'chat.completion.chunk')).toBe(true);
  });

  it('returns logprobs equal to log_softmax of a teacher-forced forward over prompt + reply, with top alternatives', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: HI,
      seed: 3,
      max_tokens: 12,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = r.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(r.usage!.completion_tokens);
    const ids = content.map((e) => (e as unknown as { id: number }).id);
    const prompt = promptIds(HI);
    const all = [...prompt, ...ids];
    const V = served.model.config.vocabSize;
    const logits = tidy(() => noGrad(() => served.model.forward(Int32Array.from(all), 1, all.length)));
    const x = await logits.data();
    logits.dispose();
    content.forEach((e, t) => {
      const row = Array.from(x).slice((prompt.length - 1 + t) * V, (prompt.length + t) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      expect(e.logprob).toBeCloseTo(row[ids[t]!]! - lse, 4);
      expect(e.token).toBe(served.codec.decode([ids[t]!]));
      expect(e.top_logprobs.length).toBe(3);
      const best = [...row.keys()].sort((a, b) => row[b]! - row[a]!)[0]!;
      expect(e.top_logprobs[0]!.logprob).toBeCloseTo(row[best]! - lse, 4);
      expect(e.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(e.top_logprobs[2]!.logprob);
    });
    // the record a feedback store gets: the conversation, the seed, the same tokens and log-probs
    const rec = records.find((x) => x.id === r.id)!;
    expect(rec.messages).toEqual(HI);
    expect(rec.fingerprint).toBe(r.system_fingerprint);
    expect(rec.choices[0]!.seed).toBe(3);
    expect(rec.choices[0]!.text).toBe(r.choices[0]!.message.content);
    expect(rec.choices[0]!.tokens).toEqual(content.map((e, t) => ({ id: ids[t], logprob: e.logprob })));
  });

  it('repeats a reply exactly for the same seed, and n > 1 gives choice i the reply of seed + i', async () => {
    const ask = (seed: number, n = 1) =>
      client.chat.completions.create({ model: MODEL, messages: HI, seed, n, max_tokens: 16, temperature: 1 });
    const a = await ask(11),
      b = await ask(11),
      c = await ask(12);
    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content);
    expect(a.choices[0]!.message.content).not.toBe(c.choices[0]!.message.content);
    const three = await ask(11, 3);
    expect(three.choices.map((x) => x.index)).toEqual([0, 1, 2]);
    expect(three.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    expect(three.choices[1]!.message.content).toBe(c.choices[0]!.message.content);
    expect(three.usage!.completion_tokens).toBe(
      a.usage!.completion_tokens + c.usage!.completion_tokens + (await ask(13)).usage!.completion_tokens,
    );
  });

  it('stops before a stop string (finish_reason stop) and the reply is the unstopped one cut there', async () => {
    const full = await client.chat.completions.create({
      model: MODEL,
      messages: HI,
      seed: 5,
      max_tokens: 40,
      temperature: 1,
    });
    const text = full.choices[0]!.message.content!;
    expect(text.length).toBeGreaterThan(8);
    const stop = text.slice(5, 8);
    const cut = await client.chat.completions.create({
      model: MODEL,
      messages: HI,
      seed: 5,
      max_tokens: 40,
      temperature: 1,
      stop: [stop],
    });
    expect(cut.choices[0]!.finish_reason).toBe('stop');
    expect(cut.choices[0]!.message.content).toBe(text.slice(0, text.indexOf(stop)));
  });

  it('serves a conversation’s next turn from the prompt cache (usage.prompt_tokens_details.cached_tokens)', async () => {
    const t1 = await client.chat.completions.create({ model: MODEL, messages: HI, seed: 1, max_tokens: 10 });
    const turn2 = [
      ...HI,
      { role: 'assistant' as const, content: t1.choices[0]!.message.content! },
      { role: 'user' as const, content: 'color blue' },
    ];
    const t2 = await client.chat.completions.create({ model: MODEL, messages: turn2, seed: 1, max_tokens: 10 });
    expect(t2.usage!.prompt_tokens).toBe(promptIds(turn2).length);
    expect(t2.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(t1.usage!.prompt_tokens);
  });

  it('keeps a conversation’s cache while another conversation (same system prompt) comes in between', async () => {
    const a1 = [{ role: 'user' as const, content: 'color green and white' }];
    const b1 = [{ role: 'user' as const, content: 'color black' }];
    const ra = await client.chat.completions.create({ model: MODEL, messages: a1, seed: 2, max_tokens: 10 });
    const rb = await client.chat.completions.create({ model: MODEL, messages: b1, seed: 2, max_tokens: 10 });
    expect(rb.usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(rb.usage!.prompt_tokens / 2 + 1);
    const a2 = [
      ...a1,
      { role: 'assistant' as const, content: ra.choices[0]!.message.content! },
      { role: 'user' as const, content: 'color pink' },
    ];
    const r2 = await client.chat.completions.create({ model: MODEL, messages: a2, seed: 2, max_tokens: 10 });
    expect(r2.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThanOrEqual(ra.usage!.prompt_tokens);
  });

  it('answers /v1/completions (text and token-id prompts, legacy logprobs, streaming)', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'color', max_tokens: 8, seed: 2, logprobs: 2 });
    expect(r.object).toBe('text_completion');
    const c = r.choices[0]!;
    expect(c.logprobs!.tokens!.length).toBe(r.usage!.completion_tokens);
    expect(c.logprobs!.tokens!.join('')).toBe(c.text);
    expect(c.logprobs!.text_offset![0]).toBe('color'.length);
    expect(Object.keys(c.logprobs!.top_logprobs![0]!).length).toBeLessThanOrEqual(2);
    const ids = served.codec.encode('color');
    const byIds = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 8, seed: 2 });
    expect(byIds.choices[0]!.text).toBe(c.text);
    const s = await client.completions.create({ model: MODEL, prompt: 'color', max_tokens: 8, seed: 2, stream: true });
    let text = '';
    for await (const ch of s) text += ch.choices[0]?.text ?? '';
    expect(text).toBe(c.text);
  });

  it('lists the model, answers /health and serves the page with a strict CSP', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny']);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
    const h = (await (await fetch(`${server.url}/health`)).json()) as { status: string; queue: { active: number } };
    expect(h.status).toBe('ok');
    const page = await fetch(`${server.url}/`);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('/app/chat.js');
    const js = await (await fetch(`${server.url}/app/chat.js`)).text();
    expect(js).toContain('textContent');
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});

describe('llmts serve: errors in OpenAI’s shape and classes', () => {
  it('bad fields are BadRequestError (400) naming the param; an unknown model is NotFoundError (404)', async () => {
    const bad = async (body: Record<string, unknown>, param: string) => {
      const e = await client.chat.completions.create({ model: MODEL, messages: HI, ...body } as never).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      expect((e as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    };
    await bad({ temperature: 5 }, 'temperature');
    await bad({ messages: [] }, 'messages');
    await bad({ messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role');
    await bad({ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id');
    await bad({ max_tokens: 10_000 }, 'max_tokens');
    await bad({ top_logprobs: 2 }, 'top_logprobs');
    await bad({ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop');
    await bad({ tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'); // this template shows no tools
    await bad({ frobnicate: 1 }, 'frobnicate');
    await bad({ messages: [{ role: 'user', content: 'x '.repeat(300) }] }, 'messages');
    const nf = await client.chat.completions.create({ model: 'gpt-4o', messages: HI }).catch((x: unknown) => x);
    expect(nf).toBeInstanceOf(OpenAI.NotFoundError);
    expect((nf as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('unknown routes are 404, wrong methods 405, a bad JSON body 400, a body over the limit 413, not JSON 415', async () => {
    const small = createServer({ served, port: 0, maxBodyBytes: 2000 });
    const url = await small.listen();
    try {
      const r404 = await fetch(`${url}/v1/nothing`);
      expect(r404.status).toBe(404);
      expect(((await r404.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
      const r405 = await fetch(`${url}/v1/chat/completions`);
      expect(r405.status).toBe(405);
      expect(r405.headers.get('allow')).toBe('POST');
      const post = (body: string) =>
        fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      expect((await post('{"model": ')).status).toBe(400);
      const big = await post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(5000) }] }));
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
      const e = await clientFor(url)
        .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'y'.repeat(5000) }] })
        .catch((x: unknown) => x);
      expect((e as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
      // bodies are JSON only: what a page of another origin may send without a preflight (a form, text/plain, no
      // type) is 415 before anything runs; application/json with parameters is fine
      const ok = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
        const r = await fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: type ? { 'Content-Type': type } : {},
          body: type ? ok : new Blob([ok]),
        });
        expect(r.status, type).toBe(415);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
      }
      const withCharset = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        body: ok,
      });
      expect(withCharset.status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('with --api-key: no or a wrong key is AuthenticationError (401); the right key works; /health stays open', async () => {
    const locked = createServer({ served, port: 0, apiKey: 'sesame' });
    const url = await locked.listen();
    try {
      for (const key of ['wrong', 'sesame-'])
        await expect(clientFor(url, key).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const bare = await fetch(`${url}/v1/models`);
      expect(bare.status).toBe(401);
      const ok = await clientFor(url, 'sesame').chat.completions.create({ model: MODEL, messages: HI, max_tokens: 2 });
      expect(ok.choices.length).toBe(1);
      expect((await fetch(`${url}/health`)).status).toBe(200);
    } finally {
      await locked.close();
    }
  });
});

describe('llmts serve: bounded work', () => {
  // the tests below act while a long reply is being generated: the greedy reply to HI must not end early
  it('(precondition) the greedy reply to the test prompt runs the full 200 tokens', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 200, temperature: 0 });
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage!.completion_tokens).toBe(200);
  });

  it('a full queue answers 429 (RateLimitError) while one request generates (one slot)', async () => {
    const busy = createServer({ served: slowed(served, 4), port: 0, maxQueue: 0, parallel: 1 });
    const c = clientFor(await busy.listen());
    try {
      const first = await c.chat.completions.create({
        model: MODEL,
        messages: HI,
        max_tokens: 150,
        stream: true,
        temperature: 0,
      });
      const it = first[Symbol.asyncIterator]();
      await it.next(); // generating now
      const e = await c.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 2 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.RateLimitError);
      expect((e as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('queue_full');
      first.controller.abort();
      expect(busy.state.queue.stats.refused).toBe(1);
    } finally {
      await busy.close();
    }
  });

  it('a request that waits past the wait bound gets 503; a waiting client that leaves leaves the queue; a waiting one runs when the running one ends', async () => {
    const busy = createServer({ served: slowed(served, 4), port: 0, maxWaitMs: 150, parallel: 1 });
    const c = clientFor(await busy.listen());
    try {
      const first = await c.chat.completions.create({
        model: MODEL,
        messages: HI,
        max_tokens: 200,
        stream: true,
        temperature: 0,
      });
      const it = first[Symbol.asyncIterator]();
      await it.next();
      const e = await c.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 2 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.InternalServerError);
      expect((e as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect((e as InstanceType<typeof OpenAI.APIError>).code).toBe('server_busy');
      first.controller.abort();
    } finally {
      await busy.close();
    }
    const fair = createServer({ served: slowed(served, 4), port: 0, parallel: 1 });
    const c2 = clientFor(await fair.listen());
    try {
      const first = await c2.chat.completions.create({
        model: MODEL,
        messages: HI,
        max_tokens: 200,
        stream: true,
        temperature: 0,
      });
      await first[Symbol.asyncIterator]().next();
      const waiting = c2.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 2 });
      for (let i = 0; i < 200 && fair.state.queue.stats.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(fair.state.queue.stats).toMatchObject({ active: 1, waiting: 1 });
      // a waiting client that goes away leaves the queue without running
      const leaver = new AbortController();
      const left = c2.chat.completions
        .create({ model: MODEL, messages: HI, max_tokens: 2 }, { signal: leaver.signal })
        .catch((x: unknown) => x);
      for (let i = 0; i < 200 && fair.state.queue.stats.waiting < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(fair.state.queue.stats.waiting).toBe(2);
      leaver.abort();
      expect(await left).toBeInstanceOf(OpenAI.APIUserAbortError);
      for (let i = 0; i < 200 && fair.state.queue.stats.waiting > 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(fair.state.queue.stats).toMatchObject({ active: 1, waiting: 1 });
      first.controller.abort(); // the running one ends: the waiting one gets its turn
      expect((await waiting).choices.length).toBe(1);
    } finally {
      await fair.close();
    }
  });

  it('a client that disconnects mid-stream stops its generation (tokens stop being produced)', async () => {
    const srv = createServer({ served: slowed(served, 5), port: 0 });
    const c = clientFor(await srv.listen());
    try {
      const s = await c.chat.completions.create({
        model: MODEL,
        messages: HI,
        max_tokens: 200,
        stream: true,
        temperature: 0,
      });
      let got = 0;
      const t0 = performance.now();
      for await (const _ of s) if (++got >= 5) break; // leaving the loop aborts the request
      const perToken = (performance.now() - t0) / srv.state.counters.tokens; // the pace on this (shared) machine
      const atBreak = srv.state.counters.tokens;
      // the server sees the connection close, and the generation ends with it
      for (let i = 0; i < 500 && srv.state.counters.cancelled === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(srv.state.counters.cancelled).toBe(1);
      const atCancel = srv.state.counters.tokens;
      await new Promise((r) => setTimeout(r, Math.max(300, 15 * perToken))); // ≥ 15 more tokens' time if it kept going
      expect(srv.state.counters.tokens).toBe(atCancel);
      expect(atCancel - atBreak).toBeLessThanOrEqual(3);
      expect(atCancel).toBeLessThan(30);
      expect(srv.state.queue.stats.active).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('the wall-time bound ends a reply with finish_reason length; closing ends a running stream with 503', async () => {
    const srv = createServer({ served: slowed(served, 4), port: 0, timeoutMs: 100 });
    const c = clientFor(await srv.listen());
    try {
      const r = await c.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 200, temperature: 0 });
      expect(r.choices[0]!.finish_reason).toBe('length');
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
      expect(r.usage!.completion_tokens).toBeLessThan(60);
    } finally {
      await srv.close();
    }
    const srv2 = createServer({ served: slowed(served, 4), port: 0 });
    const c2 = clientFor(await srv2.listen());
    const s = await c2.chat.completions.create({
      model: MODEL,
      messages: HI,
      max_tokens: 200,
      stream: true,
      temperature: 0,
    });
    const it = s[Symbol.asyncIterator]();
    await it.next();
    const closed = srv2.close();
    let err: unknown = null;
    try {
      while (!(await it.next()).done);
    } catch (e) {
      err = e;
    }
    await closed;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toMatch(/shutting down/);
  });
});

describe('llmts serve: parallel slots (--parallel), decode steps batched', () => {
  const convs = [
    { messages: [{ role: 'user' as const, content: 'color red' }], seed: 11 },
    { messages: [{ role: 'user' as const, content: 'a much longer question about the colors of the sea' }], seed: 12 },
    { messages: [{ role: 'user' as const, content: 'blue' }], seed: 13 },
  ];

  it('requests in slots run together, share decode steps, and each gets the reply the engine gives it alone', async () => {
    const srv = createServer({ served, port: 0, parallel: 3, maxTokens: 200 });
    // the tiny model reads few weights a step: batch it anyway (the default leaves such models lane by lane)
    srv.state.batcher = new StepBatcher({ minStepWeights: 0, maxWaitMs: 50 });
    const c = clientFor(await srv.listen());
    try {
      const expected = await Promise.all(convs.map((v) => engineReply(v.messages, v.seed, 40)));
      const got = await Promise.all(
        convs.map((v) =>
          c.chat.completions.create({ model: MODEL, messages: v.messages, max_tokens: 40, seed: v.seed }),
        ),
      );
      got.forEach((r, i) => expect(r.choices[0]!.message.content).toBe(expected[i]));
      const s = srv.state.batcher.stats;
      expect(s.maxRows).toBeGreaterThanOrEqual(2);
      expect(s.rows).toBeGreaterThan(s.batches);
      expect(s.lanes).toBe(0);
      const h = (await (await fetch(`${srv.url}/health`)).json()) as {
        queue: { parallel: number; active: number };
        batching: { batches: number };
      };
      expect(h.queue).toMatchObject({ parallel: 3, active: 0 });
      expect(h.batching.batches).toBe(s.batches);
    } finally {
      await srv.close();
    }
  });

  it("a request's n choices decode together (streamed interleaved by index) and choice i is still the reply of seed + i", async () => {
    const srv = createServer({ served, port: 0, maxTokens: 200 });
    srv.state.batcher = new StepBatcher({ minStepWeights: 0, maxWaitMs: 50 });
    const c = clientFor(await srv.listen());
    try {
      const want = await Promise.all([21, 22, 23].map((seed) => engineReply(HI, seed, 30)));
      const whole = await c.chat.completions.create({ model: MODEL, messages: HI, n: 3, seed: 21, max_tokens: 30 });
      expect(whole.choices.map((x) => x.message.content)).toEqual(want);
      expect(srv.state.batcher.stats.maxRows).toBe(3);
      const s = await c.chat.completions.create({
        model: MODEL,
        messages: HI,
        n: 3,
        seed: 21,
        max_tokens: 30,
        stream: true,
      });
      const texts = ['', '', ''],
        order: number[] = [],
        finished: number[] = [];
      for await (const ch of s)
        for (const x of ch.choices) {
          texts[x.index] += x.delta.content ?? '';
          if (x.delta.content) order.push(x.index);
          if (x.finish_reason) finished.push(x.index);
        }
      expect(texts).toEqual(want);
      expect(finished.sort()).toEqual([0, 1, 2]);
      // interleaved: some token of a later choice comes before the last token of an earlier one
      expect(order.some((i, k) => i > 0 && order.slice(k).includes(0))).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('a request beyond the slots waits; a request that uses the model alone (embeddings) waits for the slots to empty', async () => {
    const srv = createServer({ served: slowed(served, 3), port: 0, parallel: 2 });
    const c = clientFor(await srv.listen());
    try {
      const streams = await Promise.all(
        [0, 1].map(() =>
          c.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 200, stream: true, temperature: 0 }),
        ),
      );
      await Promise.all(streams.map((s) => s[Symbol.asyncIterator]().next())); // both generating now
      expect(srv.state.queue.stats).toMatchObject({ active: 2, waiting: 0, parallel: 2 });
      const third = c.chat.completions.create({ model: MODEL, messages: HI, max_tokens: 2 });
      for (let i = 0; i < 200 && srv.state.queue.stats.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(srv.state.queue.stats).toMatchObject({ active: 2, waiting: 1 });
      streams[0]!.controller.abort(); // a slot frees: the third runs beside the second
      expect((await third).choices.length).toBe(1);
      expect(srv.state.queue.stats.active).toBe(1);
      streams[1]!.controller.abort();
      for (let i = 0; i < 200 && srv.state.queue.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(srv.state.queue.stats.active).toBe(0);
    } finally {
      await srv.close();
    }
  });
});

describe('GenerationQueue: slots and jobs that run alone, in order', () => {
  const never = new AbortController().signal;
  /** A job that runs until released; `log` records starts and ends. */
  function gate(log: string[], name: string) {
    let open!: () => void;
    const done = new Promise<void>((r) => (open = r));
    return {
      job: async () => {
        log.push(`+${name}`);
        await done;
        log.push(`-${name}`);
      },
      open: () => open(),
    };
  }
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('fills the slots, holds a lone job until they empty, and starts nothing behind it meanwhile', async () => {
    const q = new GenerationQueue({ parallel: 2 });
    const log: string[] = [];
    const [a, b, x, c] = ['a', 'b', 'x', 'c'].map((n) => gate(log, n));
    const runs = [
      q.run(never, a!.job, { slot: true }),
      q.run(never, b!.job, { slot: true }),
      q.run(never, x!.job), // alone
      q.run(never, c!.job, { slot: true }), // behind x: waits though a slot frees first
    ];
    await tick();
    expect(log).toEqual(['+a', '+b']);
    expect(q.stats).toMatchObject({ active: 2, waiting: 2 });
    a!.open();
    await tick();
    expect(log).toEqual(['+a', '+b', '-a']); // c may not pass x
    b!.open();
    await tick();
    expect(log).toEqual(['+a', '+b', '-a', '-b', '+x']);
    x!.open();
    await tick();
    expect(log.slice(5)).toEqual(['-x', '+c']);
    c!.open();
    await Promise.all(runs);
    expect(q.stats).toMatchObject({ active: 0, waiting: 0 });
  });

  it('refuses past maxQueue (429) and a bad parallel', async () => {
    const q = new GenerationQueue({ parallel: 1, maxQueue: 1 });
    const log: string[] = [];
    const [a, b] = [gate(log, 'a'), gate(log, 'b')];
    const ra = q.run(never, a.job, { slot: true });
    const rb = q.run(never, b.job, { slot: true });
    await expect(q.run(never, async () => {}, { slot: true })).rejects.toMatchObject({ status: 429 });
    a.open();
    b.open();
    await Promise.all([ra, rb]);
    expect(() => new GenerationQueue({ parallel: 0 })).toThrow(/parallel/);
  });
});
