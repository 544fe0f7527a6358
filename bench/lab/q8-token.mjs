#!/usr/bin/env node
// The matmuls of one stories110M decode token through the real wasm backend (worker pool, column split): 12 layers
// × (q, k, v, o 768×768, gate, up 2048×768, down 768×2048) + head 32000×768, each weight its own buffer (≈117 MB
// q8, streamed from DRAM), x one row. Prints ms per token (median of reps) for q8 and bf16. To compare kernel
// builds, run it from another tree (its dist/ and build/). usage: node bench/lab/q8-token.mjs [treeRoot] [threads]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(process.argv[2] ?? path.join(here, '../..'));
const threads = Number(process.argv[3] ?? 2);
const { createWasmBackend } = await import(path.join(root, 'dist/backend/wasm/backend.js'));
const be = await createWasmBackend({ threads });
const mats = [];
for (let l = 0; l < 12; l++)
  mats.push([768, 768], [768, 768], [768, 768], [768, 768], [2048, 768], [2048, 768], [768, 2048]);
mats.push([32000, 768]);
const kinds = (process.env.KINDS ?? 'q8,bf16').split(',');
const x = be.alloc(2048, 'f32'),
  o = be.alloc(32000, 'f32');
be.write(
  x,
  Float32Array.from({ length: 2048 }, (_, i) => Math.sin(i * 0.37) * (i % 97 === 0 ? 20 : 1)),
);
const row = [];
for (const kind of kinds) {
  const bufs = mats.map(([N, K]) => {
    const w = be.alloc(kind === 'q8' ? (N * K) / 4 : (N * K) / 2, 'i32');
    be.write(
      w,
      Int32Array.from({ length: kind === 'q8' ? (N * K) / 4 : (N * K) / 2 }, (_, i) =>
        kind === 'q8' ? Math.imul(i, 0x9e3779b1) : 0x3c003c00 ^ (i & 0x00ff00ff),
      ),
    );
    let sc = null;
    if (kind === 'q8') {
      sc = be.alloc((N * K) / 32, 'f32');
      be.write(sc, new Float32Array((N * K) / 32).fill(0.001));
    }
    return { N, K, w, sc };
  });
  const step = () => {
    for (const { N, K, w, sc } of bufs) {
      const ins =
        kind === 'q8'
          ? [
              { buf: x, shape: [1, K] },
              { buf: w, shape: [N, K / 4] },
              { buf: sc, shape: [N, K / 32] },
            ]
          : [
              { buf: x, shape: [1, K] },
              { buf: w, shape: [N, K / 2] },
            ];
      be.run(kind === 'q8' ? 'matmul_q8' : 'matmul_bf16', ins, [{ buf: o, shape: [1, N] }]);
    }
  };
  for (let i = 0; i < 3; i++) step();
  const ts = [];
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    step();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  const bytes = mats.reduce((a, [N, K]) => a + N * K * (kind === 'q8' ? 1.125 : 2), 0);
  row.push(`${kind} ${ts[7].toFixed(2)} ms/token (min ${ts[0].toFixed(2)}, ${(bytes / ts[7] / 1e6).toFixed(1)} GB/s)`);
  for (const b of bufs) {
    be.free(b.w);
    if (b.sc) be.free(b.sc);
  }
}
console.log(`${root === path.resolve(here, '../..') ? 'this tree' : root}, ${threads} threads: ${row.join(' | ')}`);
be.dispose();
process.exit(0);
