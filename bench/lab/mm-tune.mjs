#!/usr/bin/env node
// Matmul blocking lab: builds the real kernel module with several (KC, MC, NC) choices, then times each on the
// training shapes, interleaving variants trial by trial (so a noisy neighbour hurts all alike) and keeping each
// variant's best. One thread, relaxed SIMD. usage: node bench/lab/mm-tune.mjs "256,64,256" "128,64,512" ...
import v8 from 'node:v8';
import { main } from 'assemblyscript/asc';
import { mkdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const configs = process.argv.slice(2).length
  ? process.argv.slice(2)
  : ['256,64,256', '256,32,256', '128,64,512', '256,64,1024'];
/** @type {{ cfg: string, ex: Record<string, (...a: number[]) => number>, f: Float32Array }[]} */
const mods = [];
for (const cfg of configs) {
  const [KC, MC, NC] = cfg.split(',').map(Number);
  const dir = join(tmpdir(), 'mmtune', `${KC}_${MC}_${NC}`);
  mkdirSync(dir, { recursive: true });
  cpSync(join(root, 'src/backend/wasm/assembly'), dir, { recursive: true });
  const src = readFileSync(join(dir, 'matmul.ts'), 'utf8')
    .replace(/const KC: i32 = \d+;/, `const KC: i32 = ${KC};`)
    .replace(/const MC: i32 = \d+;/, `const MC: i32 = ${MC};`)
    .replace(/const NC: i32 = \d+;/, `const NC: i32 = ${NC};`);
  writeFileSync(join(dir, 'matmul.ts'), src);
  const out = join(dir, 'k.wasm');
  const { error, stderr } = await main([
    join(dir, 'index.ts'),
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--importMemory',
    '--initialMemory',
    '2048',
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
  const memory = new WebAssembly.Memory({ initial: 2048 });
  const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { memory } });
  mods.push({
    cfg,
    ex: /** @type {Record<string, (...a: number[]) => number>} */ (/** @type {unknown} */ (instance.exports)),
    f: new Float32Array(memory.buffer),
  });
}
/** @type {[number, number, number, number, number][]} [M, K, N, transA, transB] */
const shapes = process.env.SHAPES
  ? JSON.parse(process.env.SHAPES)
  : [
      [1024, 128, 512, 0, 1],
      [1024, 512, 128, 0, 0],
      [512, 1024, 128, 1, 0],
      [1024, 384, 1536, 0, 1],
      [1024, 1536, 384, 0, 0],
      [1536, 1024, 384, 1, 0],
      [256, 768, 3072, 0, 1],
      [256, 3072, 768, 0, 0],
      [3072, 256, 768, 1, 0],
    ];
const A = 1 << 20,
  B = 40 << 20,
  C = 80 << 20,
  S = 120 << 20;
for (const m of mods)
  for (let i = 0; i < (16 << 20) / 4; i++) {
    m.f[A / 4 + i] = Math.sin(i);
    m.f[B / 4 + i] = Math.cos(i);
  }
const best = mods.map(() => shapes.map(() => Infinity));
for (let trial = 0; trial < 7; trial++) {
  shapes.forEach(([M, K, N, tA, tB], si) => {
    mods.forEach((m, mi) => {
      const run = () => m.ex.matmul(A, B, C, 1, 0, 0, 0, M, N, K, tA, tB, 1, 0, 0, S, 0, 1);
      if (trial === 0) run();
      const t0 = performance.now();
      run();
      best[mi][si] = Math.min(best[mi][si], performance.now() - t0);
    });
  });
}
console.log(
  'KC,MC,NC      ' +
    shapes.map(([M, K, N, tA, tB]) => `${M}×${K}×${N}${tA ? 'ᵀ' : ''}${tB ? 'ᵗ' : ''}`.padStart(16)).join(''),
);
mods.forEach((m, mi) =>
  console.log(
    m.cfg.padEnd(14) +
      shapes.map(([M, K, N], si) => `${((2 * M * N * K) / best[mi][si] / 1e6).toFixed(1)}`.padStart(16)).join(''),
  ),
);
