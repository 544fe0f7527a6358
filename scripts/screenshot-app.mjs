#!/usr/bin/env node
/**
 * The README's picture of the chat page of `llmts serve`: drives a running server's page in Chromium (playwright-core,
 * Debian's chromium or $LLMTS_CHROMIUM) — a few conversations for the sidebar, a reply thumbed down, a regenerated
 * reply with the A / B choice open, a token's probabilities — and saves a screenshot. Every action it takes is
 * recorded in the server's feedback store, so point it at a throwaway one:
 *
 *   node bin/llmts.js train --preset=shakespeare-char --maxSteps=800 --name=shakespeare
 *   node bin/llmts.js serve runs/shakespeare --db /tmp/screenshot.sqlite --port 8080
 *   node scripts/screenshot-app.mjs http://127.0.0.1:8080 docs/images/app.png
 */
import fs from 'node:fs';
import path from 'node:path';

const [url, output = 'docs/images/app.png'] = process.argv.slice(2);
if (!url || !/^https?:\/\//.test(url)) {
  console.error('usage: node scripts/screenshot-app.mjs <url of llmts serve> [out.png]');
  process.exit(2);
}
const CHROMIUM =
  process.env.LLMTS_CHROMIUM ??
  ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => fs.existsSync(p));
if (!CHROMIUM) {
  console.error('no Chromium found: apt-get install -y chromium, or set LLMTS_CHROMIUM');
  process.exit(1);
}

const { chromium } = await import('playwright-core');
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1240, height: 760 }, deviceScaleFactor: 1 });
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('model')?.textContent !== '…');
  await page.fill('#rater', 'ada');
  await page.fill('#max-tokens', '60');
  /** Send a message and wait for its reply to finish. @param {string} text */
  const send = async (text) => {
    const n = await page.locator('.msg.assistant .meta').count();
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
    await page.waitForFunction((k) => document.querySelectorAll('.msg.assistant .meta').length > k, n, {
      timeout: 60_000,
    });
  };
  for (const t of ['What news from Verona?', 'Speak of the king.']) {
    await page.click('#reset');
    await send(t);
  }
  await page.click('#reset');
  await send('Good morrow! How fares my lord?');
  await page.click('button[aria-label="thumbs up"]');
  await page.click('button[aria-label="generate another reply to compare"]');
  await page.waitForSelector('.panel.choose', { timeout: 60_000 });
  await page.click('.msg.assistant .tok >> nth=3');
  await page.waitForSelector('#tokens:not([hidden]) table');
  if (errors.length) throw new Error(`the page failed: ${errors.join('; ')}`);
  fs.mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
  await page.screenshot({ path: output, fullPage: true });
  console.log(`wrote ${output}`);
} finally {
  await browser.close();
}
