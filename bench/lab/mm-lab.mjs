#!/usr/bin/env node
// Matmul micro-kernel lab: builds mm_variants.ts (plain and relaxed), validates each variant against the scalar
// reference on packed panels, then times it in cache (M×N×K tile loop, no packing) and prints GFLOP/s.
//   node bench/lab/mm-lab.mjs [M N K]
import v8 from 'node:v8';
import { main } from 'assemblyscript/asc';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const here = dirname(fileURLToPath(import.meta.url));
const [M0, N0, K0] = process.argv.slice(2).map(Number);
const M = M0 || 60,
  N = N0 || 240,
  K = K0 || 256;
for (const relaxed of [false, true]) {
  const out = join(tmpdir(), `mm_${relaxed ? 'r' : 'p'}.wasm`);
  const { error, stderr } = await main([
    join(here, 'mm_variants.ts'),
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--importMemory',
    '--initialMemory',
    '256',
    '--enable',
    'simd',
    ...(relaxed ? ['--enable', 'relaxed-simd'] : []),
    '--outFile',
    out,
    '--disableWarning',
  ]);
  if (error) {
    console.error(stderr.toString());
    process.exit(1);
  }
  const memory = new WebAssembly.Memory({ initial: 256 });
  const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { memory } });
  const ex = /** @type {Record<string, (...a: number[]) => number>} */ (/** @type {unknown} */ (instance.exports));
  const f = new Float32Array(memory.buffer);
  const A = 1 << 20,
    AP = 2 << 20,
    BP = 4 << 20,
    C = 6 << 20;
  for (let i = 0; i < M * K; i++) f[A / 4 + i] = Math.sin(i);
  const packA = (/** @type {number} */ MR) => {
    for (let i = 0; i < M; i++)
      for (let k = 0; k < K; k++) f[AP / 4 + (Math.floor(i / MR) * K + k) * MR + (i % MR)] = f[A / 4 + i * K + k];
  };
  const packB = (/** @type {number} */ NR) => {
    for (let j = 0; j < N; j++)
      for (let k = 0; k < K; k++) f[BP / 4 + (Math.floor(j / NR) * K + k) * NR + (j % NR)] = Math.cos(j * 7 + k);
  };
  // [label, export, MR, NR, address of A]
  const variants = /** @type {[string, string, number, number, number][]} */ ([
    ['v1 4×8 A rows', 'v1', 4, 8, A],
    ['v2 4×8 A packed', 'v2', 4, 8, AP],
    ['v3 6×8 packed', 'v3', 6, 8, AP],
    ['v4 5×8 packed', 'v4', 5, 8, AP],
    ['v5 4×12 packed', 'v5', 4, 12, AP],
    ['v6 4×8 packed k×2', 'v6', 4, 8, AP],
    ['v7 4×8 packed rows-outer', 'v7', 4, 8, AP],
  ]).filter((v) => !process.env.V || process.env.V.split(',').includes(v[1]));
  // validate each variant, then time them interleaved (trial by trial, so a noisy neighbour hurts all alike)
  const best = new Map();
  const errs = new Map();
  for (const [label, fn, MR, NR, ap] of variants) {
    packA(MR);
    packB(NR);
    ex[fn](ap, BP, C, M, N, K);
    let err = 0;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++)
          s += f[A / 4 + i * K + k] * f[BP / 4 + (Math.floor(j / NR) * K + k) * NR + (j % NR)];
        err = Math.max(err, Math.abs(s - f[C / 4 + i * N + j]) / (Math.abs(s) + 1));
      }
    errs.set(label, err);
    best.set(label, Infinity);
  }
  const reps = 20;
  for (let t = 0; t < 15; t++) {
    for (const [label, fn, MR, NR, ap] of variants) {
      packA(MR);
      packB(NR);
      ex[fn](ap, BP, C, M, N, K);
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) ex[fn](ap, BP, C, M, N, K);
      best.set(label, Math.min(best.get(label), (performance.now() - t0) / 1000));
    }
  }
  for (const [label] of variants) {
    const s = best.get(label),
      err = errs.get(label);
    console.log(
      `${relaxed ? 'relaxed' : 'plain  '} ${label.padEnd(20)} ${((2 * M * N * K * reps) / s / 1e9).toFixed(1).padStart(6)} GFLOP/s  max rel err ${err.toExponential(1)}`,
    );
  }
}
