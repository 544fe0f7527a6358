#!/usr/bin/env node
/**
 * Kernel benchmark of the wasm backend: matmul GFLOP/s for the three linear-layer shapes (forward y = x·Wᵀ "NT",
 * input gradient dx = dy·W "NN", weight gradient dW = dyᵀ·x "TN") at the sizes of the tiny / small / gpt2
 * training cases of ../../shared/design/ANCHORS.md, plus fused attention forward/backward, on 1 and N threads.
 * Each figure is printed as a share of a peak: the OpenBLAS sgemm peak of ANCHORS.md (169 GFLOP/s on 1 thread, 330
 * on 2) where it was measured on this processor model (LLMTS_PEAK_GFLOPS sets one), else this machine's WebAssembly
 * SIMD128 peak measured at the start of the run (`peak_basis` says which), and against a plain-JavaScript
 * Float32Array matmul timed in the same run.
 *
 *   npx tsc -p tsconfig.json --noEmitOnError false && npm run build:wasm
 *   node bench/kernels.bench.mjs [--json] [--quick] [--threads N] [--filter text] [--no-peer] [--help]
 * The plain-JS peer runs on at most 64 rows of each shape (its GFLOP/s does not depend on M).
 * --help, -h: print this and run nothing.
 */
import os from 'node:os';
import { exitIfHelp, printMachine, sgemmPeak, wasmSimdPeak } from './machine.mjs';

exitIfHelp(import.meta.url);
const { createWasmBackend } = await import('../dist/backend/wasm/backend.js');

const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');
const NO_PEER = args.includes('--no-peer');
const fi = args.indexOf('--filter');
const FILTER = fi >= 0 ? args[fi + 1] : '';
const ti = args.indexOf('--threads');
const NMAX = ti >= 0 ? Number(args[ti + 1]) : os.availableParallelism();
printMachine('kernels', NMAX, JSON_OUT);
/**
 * The peak "% of peak" divides by on `t` threads: the sgemm peak on its own processor, else the WebAssembly SIMD128
 * peak measured now, else null (the row's pct_peak is then left out).
 * @param {number} t @returns {Promise<{ gflop_s: number, basis: string } | null>}
 */
async function peakOn(t) {
  const sg = sgemmPeak(t);
  if (sg) return { gflop_s: sg.gflop_s, basis: 'sgemm' };
  const w = await wasmSimdPeak(t).catch(() => null);
  return w ? { gflop_s: w.gflop_s, basis: 'wasm-simd' } : null;
}

// [case, label, M, K, N, transA, transB]
/** @type {[string, string, number, number, number, boolean, boolean][]} */
const MATMULS = [
  ['tiny', 'fwd x·Wᵀ (fc)', 1024, 128, 512, false, true],
  ['tiny', 'dx = dy·W (fc)', 1024, 512, 128, false, false],
  ['tiny', 'dW = dyᵀ·x (fc)', 512, 1024, 128, true, false],
  ['small', 'fwd x·Wᵀ (fc)', 1024, 384, 1536, false, true],
  ['small', 'dx = dy·W (fc)', 1024, 1536, 384, false, false],
  ['small', 'dW = dyᵀ·x (fc)', 1536, 1024, 384, true, false],
  ['small', 'fwd lm head', 1024, 384, 4096, false, true],
  ['gpt2', 'fwd x·Wᵀ (fc)', 256, 768, 3072, false, true],
  ['gpt2', 'dx = dy·W (fc)', 256, 3072, 768, false, false],
  ['gpt2', 'dW = dyᵀ·x (fc)', 3072, 256, 768, true, false],
  ['decode', 'gemv x·Wᵀ 110M fc', 1, 768, 2048, false, true],
];
// [case, B, T, H, D]
/** @type {[string, number, number, number, number][]} */
const ATTN = [
  ['tiny', 8, 128, 4, 32],
  ['small', 4, 256, 6, 64],
  ['gpt2', 4, 64, 12, 64],
];

