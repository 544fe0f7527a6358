// Training-step benchmark: forward + backward + AdamW of a GPT (GPT-2 block: LayerNorm, fused qkv, causal attention,
// GELU MLP ×4, tied head) at the shapes of ../shared/design/ANCHORS.md, on our default backend, against
// TensorFlow.js (the peer JavaScript users have today) running the same step in the same command, and llm.c's
// figures from ANCHORS.md (bench/anchors.mjs; C is not run here). An llm.c figure is divided only when it was measured
// on this processor model with the same thread count; else it is printed as "measured on <processor>", ratio null.
// usage: node bench/train.bench.mjs [--json] [--cases tiny,small,gpt2] [--steps N] [--no-peer] [--threads N]
//                                   [--peers wasm,cpu] [--help]
//   --json       one JSON line per case (after a { bench: "machine" } line): tok_s, gflop_s, pct_peak (of the sgemm
//                peak, null off its processor), pct_wasm_peak, peer/peer_tok_s/ratio_vs_peer (TensorFlow.js),
//                llmc_tok_s, llmc_range, llmc_peer_processor, ratio_vs_llmc (null when not comparable), ...
//   --cases      the shapes of ANCHORS.md to run          --steps   timed steps (default 10 for tiny, 3 otherwise)
//   --threads    wasm worker threads (default: all)       --no-peer skip TensorFlow.js
//   --help, -h   print this and run nothing
// "% of peak": of the OpenBLAS sgemm peak where ANCHORS.md measured it on this processor (LLMTS_PEAK_GFLOPS sets
// one), and always of the WebAssembly SIMD128 peak measured at the start of the run.
// Peers: TensorFlow.js on its wasm backend for every case, and on its cpu backend for tiny only by default (it runs
// ~85 tok/s there: a small or GPT-2 step would take minutes); --peers wasm,cpu runs both everywhere. The row's `peer`
// and `ratio_vs_peer` are TensorFlow.js's best backend; `peers` lists each one measured.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareToAnchor } from './anchors.mjs';
import { exitIfHelp, median, NO_SGEMM_PEAK, printMachine, processor, sgemmPeak, wasmSimdPeak } from './machine.mjs';

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
const stepsOpt = Number(opt('--steps', 0)); // default: 10 timed steps for tiny (~0.2 s each), 3 for the others
const cases = opt('--cases', 'tiny,small,gpt2').split(',');
const threads = opt('--threads', undefined);
const peerList = opt('--peers', undefined)?.split(',');

const { initBackend, initModel, tidy, backward, AdamW, gradNorm, clipCoefficient, Rng } = await import(
  '../dist/index.js'
);
const backend = await initBackend('auto', threads ? { threads: Number(threads) } : {});
const nThreads = /** @type {{ threads?: number }} */ (backend).threads ?? 1;
printMachine('train', nThreads, json);
const cpu = processor();
// The float32 sgemm peak where it was measured on this processor model (else null: % of the WebAssembly peak only)
const sgemm = sgemmPeak(nThreads);
// The ceiling of any WebAssembly kernel here: 128-bit SIMD multiply-adds on every thread, measured now. llm.c (C,
// AVX-512) is held to the machine's sgemm peak instead; `pct_wasm_peak` says how much of the reachable peak we use.
const wasmPeak = await wasmSimdPeak(nThreads).catch(() => null);
if (!json) {
  if (wasmPeak)
    console.log(
      `WebAssembly SIMD128 peak on ${wasmPeak.threads} thread(s): ${wasmPeak.gflop_s.toFixed(1)} GFLOP/s (${wasmPeak.fma ? 'relaxed FMA' : 'mul + add'})`,
    );
  console.log(
    sgemm ? `sgemm peak ${sgemm.gflop_s} GFLOP/s (${sgemm.basis})` : `% of sgemm peak omitted: ${NO_SGEMM_PEAK}`,
  );
}

/**
 * A training shape (llm.c's tok/s on it: bench/anchors.mjs) and how many steps the TensorFlow.js peer times.
 * @typedef {{ L: number, C: number, H: number, V: number, T: number, B: number, peerSteps: number }} Shape
 * @typedef {{ peer: string, tok_s?: number, error?: string }} PeerRun
 */
/** @type {Record<string, Shape>} */
const SHAPES = {
  tiny: { L: 4, C: 128, H: 4, V: 512, T: 128, B: 8, peerSteps: 3 },
  small: { L: 6, C: 384, H: 6, V: 4096, T: 256, B: 4, peerSteps: 1 },
  gpt2: { L: 12, C: 768, H: 12, V: 50304, T: 64, B: 4, peerSteps: 1 },
};

