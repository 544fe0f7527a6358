/**
 * llm.ts in a real browser: a static server (node:http) over the repo root and the shared HF fixtures, with the
 * headers that make a page cross-origin isolated (COOP same-origin, COEP require-corp), and Debian's Chromium driven
 * by playwright-core. The page (test/browser/: index.html, page.js, checks.js) imports /dist/browser.js, starts the
 * wasm backend on 2 threads (Web Workers), compares matmul / attention / layernorm with the ref backend, loads a
 * Hugging Face fixture from its bytes, checks its logits against transformers', and decodes greedily; here the ids
 * are compared with the same generation run in Node. The same checks run again inside a module Web Worker and as a
 * Vite bundle (what most apps ship); a page served without the isolation headers must fall back to one thread and
 * say why.
 *
 * Needs `npm run build` (dist/ and build/*.wasm). Without Chromium on the PATH (or $LLMTS_CHROMIUM) the suite is
 * skipped with a message, unless LLMTS_REQUIRE_BROWSER=1, which makes it fail instead.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HF_FIXTURES, fixtureDirs } from './helpers.js';

const ROOT = process.cwd();
/** The first Chromium (or Chrome) executable on the PATH, else ''. */
function findChromium(): string {
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of names) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return '';
}
const CHROMIUM = process.env['LLMTS_CHROMIUM'] ?? findChromium();
const REQUIRE = process.env['LLMTS_REQUIRE_BROWSER'] === '1';
const HAVE = CHROMIUM !== '' && fs.existsSync(CHROMIUM);
const dirs = fixtureDirs();
const FIXTURE = dirs.find((d) => path.basename(d) === 'llama-tiny') ?? dirs[0];
const NEW_TOKENS = 8;

if (!HAVE) {
  const msg = `browser test: ${CHROMIUM ? `${CHROMIUM} not found` : 'no chromium on the PATH'} (apt-get install -y chromium, or set LLMTS_CHROMIUM)`;
  if (REQUIRE) throw new Error(`${msg}, and LLMTS_REQUIRE_BROWSER=1`);
  console.warn(`${msg}: skipped; set LLMTS_REQUIRE_BROWSER=1 to make this a failure`);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.safetensors': 'application/octet-stream',
};

/** Where the Vite bundle of the test page goes (served under /bundle/); made in beforeAll. */
let BUNDLE = '';
/** Paths the server was asked for. */
const requested: string[] = [];

