#!/usr/bin/env node
// WebGPU matmul lab: the register-blocked kernels (src/backend/webgpu/matmul_tiled.ts: 4×4 outputs a thread in 64×64
// blocks, 8×8 in 128×128) against the 32×32 kernel of matmul.ts (tiledMatmul.min = Infinity) on the same buffers,
// alternating in one process (best of `reps` each), for
// a training step's three products of a linear layer at M rows (tokens), K in, N out: forward x·Wᵀ (NT), the input's
// gradient dY·W (NN) and the weight's gradient dYᵀ·x (TN). Each call is followed by a sync, so a time is the device's
// work plus one submit; GFLOP/s = 2·M·N·K / time. Checks first that the kernels give the same outputs. With M ≤ 4
// (decode) it times x·Wᵀ alone, the matrix-vector kernel (matmul_gemv.ts) against the 32×32 one.
// usage: node bench/lab/webgpu-matmul.mjs [M,K,N=1024,768,768] [reps=3]   (after npm run build)
// On SwiftShader (no GPU: Vulkan on the CPU) this is only a rough signal; bench/gpu/run.sh runs it on a GPU.
const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
const { tiledMatmul } = await import('../../dist/backend/webgpu/matmul.js');
const [M, K, N] = (process.argv[2] || '1024,768,768').split(',').map(Number);
const reps = Number(process.argv[3] || 3);
const be = await createWebGpuBackend();
/** A device buffer of `len` floats, filled with a fixed pattern. @param {number} len @param {number} seed */
const mk = (len, seed) => {
  const b = be.alloc(len, 'f32');
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = Math.sin(i * 0.37 + seed) * 0.8;
  be.write(b, a);
  return b;
};
const x = mk(M * K, 1),
  w = mk(N * K, 2),
  dy = mk(M * N, 3),
  y = mk(M * N, 4),
  dx = mk(M * K, 5),
  dw = mk(N * K, 6);
const V = (/** @type {import('../../dist/backend/backend.js').DeviceBuffer} */ b, /** @type {number[]} */ s) => ({
  buf: b,
  shape: s,
});
/** @type {[string, () => void, import('../../dist/backend/backend.js').DeviceBuffer][]} */
const products = [
  ['x·Wᵀ (NT)', () => be.run('matmul', [V(x, [M, K]), V(w, [N, K])], [V(y, [M, N])], { transB: true }), y],
  ['dY·W (NN)', () => be.run('matmul', [V(dy, [M, N]), V(w, [N, K])], [V(dx, [M, K])], {}), dx],
  ['dYᵀ·x (TN)', () => be.run('matmul', [V(dy, [M, N]), V(x, [M, K])], [V(dw, [N, K])], { transA: true }), dw],
];
const { min: tiledMin, big: tiledBig, gemvRows } = tiledMatmul;
// a few rows (decode): x·Wᵀ only, the matrix-vector kernel against the 32×32 one
const decode = M <= gemvRows;
if (decode) products.splice(1);
const kernels = decode ? ['32x32', 'gemv'] : ['32x32', '64x64', '128x128'];
/** @param {string} k */
const use = (k) => {
  tiledMatmul.min = k === '32x32' ? Number.POSITIVE_INFINITY : tiledMin;
  tiledMatmul.big = k === '128x128' ? 0 : Number.POSITIVE_INFINITY;
  tiledMatmul.gemvRows = k === 'gemv' ? gemvRows : 0;
};
let diff = 0;
for (const [, call, out] of products) {
  const o = [];
  for (const k of kernels) {
    use(k);
    call();
    o.push(await be.read(out));
  }
  let scale = 0;
  for (const v of o[0]) scale = Math.max(scale, Math.abs(v));
  for (const b of o.slice(1))
    for (let i = 0; i < o[0].length; i++) diff = Math.max(diff, Math.abs(o[0][i] - b[i]) / scale);
}
/** @type {Record<string, Record<string, number>>} */
const best = {};
for (let r = 0; r < reps; r++)
  for (const [name, call] of products)
    for (const k of kernels) {
      use(k);
      await be.sync();
      const t0 = performance.now();
      call();
      await be.sync();
      best[name] ??= {};
      best[name][k] = Math.min(best[name][k] ?? Infinity, performance.now() - t0);
    }
Object.assign(tiledMatmul, { min: tiledMin, big: tiledBig, gemvRows });
const gf = (/** @type {number} */ ms) => ((2 * M * N * K) / (ms * 1e6)).toFixed(1);
console.log(`webgpu matmul M${M} K${K} N${N} on ${be.describe()}, best of ${reps}`);
for (const [name] of products) {
  const a = best[name]['32x32'];
  const cells = kernels.map((k) => `${k} ${best[name][k].toFixed(1)} ms (${gf(best[name][k])} GFLOP/s)`);
  const vs = kernels.slice(1).map((k) => `${k} ×${(a / best[name][k]).toFixed(2)}`);
  console.log(`${name.padEnd(11)} ${cells.join('  ')}  | against 32x32: ${vs.join(', ')}`);
}
console.log(`max |32x32 − others| / max|32x32| ${diff.toExponential(2)}`);
be.dispose();
process.exit(0);
