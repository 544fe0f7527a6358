// The chat page of `llmts serve` with its feedback store, in Chromium (playwright-core; Debian's chromium, skipped
// without one unless LLMTS_REQUIRE_BROWSER=1): a person sends a message, the reply streams in and is recorded, they
// thumb it down with a reason, edit it, regenerate and choose, rank, look at a token's probability — then the store
// holds exactly those judgments on those messages and `llmts feedback export` writes them as TRL rows.
// The model is a fake over the tiny model's real tokenizer that spreads its probability over nine ASCII bytes (so each
// reply is a different random string whose tokens spell it exactly) and never ends a reply: max tokens does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { loadServedModel } from '../src/cli/serve.js';
import { FeedbackStore } from '../src/feedback/store.js';
import { feedbackRoute, replyRecorder } from '../src/server/feedback_api.js';
import { compareRoute } from '../src/server/compare_route.js';
import { ImproveJob, improveRoute } from '../src/server/improve_job.js';
import { replyLinker } from '../src/server/reply_link.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { fakeCheckpoint } from './feedback_helpers.js';
import { FakeModel } from './generate_fakes.js';
import { ensureCliBuilt } from './helpers.js';
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
if (!HAVE) console.warn('test/app_page.test.ts: skipped, no Chromium (set LLMTS_CHROMIUM or install chromium)');