/** GET-only static server: /fixtures/hf/… from the HF fixtures, /bundle/… from BUNDLE, the rest from the repo root. */
function startServer(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const rel = decodeURIComponent(url.pathname);
    requested.push(rel);
    const [base, sub] = rel.startsWith('/fixtures/hf/')
      ? [HF_FIXTURES, rel.slice('/fixtures/hf/'.length)]
      : rel.startsWith('/bundle/')
        ? [BUNDLE, rel.slice('/bundle/'.length)]
        : [ROOT, rel.slice(1)];
    const file = path.resolve(base, sub);
    if (!file.startsWith(path.resolve(base) + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${rel}`);
      return;
    }
    const headers: Record<string, string> = {
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-store',
    };
    // ?coi=0 on the page: serve it without isolation (the one-thread fallback)
    if (url.searchParams.get('coi') !== '0') {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    }
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Sources newer than what the page runs (dist/*.js for src/*.ts, build/*.wasm for the AssemblyScript kernels). */
function staleOutputs(): string[] {
  const mtime = (f: string) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
  const wasm = Math.min(
    mtime(path.join(ROOT, 'build/kernels-simd.wasm')),
    mtime(path.join(ROOT, 'build/kernels-relaxed.wasm')),
  );
  const out: string[] = [];
  for (const rel of fs.readdirSync(path.join(ROOT, 'src'), { recursive: true }) as string[]) {
    if (!/\.(ts|js)$/.test(rel)) continue;
    const src = mtime(path.join(ROOT, 'src', rel));
    const built = rel.startsWith(`backend${path.sep}wasm${path.sep}assembly`)
      ? wasm
      : mtime(path.join(ROOT, 'dist', rel.replace(/\.ts$/, '.js')));
    if (src > built) out.push(`src/${rel}`);
  }
  return out;
}

interface PageResult {
  done: boolean;
  error?: string;
  crossOriginIsolated: boolean;
  inWorker: boolean;
  describe: string;
  threads: number;
  hardwareConcurrency: number;
  kernels: { name: string; relErr: number; split: boolean }[];
  logitsShape: number[];
  logitsRelErr: number;
  prompt: number[];
  generated: number[];
  referenceGreedy: number[] | null;
  tokenizer: { same: boolean; roundTrip: boolean };
  chat: { chatml: string; jinja: string; conversation: boolean };
  ms: number;
}

describe.skipIf(!HAVE)(
  `llm.ts in Chromium${HAVE ? '' : ' (skipped: Chromium not found; set LLMTS_CHROMIUM or install chromium)'}`,
  () => {
    let server: http.Server;
    let browser: import('playwright-core').Browser;
    let origin = '';

    beforeAll(async () => {
      expect(fs.existsSync(path.join(ROOT, 'dist/browser.js')), 'dist/browser.js is missing: run `npm run build`').toBe(
        true,
      );
      expect(FIXTURE, `no Hugging Face fixtures in ${HF_FIXTURES}`).toBeDefined();
      const stale = staleOutputs();
      if (stale.length)
        console.warn(
          `browser test: dist/ or build/ is older than ${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', …' : ''}: run \`npm run build\` if this fails`,
        );
      BUNDLE = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-browser-'));
      server = await startServer();
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    }, 30_000);

    afterAll(async () => {
      await browser?.close();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      if (BUNDLE) fs.rmSync(BUNDLE, { recursive: true, force: true });
    });

    async function openPage(query: string, prefix = ''): Promise<PageResult> {
      const page = await browser.newPage();
      const consoleLines: string[] = [];
      page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
      try {
        await page.goto(`${origin}${prefix}/test/browser/index.html?${query}`);
        await page.waitForFunction(
          () => (window as unknown as { __llmts?: { done: boolean } }).__llmts?.done === true,
          undefined,
          { timeout: 20_000 },
        );
        return (await page.evaluate(() => (window as unknown as { __llmts: unknown }).__llmts)) as PageResult;
      } catch (e) {
        throw new Error(`${(e as Error).message}\nbrowser console:\n${consoleLines.join('\n')}`);
      } finally {
        await page.close();
      }
    }

    let nodeIds: number[] | null = null;

    /** The page's checks on 2 threads (see checks.js); `prefix` '/bundle' runs the Vite-bundled copy. */
    async function fullRun(prefix = '', inWorker = false): Promise<void> {
      const name = path.basename(FIXTURE!);
      const r = await openPage(
        `fixture=${encodeURIComponent(name)}&threads=2&tokens=${NEW_TOKENS}${inWorker ? '&worker=1' : ''}`,
        prefix,
      );
      console.info(
        `browser: ${r.describe}; kernels ${r.kernels?.map((k) => `${k.name} ${k.relErr?.toExponential(1)}`).join(', ')}; ` +
          `${name} logits ${r.logitsRelErr?.toExponential(1)}; greedy ${JSON.stringify(r.generated)}; ${r.ms} ms in the page`,
      );
      expect(r.error, r.error).toBeUndefined();
      expect(r.crossOriginIsolated).toBe(true);
      expect(r.inWorker).toBe(inWorker);
      expect(r.describe).toMatch(/^wasm \((relaxed SIMD FMA|SIMD128 mul\+add), 2 threads\)$/);
      expect(r.threads).toBe(2);
      for (const k of r.kernels) {
        expect(k.relErr, `${k.name} vs ref`).toBeLessThan(1e-5);
        expect(k.split, `${k.name} ran on the worker threads`).toBe(true);
      }
      expect(r.kernels.map((k) => k.name)).toEqual(['matmul', 'attention', 'layernorm']);
      // logits against transformers' (the fixture README: relative error ≲ 1e-5 in float32)
      expect(r.logitsShape.length).toBe(3);
      expect(r.logitsRelErr).toBeLessThan(1e-5);
      // greedy ids: transformers' reference and the same generation in Node
      expect(r.generated).toHaveLength(NEW_TOKENS);
      if (r.referenceGreedy)
        expect(r.generated).toEqual(r.referenceGreedy.slice(r.prompt.length, r.prompt.length + NEW_TOKENS));
      if (!nodeIds) {
        const { initBackend } = await import('../src/backend/registry.js');
        const { loadModel } = await import('../src/model/hf/folder.js');
        const { generate } = await import('../src/generate/engine.js');
        const model = await loadModel(FIXTURE!, { backend: await initBackend('ref', { setDefault: false }) });
        nodeIds = (await generate(model, r.prompt, { maxTokens: NEW_TOKENS, temperature: 0, seed: 1 })).choices[0]!.ids;
      }
      expect(r.generated).toEqual(nodeIds);
      // tokenizer core and chat templates (jinja through the import map)
      expect(r.tokenizer).toEqual({ same: true, roundTrip: true });
      expect(r.chat.chatml).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
      expect(r.chat.jinja).toBe('<user>hi</s><assistant>');
      expect(r.chat.conversation).toBe(true);
    }

    it(
      'runs the wasm backend on 2 Web Worker threads: kernels, HF logits, greedy generation = Node',
      () => fullRun(),
      30_000,
    );

    it('defaults to navigator.hardwareConcurrency threads', async () => {
      const r = await openPage('quick=1');
      expect(r.error, r.error).toBeUndefined();
      expect(r.hardwareConcurrency).toBeGreaterThan(0);
      expect(r.threads).toBe(Math.min(r.hardwareConcurrency, 64)); // the pool's MAX_THREADS
    }, 30_000);

    it('falls back to one thread, and says why, on a page that is not cross-origin isolated', async () => {
      const r = await openPage(`fixture=${encodeURIComponent(path.basename(FIXTURE!))}&threads=2&tokens=2&coi=0`);
      console.info(`browser, not isolated: ${r.describe}`);
      expect(r.crossOriginIsolated).toBe(false);
      expect(r.error, r.error).toBeUndefined();
      expect(r.threads).toBe(1);
      expect(r.describe).toMatch(
        /^wasm \(.*, 1 thread: page is not cross-origin isolated; serve it with COOP same-origin \+ COEP require-corp\)$/,
      );
      expect(r.logitsRelErr).toBeLessThan(1e-5);
      expect(r.generated).toHaveLength(2);
    }, 30_000);

    let bundled: Promise<void> | null = null;
    /** Bundle the test page with Vite into BUNDLE (once). */
    function bundle(): Promise<void> {
      bundled ??= (async () => {
        const { build } = await import('vite');
        await build({
          configFile: false,
          logLevel: 'error',
          root: ROOT,
          base: '/bundle/',
          build: {
            outDir: BUNDLE,
            emptyOutDir: true,
            target: 'esnext',
            reportCompressedSize: false,
            rollupOptions: { input: path.join(ROOT, 'test/browser/index.html') },
          },
          worker: { format: 'es' },
        });
      })();
      return bundled;
    }

    it('runs the same page bundled by Vite (worker and kernels as bundle assets)', async () => {
      await bundle();
      const assets = fs.readdirSync(path.join(BUNDLE, 'assets'));
      expect(
        assets.some((f) => /^kernels-relaxed-.*\.wasm$/.test(f)) && assets.some((f) => /^worker-.*\.js$/.test(f)),
      ).toBe(true);
      requested.length = 0;
      await fullRun('/bundle');
      // everything came from the bundle (the fixtures aside), nothing from dist/ or build/
      expect(
        requested.filter((p) => !p.startsWith('/bundle/') && !p.startsWith('/fixtures/hf/') && p !== '/favicon.ico'),
      ).toEqual([]);
    }, 30_000);

    // Import maps do not apply inside workers, so unbundled dist/browser.js cannot resolve '@huggingface/jinja' there:
    // the in-Worker run uses the bundle.
    it('runs the same checks inside a module Web Worker (Atomics.wait allowed there, nested pool workers)', async () => {
      await bundle();
      await fullRun('/bundle', true);
    }, 30_000);
  },
);
