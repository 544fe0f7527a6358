/**
 * The inspection page in a real browser (Debian's Chromium through playwright-core, opened from a file: nothing is
 * served, as a user opens it): the heat map shows, clicking another token redraws it with that token's attention
 * (each key's shade checked against the captured probability), the layer / head choice changes it, the logit lens
 * table holds the model's top tokens, the sampling controls keep what the sampler's own arithmetic
 * (src/backend/sampling.ts `rowWeights`) keeps, and hostile token strings render as text, never as markup.
 *
 * Without Chromium on the PATH (or $LLMTS_CHROMIUM) the suite is skipped with a message, unless
 * LLMTS_REQUIRE_BROWSER=1, which makes it fail instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { rowWeights } from '../src/backend/sampling.js';
import { inspectIds, type Inspection } from '../src/inspect/inspect.js';
import { inspectionHtml } from '../src/inspect/page.js';
import { loadModel } from '../src/model/hf/folder.js';
import { fixtureDirs } from './helpers.js';

function findChromium(): string {
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of names) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return '';
}
const CHROMIUM = process.env['LLMTS_CHROMIUM'] ?? findChromium();
const HAVE = CHROMIUM !== '' && fs.existsSync(CHROMIUM);
if (!HAVE) {
  const msg = `inspect browser test: ${CHROMIUM ? `${CHROMIUM} not found` : 'no chromium on the PATH'} (apt-get install -y chromium, or set LLMTS_CHROMIUM)`;
  if (process.env['LLMTS_REQUIRE_BROWSER'] === '1') throw new Error(`${msg}, and LLMTS_REQUIRE_BROWSER=1`);
  console.warn(`${msg}: skipped; set LLMTS_REQUIRE_BROWSER=1 to make this a failure`);
}

const EVIL = '<img src=x onerror="window.__pwned=1">';
const FIXTURE = fixtureDirs().find((d) => path.basename(d) === 'llama-tiny');

describe.skipIf(!HAVE)('the inspection page in Chromium', () => {
  let browser: import('playwright-core').Browser;
  let page: import('playwright-core').Page;
  let ins: Inspection;
  let tmp = '';
  const errors: string[] = [];

  beforeAll(async () => {
    expect(FIXTURE, 'the llama-tiny fixture').toBeDefined();
    const model = await loadModel(FIXTURE!, { backend: getBackend('ref') });
    const ids = (
      JSON.parse(fs.readFileSync(path.join(FIXTURE!, 'reference.json'), 'utf8')) as { input_ids: number[][] }
    ).input_ids[0]!;
    ins = await inspectIds(model, ids.slice(0, 12), null, { topk: 3 });
    ins.tokens[2] = EVIL; // a token string from a hostile tokenizer
    ins.vocab.set(ins.lens[ins.numLayers]!.ids[0]!, '</script><script>window.__pwned=2</script>');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-inspect-page-'));
    const file = path.join(tmp, 'inspect.html');
    fs.writeFileSync(file, inspectionHtml(ins, { title: 'test', sampling: { temperature: 1, topK: 0, topP: 1 } }));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-first-run'] });
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) errors.push(`fetched ${r.url()}`);
    });
    await page.goto(pathToFileURL(file).href);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The shade of each token of the strip (alpha of its background) and the canvas's non-white pixels. */
  const look = () =>
    page.evaluate(() => {
      const alpha = (s: string) => {
        const m = /rgba?\(([^)]*)\)/.exec(s);
        const p = m ? m[1]!.split(',').map(Number) : [];
        return p.length === 4 ? p[3]! : p.length === 3 ? 1 : 0;
      };
      const spans = Array.from(document.querySelectorAll<HTMLElement>('#tokens .tok'));
      const c = document.getElementById('attn-canvas') as HTMLCanvasElement;
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] !== 255 || px[i + 1] !== 255 || px[i + 2] !== 255) coloured++;
      return {
        shades: spans.map((s) => alpha(getComputedStyle(s).backgroundColor)),
        query: spans.findIndex((s) => s.classList.contains('query')),
        coloured,
        canvas: c.toDataURL(),
      };
    });

  /** p(query t → key s) of a layer and head, from the captured attention (H, T, T). */
  const prob = (l: number, h: number, t: number, s: number) => {
    const T = ins.ids.length;
    return ins.attention[l]![(h * T + t) * T + s]!;
  };

  it('opens without an error or a request, and the heat map shows', async () => {
    expect(errors).toEqual([]);
    const v = await look();
    const T = ins.ids.length;
    expect(v.shades).toHaveLength(T);
    expect(v.query).toBe(T - 1); // the last token is chosen first
    expect(v.coloured).toBeGreaterThan(100);
    // last layer, head 1: every key's shade is √p of the captured probability (uint16 in the page, 3 decimals in CSS)
    v.shades.forEach((a, s) =>
      expect(Math.abs(a - Math.sqrt(prob(ins.numLayers - 1, 0, T - 1, s)))).toBeLessThan(0.003),
    );
  });

  it('clicking another token shows where that one looks', async () => {
    const before = await look();
    await page.click('#tokens .tok[data-i="4"]');
    const after = await look();
    expect(after.query).toBe(4);
    expect(after.canvas).not.toBe(before.canvas);
    after.shades.forEach((a, s) => {
      if (s > 4)
        expect(a).toBe(0); // masked: after the chosen token
      else expect(Math.abs(a - Math.sqrt(prob(ins.numLayers - 1, 0, 4, s)))).toBeLessThan(0.003);
    });
    // another layer and head (a query head on the second key/value head of this grouped-query model)
    await page.selectOption('#layer', '0');
    await page.selectOption('#head', '3');
    const other = await look();
    expect(other.canvas).not.toBe(after.canvas);
    other.shades.slice(0, 5).forEach((a, s) => expect(Math.abs(a - Math.sqrt(prob(0, 3, 4, s)))).toBeLessThan(0.003));
    expect(await page.textContent('#head option[value="3"]')).toBe('head 4 (kv 2)');
  });

  it('token strings render as text, never as markup', async () => {
    expect(await page.textContent('#tokens .tok[data-i="2"]')).toBe(EVIL.replace(/ /g, '␣'));
    const r = await page.evaluate(() => ({
      imgs: document.querySelectorAll('img').length,
      scripts: document.querySelectorAll('script').length,
      pwned: (window as unknown as { __pwned?: number }).__pwned,
      lensTop: document.querySelector('#lens tr:nth-child(2) td')?.textContent,
    }));
    expect(r).toEqual({ imgs: 0, scripts: 2, pwned: undefined, lensTop: expect.any(String) });
    expect(await page.content()).toContain('&lt;/script&gt;&lt;script&gt;window.__pwned=2'); // shown in a cell as text
  });

  it('the logit lens table: one row per layer, the model’s own top tokens on top', async () => {
    const T = ins.ids.length,
      L = ins.numLayers;
    const rows = await page.$$eval('#lens tr', (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('th, td')).map((c) => c.textContent ?? '')),
    );
    expect(rows).toHaveLength(L + 2); // the header, block L … block 1, embeddings
    expect(rows.map((r) => r[0])).toEqual(['next token after →', ...ins.lens.map((r) => r.label).reverse()]);
    for (let t = 0; t < T; t++) {
      const id = ins.lens[L]!.ids[t * ins.topk]!;
      expect(rows[1]![t + 1]).toBe(ins.vocab.get(id)!.replace(/ /g, '␣'));
    }
  });

  it('the sampling controls keep what the sampler keeps, renormalised', async () => {
    const V = ins.vocabSize;
    for (const [temperature, topK, topP] of [
      [1, 0, 1],
      [0.7, 0, 0.9],
      [1.3, 20, 0.95],
      [0.5, 5, 1],
    ] as const) {
      await page.fill('#temperature', String(temperature)); // range inputs take fill() and fire 'input'
      await page.fill('#top-k', String(topK));
      await page.fill('#top-p', String(topP));
      const { w, sum } = rowWeights(ins.lastLogits, { temperature, topK, topP, minP: 0 });
      const kept = [...w].map((x, id) => ({ id, p: x / sum })).filter((e) => e.p > 0);
      kept.sort((a, b) => b.p - a.p || a.id - b.id);
      const note = (await page.textContent('#dist-note'))!;
      expect(note).toMatch(new RegExp(`^${kept.length} of ${V} tokens kept`));
      const rows = await page.$$eval('#dist tr.kept', (trs) =>
        trs.map((tr) => ({ id: Number((tr as HTMLElement).dataset['id']), after: tr.children[3]!.textContent! })),
      );
      expect(rows).toHaveLength(Math.min(20, kept.length));
      rows.forEach((r, i) => {
        expect(r.id).toBe(kept[i]!.id);
        const shown = r.after.endsWith('%') ? Number(r.after.slice(0, -1)) / 100 : Number(r.after);
        expect(Math.abs(shown - kept[i]!.p)).toBeLessThanOrEqual(Math.max(0.0005, kept[i]!.p * 0.05));
      });
    }
  });
});
