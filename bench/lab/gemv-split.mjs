#!/usr/bin/env node
// Decode matmul shapes (x [1, K] · Wᵀ, W [N, K]) on the wasm backend: µs per call and weight GB/s for f32 (gemv
// path of `matmul`), q8 and bf16, on 1 and 2 threads — to choose GEMV_PARALLEL_BYTES in src/backend/wasm/backend.ts.
// One matrix called repeatedly: small ones stay in cache (compute speed); bench/lab/gemv-stream.mjs streams from DRAM.
// usage: node bench/lab/gemv-split.mjs   (after npx tsc and npm run build:wasm)
const { createWasmBackend } = await import('../../dist/backend/wasm/backend.js');
const shapes = [
  [288, 288],
  [768, 288],
  [288, 768],
  [768, 768],
  [2048, 768],
  [768, 2048],
  [32000, 288],
  [32000, 768],
];
for (const threads of [1, 2]) {
  const be = await createWasmBackend({ threads });
  console.log(be.describe());
  for (const [N, K] of shapes) {
    const x = be.alloc(K, 'f32'),
      w = be.alloc(N * K, 'f32'),
      o = be.alloc(N, 'f32');
    const wq = be.alloc((N * K) / 4, 'i32'),
      sc = be.alloc((N * K) / 32, 'f32'),
      wb = be.alloc((N * K) / 2, 'i32');
    be.write(
      x,
      Float32Array.from({ length: K }, (_, i) => Math.sin(i)),
    );
    be.write(
      w,
      Float32Array.from({ length: N * K }, (_, i) => Math.cos(i) * 0.01),
    );
    be.write(sc, new Float32Array((N * K) / 32).fill(0.01));
    // real bytes everywhere: a never-written buffer may be backed by the zero page and read from cache
    be.write(
      wq,
      Int32Array.from({ length: (N * K) / 4 }, (_, i) => Math.imul(i, 0x9e3779b1)),
    );
    be.write(
      wb,
      Int32Array.from({ length: (N * K) / 2 }, (_, i) => 0x3c003c00 ^ (i & 0x00ff00ff)),
    );
    const row = [];
    for (const [
      name,
      ins,
      bytes,
    ] of /** @type {[string, import('../../dist/backend/backend.js').View[], number][]} */ ([
      [
        'matmul',
        [
          { buf: x, shape: [1, K] },
          { buf: w, shape: [N, K] },
        ],
        N * K * 4,
      ],
      [
        'matmul_q8',
        [
          { buf: x, shape: [1, K] },
          { buf: wq, shape: [N, K / 4] },
          { buf: sc, shape: [N, K / 32] },
        ],
        N * K * 1.125,
      ],
      [
        'matmul_bf16',
        [
          { buf: x, shape: [1, K] },
          { buf: wb, shape: [N, K / 2] },
        ],
        N * K * 2,
      ],
    ])) {
      const outs = [{ buf: o, shape: [1, N] }];
      const attrs = name === 'matmul' ? { transB: true } : undefined;
      const reps = Math.max(20, Math.round(3e8 / bytes));
      for (let r = 0; r < 5; r++) be.run(name, ins, outs, attrs);
      const ts = [];
      for (let t = 0; t < 5; t++) {
        const t0 = performance.now();
        for (let r = 0; r < reps; r++) be.run(name, ins, outs, attrs);
        ts.push((performance.now() - t0) / reps);
      }
      ts.sort((a, b) => a - b);
      const ms = ts[2];
      row.push(`${name.replace('matmul', 'mm')} ${(ms * 1000).toFixed(1)}µs ${(bytes / ms / 1e6).toFixed(1)}GB/s`);
    }
    console.log(`  ${N}x${K}`.padEnd(12), row.join(' | '));
  }
  be.dispose();
}
process.exit(0);
