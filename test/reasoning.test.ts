/**
 * Thinking replies split into reasoning_content and content (src/server/reasoning.ts, DeepSeek's format as vLLM and
 * llama-server return it): every chunking of a reply — one piece, one character at a time, random cuts — splits it as
 * the whole does, tags cut anywhere included.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { loadServedModel } from '../src/cli/serve.js';
import type { DecoderModel } from '../src/generate/interfaces.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { tensor } from '../src/tensor/tensor.js';
import { makeTinyModel } from './sft_helpers.js';
import { ReasoningSplitter, promptOpensThinking, splitReasoning } from '../src/server/reasoning.js';
import { splitThinking, THINKING_JS } from '../src/server/app/thinking_js.js';
import { Rng } from '../src/util/rng.js';

const CHROMIUM = process.env['LLMTS_CHROMIUM'] ?? findChromium();

const CASES: [text: string, thinking: boolean, reasoning: string, content: string][] = [
  ['<think>\nadd the tens\n</think>\n\nThe answer is 42.', false, '\nadd the tens\n', 'The answer is 42.'],
  ['  <think>hmm</think>ok', false, 'hmm', 'ok'],
  ['The answer is 42.', false, '', 'The answer is 42.'],
  ['\n\nplain, with leading newlines', false, '', '\n\nplain, with leading newlines'],
  ['<thinking is not the tag', false, '', '<thinking is not the tag'],
  ['<think>cut off before the end', false, 'cut off before the end', ''],
  ['<think>a </thin b</think>c', false, 'a </thin b', 'c'],
  ['<think></think>\n\n', false, '', ''],
  ['the prompt opened it\n</think>\n\nanswer', true, 'the prompt opened it\n', 'answer'],
  ['<', false, '', '<'],
  ['', false, '', ''],
];

/** Split `text` fed in the given pieces. */
function chunked(text: string, cuts: number[], thinking: boolean) {
  const sp = new ReasoningSplitter(thinking);
  let reasoning = '',
    content = '';
  let at = 0;
  for (const c of [...cuts, text.length]) {
    const p = sp.push(text.slice(at, c));
    reasoning += p.reasoning;
    content += p.content;
    at = c;
  }
  const e = sp.end();
  return { reasoning: reasoning + e.reasoning, content: content + e.content };
}