/** n uniform values in [-1, 1) from a seeded LCG. @param {number} n @param {number} seed */
function randn(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 2;
  }
  return a;
}

/** Seconds per call after a warm-up, over at least `minTime` seconds: median (and best, kept in lastBest). */
let lastBest = 0;
/** @param {() => void} fn */
function time(fn, minTime = QUICK ? 0.15 : 0.4) {
  fn();
  /** @type {number[]} */
  const ts = [];
  const t0 = performance.now();
  while (ts.length < 5 || (performance.now() - t0) / 1000 < minTime) {
    const a = performance.now();
    fn();
    ts.push((performance.now() - a) / 1000);
    if (ts.length >= 200) break;
  }
  ts.sort((x, y) => x - y);
  lastBest = /** @type {number} */ (ts[0]);
  return /** @type {number} */ (ts[ts.length >> 1]);
}

/**
 * Plain JavaScript matmul (i-k-j loop over Float32Arrays), the same op.
 * @param {Float32Array} A @param {Float32Array} B @param {Float32Array} C
 * @param {number} M @param {number} K @param {number} N @param {boolean} tA @param {boolean} tB
 */
function jsMatmul(A, B, C, M, K, N, tA, tB) {
  C.fill(0);
  for (let i = 0; i < M; i++) {
    const co = i * N;
    for (let k = 0; k < K; k++) {
      const a = tA ? A[k * M + i] : A[i * K + k];
      if (tB) for (let j = 0; j < N; j++) C[co + j] += a * B[j * K + k];
      else {
        const bo = k * N;
        for (let j = 0; j < N; j++) C[co + j] += a * B[bo + j];
      }
    }
  }
}

/**
 * One result row: matmul / attention rows carry GFLOP/s, memory-bound kernels GB/s.
 * @typedef {{ bench: string, case: string, kernel: string, shape: string, threads: number, variant: string, ms: number,
 *   gflop_s?: number, gflop_s_best?: number, pct_peak?: number, peak_basis?: string, gb_s?: number, peer?: string, peer_gflop_s?: number, ratio?: number }} Row
 */
/** @type {Row[]} */
const rows = [];
/** @param {Row} r */
function emit(r) {
  rows.push(r);
  if (JSON_OUT) console.log(JSON.stringify(r));
  else if (r.gb_s !== undefined) {
    console.log(
      `${r.case.padEnd(6)} ${r.kernel.padEnd(22)} ${''.padEnd(22)} ${String(r.threads).padStart(2)}t  ${r.ms.toFixed(2).padStart(7)} ms  ${r.gb_s.toFixed(1).padStart(6)} GB/s`,
    );
  } else {
    const peer =
      r.peer_gflop_s !== undefined
        ? `  plain JS ${r.peer_gflop_s.toFixed(2)} GFLOP/s → ×${(r.ratio ?? 0).toFixed(0)}`
        : '';
    console.log(
      `${r.case.padEnd(6)} ${r.kernel.padEnd(22)} ${r.shape.padEnd(22)} ${String(r.threads).padStart(2)}t  ${(r.gflop_s ?? 0).toFixed(1).padStart(6)} GFLOP/s (best ${(r.gflop_s_best ?? 0).toFixed(1).padStart(5)})  ${r.pct_peak === undefined ? 'no peak' : `${r.pct_peak.toFixed(1).padStart(5)}% of ${r.peak_basis === 'sgemm' ? 'sgemm' : 'WebAssembly SIMD'} peak`}${peer}`,
    );
  }
}

