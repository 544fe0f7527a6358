/**
 * lm-evaluation-harness against `llmts serve`: its `local-completions` model, step by step as its source does it
 * (lm_eval/utils.py check_remote_tokenizer_support and RemoteTokenizer, lm_eval/models/openai_completions.py
 * _create_payload and parse_logprobs), run here over HTTP. A loglikelihood request is /v1/completions with the prompt as
 * token ids, `echo`, `logprobs` 1 and `max_tokens` 1; the harness sums token_logprobs[ctxlen:-1]. The sums must be the
 * model's own negative loss on the continuation (its cross-entropy kernel, not the server's code), and is_greedy must
 * say whether the continuation is the greedy one. The official `openai` client reads `echo` replies.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import type { CausalLM } from '../src/model/model.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import type { ServedModel } from '../src/server/served_model.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { makeTinyModel } from './sft_helpers.js';

// ChatML whose generation prompt closes an empty thinking block when told `enable_thinking: false`, as Qwen3's does
const THINKING_TEMPLATE =
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}{% endif %}";

let dir: string;
let served: ServedModel;
let server: LlmServer;
let base: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-eval-'));
  await makeTinyModel(dir, { context: 128 });
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, chat_template: THINKING_TEMPLATE }));
  served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
  server = createServer({ served, port: 0, maxTokens: 64 });
  base = await server.listen();
}, 60_000);
afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function post(p: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${base}${p}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

/** lm-eval's RemoteTokenizer.encode. */
async function encode(text: string): Promise<number[]> {
  const r = await post('/tokenize', { prompt: text, add_special_tokens: false });
  expect(r.status).toBe(200);
  return r.json['tokens'] as number[];
}

interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[] | null;
  text_offset: number[];
}

/** lm-eval's loglikelihood for (context, continuation) pairs: payload, one request, parse_logprobs. */
async function loglikelihood(pairs: [string, string][]): Promise<[number, boolean][]> {
  const toks = await Promise.all(pairs.map(async ([c, x]) => [await encode(c), await encode(x)] as const));
  const r = await post('/v1/completions', {
    model: 'tiny',
    prompt: toks.map(([c, x]) => [...c, ...x]),
    temperature: 0,
    max_tokens: 1,
    logprobs: 1,
    seed: 1234,
    echo: true,
  });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const choices = (r.json['choices'] as { index: number; logprobs: LegacyLogprobs }[]).sort(
    (a, b) => a.index - b.index,
  );
  return choices.map((choice, i) => {
    const ctxlen = toks[i]![0].length;
    expect(ctxlen).toBeGreaterThan(0);
    const lps = choice.logprobs.token_logprobs.slice(ctxlen, -1) as number[];
    const tops = choice.logprobs.top_logprobs!.slice(ctxlen, -1) as Record<string, number>[];
    const isGreedy = lps.every((lp, j) => lp === Math.max(...Object.values(tops[j]!)));
    return [lps.reduce((a, b) => a + b, 0), isGreedy];
  });
}

/** The model's log-likelihood of `cont` after `ctx` from its loss (mean cross-entropy over the continuation). */
async function reference(ctx: number[], cont: number[]): Promise<number> {
  const ids = Int32Array.from([...ctx, ...cont]);
  const targets = new Int32Array(ids.length).fill(-100);
  for (let i = 0; i < cont.length; i++) targets[ctx.length - 1 + i] = cont[i]!;
  const l = tidy(() => noGrad(() => (served.model as CausalLM).loss(ids, targets, 1, ids.length)));
  const v = await l.item();
  l.dispose();
  return -v * cont.length;
}

/** The model's greedy continuation of `ctx`, n tokens (argmax one step at a time). */
async function greedy(ctx: number[], n: number): Promise<number[]> {
  const ids = [...ctx];
  const V = served.model.config.vocabSize;
  for (let i = 0; i < n; i++) {
    const t = tidy(() => noGrad(() => served.model.forward(Int32Array.from(ids), 1, ids.length, { lastOnly: true })));
    const row = Array.from(await t.data()).slice(0, V);
    t.dispose();
    ids.push(row.indexOf(Math.max(...row)));
  }
  return ids.slice(ctx.length);
}

describe('chat_template_kwargs (vLLM, llama-server)', () => {
  it("reach the model's Jinja template: Qwen3's enable_thinking: false closes the thinking block in the prompt", async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'name a color' }];
    const plain = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 1 });
    const ask = (kw: unknown) =>
      client.chat.completions.create({ model: 'tiny', messages, max_tokens: 1, chat_template_kwargs: kw } as never);
    const off = (await ask({ enable_thinking: false })) as typeof plain;
    const on = (await ask({ enable_thinking: true })) as typeof plain;
    const block = await encode('<think>\n\n</think>\n\n');
    expect(off.usage!.prompt_tokens).toBe(plain.usage!.prompt_tokens + block.length);
    expect(on.usage!.prompt_tokens).toBe(plain.usage!.prompt_tokens);
    const info = (await (await fetch(`${base}/tokenizer_info`)).json()) as Record<string, unknown>;
    expect(info['chat_template']).toBe(THINKING_TEMPLATE);
    for (const [kw, msg] of [
      [{ messages: [] }, /'messages' is set by the template's caller/],
      [[1], /must be an object/],
    ] as const) {
      const r = await post('/v1/chat/completions', { model: 'tiny', messages, chat_template_kwargs: kw });
      expect(r.status).toBe(400);
      expect((r.json['error'] as { message: string; param: string }).param).toBe('chat_template_kwargs');
      expect((r.json['error'] as { message: string }).message).toMatch(msg);
    }
  });
});

