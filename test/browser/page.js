// Runs in Chromium (test/browser.test.ts): llm.ts from /dist/browser.js on the wasm backend with Web Worker threads.
// Query: ?fixture=<name under /fixtures/hf/>&threads=<n, default: the backend's own>&tokens=<new tokens>&quick=1 (start
// the backend only)&worker=1 (run the checks in a module Web Worker). The findings, or the error, end up in
// window.__llmts ({ done: true, ... }); the Node side judges them. Plain JavaScript: the browser loads it as is.
import { runChecks } from './checks.js';

const q = new URL(location.href).searchParams;
const params = {
  fixture: q.get('fixture') ?? 'llama-tiny',
  threads: q.has('threads') ? Number(q.get('threads')) : undefined,
  tokens: Number(q.get('tokens') ?? '8'),
  quick: q.get('quick') === '1',
};

function inWorker() {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./checks_worker.js', import.meta.url), { type: 'module' });
    w.addEventListener('message', (e) => resolve(e.data), { once: true });
    w.addEventListener('error', (e) => reject(new Error(e.message || 'checks_worker.js failed to load')), {
      once: true,
    });
    w.postMessage(params);
  });
}

(q.get('worker') === '1' ? inWorker() : runChecks(params))
  .catch((e) => ({ error: String(e?.stack ? e.stack : e) }))
  .then((out) => {
    document.getElementById('log').textContent = JSON.stringify(out, null, 1);
    window.__llmts = { ...out, done: true };
  });