/** @type {Map<string, number>} */
const jsPeer = new Map();
for (const threads of [...new Set([1, NMAX])]) {
  const peak = await peakOn(threads);
  /** @param {number} g @returns {{ pct_peak?: number, peak_basis?: string }} */
  const pct = (g) => (peak ? { pct_peak: (100 * g) / peak.gflop_s, peak_basis: peak.basis } : {});
  const be = await createWasmBackend({ threads });
  if (!JSON_OUT)
    console.log(
      `# ${be.describe()}; ${peak ? `peak ${peak.gflop_s.toFixed(1)} GFLOP/s (${peak.basis === 'sgemm' ? 'OpenBLAS sgemm, ANCHORS.md' : 'WebAssembly SIMD128 measured now: no sgemm peak measured on this processor'})` : 'no peak known'}`,
    );
  /** @param {Float32Array} data @param {number[]} shape */
  const up = (data, shape) => {
    const b = be.alloc(data.length, 'f32');
    be.write(b, data);
    return { buf: b, shape };
  };
  for (const [cs, label, M, K, N, tA, tB] of MATMULS) {
    if (FILTER && !`${cs} matmul ${label}`.includes(FILTER)) continue;
    const a = up(randn(M * K, 1), tA ? [K, M] : [M, K]);
    const b = up(randn(K * N, 2), tB ? [N, K] : [K, N]);
    const c = { buf: be.alloc(M * N, 'f32'), shape: [M, N] };
    const attrs = { transA: tA, transB: tB };
    const s = time(() => be.run('matmul', [a, b], [c], attrs));
    const best = lastBest;
    const flops = 2 * M * N * K;
    const key = `${M}x${K}x${N}${tA}${tB}`;
    if (!jsPeer.has(key) && !NO_PEER) {
      const m = Math.min(M, 64);
      const A = randn(m * K, 1),
        B = randn(K * N, 2),
        C = new Float32Array(m * N);
      jsPeer.set(key, (2 * m * N * K) / time(() => jsMatmul(A, B, C, m, K, N, false, tB), 0.2) / 1e9);
    }
    const g = flops / s / 1e9;
    const peer = jsPeer.get(key);
    emit({
      bench: 'kernels',
      case: cs,
      kernel: `matmul ${label}`,
      shape: `${M}×${K}×${N}${tA ? ' Aᵀ' : ''}${tB ? ' Bᵀ' : ''}`,
      threads,
      variant: be.variant,
      ms: s * 1e3,
      gflop_s: g,
      gflop_s_best: flops / best / 1e9,
      ...pct(g),
      ...(peer ? { peer: 'plain-js', peer_gflop_s: peer, ratio: g / peer } : {}),
    });
    for (const v of [a, b, c]) be.free(v.buf);
  }
  for (const [cs, B, T, H, D] of ATTN) {
    if (FILTER && !`${cs} attention`.includes(FILTER)) continue;
    const q = up(randn(B * T * H * D, 3), [B, T, H, D]),
      k = up(randn(B * T * H * D, 4), [B, T, H, D]),
      v = up(randn(B * T * H * D, 5), [B, T, H, D]);
    const o = { buf: be.alloc(B * T * H * D, 'f32'), shape: [B, T, H, D] },
      lse = { buf: be.alloc(B * H * T, 'f32'), shape: [B, H, T] };
    const attrs = { scale: 1 / Math.sqrt(D), causal: true };
    const pairs = (B * H * T * (T + 1)) / 2;
    const sf = time(() => be.run('attention', [q, k, v], [o, lse], attrs));
    const gf = (4 * pairs * D) / sf / 1e9;
    emit({
      bench: 'kernels',
      case: cs,
      kernel: 'attention fwd',
      shape: `B${B} T${T} H${H} D${D}`,
      threads,
      variant: be.variant,
      ms: sf * 1e3,
      gflop_s: gf,
      gflop_s_best: (4 * pairs * D) / lastBest / 1e9,
      ...pct(gf),
    });
    const dO = up(randn(B * T * H * D, 6), [B, T, H, D]);
    const dq = { buf: be.alloc(B * T * H * D, 'f32'), shape: [B, T, H, D] },
      dk = { buf: be.alloc(B * T * H * D, 'f32'), shape: [B, T, H, D] },
      dv = { buf: be.alloc(B * T * H * D, 'f32'), shape: [B, T, H, D] };
    const sb = time(() => be.run('attention_backward', [dO, q, k, v, o, lse], [dq, dk, dv], attrs));
    const gb = (10 * pairs * D) / sb / 1e9;
    emit({
      bench: 'kernels',
      case: cs,
      kernel: 'attention bwd',
      shape: `B${B} T${T} H${H} D${D}`,
      threads,
      variant: be.variant,
      ms: sb * 1e3,
      gflop_s: gb,
      gflop_s_best: (10 * pairs * D) / lastBest / 1e9,
      ...pct(gb),
    });
    for (const x of [q, k, v, o, lse, dO, dq, dk, dv]) be.free(x.buf);
  }
  // memory-bound kernels at the small case (B·T = 1024, C = 384, V = 4096, 12.3 M parameters): GB/s moved
  const N = 1024,
    C = 384,
    V = 4096,
    P = 12_300_000;
  const buf = (/** @type {number} */ n, /** @type {number[]} */ shape, seed = 7) => up(randn(n, seed), shape);
  const ids = { buf: be.alloc(N, 'i32'), shape: [N] };
  be.write(
    ids.buf,
    Int32Array.from({ length: N }, (_, i) => (i * 7919) % V),
  );
  const x = buf(N * C, [N, C]),
    w = buf(C, [C]),
    bb = buf(C, [C]),
    y = buf(N * C, [N, C]),
    mean = buf(N, [N]),
    rstd = { buf: be.alloc(N, 'f32'), shape: [N] };
  be.write(rstd.buf, new Float32Array(N).fill(1));
  const dx = buf(N * C, [N, C]),
    dw = buf(C, [C]),
    db = buf(C, [C]);
  const h = buf(N * 4 * C, [N, 4 * C]),
    h2 = buf(N * 4 * C, [N, 4 * C]),
    h3 = buf(N * 4 * C, [N, 4 * C]);
  const lg = buf(N * V, [N, V]),
    dl = buf(N * V, [N, V]),
    loss = buf(N, [N]),
    lse2 = buf(N, [N]),
    dls = buf(N, [N]);
  const g = buf(P, [P]),
    p = buf(P, [P]),
    m = buf(P, [P]),
    vv = { buf: be.alloc(P, 'f32'), shape: [P] };
  be.write(vv.buf, new Float32Array(P).fill(0.01));
  /** @type {[string, () => void, number][]} */
  const MEM = [
    ['layernorm fwd', () => be.run('layernorm', [x, w, bb], [y, mean, rstd], { eps: 1e-5 }), 2 * N * C * 4],
    ['layernorm bwd', () => be.run('layernorm_backward', [y, x, w, mean, rstd], [dx, dw, db]), 3 * N * C * 4],
    ['gelu fwd', () => be.run('gelu', [h], [h2]), 2 * N * 4 * C * 4],
    ['gelu bwd', () => be.run('gelu_backward', [h, h2], [h3]), 3 * N * 4 * C * 4],
    ['add bias', () => be.run('add', [x, w], [y]), 2 * N * C * 4],
    ['add residual', () => be.run('add', [x, dx], [y]), 3 * N * C * 4],
    ['cross_entropy fwd', () => be.run('cross_entropy', [lg, ids], [loss, lse2]), N * V * 4],
    ['cross_entropy bwd', () => be.run('cross_entropy_backward', [lg, ids, lse2, dls], [dl]), 2 * N * V * 4],
    [
      'adamw 12.3M',
      () =>
        be.run('adamw', [g], [p, m, vv], { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 }),
      7 * P * 4,
    ],
    ['sumsq 12.3M', () => be.run('sumsq', [g], [loss]), P * 4],
  ];
  for (const [label, fn, bytes] of MEM) {
    if (FILTER && !`small ${label}`.includes(FILTER)) continue;
    const s = time(fn);
    emit({
      bench: 'kernels',
      case: 'small',
      kernel: label,
      shape: '',
      threads,
      variant: be.variant,
      ms: s * 1e3,
      gb_s: bytes / s / 1e9,
    });
  }
  be.dispose();
}
