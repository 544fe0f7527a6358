#!/usr/bin/env node
/**
 * The README's picture of `llmts inspect`: opens a page the command wrote in Chromium (playwright-core, Debian's
 * chromium or $LLMTS_CHROMIUM), picks a token, and saves a screenshot.
 *
 *   node bin/llmts.js train --preset=shakespeare-char --maxSteps=1500 --name=shakespeare   # ~2 minutes on 2 cores
 *   node bin/llmts.js inspect runs/shakespeare "ROMEO:\nWhat say you, my lord?" -o inspect.html
 *   node scripts/screenshot-inspect.mjs inspect.html docs/images/inspect.png [--query N] [--layer L] [--head H]
 *
 * --query: the token whose attention is shown (1-based; default the last), --layer / --head likewise (default: the
 * page's own choice, the last layer and head 1).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    query: { type: 'string' },
    layer: { type: 'string' },
    head: { type: 'string' },
    width: { type: 'string' },
  },
});
const [input, output = 'docs/images/inspect.png'] = positionals;
if (!input || !fs.existsSync(input)) {
  console.error(
    'usage: node scripts/screenshot-inspect.mjs <inspect.html> [out.png] [--query N] [--layer L] [--head H]',
  );
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
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-first-run'] });
try {
  const page = await browser.newPage({
    viewport: { width: Number(values.width ?? 1240), height: 900 },
    deviceScaleFactor: 1,
  });
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(path.resolve(input)).href);
  if (values.layer) await page.selectOption('#layer', String(Number(values.layer) - 1));
  if (values.head) await page.selectOption('#head', String(Number(values.head) - 1));
  if (values.query) await page.click(`.tok[data-i="${Number(values.query) - 1}"]`);
  if (errors.length) throw new Error(`the page failed: ${errors.join('; ')}`);
  fs.mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
  await page.screenshot({ path: output, fullPage: true });
  console.log(`wrote ${output}`);
} finally {
  await browser.close();
}
