#!/usr/bin/env node
// Decode lab for the Q8_0 batch-1 matmul (variants in q8_variants.ts), ONE thread: (1) error of each variant
// against the exact f64 product of x with the dequantised weights, (2) µs per 768×768 call with the weights in
// cache (compute speed), (3) one whole stories110M token's matmuls from DRAM (12 layers of q,k,v,o 768×768,
// gate/up 2048×768, down 768×2048, head 32000×768 ≈ 117 MB): ms per token and weight GB/s. Variants interleaved,
// medians. usage: node bench/lab/q8-lab.mjs [variant,...]  (findings: the header of q8_variants.ts)
import v8 from 'node:v8';
import { main } from 'assemblyscript/asc';
import { readFileSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const here = dirname(fileURLToPath(import.meta.url));
const out = join(tmpdir(), `llmts-q8_variants-${process.pid}.wasm`);
const { error, stderr } = await main([
  join(here, 'q8_variants.ts'),
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--importMemory',
  '--initialMemory',
  '2600',
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
const memory = new WebAssembly.Memory({ initial: 2600 });
const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { memory } });
unlinkSync(out);
const ex = /** @type {Record<string, (...a: number[]) => number>} */ (/** @type {unknown} */ (instance.exports));
const names = (process.argv[2] || 'q8_i16,q8_i16r4,q8_blk16,q8_off,q8_off4,q8_offnc,q8_sign').split(',');

// the token's matrices [N, K]
const mats = [];
for (let l = 0; l < 12; l++)
  mats.push([768, 768], [768, 768], [768, 768], [768, 768], [2048, 768], [2048, 768], [768, 2048]);
mats.push([32000, 768]);
let s = 12345;
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
let p = 1 << 16;
const X = p;
p += 2048 * 4;
const OUT = p;
p += 32000 * 4;
const SCR = p;
p += 1 << 16;
const layout = mats.map(([N, K]) => {
  const w = p;
  p += N * K;
  const sc = p;
  p += (N * K) / 8;
  return { N, K, w, sc };
});
if (p > memory.buffer.byteLength) throw new Error(`memory ${p}`);
const f32 = new Float32Array(memory.buffer);
for (const m of layout) {
  const q = new Int8Array(memory.buffer, m.w, m.N * m.K);
  for (let i = 0; i < q.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(gauss() * 40)));
  for (let i = 0; i < (m.N * m.K) / 32; i++) f32[m.sc / 4 + i] = 0.001 * (0.5 + rnd());
}
const x768 = Float32Array.from({ length: 768 }, () => gauss() * (rnd() < 0.01 ? 20 : 1)); // a few outliers
const x2048 = Float32Array.from({ length: 2048 }, () => gauss() * (rnd() < 0.01 ? 20 : 1));

// (1) error vs exact on the first 768×768 and the 768×2048 matrix
for (const mi of [0, 6]) {
  const m = layout[mi],
    xs = m.K === 768 ? x768 : x2048;
  f32.set(xs, X / 4);
  const q = new Int8Array(memory.buffer, m.w, m.N * m.K);
  const ref = new Float64Array(m.N);
  for (let j = 0; j < m.N; j++) {
    let t = 0;
    for (let k = 0; k < m.K; k++) t += xs[k] * q[j * m.K + k] * f32[m.sc / 4 + (j * m.K) / 32 + (k >> 5)];
    ref[j] = t;
  }
  const row = [];
  for (const n of names) {
    ex[n](X, m.w, m.sc, OUT, m.N, m.K, SCR, 0, m.N);
    let d = 0,
      nn = 0;
    for (let j = 0; j < m.N; j++) (d += (f32[OUT / 4 + j] - ref[j]) ** 2), (nn += ref[j] ** 2);
    row.push(`${n} ${Math.sqrt(d / nn).toExponential(2)}`);
  }
  console.log(`rel. error ${m.N}x${m.K}: ${row.join(' | ')}`);
}

const med = (/** @type {number[]} */ a) => /** @type {number} */ (a.slice().sort((x, y) => x - y)[a.length >> 1]);
// (2) in cache: 768×768, 200 calls per sample
{
  const m = layout[0];
  f32.set(x768, X / 4);
  const ts = Object.fromEntries(names.map((n) => [n, /** @type {number[]} */ ([])]));
  for (let rep = 0; rep < 15; rep++) {
    for (const n of names) {
      const f = ex[n];
      const t0 = performance.now();
      for (let r = 0; r < 200; r++) f(X, m.w, m.sc, OUT, m.N, m.K, SCR, 0, m.N);
      ts[n].push((performance.now() - t0) / 200);
    }
  }
  console.log('768x768 in cache:', names.map((n) => `${n} ${(med(ts[n]) * 1000).toFixed(1)}µs`).join(' | '));
}
// (3) one token from DRAM
{
  const bytes = layout.reduce((a, m) => a + m.N * m.K * 1.125, 0);
  const ts = Object.fromEntries(names.map((n) => [n, /** @type {number[]} */ ([])]));
  for (let rep = 0; rep < 9; rep++) {
    for (const n of names) {
      const f = ex[n];
      const t0 = performance.now();
      for (const m of layout) {
        if (m.K === 768) f32.set(x768, X / 4);
        else f32.set(x2048, X / 4);
        f(X, m.w, m.sc, OUT, m.N, m.K, SCR, 0, m.N);
      }
      ts[n].push(performance.now() - t0);
    }
  }
  console.log(
    `token (${(bytes / 1e6).toFixed(0)} MB):`,
    names.map((n) => `${n} ${med(ts[n]).toFixed(2)}ms ${(bytes / med(ts[n]) / 1e6).toFixed(1)}GB/s`).join(' | '),
  );
}
