// "Inspect" under a reply of the chat page (issue 14: the views of `llmts inspect` in the server's web app), in
// Chromium (playwright-core; skipped without one unless LLMTS_REQUIRE_BROWSER=1): a person sends a message to a real
// tiny model, clicks Inspect under the reply, and a new tab shows the inspection page of that conversation and reply —
// the attention heat map drawn, one logit-lens row per layer plus the output, the tokens of prompt + reply. The link
// route itself (POST /v1/inspect "format": "link", GET /v1/inspect/<id>) is checked in Node below, with an API key.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { createServer } from '../src/server/server.js';
import type { ServedModel } from '../src/server/served_model.js';
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
if (!HAVE) console.warn('test/app_inspect.test.ts: browser part skipped, no Chromium (set LLMTS_CHROMIUM)');

const TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let dir: string;
let served: ServedModel;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-app-inspect-'));
  await makeTinyModel(dir, { context: 256 });
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, chat_template: TEMPLATE }));
  served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
}, 60_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/inspect "format": "link"', () => {
  it('gives a URL whose GET is the page (no key needed: the id is the key); other ids are 404', async () => {
    const server = createServer({ served, port: 0, maxTokens: 16, apiKey: 'sekret' });
    const base = await server.listen();
    try {
      const body = { messages: [{ role: 'user', content: 'the king' }], reply: 'ab', format: 'link' };
      const denied = await fetch(`${base}/v1/inspect`, { method: 'POST', body: JSON.stringify(body) });
      expect(denied.status).toBe(401);
      const res = await fetch(`${base}/v1/inspect`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sekret' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      const { url } = (await res.json()) as { url: string };
      expect(url).toMatch(/^\/v1\/inspect\/[0-9a-f-]{36}$/);
      const page = await fetch(`${base}${url}`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain('id="inspect-data"');
      // the same page as format "html" gives for the same request
      const direct = await fetch(`${base}/v1/inspect`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer sekret' },
        body: JSON.stringify({ ...body, format: 'html' }),
      });
      expect(await direct.text()).toBe(html);
      expect((await fetch(`${base}/v1/inspect/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`)).status).toBe(404);
      expect((await fetch(`${base}${url}`, { method: 'DELETE' })).status).toBe(401);
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe.skipIf(!HAVE)('Inspect under a reply of the chat page (Chromium)', () => {
  it('opens the inspection of that conversation and reply in a new tab, heat map drawn', async () => {
    const server = createServer({ served, port: 0, maxTokens: 16 });
    const base = await server.listen();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    });
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      // the page sends no seed (each reply is a fresh draw); a fixed one here, so the random model's reply is the
      // same non-empty one on every run (a fresh draw may stop at once: an empty reply has no tokens to inspect)
      await page.route('**/v1/chat/completions', (route) => {
        const body = JSON.parse(route.request().postData() ?? '{}') as Record<string, unknown>;
        return route.continue({ postData: JSON.stringify({ ...body, seed: 1 }) });
      });
      await page.goto(`${base}/`);
      await page.waitForFunction(() => document.getElementById('model')?.textContent === 'tiny');
      await page.fill('#max-tokens', '5');
      await page.fill('#input', 'the king');
      await page.press('#input', 'Enter');
      await page.waitForSelector('.msg.assistant .meta', { timeout: 20_000 });
      const reply = (await page.textContent('.msg.assistant .text')) ?? '';
      const [tab] = await Promise.all([context.waitForEvent('page'), page.click('button[aria-label^="look inside"]')]);
      await tab!.waitForURL(/\/v1\/inspect\/[0-9a-f-]{36}$/, { timeout: 20_000 });
      await tab!.waitForSelector('#lens tr');
      const tabProblems: string[] = [];
      tab!.on('pageerror', (e) => tabProblems.push(e.message));
      const data = JSON.parse((await tab!.textContent('#inspect-data')) ?? '{}') as {
        tokens: string[];
        ids: number[];
        model: { layers: number };
      };
      // the prompt as the template renders it, then the reply's tokens
      const prompt = '<|im_start|>user\nthe king<|im_end|>\n<|im_start|>assistant\n';
      let k = 0;
      let text = '';
      while (text.length < prompt.length) text += data.tokens[k++];
      expect(text).toBe(prompt);
      expect(data.tokens.length).toBeGreaterThan(k);
      // the reply's text as the page holds it, encoded as the server encodes it (a random model's bytes that are not
      // UTF-8 on their own come back as U+FFFD in the text, and as its bytes here: the same on both sides)
      expect(data.ids.slice(k)).toEqual(served.codec.encodePlain!(reply));
      // the heat map is drawn: the canvas has non-blank pixels
      const inked = await tab!.$eval('#attn-canvas', (c) => {
        const cv = c as HTMLCanvasElement;
        const px = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i]! < 250 || px[i + 1]! < 250 || px[i + 2]! < 250) n++;
        return n;
      });
      expect(inked).toBeGreaterThan(0);
      const lensRows = await tab!.$$eval('#lens tr', (rows) => rows.length);
      expect(lensRows).toBeGreaterThanOrEqual(data.model.layers + 1);
      expect(problems).toEqual([]);
      expect(tabProblems).toEqual([]);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 90_000);
});
