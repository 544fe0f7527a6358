/**
 * The webgpu backend in Chromium: every kernel conformance case (./conformance_cases.ts) run on WebGPU in a page and
 * compared with ref in float64 under the suite's tolerance, native kernels and ref fallbacks (host steps) alike.
 * Chromium runs WebGPU with --enable-unsafe-webgpu; with no GPU it is SwiftShader (Vulkan on the CPU), so this checks
 * correctness, not speed. The page (test/webgpu/page.ts) is bundled by Vite and served from 127.0.0.1 (WebGPU needs
 * a secure context), driven by playwright-core.
 *
 * Skipped with a message when Chromium is not on the PATH (or $LLMTS_CHROMIUM), or when it offers no WebGPU adapter;
 * LLMTS_REQUIRE_BROWSER=1 makes both failures.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBGPU_KERNELS } from '../src/backend/webgpu/backend.js';
import { cases } from './conformance_cases.js';
import type { WebGpuModelResult } from './webgpu/model.js';
import type { WebGpuPageResult } from './webgpu/page.js';

const ROOT = process.cwd();
function findChromium(): string {
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean))
    for (const name of names) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  return '';
}
const CHROMIUM = process.env['LLMTS_CHROMIUM'] ?? findChromium();
const REQUIRE = process.env['LLMTS_REQUIRE_BROWSER'] === '1';
const HAVE = CHROMIUM !== '' && fs.existsSync(CHROMIUM);
if (!HAVE) {
  const msg = `webgpu browser test: ${CHROMIUM ? `${CHROMIUM} not found` : 'no chromium on the PATH'} (apt-get install -y chromium, or set LLMTS_CHROMIUM)`;
  if (REQUIRE) throw new Error(`${msg}, and LLMTS_REQUIRE_BROWSER=1`);
  console.warn(`${msg}: skipped`);
}

const CHROMIUM_WEBGPU_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Bundle test/webgpu/index.html with Vite into a temporary folder. */
async function bundlePage(): Promise<string> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-webgpu-'));
  const { build } = await import('vite');
  await build({
    configFile: false,
    logLevel: 'error',
    root: ROOT,
    base: '/',
    build: {
      outDir: out,
      emptyOutDir: true,
      target: 'esnext',
      minify: false,
      reportCompressedSize: false,
      rollupOptions: {
        input: [path.join(ROOT, 'test/webgpu/index.html'), path.join(ROOT, 'test/webgpu/model.html')],
      },
    },
    worker: { format: 'es' },
  });
  return out;
}