/** Run `llmts …` in this process; what it printed to stdout. */
async function llmts(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += `${a.join(' ')}\n`)),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (err += `${a.join(' ')}\n`)),
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true)),
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true)),
  ];
  try {
    return { code: await main(argv), out, err };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

describe.skipIf(!HAVE)('the chat page records feedback (Chromium)', () => {
  let dir: string;
  let db: string;
  let store: FeedbackStore;
  let server: LlmServer;
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-app-page-'));
    const modelDir = path.join(dir, 'tiny');
    await makeTinyModel(modelDir, { context: 256 });
    const served = await loadServedModel(modelDir, { backend: 'ref', modelName: 'tiny' });
    const letters = [...'abcdefgh '].map((c) => served.codec.encodePlain!(c)[0]!);
    const V = served.model.config.vocabSize;
    const model = new FakeModel({ vocabSize: V, maxPositions: 256 }, () => {
      const logits = new Float32Array(V).fill(-30);
      for (const id of letters) logits[id] = 5;
      return logits;
    });
    db = path.join(dir, 'feedback.sqlite');
    store = FeedbackStore.open(db);
    // Compare's candidate: a model that only ever says 'z'
    const zModel = new FakeModel({ vocabSize: V, maxPositions: 256 }, () => {
      const logits = new Float32Array(V).fill(-30);
      logits[served.codec.encodePlain!('z')[0]!] = 30;
      return logits;
    });
    const base = { served: { ...served, model }, dir: modelDir };
    const candidate = {
      served: { ...served, name: 'zed', model: zModel },
      dir: fakeCheckpoint(path.join(dir, 'z'), 'z'),
    };
    server = createServer({
      served: base.served,
      port: 0,
      routes: [
        feedbackRoute(store),
        improveRoute(new ImproveJob({ store, modelDir, outDir: path.join(dir, 'runs'), backend: 'ref' })),
      ],
      replyLinker: replyLinker(store, replyRecorder(store, modelDir)),
      stateRoutes: (state) => [compareRoute(state, store, base, candidate)],
    });
    await server.listen();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('chat, thumbs down with a reason, edit, regenerate and choose, rank: the store and the export hold them', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => void (m.type() === 'error' && problems.push(`console: ${m.text()}`)));
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'tiny');
    await page.fill('#rater', 'alice');
    await page.dispatchEvent('#rater', 'change');
    await page.fill('#max-tokens', '6');
    await page.fill('#input', 'name a color');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.msg.assistant .meta', { timeout: 20_000 });
    const first = await page.textContent('.msg.assistant .text');
    expect(first).toHaveLength(6);
    expect(await page.textContent('.msg.assistant .meta')).toMatch(/^length · 6 tokens .* · #\d+$/);
    // the sidebar lists the stored conversation
    await page.waitForSelector('#conversations li button[aria-current]');
    expect(await page.textContent('#conversations li button[aria-current]')).toBe('name a color');

    // a token's probability: each of nine equal letters is 1/9
    await page.click('.msg.assistant .tok >> nth=0');
    await page.waitForSelector('#tokens:not([hidden]) table');
    const alts = await page.$$eval('#tokens tr', (rows) => rows.length - 1);
    expect(alts).toBe(5);
    expect(await page.textContent('#tokens-body p')).toMatch(/p = 11\.1%/);

    // thumbs down with a reason (keyboard: focus the button, press Enter)
    await page.focus('button[aria-label="thumbs down"]');
    await page.keyboard.press('Enter');
    await page.check('.reasons input[value="fails_task"]');
    await page.click('.reasons button.primary');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('saved: thumbs down'));

    // edit it into a better reply
    await page.click('button[aria-label="edit this reply into a better one"]');
    await page.fill('.panel.edit textarea', 'Blue, like the sky.');
    await page.click('.panel.edit button.primary');
    await page.waitForFunction(
      () => document.querySelector('.msg.assistant .text')?.textContent === 'Blue, like the sky.',
    );
    expect(await page.textContent('.msg.assistant .meta')).toContain('your correction');

    // regenerate → a second model reply; choose B (the new one) over A (the correction)
    await page.click('button[aria-label="generate another reply to compare"]');
    await page.waitForSelector('.panel.choose', { timeout: 20_000 });
    const [a, b] = await page.$$eval('.panel.choose .side .text', (els) => els.map((e) => e.textContent));
    expect(a).toBe('Blue, like the sky.');
    expect(b).toHaveLength(6);
    expect(b).not.toBe(first);
    await page.click('button[aria-label="verdict: B is better"]');
    await page.waitForFunction(() => !document.querySelector('.panel.choose'));
    expect(await page.textContent('.msg.assistant .text')).toBe(b);
    expect(await page.textContent('.nav')).toContain('3/3');

    // rank the three replies: the correction first, then the second model reply, then the first
    await page.click('.actions button.rank');
    await page.selectOption('.panel.rank select >> nth=0', '3');
    await page.selectOption('.panel.rank select >> nth=1', '1');
    await page.selectOption('.panel.rank select >> nth=2', '2');
    await page.click('.panel.rank button.primary');
    await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('saved: ranking'));
    expect(problems).toEqual([]);
    await page.close();

    // the store: the conversation's tree and exactly these judgments
    const [conv] = store.listConversations();
    const msgs = store.messagesOf(conv!.id);
    expect(msgs.map((m) => [m.role, m.author, m.editOf !== null])).toEqual([
      ['user', 'alice', false],
      ['assistant', null, false],
      ['assistant', 'alice', true],
      ['assistant', null, false],
    ]);
    const [user, r1, fix, r2] = msgs;
    expect([r1!.content, fix!.content, r2!.content]).toEqual([first, 'Blue, like the sky.', b]);
    expect(r1!.logprobs).toHaveLength(6);
    expect(r1!.checkpointHash).toMatch(/^[0-9a-f]{64}$/);
    const js = store.judgmentsOf(conv!.id);
    expect(js.map((j) => [j.kind, j.rater, j.messageId, j.value, j.reasons])).toEqual([
      ['thumbs', 'alice', r1!.id, 'down', ['fails_task']],
      ['edit', 'alice', r1!.id, null, []],
      ['choice', 'alice', fix!.id, 'b', []],
      ['ranking', 'alice', r1!.id, null, []],
    ]);
    expect(js[2]!.items.map((i) => i.messageId)).toEqual([fix!.id, r2!.id]);
    expect(js[3]!.items.map((i) => [i.messageId, i.rank])).toEqual([
      [r1!.id, 2],
      [fix!.id, 0],
      [r2!.id, 1],
    ]);

    // `llmts feedback export`: the TRL rows of those judgments
    const rows = async (type: string) => {
      const r = await llmts('feedback', 'export', '--db', db, '--type', type);
      expect(r.code, r.err).toBe(0);
      return r.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    };
    const prompt = [{ role: 'user', content: user!.content }];
    const as = (content: string) => [{ role: 'assistant', content }];
    expect(await rows('sft')).toEqual([{ messages: [...prompt, ...as('Blue, like the sky.')] }]);
    expect(await rows('kto')).toEqual([{ prompt, completion: as(first!), label: false }]);
    expect(await rows('ranking')).toEqual([
      { prompt, completions: [as(first!), as('Blue, like the sky.'), as(b!)], ranking: [1, 2, 0] },
    ]);
    const prefs = await rows('preference');
    expect(prefs).toContainEqual({ prompt, chosen: as('Blue, like the sky.'), rejected: as(first!) }); // the edit
    expect(prefs).toContainEqual({ prompt, chosen: as(b!), rejected: as('Blue, like the sky.') }); // the choice
  }, 90_000);

  it('Compare: both checkpoints answer blind, the choice is recorded and the score shown', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#compare-toggle:not([hidden])');
    await page.fill('#rater', 'bea');
    await page.fill('#max-tokens', '4');
    await page.click('#compare-toggle');
    expect(await page.isHidden('#log')).toBe(true);
    await page.fill('#compare-input', 'pick a letter');
    await page.click('#compare-go');
    await page.waitForSelector('.verdict', { timeout: 20_000 });
    const sides = await page.$$eval('#compare-pair .side .text', (els) => els.map((e) => e.textContent));
    expect(sides).toContain('zzzz');
    await page.click('button[aria-label="compare: 1 is better"]');
    await page.waitForFunction(() => /win rate/.test(document.getElementById('compare-stats')?.textContent ?? ''));
    const stats = await page.textContent('#compare-stats');
    const candidateFirst = sides[0] === 'zzzz';
    expect(stats).toBe(
      candidateFirst
        ? 'zed vs tiny: 1 wins, 0 losses, 0 ties, 0 both bad · win rate 100% (95% CI 21%–100%)'
        : 'zed vs tiny: 0 wins, 1 losses, 0 ties, 0 both bad · win rate 0% (95% CI 0%–79%)',
    );
    const j = store.allJudgments().at(-1)!;
    expect([j.kind, j.rater, j.value]).toEqual(['choice', 'bea', 'a']);
    expect(store.message(j.items[0]!.messageId).content).toBe(sides[0]);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('Improve the model (LoRA ticked): trains adapters on the feedback in the background and shows its log until the checkpoint', async () => {
    ensureCliBuilt();
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#improve:not([hidden])');
    await page.click('#improve summary');
    await page.fill('#improve-steps', '1');
    await page.check('#improve-lora');
    await page.click('#improve-go');
    await page.waitForFunction(
      () => /^(done|failed)/.test(document.getElementById('improve-state')?.textContent ?? ''),
      null,
      {
        timeout: 120_000,
      },
    );
    const state = await page.textContent('#improve-state');
    expect(state, (await page.textContent('#improve-log')) ?? '').toMatch(/^done: .*-dpo[/\\]checkpoint$/);
    expect(await page.textContent('#improve-log')).toMatch(/\$ llmts sft .*--usePeft/);
    expect(fs.existsSync(path.join(state!.slice('done: '.length), 'adapter_model.safetensors'))).toBe(true);
    await page.close();
  }, 180_000);
});
