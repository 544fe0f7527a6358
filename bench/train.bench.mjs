// Training-step benchmark: forward + backward + AdamW of a GPT (GPT-2 block: LayerNorm, fused qkv, causal attention,
// GELU MLP ×4, tied head) at the shapes of ../shared/design/ANCHORS.md, on the backend asked for, against peers
// running the same step in the same command. On a CPU backend: TensorFlow.js (the peer JavaScript users have today)
// and llm.c's figures from ANCHORS.md (bench/anchors.mjs; C is not run here). An llm.c figure is divided only when it
// was measured on this processor model with the same thread count; else it is printed as "measured on <processor>",
// ratio null. On webgpu: PyTorch (bench/peers/torch-gpt.py, fp32, eager) and TensorFlow.js's webgpu backend, both run
// here, now; a peer that is not installed is reported absent (its error), never a crash.
// usage: node bench/train.bench.mjs [--json] [--backend auto|ref|wasm|webgpu] [--cases tiny,small,gpt2] [--steps N]
//                                   [--no-peer] [--threads N] [--peers wasm,cpu] [--torch-peer PATH]
//                                   [--python python3] [--peer-timeout S] [--help]
//   --json       one JSON line per case (after a { bench: "machine" } line and a { bench: "backend" } line naming the
//                backend and its adapter): tok_s, gflop_s, pct_peak (of the sgemm peak, null off its processor),
//                pct_wasm_peak, peer/peer_tok_s/ratio_vs_peer (the fastest peer), peers (each one measured, with
//                tok_s and ratio, or its error), llmc_tok_s, llmc_range, llmc_peer_processor, ratio_vs_llmc, ...
//   --backend    auto (default: webgpu on a hardware GPU, else wasm), ref, wasm or webgpu
//   --cases      the shapes to run. CPU (default tiny,small,gpt2): tiny B8 T128, small B4 T256, gpt2 B4 T64.
//                webgpu (default tiny,tiny-b64,small,gpt2), named as torch-gpt.py names them: tiny B8 T128,
//                tiny-b64 B64 T128, small B64 T256, gpt2 B16 T1024 (vocabulary 50304). `micro` (1 layer × 32, B2 T16)
//                is a smoke shape for software adapters (no peer figure to compare with).
//   --steps      timed steps (default 10, 3 for small and gpt2 on a CPU backend and for gpt2 on webgpu); one untimed
//                step comes first (its loss is first_loss)
//   --threads    wasm worker threads (default: all)       --no-peer skip every peer
//   --peers      which peers: TensorFlow.js backends (wasm, cpu, webgpu) and `torch`. Default on a CPU backend:
//                wasm (+ cpu for tiny); on webgpu: torch,webgpu
//   --torch-peer the PyTorch peer script (default bench/peers/torch-gpt.py), run as
//                `PYTHON PATH --shapes NAME --modes fp32 --steps N`      --python  the interpreter (default python3)
//   --peer-timeout  seconds a peer may run per case (default 600)
//   --help, -h   print this and run nothing
// "% of peak" (CPU backends): of the OpenBLAS sgemm peak where ANCHORS.md measured it on this processor
// (LLMTS_PEAK_GFLOPS sets one), and always of the WebAssembly SIMD128 peak measured at the start of the run.
// CPU peers: TensorFlow.js on its wasm backend for every case, and on its cpu backend for tiny only by default (it runs
// ~85 tok/s there: a small or GPT-2 step would take minutes); --peers wasm,cpu runs both everywhere. The row's `peer`
// and `ratio_vs_peer` are the fastest peer measured; `peers` lists each one, with ratio_vs (ours ÷ theirs).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareToAnchor } from './anchors.mjs';
import { CPU_SHAPES, GPU_SHAPES, gptConfig } from './train_shapes.mjs';
import {
  exitIfHelp,
  median,
  NO_SGEMM_PEAK,
  printMachine,
  processor,
  sgemmPeak,
  usageError,
  wasmSimdPeak,
} from './machine.mjs';

