#!/usr/bin/env node
// Where a training step's time goes on the wasm backend: wraps Backend.run to time every kernel (they are
// synchronous on wasm) and prints per-kernel totals for one step, plus the time outside kernels (tensor layer,
// allocation, tape). usage: node bench/lab/step-profile.mjs [tiny|small|gpt2] [--threads N]
const { initBackend, initModel, tidy, backward, AdamW, gradNorm, clipCoefficient, Rng } = await import(
  '../../dist/index.js'
);
const { CPU_SHAPES, gptConfig } = await import('../train_shapes.mjs');
const name = process.argv[2] ?? 'tiny';
const ti = process.argv.indexOf('--threads');
const backend = await initBackend('wasm', ti >= 0 ? { threads: Number(process.argv[ti + 1]) } : {});
const s = CPU_SHAPES[name];
if (!s) throw new Error(`unknown shape ${name}; known: ${Object.keys(CPU_SHAPES).join(', ')}`);
const cfg = gptConfig(s);
const rng = new Rng(1);
const model = initModel(cfg, rng, { backend });
const opt = new AdamW(model.params, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
const ids = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
const tg = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
const stats = new Map();
const orig = backend.run.bind(backend);
let on = false;
/** @type {import('../../dist/backend/backend.js').Backend['run']} */
backend.run = (k, i, o, a) => {
  if (!on) return orig(k, i, o, a);
  const key =
    k === 'matmul'
      ? `matmul ${a?.transA ? 'T' : 'N'}${a?.transB ? 'T' : 'N'} [${i[0].shape}]·[${i[1].shape}]${a?.accumulate ? ' acc' : ''}`
      : k;
  const t0 = performance.now();
  orig(k, i, o, a);
  const dt = performance.now() - t0;
  const e = stats.get(key) ?? { n: 0, ms: 0 };
  e.n++;
  e.ms += dt;
  stats.set(key, e);
};
async function step() {
  const loss = tidy(() => {
    const l = model.loss(ids, tg, s.B, s.T);
    backward(l);
    return l;
  });
  await loss.item();
  loss.dispose();
  const norm = await gradNorm(model.params);
  opt.step({ gradScale: clipCoefficient(norm, 1) });
  opt.zeroGrad();
}
await step();
await step();
let best = Infinity,
  bestStats = new Map();
for (let r = 0; r < 3; r++) {
  stats.clear();
  on = true;
  const t0 = performance.now();
  await step();
  const total = performance.now() - t0;
  on = false;
  if (total < best) {
    best = total;
    bestStats = new Map(stats);
  }
}
let kern = 0;
const rows = [...bestStats.entries()].sort((a, b) => b[1].ms - a[1].ms);
for (const [, e] of rows) kern += e.ms;
console.log(
  `${name}: step ${best.toFixed(1)} ms (${(((s.B * s.T) / best) * 1e3).toFixed(0)} tok/s), kernels ${kern.toFixed(1)} ms, outside kernels ${(best - kern).toFixed(1)} ms — ${backend.describe()}`,
);
for (const [k, e] of rows.slice(0, 25))
  console.log(`  ${k.padEnd(36)} ${String(e.n).padStart(4)}×  ${e.ms.toFixed(2).padStart(8)} ms`);
backend.dispose();
