// The chat page of `llmts serve` in Chromium (playwright-core; Debian's chromium, skipped without one unless
// LLMTS_REQUIRE_BROWSER=1): a message sent from the page streams back a reply, and a reply that holds HTML — an
// <img onerror>, a <script>, an inline handler — renders as the characters it is: no element is made, no script runs.
// The model is scripted (test/generate_fakes.ts) to say exactly that text through the real tokenizer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { FakeModel } from './generate_fakes.js';
import { makeTinyModel } from './sft_helpers.js';

function findChromium(): string {
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean))
    for (const name of names) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  return '';
}
const CHROMIUM = process.env['LLMTS_CHROMIUM'] ?? findChromium();
const HAVE = CHROMIUM !== '' && fs.existsSync(CHROMIUM);
if (!HAVE && process.env['LLMTS_REQUIRE_BROWSER'] === '1') throw new Error('no Chromium, and LLMTS_REQUIRE_BROWSER=1');

const EVIL = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b onclick="x()">bold</b> & done';

describe.skipIf(!HAVE)('the chat page in Chromium', () => {
  let dir: string;
  let server: LlmServer;
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-page-'));
    await makeTinyModel(dir, { context: 256 });
    const served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
    const script = served.codec.encodePlain!(EVIL);
    const V = served.model.config.vocabSize;
    const eos = served.eosTokens[0]!;
    const model = new FakeModel({ vocabSize: V, maxPositions: 256 }, (seq, promptLen) => {
      const logits = new Float32Array(V).fill(-20);
      logits[script[seq.length - promptLen] ?? eos] = 20; // the scripted reply, then eos
      return logits;
    });
    server = createServer({ served: { ...served, model }, port: 0 });
    await server.listen();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-first-run'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('streams a reply into the page as text: HTML in it makes no element and runs nothing', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'tiny');
    await page.fill('#input', 'say something');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.msg.assistant .meta', { timeout: 20_000 });
    const r = await page.evaluate(() => {
      const reply = document.querySelector('.msg.assistant')!;
      return {
        text: reply.firstChild?.textContent ?? '',
        elements: reply.querySelectorAll('img, script, b').length,
        xss: (window as unknown as { __xss?: number }).__xss ?? null,
        user: document.querySelector('.msg.user')?.textContent,
        meta: reply.querySelector('.meta')?.textContent ?? '',
      };
    });
    expect(r.user).toBe('say something');
    expect(r.text).toBe(EVIL);
    expect(r.elements).toBe(0);
    expect(r.xss).toBeNull();
    expect(r.meta).toMatch(/^stop · \d+ tokens/);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
