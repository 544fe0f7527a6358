#!/usr/bin/env node
// Decode lab: one token through 110M-model-sized weights (a [N=98304, K=1024] matrix ≈ 100 M weights, far past
// the caches), stored as f32, bf16, int8 + row scale (f32 activations) and int8 × int8 (integer dot products).
// Prints weight GB/s, the implied tokens/s for stories110M's ~110 M matmul weights on ONE thread, and the error
// against the f32 result. usage: node bench/lab/gemv-lab.mjs
import v8 from 'node:v8';
import { main } from 'assemblyscript/asc';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const here = dirname(fileURLToPath(import.meta.url));
const out = join(tmpdir(), 'gemv_q.wasm');
const { error, stderr } = await main([
  join(here, 'gemv_q.ts'),
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--importMemory',
  '--initialMemory',
  '12000',
  '--enable',
  'simd',
  '--enable',
  'relaxed-simd',
  '--outFile',
  out,
  '--disableWarning',
]);
if (error) {
  console.error(stderr.toString());
  process.exit(1);
}
const memory = new WebAssembly.Memory({ initial: 12000 });
const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { memory } });
const ex = /** @type {Record<string, (...a: number[]) => number>} */ (/** @type {unknown} */ (instance.exports));
const N = 98304,
  K = 1024,
  P = N * K;
const buf = memory.buffer;
const W = 1 << 20,
  X = W + P * 4,
  Y = X + K * 4,
  Y2 = Y + N * 4,
  WB = Y2 + N * 4,
  WQ = WB + P * 2,
  SC = WQ + P,
  XQ = SC + N * 4;
const w = new Float32Array(buf, W, P),
  x = new Float32Array(buf, X, K);
let s = 1;
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
for (let i = 0; i < P; i++) w[i] = rnd() * 0.1;
for (let i = 0; i < K; i++) x[i] = rnd();
// bf16 (round to nearest even), int8 per-row absmax
const wb = new Uint16Array(buf, WB, P),
  u = new Uint32Array(buf, W, P);
for (let i = 0; i < P; i++) {
  const b = u[i];
  wb[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}
const wq = new Int8Array(buf, WQ, P),
  sc = new Float32Array(buf, SC, N);
for (let n = 0; n < N; n++) {
  let m = 0;
  for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(w[n * K + k]));
  sc[n] = m / 127;
  for (let k = 0; k < K; k++) wq[n * K + k] = Math.round(w[n * K + k] / sc[n]);
}
let xm = 0;
for (let k = 0; k < K; k++) xm = Math.max(xm, Math.abs(x[k]));
const xs = xm / 127,
  xq = new Int16Array(buf, XQ, K);
for (let k = 0; k < K; k++) xq[k] = Math.round(x[k] / xs);
const y = new Float32Array(buf, Y, N),
  y2 = new Float32Array(buf, Y2, N);
ex.gemv_f32(W, X, Y, N, K);
const ref = y.slice();
/** @type {[string, number, () => void][]} [label, bytes per weight, call] */
const cases = [
  ['f32', 4, () => ex.gemv_f32(W, X, Y2, N, K)],
  ['bf16', 2, () => ex.gemv_bf16(WB, X, Y2, N, K)],
  ['int8 (f32 act.)', 1, () => ex.gemv_q8(WQ, SC, X, Y2, N, K)],
  ['int8 × int8', 1, () => ex.gemv_q8q8(WQ, SC, XQ, xs, Y2, N, K)],
];
for (const [label, bytes, fn] of cases) {
  fn();
  let best = Infinity;
  for (let t = 0; t < 5; t++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  let e = 0,
    r = 0;
  for (let n = 0; n < N; n++) {
    e += (y2[n] - ref[n]) ** 2;
    r += ref[n] ** 2;
  }
  const gbs = (P * bytes) / best / 1e6;
  console.log(
    `${label.padEnd(16)} ${best.toFixed(1).padStart(7)} ms  ${gbs.toFixed(1).padStart(5)} GB/s of weights  → ${(1000 / ((best * 110e6) / P)).toFixed(1).padStart(6)} tok/s for 110 M weights (1 thread)   rel. error ${Math.sqrt(e / r).toExponential(1)}`,
  );
}