describe('reasoning splitter', () => {
  it.each(CASES)('%j: whole, one character at a time, and at random cuts', (text, thinking, reasoning, content) => {
    expect(splitReasoning(text, thinking)).toEqual({ reasoning, content });
    expect(
      chunked(
        text,
        Array.from({ length: text.length }, (_, i) => i),
        thinking,
      ),
    ).toEqual({ reasoning, content });
    const rng = new Rng(text.length + 1);
    for (let k = 0; k < 50; k++) {
      const cuts = Array.from({ length: rng.int(5) }, () => rng.int(text.length + 1)).sort((a, b) => a - b);
      expect(chunked(text, cuts, thinking)).toEqual({ reasoning, content });
    }
  });

  it("the chat page's splitThinking reads a whole reply as the server's splitter does", () => {
    for (const [text, , reasoning, content] of CASES) {
      // the page cannot see the prompt: a reply with a closing tag and no opening one is taken as thinking
      const opened = text.trimStart().startsWith('<think>');
      const want = splitReasoning(text, !opened && text.includes('</think>'));
      const got = splitThinking(text);
      expect(got.answer, JSON.stringify(text)).toBe(want.content);
      expect(got.reasoning ?? '', JSON.stringify(text)).toBe(want.reasoning);
      expect(got.reasoning === null, JSON.stringify(text)).toBe(!opened && !text.includes('</think>'));
      if (!text.includes('</think>') || opened) expect([got.reasoning ?? '', got.answer]).toEqual([reasoning, content]);
    }
    // the page's module is this function's own source
    expect(THINKING_JS).toContain(splitThinking.toString());
  });

  it('a prompt that ends by opening the block (DeepSeek-R1) starts the reply in it', () => {
    expect(promptOpensThinking('<|im_start|>assistant\n<think>\n')).toBe(true);
    expect(promptOpensThinking('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(false);
    expect(promptOpensThinking('<|im_start|>assistant\n')).toBe(false);
  });
});

describe('llmts serve with --reasoning-format deepseek', () => {
  let dir = '';
  let server: LlmServer;
  let base = '';
  const SCRIPT = '<think>\nadd the tens\n</think>\n\nI like red.';
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-reasoning-'));
    await makeTinyModel(dir, { context: 128 });
    const served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
    // a model that writes SCRIPT and then stops: each forward's last row puts all its weight on the next token
    const script = [...served.codec.encode(SCRIPT), served.eosTokens[0]!];
    const m = served.model;
    const V = m.config.vocabSize;
    let step = 0;
    const model: DecoderModel = {
      config: m.config,
      newCache: (b, n) => m.newCache(b, n),
      forward(ids, B, T, o) {
        m.forward(ids, B, T, o).dispose(); // the real cache advances
        step = T > 1 ? 0 : step + 1;
        const logits = new Float32Array(B * (o?.lastOnly ? 1 : T) * V).fill(-30);
        const rows = logits.length / V;
        logits[(rows - 1) * V + script[Math.min(step, script.length - 1)]!] = 30;
        return tensor(logits, [B, rows / B, V], { backend: getBackend('ref') });
      },
    };
    server = createServer({
      served: { ...served, model },
      port: 0,
      maxTokens: 64,
      reasoningFormat: 'deepseek',
      promptCacheSlots: 0, // each request prefills its whole prompt: the script restarts there
    });
    base = await server.listen();
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('returns the thinking as reasoning_content, whole and streamed, and as written on request', async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'color red' }];
    const r = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0 });
    const msg = r.choices[0]!.message as unknown as Record<string, unknown>;
    expect(msg['content']).toBe('I like red.');
    expect(msg['reasoning_content']).toBe('\nadd the tens\n');
    const stream = await client.chat.completions.create({ model: 'tiny', messages, temperature: 0, stream: true });
    let reasoning = '',
      content = '';
    for await (const c of stream) {
      const d = c.choices[0]?.delta as Record<string, string> | undefined;
      reasoning += d?.['reasoning_content'] ?? '';
      content += d?.['content'] ?? '';
    }
    expect({ reasoning, content }).toEqual({ reasoning: '\nadd the tens\n', content: 'I like red.' });
    const raw = await client.chat.completions.create({
      model: 'tiny',
      messages,
      temperature: 0,
      reasoning_format: 'none',
    } as never);
    expect((raw as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe(SCRIPT);
    const bad = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages, reasoning_format: 'xml' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/reasoning_format.*none, deepseek/);
  });

  it.skipIf(!CHROMIUM)(
    'the chat page shows the answer with the thinking folded above it (Chromium)',
    async () => {
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
      });
      try {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('pageerror', (e) => problems.push(e.message));
        await page.goto(`${base}/`);
        await page.waitForFunction(() => document.getElementById('model')?.textContent === 'tiny');
        await page.fill('#max-tokens', '60');
        await page.fill('#input', 'color red');
        await page.press('#input', 'Enter');
        await page.waitForSelector('.msg.assistant .meta', { timeout: 20_000 });
        const shown = await page.$eval('.msg.assistant', (m) => ({
          open: (m.querySelector('details.thinking') as HTMLDetailsElement | null)?.open,
          thinking: m.querySelector('details.thinking .text')?.textContent,
          answer: m.querySelector(':scope > div > .text:not(details .text)')?.textContent,
        }));
        expect(shown).toEqual({ open: false, thinking: '\nadd the tens\n', answer: 'I like red.' });
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});

function findChromium(): string {
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  for (const d of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean))
    for (const n of names) if (fs.existsSync(path.join(d, n))) return path.join(d, n);
  return '';
}
