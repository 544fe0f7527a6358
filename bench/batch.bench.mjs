// Batched sampling benchmark (src/generate/batch.ts sampleBatch): N ragged prompts (lengths drawn in 8..--prompt-max
// from a seeded Rng) each continued by --tokens tokens at temperature 1, decoded as one left-padded batch of N rows,
// for N = 1, 4 and 16 (--n). Reports the aggregate tokens/s (new tokens over the whole call, prefill included), the
// time per sequence, and the peer run in the same process: the same N prompts decoded one at a time through
// generate()'s single-row path (batch: false, what prompts of different lengths cost before batching). The model is
// a random-initialised Llama at llama2.c's stories15M shape (--cases stories15M,stories110M; speed does not depend
// on the weights' values). Issue 11 samples 4 replies for each of hundreds of prompts: the per-sequence cost at
// N = 16 is what that costs per reply.
// usage: node bench/batch.bench.mjs [--json] [--cases stories15M] [--n 1,4,16] [--tokens 32] [--prompt-max 48]
//          [--backend auto|ref|wasm] [--threads N] [--no-peer] [--help]
// --help, -h: print this and run nothing.
// CPU time per sequence (process.cpuUsage, every thread, spinning workers included) is printed beside the wall time:
// on a loaded machine it moves less than the wall time.
// --json: one JSON line per row: bench, case, n, tokens, tok_s, ms_per_seq, cpu_ms_per_seq, peer ("generate one at a time"),
// peer_tok_s, ratio (tok_s / peer_tok_s); first a machine line.
// One warm-up call runs first (V8 and the kernels' tables); each row is one run (the machine is shared: short).
import { exitIfHelp, printMachine, usageError } from './machine.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
/** The value after flag k, else d. @template {string | number | undefined} D @param {string} k @param {D} d @returns {string | D} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const cases = String(opt('--cases', 'stories15M')).split(',');
const ns = String(opt('--n', '1,4,16')).split(',').map(Number);
const tokens = Number(opt('--tokens', 32));
const promptMax = Number(opt('--prompt-max', 48));
const threads = opt('--threads', undefined);
const backendName = opt('--backend', 'auto');
const noPeer = argv.includes('--no-peer');
for (const n of ns)
  if (!(Number.isInteger(n) && n >= 1)) usageError(`--n: expected integers ≥ 1, got ${opt('--n', '')}`);
if (!(Number.isInteger(tokens) && tokens >= 1)) usageError(`--tokens: expected an integer ≥ 1, got ${tokens}`);
if (!(Number.isInteger(promptMax) && promptMax >= 8))
  usageError(`--prompt-max: expected an integer ≥ 8, got ${promptMax}`);

const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { generate } = await import('../dist/generate/engine.js');
const { sampleBatch } = await import('../dist/generate/batch.js');
const { Rng } = await import('../dist/util/rng.js');
const { STORIES, storiesConfig } = await import('./stories.mjs');
const backend = await initBackend(
  /** @type {import('../dist/backend/registry.js').BackendName | 'auto'} */ (backendName),
  threads ? { threads: Number(threads) } : {},
);
const nThreads = /** @type {{ threads?: number }} */ (backend).threads ?? 1;
printMachine('batch', nThreads, json);
if (!json)
  console.log(
    `backend ${backend.describe()}; prompts of 8..${promptMax} tokens, ${tokens} new tokens each, temperature 1`,
  );

for (const name of cases) {
  const shape = STORIES[name];
  if (!shape) usageError(`--cases: unknown ${name} (${Object.keys(STORIES).join(', ')})`);
  const model = initModel(storiesConfig(shape), new Rng(1), { backend });
  const rng = new Rng(7);
  /** @param {number} n @returns {Int32Array[]} */
  const promptsFor = (n) =>
    Array.from({ length: n }, () => Int32Array.from({ length: 8 + rng.int(promptMax - 7) }, () => 3 + rng.int(1000)));
  await sampleBatch(model, promptsFor(4), { maxTokens: 4, seed: 1 }); // warm-up
  for (const n of ns) {
    const prompts = promptsFor(n);
    let t0 = performance.now();
    const c0 = process.cpuUsage();
    await sampleBatch(model, prompts, { maxTokens: tokens, seed: 1, batchSize: n });
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    const cpuMs = (c1.user + c1.system) / 1000;
    const tokS = (n * tokens) / (ms / 1000);
    let peerTokS = null;
    if (!noPeer) {
      t0 = performance.now();
      await generate(
        model,
        prompts.map((p) => [...p]),
        { maxTokens: tokens, seed: 1, batch: false },
      );
      peerTokS = (n * tokens) / ((performance.now() - t0) / 1000);
    }
    const row = {
      bench: 'batch',
      case: name,
      n,
      tokens,
      tok_s: Math.round(tokS * 10) / 10,
      ms_per_seq: Math.round((ms / n) * 10) / 10,
      cpu_ms_per_seq: Math.round((cpuMs / n) * 10) / 10,
      peer: noPeer ? null : 'generate one at a time',
      peer_tok_s: peerTokS === null ? null : Math.round(peerTokS * 10) / 10,
      ratio: peerTokS === null ? null : Math.round((tokS / peerTokS) * 100) / 100,
    };
    if (json) console.log(JSON.stringify(row));
    else
      console.log(
        `${name} N=${String(n).padStart(2)}: ${row.tok_s.toFixed(1).padStart(7)} tok/s, ${row.ms_per_seq.toFixed(1)} ms per sequence (CPU ${row.cpu_ms_per_seq} ms)` +
          (peerTokS === null ? '' : `; one at a time ${row.peer_tok_s} tok/s (×${row.ratio})`),
      );
  }
}
