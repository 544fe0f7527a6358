// Serving benchmark: `llmts serve` (a child process, as users run it) on loopback with a tiny random model (a byte-level
// BPE of 512 tokens with ChatML's special tokens, GPT-2 shape --layers × --embd, context 512), driven by streaming chat
// clients (fetch + SSE parsing, stream_options.include_usage) for a bounded time, after --warmup-seconds of single
// requests (a fresh server runs ~4× slower for its first seconds while V8 optimises the JavaScript and WebAssembly):
//   single   one client, one request after another, for --single-seconds (server with --parallel N slots)
//   load     --clients concurrent clients, each one request after another, for --seconds (the same server)
//   serial   the load phase again on a server with --parallel 1 (the peer: one reply at a time, the rest queued)
// Per phase: requests, failures (anything but 200 and the documented 429/503, which are counted apart as refused),
// time to first token (first content chunk, from sending the request: queue wait + prefill + first sample) p50/p95,
// each reply's decode speed (tokens after the first / time after the first) p50, the aggregate tokens/s of the
// server, the mean decode batch (the server's /health `batching`: rows per batched step), and the server's resident
// memory (VmRSS of the child, sampled every 0.5 s): at the phase's start, its highest, and at its end. Last, the
// ratio of the load phase's aggregate tokens/s to the serial phase's: what the slots' batched decode steps buy.
// usage: node bench/serve.bench.mjs [--seconds 20] [--single-seconds 10] [--warmup-seconds 5] [--clients 8] [--max-tokens 64]
//          [--parallel 4] [--no-serial] [--layers 2] [--embd 64] [--backend auto|ref|wasm] [--threads N] [--json] [--help]
// --json: one JSON line per phase: bench, phase, clients, parallel, seconds, requests, failed, refused, ttft_ms_p50,
// ttft_ms_p95, decode_tok_s_p50, aggregate_tok_s, tokens, mean_batch, rss_mb_start, rss_mb_max, rss_mb_end; first a
// machine line; last a ratio line (bench, ratio_vs_serial).
// --help, -h: print this and run nothing.
import { exitIfHelp, printMachine, usageError } from './machine.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
/** @param {string} k @param {number} d @returns {number} */
const num = (k, d) => {
  const i = argv.indexOf(k);
  if (i < 0) return d;
  const v = Number(argv[i + 1]);
  if (!(v > 0)) usageError(`${k}: expected a positive number, got ${JSON.stringify(argv[i + 1])}`);
  return v;
};
/** @param {string} k @param {string | undefined} d */
const str = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const seconds = num('--seconds', 20);
const singleSeconds = num('--single-seconds', 10);
const warmupSeconds = num('--warmup-seconds', 5);
const clients = num('--clients', 8);
const maxTokens = num('--max-tokens', 64);
const layers = num('--layers', 2);
const embd = num('--embd', 64);
const parallel = num('--parallel', 4);
const serial = !argv.includes('--no-serial');
const backend = str('--backend', 'auto') ?? 'auto';
const threads = str('--threads', undefined);
if (!['auto', 'ref', 'wasm'].includes(backend)) usageError(`--backend: expected auto, ref or wasm, got ${backend}`);

const { spawn } = await import('node:child_process');
const fs = await import('node:fs');
const os = await import('node:os');
const path = await import('node:path');
const { fileURLToPath } = await import('node:url');
const here = path.dirname(fileURLToPath(import.meta.url));
const { trainBpe, saveTokenizer } = await import('../dist/tokenizer/index.js');
const { initModel } = await import('../dist/model/init.js');
const { saveModel } = await import('../dist/model/hf/folder.js');
const { getBackend } = await import('../dist/backend/registry.js');
const { DEFAULTS, toModelConfig } = await import('../dist/pretrain/settings.js');
const { Rng } = await import('../dist/util/rng.js');

printMachine('serve', threads ? Number(threads) : os.availableParallelism(), json);

// ---------------------------------------------------------------- the tiny model
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-serve-bench-'));
const corpus = fs.readFileSync(path.join(here, '..', 'data', 'tinyshakespeare.txt'), 'utf8').slice(0, 200_000);
const tok = trainBpe(corpus, {
  vocabSize: 512,
  specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
  config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
});
const cfg = toModelConfig({ ...DEFAULTS, nLayer: layers, nHead: 2, nEmbd: embd, blockSize: 512 }, tok.vocabSize, {
  bos: tok.eosId ?? null,
  eos: tok.eosId ?? null,
});
await saveModel(initModel(cfg, new Rng(1), { backend: getBackend('ref') }), dir);
await saveTokenizer(tok, dir);

// ---------------------------------------------------------------- the server (a child process)
// --no-db: no feedback store (the bench's requests name no stored message, so none would be recorded anyway)
/** @type {import('node:child_process').ChildProcess} */
let child;
/** @type {string} */
let url = '';
/** Start `llmts serve` with `slots` parallel slots (the previous server, if any, is gone). @param {number} slots */
async function startServer(slots) {
  /** @type {string[]} */
  const args = [path.join(here, '..', 'bin', 'llmts.js'), 'serve', dir, '--port', '0', '--quiet', '--no-db'];
  args.push('--backend', backend, '--parallel', String(slots));
  if (threads) args.push('--threads', threads);
  child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let childErr = '';
  child.stderr?.on('data', (d) => (childErr += String(d)));
  url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += String(d);
      const m = /llmts serve: (http:\/\/[^/\s]+)\//.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`llmts serve exited with ${c}: ${childErr}`)));
  });
}
async function stopServer() {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  await new Promise((r) => child.on('exit', r));
}
/** The server's batching counters (GET /health). @returns {Promise<{ batches: number, rows: number }>} */
async function batching() {
  const h = await (await fetch(`${url}/health`)).json();
  return h.batching;
}
const model = path.basename(dir);

