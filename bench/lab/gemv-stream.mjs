#!/usr/bin/env node
// Decode matmuls as in a real model: many distinct weight matrices (more than the caches hold) used in turn, so
// every call streams its weights from DRAM. µs per call and GB/s for f32 / q8, on 1 and 2 threads.
// usage: node bench/lab/gemv-stream.mjs [N,K] [count]   (after npx tsc and npm run build:wasm)
const { createWasmBackend } = await import('../../dist/backend/wasm/backend.js');
const [N, K] = (process.argv[2] || '768,768').split(',').map(Number);
const count = Number(process.argv[3] || 48);
for (const threads of [1, 2]) {
  const be = await createWasmBackend({ threads });
  const x = be.alloc(K, 'f32'),
    o = be.alloc(N, 'f32');
  be.write(
    x,
    Float32Array.from({ length: K }, (_, i) => Math.sin(i)),
  );
  /** @type {import('../../dist/backend/backend.js').DeviceBuffer[]} */
  const ws = [];
  /** @type {[import('../../dist/backend/backend.js').DeviceBuffer, import('../../dist/backend/backend.js').DeviceBuffer][]} */
  const qs = [];
  for (let c = 0; c < count; c++) {
    const w = be.alloc(N * K, 'f32');
    be.write(w, new Float32Array(N * K).fill(0.01));
    ws.push(w);
    const wq = be.alloc((N * K) / 4, 'i32'),
      sc = be.alloc((N * K) / 32, 'f32');
    be.write(wq, new Int32Array((N * K) / 4).fill(0x01020304));
    be.write(sc, new Float32Array((N * K) / 32).fill(0.01));
    qs.push([wq, sc]);
  }
  const row = [];
  for (const kind of ['f32', 'q8']) {
    const call = (/** @type {number} */ c) =>
      kind === 'f32'
        ? be.run(
            'matmul',
            [
              { buf: x, shape: [1, K] },
              { buf: ws[c], shape: [N, K] },
            ],
            [{ buf: o, shape: [1, N] }],
            { transB: true },
          )
        : be.run(
            'matmul_q8',
            [
              { buf: x, shape: [1, K] },
              { buf: qs[c][0], shape: [N, K / 4] },
              { buf: qs[c][1], shape: [N, K / 32] },
            ],
            [{ buf: o, shape: [1, N] }],
          );
    for (let c = 0; c < count; c++) call(c);
    const reps = 20,
      t0 = performance.now();
    for (let r = 0; r < reps; r++) for (let c = 0; c < count; c++) call(c);
    const us = ((performance.now() - t0) / reps / count) * 1000;
    const bytes = N * K * (kind === 'f32' ? 4 : 1.125);
    row.push(`${kind} ${us.toFixed(1)}µs ${(bytes / us / 1e3).toFixed(1)}GB/s`);
  }
  console.log(`${threads} thread(s) ${N}x${K} ×${count}:`, row.join(' | '));
  be.dispose();
}
process.exit(0);
