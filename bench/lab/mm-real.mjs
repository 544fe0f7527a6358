#!/usr/bin/env node
// Times the backend's full matmul (packing, blocking, edges) on the training shapes, best of 15 trials, 1 thread
// unless --threads N (--variant simd for mul+add). Compare with mm-lab.mjs (micro-kernel alone, in cache).
import { createWasmBackend } from '../../dist/backend/wasm/backend.js';
const ti = process.argv.indexOf('--threads');
const threads = ti >= 0 ? Number(process.argv[ti + 1]) : 1;
const vi = process.argv.indexOf('--variant');
const variant = /** @type {'auto' | 'simd' | 'relaxed'} */ (vi >= 0 ? process.argv[vi + 1] : 'auto');
const be = await createWasmBackend({ threads, variant });
console.log(be.describe());
/** @type {[number, number, number, boolean, boolean][]} [M, K, N, transA, transB] */
const shapes = [
  [1024, 128, 512, false, true],
  [1024, 512, 128, false, false],
  [512, 1024, 128, true, false],
  [1024, 384, 1536, false, true],
  [1024, 1536, 384, false, false],
  [1536, 1024, 384, true, false],
  [256, 768, 3072, false, true],
  [256, 3072, 768, false, false],
  [3072, 256, 768, true, false],
];
for (const [M, K, N, tA, tB] of shapes) {
  const a = be.alloc(M * K, 'f32'),
    b = be.alloc(K * N, 'f32'),
    c = be.alloc(M * N, 'f32');
  be.write(
    a,
    Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)),
  );
  be.write(
    b,
    Float32Array.from({ length: K * N }, (_, i) => Math.cos(i)),
  );
  const run = () =>
    be.run(
      'matmul',
      [
        { buf: a, shape: tA ? [K, M] : [M, K] },
        { buf: b, shape: tB ? [N, K] : [K, N] },
      ],
      [{ buf: c, shape: [M, N] }],
      { transA: tA, transB: tB },
    );
  run();
  let best = Infinity;
  for (let t = 0; t < 15; t++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  console.log(
    `${M}×${K}×${N}${tA ? ' Aᵀ' : ''}${tB ? ' Bᵀ' : ''}`.padEnd(20),
    `${((2 * M * N * K) / best / 1e6).toFixed(1)} GFLOP/s (${threads}t, best of 15)`,
  );
  for (const x of [a, b, c]) be.free(x);
}
be.dispose();