/** The child's resident memory in MiB (Linux /proc; null elsewhere). */
function rssMb() {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const PROMPTS = ['Hello there', 'What light through yonder window breaks?', 'Tell me of the king', 'Good morrow'];

/**
 * One streamed chat request: time to the first content chunk, decode speed after it, completion tokens.
 * @param {number} k
 */
async function request(k) {
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: PROMPTS[k % PROMPTS.length] }],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: maxTokens,
        temperature: 1,
        seed: k,
      }),
    });
  } catch (e) {
    return { status: 0, error: String(e) };
  }
  if (res.status !== 200) {
    await res.text();
    return { status: res.status };
  }
  let first = null,
    tokens = 0,
    buf = '',
    error = null;
  const dec = new TextDecoder();
  if (!res.body) return { status: 0, error: 'no body' };
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.error) error = j.error.message;
      if (j.usage) tokens = j.usage.completion_tokens;
      if (first === null && j.choices?.[0]?.delta?.content) first = performance.now();
    }
  }
  const end = performance.now();
  if (error) return { status: 500, error };
  return {
    status: 200,
    ttft: (first ?? end) - t0,
    decode: tokens > 1 && first !== null && end > first ? (tokens - 1) / ((end - first) / 1000) : null,
    tokens,
  };
}

/** @param {number[]} xs @param {number} q */
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

/**
 * n clients, each sending one request after another until `secs` have passed, on a server with `slots` slots.
 * @param {string} phase @param {number} n @param {number} secs @param {number} slots
 */
async function phase(phase, n, secs, slots) {
  const quiet = phase === 'warmup';
  const b0 = await batching();
  const rssStart = rssMb();
  let rssMax = rssStart ?? 0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMb() ?? 0)), 500);
  const until = performance.now() + secs * 1000;
  /** @type {any[]} */
  const results = [];
  let k = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (performance.now() < until) results.push(await request(k++));
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const b1 = await batching();
  const rssEnd = rssMb();
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429 || r.status === 503).length;
  const failed = results.length - ok.length - refused;
  const tokens = ok.reduce((a, r) => a + r.tokens, 0);
  const row = {
    bench: 'serve',
    phase,
    clients: n,
    parallel: slots,
    seconds: Number(wall.toFixed(1)),
    requests: results.length,
    failed,
    refused,
    ttft_ms_p50: Number(
      pct(
        ok.map((r) => r.ttft),
        0.5,
      ).toFixed(1),
    ),
    ttft_ms_p95: Number(
      pct(
        ok.map((r) => r.ttft),
        0.95,
      ).toFixed(1),
    ),
    decode_tok_s_p50: Number(
      pct(
        ok.filter((r) => r.decode !== null).map((r) => r.decode),
        0.5,
      ).toFixed(1),
    ),
    aggregate_tok_s: Number((tokens / wall).toFixed(1)),
    tokens,
    mean_batch: b1.batches > b0.batches ? Number(((b1.rows - b0.rows) / (b1.batches - b0.batches)).toFixed(2)) : 1,
    rss_mb_start: rssStart === null ? null : Number(rssStart.toFixed(1)),
    rss_mb_max: rssStart === null ? null : Number(Math.max(rssMax, rssEnd ?? 0).toFixed(1)),
    rss_mb_end: rssEnd === null ? null : Number(rssEnd.toFixed(1)),
  };
  if (quiet) return row;
  if (json) console.log(JSON.stringify(row));
  else
    console.log(
      `${phase.padEnd(6)} ${String(n).padStart(2)} client(s), --parallel ${slots}, ${row.seconds} s: ${row.requests} requests, ${failed} failed, ` +
        `${refused} refused (429/503); TTFT p50 ${row.ttft_ms_p50} ms, p95 ${row.ttft_ms_p95} ms; decode p50 ` +
        `${row.decode_tok_s_p50} tok/s per reply; ${row.aggregate_tok_s} tok/s in all; mean batch ${row.mean_batch}; RSS ${row.rss_mb_start} → max ${row.rss_mb_max} → ${row.rss_mb_end} MiB`,
    );
  if (failed > 0) for (const r of results.filter((x) => x.status !== 200).slice(0, 3)) console.error('failed:', r);
  return row;
}

if (!json)
  console.log(
    `model: GPT-2 ${layers} layers × ${embd}, vocab ${tok.vocabSize}, context 512, random weights; ${maxTokens} tokens per reply at most`,
  );
const rows = [];
try {
  await startServer(parallel);
  await phase('warmup', 1, warmupSeconds, parallel);
  rows.push(await phase('single', 1, singleSeconds, parallel));
  const load = await phase('load', clients, seconds, parallel);
  rows.push(load);
  if (serial) {
    await stopServer();
    await startServer(1);
    await phase('warmup', 1, warmupSeconds, 1);
    const one = await phase('serial', clients, seconds, 1);
    rows.push(one);
    const ratio = Number((load.aggregate_tok_s / one.aggregate_tok_s).toFixed(2));
    if (json) console.log(JSON.stringify({ bench: 'serve', ratio_vs_serial: ratio }));
    else
      console.log(
        `ratio: ${clients} clients on --parallel ${parallel} vs --parallel 1: ×${ratio} tokens/s in all (time to first token p50 ${load.ttft_ms_p50} vs ${one.ttft_ms_p50} ms)`,
      );
  }
} finally {
  await stopServer();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(rows.some((r) => r.failed > 0) ? 1 : 0);