describe("lm-evaluation-harness's local-completions against llmts serve", () => {
  it('finds the remote tokenizer: /tokenizer_info has eos_token, /tokenize answers, eos_token encodes to the eos id', async () => {
    const info = (await (await fetch(`${base}/tokenizer_info`)).json()) as Record<string, unknown>;
    expect(info).toHaveProperty('eos_token');
    expect(info['eos_token']).toBe('<|endoftext|>');
    expect(info['model_max_length']).toBe(128);
    expect(Array.isArray(await encode('test'))).toBe(true);
    expect((await encode(info['eos_token'] as string))[0]).toBe(served.eosTokens[0]);
    // llama-server's spelling, and the way back
    const ids = await encode('red, green and blue');
    const d = await post('/detokenize', { tokens: ids });
    expect(d.json).toEqual({ prompt: 'red, green and blue', content: 'red, green and blue' });
    expect((await post('/tokenize', { content: 'red, green and blue' })).json['tokens']).toEqual(ids);
  });

  it("loglikelihood: the harness's sums are the model's own loss on the continuation; is_greedy is right", async () => {
    const ctxText = 'user\nname a color\nassistant\n';
    const ctx = await encode(ctxText);
    const best = await greedy(ctx, 3);
    const bestText = served.codec.decode(best);
    // the greedy continuation, as text, encodes back to the same ids for this check to mean something
    expect(await encode(bestText)).toEqual(best);
    const pairs: [string, string][] = [
      [ctxText, bestText],
      [ctxText, ' the sky is blue'],
      ['red', ' green'],
    ];
    const got = await loglikelihood(pairs);
    for (const [i, [c, x]] of pairs.entries()) {
      const want = await reference(await encode(c), await encode(x));
      expect(Math.abs(got[i]![0] - want), `pair ${i}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
    }
    expect(got.map((g) => g[1])).toEqual([true, false, false]);
  });

  it('the openai client reads echo: prompt text back, null first logprob, offsets from 0, nothing generated at max_tokens 0', async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
    const r = await client.completions.create({
      model: 'tiny',
      prompt: 'red and blue',
      echo: true,
      logprobs: 2,
      max_tokens: 0,
    });
    const c = r.choices[0]!;
    expect(c.text).toBe('red and blue');
    expect(c.finish_reason).toBe('length');
    expect(r.usage!.completion_tokens).toBe(0);
    const lp = c.logprobs!;
    const ids = await encode('red and blue');
    expect(lp.tokens!.length).toBe(ids.length);
    expect(lp.tokens!.join('')).toBe('red and blue');
    expect(lp.token_logprobs![0]).toBeNull();
    expect(lp.top_logprobs![0]).toBeNull();
    expect(lp.text_offset![0]).toBe(0);
    for (let t = 1; t < ids.length; t++) {
      expect(lp.text_offset![t]).toBe(lp.text_offset![t - 1]! + lp.tokens![t - 1]!.length);
      const top = Object.values(lp.top_logprobs![t]!);
      expect(top.length).toBe(2);
      expect(lp.token_logprobs![t]!).toBeLessThanOrEqual(Math.max(...top));
    }
    // the sum is the model's loss on tokens 1 … n − 1
    const sum = (lp.token_logprobs!.slice(1) as number[]).reduce((a, b) => a + b, 0);
    const want = await reference(ids.slice(0, 1), ids.slice(1));
    expect(Math.abs(sum - want)).toBeLessThan(1e-4 * Math.abs(want));

    // echo with a reply: the prompt, then the reply's tokens and offsets after the prompt's
    const g = await client.completions.create({
      model: 'tiny',
      prompt: 'red',
      echo: true,
      logprobs: 0,
      max_tokens: 3,
      seed: 1,
    });
    const gl = g.choices[0]!.logprobs!;
    expect(g.choices[0]!.text.startsWith('red')).toBe(true);
    expect(gl.tokens!.length).toBe((await encode('red')).length + g.usage!.completion_tokens);
    expect(gl.top_logprobs).toBeNull();
  });

  it('refuses what it cannot do in one named 400', async () => {
    const stream = await post('/v1/completions', { model: 'tiny', prompt: 'red', echo: true, stream: true });
    expect(stream.status).toBe(400);
    expect(JSON.stringify(stream.json)).toMatch(/echo with stream is not supported/);
    const zero = await post('/v1/completions', { model: 'tiny', prompt: 'red', max_tokens: 0 });
    expect(zero.status).toBe(400);
    expect((zero.json['error'] as { param: string }).param).toBe('max_tokens');
    const bad = await post('/detokenize', { tokens: [1, 1e9] });
    expect(bad.status).toBe(400);
    expect((await post('/tokenize', {})).status).toBe(400);
    expect((await fetch(`${base}/tokenize`)).status).toBe(405);
  });
});