/** @param {Shape} s @returns {import('../dist/model/config.js').ModelConfig} */
function config(s) {
  return {
    family: 'gpt2',
    vocabSize: s.V,
    hiddenSize: s.C,
    numLayers: s.L,
    numHeads: s.H,
    numKvHeads: s.H,
    headDim: s.C / s.H,
    intermediateSize: 4 * s.C,
    maxPositions: s.T,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: true,
    attentionOutBias: true,
    mlpBias: true,
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
}

/** @param {Shape} s @param {string} tfBackend @returns {PeerRun} */
function peerRun(s, tfBackend) {
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
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (line) return JSON.parse(line);
  const err =
    (r.stderr || '')
      .split('\n')
      .filter((l) => /Error|error:/.test(l))
      .pop() ?? (r.error ? String(r.error) : 'timed out');
  return { peer: `tfjs-${tfBackend}`, error: err.trim().slice(0, 200) };
}

/** Every TensorFlow.js backend measured for this case, and the best of them (the one the ratio is taken against). */
/** @param {string} name @param {Shape} s @returns {{ best: PeerRun | null, all: PeerRun[] }} */
function peers(name, s) {
  if (noPeer) return { best: null, all: [] };
  const all = (peerList ?? (name === 'tiny' ? ['wasm', 'cpu'] : ['wasm'])).map((b) => peerRun(s, b));
  const ok = all.filter((p) => p.tok_s);
  const best = ok.length ? ok.reduce((a, b) => ((b.tok_s ?? 0) > (a.tok_s ?? 0) ? b : a)) : (all[0] ?? null);
  return { best, all };
}

for (const name of cases) {
  const s = SHAPES[name];
  if (!s) throw new Error(`unknown case ${name}; known: ${Object.keys(SHAPES).join(', ')}`);
  const rng = new Rng(1);
  const model = initModel(config(s), rng, { backend });
  const N = model.numParams();
  const opt = new AdamW(model.params, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const ids = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  const tg = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  /** @type {number[]} */
  const times = [];
  const steps = stepsOpt || (name === 'tiny' ? 10 : 3);
  let first = NaN;
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
  const ms = median(times);
  const tokS = (s.B * s.T) / (ms / 1e3);
  const flopsPerTok = 6 * N + 12 * s.L * s.C * s.T;
  const gflops = (flopsPerTok * tokS) / 1e9;
  const { best: p, all: measuredPeers } = peers(name, s);
  // llm.c on this processor model, same threads and shape: a ratio; else "measured on <processor>", no ratio
  const llmc = compareToAnchor(`train-${name}`, cpu.key, { peer: 'llm.c', threads: nThreads, B: s.B, T: s.T }, tokS);
  const llmcSame = llmc.comparable ? llmc.anchor : null;
  /** @type {Record<string, any>} one JSON line of results */
  const row = {
    case: `train-${name}`,
    backend: backend.describe(),
    params: N,
    B: s.B,
    T: s.T,
    ms_per_step: +ms.toFixed(1),
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
            ? +((100 * 2 * llmcSame.value * flopsPerTok) / 1e9 / wasmPeak.gflop_s).toFixed(1)
            : null,
        }
      : {}),
    first_loss: +first.toFixed(4),
    peer: p?.peer ?? null,
    peer_tok_s: p?.tok_s ?? null,
    ratio_vs_peer: p?.tok_s ? +(tokS / p.tok_s).toFixed(1) : null,
    llmc_tok_s: llmc.anchor?.value ?? null,
    llmc_range: llmc.anchor?.range ?? null,
    llmc_peer_processor: llmc.processor,
    ratio_vs_llmc: llmc.ratio == null ? null : +llmc.ratio.toFixed(2),
    peers: measuredPeers.map((q) => ({ peer: q.peer, tok_s: q.tok_s ?? null, ...(q.error ? { error: q.error } : {}) })),
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
      `${row.case.padEnd(12)} ${N.toLocaleString()} params  B${s.B} T${s.T}  ${row.ms_per_step} ms/step  ${row.tok_s} tok/s  ` +
        `${row.gflop_s} GFLOP/s${pctText ? ` (${pctText})` : ''}  first loss ${row.first_loss}`,
    );
    const peerText = row.peer_error
      ? `failed (${row.peer_error})`
      : `${row.peer_tok_s ?? '-'} tok/s → ×${row.ratio_vs_peer ?? '-'}`;
    const others = measuredPeers
      .filter((q) => q.peer !== row.peer)
      .map((q) => `${q.peer} ${q.tok_s ?? 'failed'} tok/s`)
      .join(', ');
    console.log(
      `${''.padEnd(12)} vs ${row.peer ?? 'tfjs (skipped)'}: ${peerText}${others ? ` (${others})` : ''};  vs ${llmc.text}`,
    );
  }
  for (const t of model.params.values()) t.dispose();
  opt.dispose();
}
backend.dispose();