function serve(dir: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).slice(1);
    const file = path.resolve(dir, rel);
    if (rel === 'favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (!file.startsWith(path.resolve(dir) + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    const type = file.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8';
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const ALL = cases();

describe.skipIf(!HAVE)('webgpu backend in Chromium', () => {
  let result: WebGpuPageResult | null = null;
  let noWebGpu = '';
  let dir = '';
  let origin = '';
  let server: http.Server | undefined;
  let browser: import('playwright-core').Browser | undefined;

  /** Open a bundled page and wait for its window.__webgpu to be done. */
  async function openPage<R extends { done: boolean; error?: string }>(file: string, timeout: number): Promise<R> {
    const page = await browser!.newPage();
    const lines: string[] = [];
    page.on('console', (m) => lines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => lines.push(`[pageerror] ${e.message}`));
    try {
      await page.goto(`${origin}/test/webgpu/${file}`);
      await page.waitForFunction(
        () => (window as unknown as { __webgpu?: { done: boolean } }).__webgpu?.done,
        undefined,
        {
          timeout,
        },
      );
      if (lines.some((l) => l.startsWith('[error]') || l.startsWith('[pageerror]')))
        console.warn(`browser console:\n${lines.join('\n')}`);
      return (await page.evaluate(() => (window as unknown as { __webgpu: unknown }).__webgpu)) as R;
    } catch (e) {
      throw new Error(`${(e as Error).message}\nbrowser console:\n${lines.join('\n')}`);
    } finally {
      await page.close();
    }
  }

  beforeAll(async () => {
    dir = await bundlePage();
    server = await serve(dir);
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_WEBGPU_ARGS });
    result = await openPage<WebGpuPageResult>('index.html', 100_000);
    if (result.error && /E_NO_WEBGPU|E_NO_ADAPTER|WebGPU is not available|no adapter/.test(result.error)) {
      noWebGpu = result.error;
      if (REQUIRE) throw new Error(`${noWebGpu}, and LLMTS_REQUIRE_BROWSER=1`);
      console.warn(`webgpu browser test: ${noWebGpu}: skipped`);
    }
    console.info(
      `webgpu in Chromium: ${result.describe}; ${result.results.length} cases, ${result.dispatches} dispatches, ` +
        `${result.hostSteps} host steps, ${result.ms} ms in the page`,
    );
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts a WebGPU device and runs every case', (ctx) => {
    if (noWebGpu) return ctx.skip(noWebGpu);
    expect(result?.error, result?.error).toBeUndefined();
    expect(result!.describe).toMatch(/^webgpu \(/);
    expect(result!.results.map((r) => r.name)).toEqual(ALL.map((c) => c.name));
    // the native kernels ran on the device, the rest as host steps
    expect(result!.dispatches).toBeGreaterThan(100);
    expect(result!.hostSteps).toBeGreaterThan(0);
  });

  it('implements matmul, the norms, softmax, cross-entropy, AdamW and the elementwise maps natively', () => {
    for (const k of ['matmul', 'layernorm', 'rmsnorm', 'softmax', 'cross_entropy', 'adamw', 'add', 'gelu'])
      expect(WEBGPU_KERNELS.has(k), k).toBe(true);
  });

  it.for(ALL.map((c, i) => [c.name, i] as const))('%s', ([, i], ctx) => {
    if (noWebGpu || !result || result.error) return ctx.skip(noWebGpu || 'the page did not run');
    const r = result.results[i]!;
    expect(r.name).toBe(ALL[i]!.name);
    expect(r.error, r.error).toBeUndefined();
    expect(r.native).toBe(WEBGPU_KERNELS.has(r.kernel) && !ALL[i]!.inputs.some((s) => s.dtype === 'f64'));
    r.outputs.forEach((o, k) => {
      expect(o.ratio, `output ${k} at ${o.at}: got ${o.got} want ${o.want}`).toBeLessThanOrEqual(1);
    });
  });
  // f32 on both sides; the GPU sums in other orders (tiled matmul, tree reductions), so equal within rounding, not
  // bitwise: logits and loss to 1e-5, gradients and stepped parameters to 1e-4 (measured: see the log line), but
  // for GPT-2's key bias, whose gradient is pure rounding noise (./webgpu/model.ts says why)
  it('a tiny GPT-2 and a tiny Llama: forward logits and one AdamW training step equal ref', async (ctx) => {
    if (noWebGpu) return ctx.skip(noWebGpu);
    const r = await openPage<WebGpuModelResult>('model.html', 60_000);
    expect(r.error, r.error).toBeUndefined();
    for (const c of r.checks)
      console.info(
        `webgpu ${c.family}: logits ${c.logits.toExponential(1)}, loss ${c.loss} (ref ${c.lossRef}), grads ${c.grads.toExponential(1)}, ` +
          `params ${c.params.toExponential(1)} (worst ${c.worstParam}; key-bias |grad| ≤ ${c.keyBiasGrad.toExponential(1)}; moved ${c.moved.toExponential(1)}); ${c.native} native calls, ${c.hostSteps} host steps`,
      );
    expect(r.checks.map((c) => c.family)).toEqual(['llama', 'gpt2']);
    for (const c of r.checks) {
      expect(c.logits, `${c.family} logits`).toBeLessThan(1e-5);
      expect(Math.abs(c.loss - c.lossRef) / c.lossRef, `${c.family} loss`).toBeLessThan(1e-5);
      expect(c.grads, `${c.family} gradients`).toBeLessThan(1e-4);
      expect(c.params, `${c.family} parameters after the step (${c.worstParam})`).toBeLessThan(1e-4);
      expect(c.keyBiasGrad, `${c.family}: the key bias's gradient is rounding noise`).toBeLessThan(1e-5);
      expect(c.moved, `${c.family}: the step moved every parameter`).toBeGreaterThan(1e-3);
      expect(c.native, `${c.family}: kernels ran on the GPU`).toBeGreaterThan(20);
    }
  }, 60_000);
});