exitIfHelp(import.meta.url);

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
/** The value after flag k, else d. @template {string | number | undefined} D @param {string} k @param {D} d @returns {string | D} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const noPeer = argv.includes('--no-peer');
const backendName = opt('--backend', 'auto');
if (!['auto', 'ref', 'wasm', 'webgpu'].includes(backendName))
  usageError(`--backend: expected auto, ref, wasm or webgpu, got ${backendName}`);
const stepsOpt = Number(opt('--steps', 0)); // default: see stepsFor
if (!(Number.isInteger(stepsOpt) && stepsOpt >= 0)) usageError(`--steps: expected a positive integer`);
const threads = opt('--threads', undefined);
const peerList = opt('--peers', undefined)?.split(',');
for (const p of peerList ?? [])
  if (!['torch', 'wasm', 'cpu', 'webgpu'].includes(p)) usageError(`--peers: unknown ${p} (torch, wasm, cpu, webgpu)`);
const torchPeer = path.resolve(opt('--torch-peer', path.join(here, 'peers/torch-gpt.py')));
const python = opt('--python', 'python3');
const peerTimeoutS = Number(opt('--peer-timeout', 600));
if (!(peerTimeoutS > 0)) usageError('--peer-timeout: expected a positive number of seconds');

const { initBackend, initModel, tidy, backward, AdamW, gradNorm, clipCoefficient, Rng } = await import(
  '../dist/index.js'
);
const backend = await initBackend(
  /** @type {import('../dist/backend/registry.js').BackendName | 'auto'} */ (backendName),
  threads ? { threads: Number(threads) } : {},
);
const onGpu = backend.name === 'webgpu';
const nThreads = /** @type {{ threads?: number }} */ (backend).threads ?? 1;
printMachine('train', nThreads, json);
// the backend and, on webgpu, its adapter ("nvidia hopper (NVIDIA H200)", or "..., software" for SwiftShader)
const software = /** @type {{ software?: boolean }} */ (backend).software ?? false;
if (json)
  console.log(JSON.stringify({ bench: 'backend', backend: backend.name, describe: backend.describe(), software }));
else console.log(`backend: ${backend.describe()}`);
const cpu = processor();
// The float32 sgemm peak where it was measured on this processor model (else null: % of the WebAssembly peak only)
const sgemm = onGpu ? null : sgemmPeak(nThreads);
// The ceiling of any WebAssembly kernel here: 128-bit SIMD multiply-adds on every thread, measured now. llm.c (C,
// AVX-512) is held to the machine's sgemm peak instead; `pct_wasm_peak` says how much of the reachable peak we use.
// Not on webgpu: neither figure bounds a GPU.
const wasmPeak = onGpu ? null : await wasmSimdPeak(nThreads).catch(() => null);
if (!json && !onGpu) {
  if (wasmPeak)
    console.log(
      `WebAssembly SIMD128 peak on ${wasmPeak.threads} thread(s): ${wasmPeak.gflop_s.toFixed(1)} GFLOP/s (${wasmPeak.fma ? 'relaxed FMA' : 'mul + add'})`,
    );
  console.log(
    sgemm ? `sgemm peak ${sgemm.gflop_s} GFLOP/s (${sgemm.basis})` : `% of sgemm peak omitted: ${NO_SGEMM_PEAK}`,
  );
}

/** @typedef {import('./train_shapes.mjs').Shape} Shape */
/** @typedef {{ peer: string, tok_s?: number, error?: string }} PeerRun a peer's figure, or why there is none */
const SHAPES = onGpu ? GPU_SHAPES : CPU_SHAPES;
const cases = opt('--cases', onGpu ? 'tiny,tiny-b64,small,gpt2' : 'tiny,small,gpt2').split(',');
for (const name of cases)
  if (!SHAPES[name])
    usageError(`--cases: unknown ${name} on ${backend.name}; known: ${Object.keys(SHAPES).join(', ')}`);
/** Timed steps for a case: --steps, else 10 (3 for small and gpt2 on a CPU backend, 3 for gpt2 on webgpu). */
/** @param {string} name @returns {number} */
const stepsFor = (name) =>
  stepsOpt || (onGpu ? (name === 'gpt2' ? 3 : 10) : name === 'small' || name === 'gpt2' ? 3 : 10);

/** The last JSON line a peer printed, else its error (the last error-looking line of stderr, or why it stopped). */
/** @param {import('node:child_process').SpawnSyncReturns<string>} r @param {string} peer @returns {PeerRun} */
function peerResult(r, peer) {
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (line) return JSON.parse(line);
  const err =
    (r.stderr || '')
      .split('\n')
      .filter((l) => /Error|error:|No module/.test(l))
      .pop() ??
    (r.error ? String(r.error) : r.signal ? `timed out after ${peerTimeoutS} s (${r.signal})` : `exit ${r.status}`);
  return { peer, error: err.trim().slice(0, 200) };
}

