#!/usr/bin/env node
// WebGPU attention lab: the tiled (flash) kernels of src/backend/webgpu/attention_flash.ts against the row kernels of
// attention.ts (flashAttention.minT = Infinity) on the same buffers, alternating in one process (row, tiled, split,
// row, …; best of `reps` each; split: the tiled backward with dK and dV in two passes, flashAttention.splitKV),
// forward (`attention`, causal) and backward (`attention_backward`), each call followed by a sync so the time is the
// device's work plus the submit. Checks first that the paths give the same outputs (max relative difference printed).
// usage: node bench/lab/webgpu-attention.mjs [B,T,H,D=2,256,4,64] [reps=3]   (after npm run build)
// On SwiftShader (no GPU: Vulkan on the CPU) this is only a rough signal; bench/gpu/run.sh runs it on a GPU.
const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
const { flashAttention } = await import('../../dist/backend/webgpu/attention.js');
const [B, T, H, D] = (process.argv[2] || '2,256,4,64').split(',').map(Number);
const reps = Number(process.argv[3] || 3);
const be = await createWebGpuBackend();
const n = B * T * H * D;
/** A device buffer of `len` floats, filled with a fixed pattern. @param {number} len @param {number} seed */
const mk = (len, seed) => {
  const b = be.alloc(len, 'f32');
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = Math.sin(i * 0.37 + seed) * 0.8;
  be.write(b, a);
  return b;
};
const q = mk(n, 1),
  k = mk(n, 2),
  v = mk(n, 3),
  o = mk(n, 4),
  lse = mk(B * H * T, 5),
  dO = mk(n, 6),
  dq = mk(n, 7),
  dk = mk(n, 8),
  dv = mk(n, 9);
const sh = [B, T, H, D];
const V = (/** @type {import('../../dist/backend/backend.js').DeviceBuffer} */ b, s = sh) => ({ buf: b, shape: s });
const attrs = { scale: 1 / Math.sqrt(D), causal: true };
const fwd = () => be.run('attention', [V(q), V(k), V(v)], [V(o), V(lse, [B, H, T])], attrs);
const bwd = () =>
  be.run('attention_backward', [V(dO), V(q), V(k), V(v), V(o), V(lse, [B, H, T])], [V(dq), V(dk), V(dv)], attrs);
const tiledMinT = flashAttention.minT;
/** @typedef {'row' | 'tiled' | 'split'} Mode */
/** Set the path. @param {Mode} m */
const path = (m) => {
  flashAttention.minT = m === 'row' ? Number.POSITIVE_INFINITY : tiledMinT;
  flashAttention.splitKV = m === 'split';
};
/** The outputs of a forward then backward on one path. @param {Mode} m */
async function outputs(m) {
  path(m);
  fwd();
  bwd();
  return Promise.all([o, lse, dq, dk, dv].map((b) => be.read(b)));
}
/** @type {Mode[]} */
const modes = ['row', 'tiled', 'split'];
const outs = [];
for (const m of modes) outs.push(await outputs(m));
let diff = 0;
for (const b of outs.slice(1))
  for (let j = 0; j < outs[0].length; j++) {
    let scale = 0;
    for (const x of outs[0][j]) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < outs[0][j].length; i++) diff = Math.max(diff, Math.abs(outs[0][j][i] - b[j][i]) / scale);
  }
/** @type {Record<Mode, { fwd: number, bwd: number }>} */
const best = {
  row: { fwd: Infinity, bwd: Infinity },
  tiled: { fwd: Infinity, bwd: Infinity },
  split: { fwd: Infinity, bwd: Infinity },
};
for (let r = 0; r < reps; r++)
  for (const m of modes) {
    path(m);
    for (const [f, call] of /** @type {const} */ ([
      ['fwd', fwd],
      ['bwd', bwd],
    ])) {
      if (m === 'split' && f === 'fwd') continue; // the same forward as tiled
      await be.sync();
      const t0 = performance.now();
      call();
      await be.sync();
      best[m][f] = Math.min(best[m][f], performance.now() - t0);
    }
  }
path('tiled');
const f1 = (/** @type {number} */ x) => x.toFixed(1);
console.log(`webgpu attention B${B} T${T} H${H} D${D} causal on ${be.describe()}, best of ${reps}`);
console.log(
  `row   fwd ${f1(best.row.fwd)} ms  bwd ${f1(best.row.bwd)} ms\ntiled fwd ${f1(best.tiled.fwd)} ms  bwd ${f1(best.tiled.bwd)} ms  (split dK/dV: bwd ${f1(best.split.bwd)} ms)\nrow/tiled fwd ×${(best.row.fwd / best.tiled.fwd).toFixed(2)}  bwd ×${(best.row.bwd / best.tiled.bwd).toFixed(2)}  | max |row − tiled| / max|row| ${diff.toExponential(2)}`,
);
be.dispose();