/** Whether a package resolves from this repository (for peers that are optional here). */
const requireHere = createRequire(import.meta.url);
/** @param {string} name @returns {boolean} */
function installed(name) {
  try {
    requireHere.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/** @param {Shape} s @param {string} tfBackend @returns {PeerRun} */
function peerRun(s, tfBackend) {
  const need = ['@tensorflow/tfjs', ...(tfBackend === 'cpu' ? [] : [`@tensorflow/tfjs-backend-${tfBackend}`])];
  if (tfBackend === 'webgpu') need.push('webgpu');
  const missing = need.filter((n) => !installed(n));
  if (missing.length) return { peer: `tfjs-${tfBackend}`, error: `absent: ${missing.join(', ')} not installed` };
  const r = spawnSync(
    process.execPath,
    [
      path.join(here, 'peers/tfjs-gpt.mjs'),
      tfBackend,
      s.L,
      s.C,
      s.H,
      s.V,
      s.T,
      s.B,
      tfBackend === 'cpu' ? 1 : s.peerSteps,
    ].map(String),
    { encoding: 'utf8', timeout: peerTimeoutS * 1000 },
  );
  return peerResult(r, `tfjs-${tfBackend}`);
}

/** Why PyTorch cannot run here (no interpreter, no torch), else null; asked once. @type {string | null | undefined} */
let torchMissing;
/** @returns {string | null} */
function torchAbsent() {
  if (torchMissing !== undefined) return torchMissing;
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
  torchMissing =
    r.error && /ENOENT/.test(String(r.error))
      ? `absent: no ${python} here`
      : r.status !== 0
        ? `absent: ${python} cannot import torch (${(r.stderr || String(r.error ?? '')).trim().split('\n').pop()?.slice(0, 120)})`
        : null;
  return torchMissing;
}

/** PyTorch, fp32 eager, on CUDA (bench/peers/torch-gpt.py), at a shape it names; absent where python/torch is not. */
/** @param {string} name @param {number} steps @returns {PeerRun} */
function torchRun(name, steps) {
  const missing = torchAbsent();
  if (missing) return { peer: 'pytorch', error: missing };
  if (!(name in GPU_SHAPES) || name === 'micro') return { peer: 'pytorch', error: `torch-gpt.py has no shape ${name}` };
  const r = spawnSync(python, [torchPeer, '--shapes', name, '--modes', 'fp32', '--steps', String(Math.max(3, steps))], {
    encoding: 'utf8',
    timeout: peerTimeoutS * 1000,
  });
  return peerResult(r, 'pytorch');
}

/** Every peer measured for this case, and the fastest of them (the one ratio_vs_peer is taken against). */
/** @param {string} name @param {Shape} s @param {number} steps @returns {{ best: PeerRun | null, all: PeerRun[] }} */
function peers(name, s, steps) {
  if (noPeer) return { best: null, all: [] };
  const list = peerList ?? (onGpu ? ['torch', 'webgpu'] : name === 'tiny' ? ['wasm', 'cpu'] : ['wasm']);
  const all = list.map((b) => (b === 'torch' ? torchRun(name, steps) : peerRun(s, b)));
  const ok = all.filter((p) => p.tok_s);
  const best = ok.length ? ok.reduce((a, b) => ((b.tok_s ?? 0) > (a.tok_s ?? 0) ? b : a)) : (all[0] ?? null);
  return { best, all };
}

/** One case: the untimed first step, then `steps` timed ones (each ends when the device has finished). */
/** @param {Shape} s @param {number} steps */
async function measure(s, steps) {
  const rng = new Rng(1);
  const model = initModel(gptConfig(s), rng, { backend });
  const N = model.numParams();
  const opt = new AdamW(model.params, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const ids = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  const tg = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  /** @type {number[]} */
  const times = [];
  let first = NaN;
  try {
    for (let i = 0; i <= steps; i++) {
      const t0 = performance.now();
      const loss = tidy(() => {
        const l = model.loss(ids, tg, s.B, s.T);
        backward(l);
        return l;
      });
      const lv = await loss.item();
      loss.dispose();
      const norm = await gradNorm(model.params);
      opt.step({ gradScale: clipCoefficient(norm, 1) });
      opt.zeroGrad();
      await backend.sync();
      if (i === 0) first = lv;
      else times.push(performance.now() - t0);
    }
  } finally {
    for (const t of model.params.values()) t.dispose();
    opt.dispose();
  }
  return { N, ms: median(times), first };
}

for (const name of cases) {
  const s = SHAPES[name];
  const steps = stepsFor(name);
  const flopsPerTok = (/** @type {number} */ N) => 6 * N + 12 * s.L * s.C * s.T;
  /** @type {{ N: number, ms: number, first: number } | null} */
  let m = null;
  try {
    m = await measure(s, steps);
  } catch (e) {
    // out of device memory, a device error: the row says so, and the next case still runs
    const error = String(/** @type {Error} */ (e).message ?? e).slice(0, 300);
    if (json)
      console.log(JSON.stringify({ case: `train-${name}`, backend: backend.describe(), B: s.B, T: s.T, error }));
    else console.log(`train-${name.padEnd(6)} B${s.B} T${s.T}  failed: ${error}`);
  }
  if (!m) continue;
  const { N, ms, first } = m;
  const tokS = (s.B * s.T) / (ms / 1e3);
  const gflops = (flopsPerTok(N) * tokS) / 1e9;
  // with --json, our figure on stderr before the peers run: a caller that stops a slow peer still has it (run.sh's log)
  if (json) console.error(`train-${name}: ${Math.round(tokS)} tok/s, ${ms.toFixed(3)} ms/step (peers next)`);
  const { best: p, all: measuredPeers } = peers(name, s, steps);
  // llm.c on this processor model, same threads and shape: a ratio; else "measured on <processor>", no ratio (CPU only)
  const llmc = onGpu
    ? null
    : compareToAnchor(`train-${name}`, cpu.key, { peer: 'llm.c', threads: nThreads, B: s.B, T: s.T }, tokS);
  const llmcSame = llmc?.comparable ? llmc.anchor : null;
  /** @type {Record<string, any>} one JSON line of results */
  const row = {
    case: `train-${name}`,
    backend: backend.describe(),
    params: N,
    B: s.B,
    T: s.T,
    steps,
    ms_per_step: +ms.toFixed(onGpu ? 3 : 1),
    tok_s: Math.round(tokS),
    gflop_s: +gflops.toFixed(1),
    sgemm_peak_gflop_s: sgemm?.gflop_s ?? null,
    pct_peak: sgemm ? +((100 * gflops) / sgemm.gflop_s).toFixed(1) : null,
    ...(wasmPeak
      ? {
          wasm_peak_gflop_s: +wasmPeak.gflop_s.toFixed(1),
          pct_wasm_peak: +((100 * gflops) / wasmPeak.gflop_s).toFixed(1),
        }
      : {}),
    // what 2× llm.c would need, as a share of the WebAssembly peak (only against an llm.c figure from this processor)
    ...(wasmPeak
      ? {
          pct_wasm_peak_for_2x_llmc: llmcSame
            ? +((100 * 2 * llmcSame.value * flopsPerTok(N)) / 1e9 / wasmPeak.gflop_s).toFixed(1)
            : null,
        }
      : {}),
    first_loss: +first.toFixed(4),
    peer: p?.peer ?? null,
    peer_tok_s: p?.tok_s ?? null,
    ratio_vs_peer: p?.tok_s ? +(tokS / p.tok_s).toFixed(2) : null,
    ...(llmc
      ? {
          llmc_tok_s: llmc.anchor?.value ?? null,
          llmc_range: llmc.anchor?.range ?? null,
          llmc_peer_processor: llmc.processor,
          ratio_vs_llmc: llmc.ratio == null ? null : +llmc.ratio.toFixed(2),
        }
      : {}),
    peers: measuredPeers.map((q) => ({
      peer: q.peer,
      tok_s: q.tok_s ?? null,
      ratio_vs: q.tok_s ? +(tokS / q.tok_s).toFixed(2) : null,
      ...(q.error ? { error: q.error } : {}),
    })),
  };
  if (p?.error) row.peer_error = p.error;
  if (json) console.log(JSON.stringify(row));
  else {
    const pctText = [
      ...(sgemm ? [`${row.pct_peak}% of ${sgemm.gflop_s} sgemm peak`] : []),
      ...(wasmPeak
        ? [
            `${row.pct_wasm_peak}% of the ${row.wasm_peak_gflop_s} WebAssembly SIMD peak` +
              (row.pct_wasm_peak_for_2x_llmc != null ? `; 2× llm.c needs ${row.pct_wasm_peak_for_2x_llmc}%` : ''),
          ]
        : []),
    ].join(', ');
    console.log(
      `${row.case.padEnd(14)} ${N.toLocaleString()} params  B${s.B} T${s.T}  ${row.ms_per_step} ms/step  ${row.tok_s} tok/s  ` +
        `${row.gflop_s} GFLOP/s${pctText ? ` (${pctText})` : ''}  first loss ${row.first_loss}`,
    );
    const peerText = measuredPeers.length
      ? measuredPeers
          .map((q) =>
            q.tok_s ? `${q.peer} ${q.tok_s} tok/s → ×${(tokS / q.tok_s).toFixed(2)}` : `${q.peer} ${q.error}`,
          )
          .join('; ')
      : 'peers skipped';
    console.log(`${''.padEnd(14)} vs ${peerText}${llmc ? `;  vs ${llmc.text}` : ''}`);
  }
}
backend.dispose();
