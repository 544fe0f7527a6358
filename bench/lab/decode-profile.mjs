#!/usr/bin/env node
// One KV-cached decode step of a Llama model (default stories15M), per kernel: where the time goes, and how much is
// JavaScript outside the kernels. usage: node bench/lab/decode-profile.mjs [L,C,H,F,V] [f32|f32-unfused|q8|bf16] [threads]
// f32 fuses q/k/v and gate/up as decoding does (fuseModel); f32-unfused runs the plain parameters.
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { tidy, noGrad } = await import('../../dist/tensor/tensor.js');
const { Rng } = await import('../../dist/util/rng.js');
const { fuseModel, quantizeModel } = await import('../../dist/model/quantize.js');
const [L, C, H, F, V] = (process.argv[2] || '6,288,6,768,32000').split(',').map(Number);
const kind = process.argv[3] || 'q8';
const backend = await initBackend('wasm', { threads: Number(process.argv[4] || 2) });
console.log(backend.describe(), kind);
/** @type {import('../../dist/model/config.js').ModelConfig} */
const cfg = {
  family: 'llama',
  vocabSize: V,
  hiddenSize: C,
  numLayers: L,
  numHeads: H,
  numKvHeads: H,
  headDim: C / H,
  intermediateSize: F,
  maxPositions: 1024,
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: true,
  attentionBias: false,
  attentionOutBias: false,
  mlpBias: false,
  dropout: 0,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
};
const model = initModel(cfg, new Rng(1), { backend });
if (kind === 'f32') await fuseModel(model);
else if (kind !== 'f32-unfused') await quantizeModel(model, /** @type {'q8' | 'bf16'} */ (kind));
const stats = new Map();
let on = false;
/**
 * `run`, `runReplay` (a decode graph's unchanged calls: src/model/decode_graph.ts) and `runUnchecked` (its calls that
 * move with the position) timed per kernel.
 */
const timed = (/** @type {import('../../dist/backend/backend.js').Backend['run']} */ orig) =>
  /** @type {import('../../dist/backend/backend.js').Backend['run']} */ (
    (name, i, o, a) => {
      const t0 = performance.now();
      orig(name, i, o, a);
      if (!on) return;
      const dt = performance.now() - t0;
      let key = name;
      if (name.startsWith('matmul')) key += ` ${i[0].shape.join('x')}·${i[1].shape.join('x')}`;
      const s = stats.get(key) ?? [0, 0];
      s[0] += dt;
      s[1]++;
      stats.set(key, s);
    }
  );
backend.run = timed(backend.run.bind(backend));
if (backend.runReplay) backend.runReplay = timed(backend.runReplay.bind(backend));
if (backend.runUnchecked) backend.runUnchecked = timed(backend.runUnchecked.bind(backend));
const cache = model.newCache(1);
const prompt = Int32Array.from({ length: Number(process.env.PROMPT || 64) }, (_, i) => i + 5);
noGrad(() => tidy(() => model.forward(prompt, 1, prompt.length, { cache, lastOnly: true })));
const N = Number(process.env.STEPS || 50);
for (let i = 0; i < 5; i++) {
  const l = noGrad(() => tidy(() => model.forward(Int32Array.of(7), 1, 1, { cache, lastOnly: true })));
  l.dataSync();
  l.dispose();
}
on = true;
const t0 = performance.now();
/** Per step: wall time minus the time inside backend.run (ms). On a loaded machine the mean is mostly descheduling;
 * the median and the least of the steps say more about the JavaScript itself. */
const hostPerStep = [];
for (let i = 0; i < N; i++) {
  const ts = performance.now();
  const k0 = [...stats.values()].reduce((a, s) => a + s[0], 0);
  const l = noGrad(() => tidy(() => model.forward(Int32Array.of(7), 1, 1, { cache, lastOnly: true })));
  l.dataSync();
  l.dispose();
  hostPerStep.push(performance.now() - ts - ([...stats.values()].reduce((a, s) => a + s[0], 0) - k0));
}
const tot = (performance.now() - t0) / N;
let ker = 0;
let calls = 0;
for (const [, s] of stats) (ker += s[0]), (calls += s[1]);
// host-side: the step's wall time minus the time inside backend.run (JavaScript building the step: tensors, shapes,
// the tape-free op calls, dispatch), over `calls` kernel calls per token
console.log(
  `step ${tot.toFixed(3)} ms, kernels ${(ker / N).toFixed(3)} ms, host-side (outside kernels) ${(tot - ker / N).toFixed(3)} ms per token, ${(calls / N).toFixed(0)} kernel calls per token (${(((tot - ker / N) / (calls / N)) * 1000).toFixed(1)} µs each)`,
);
hostPerStep.sort((a, b) => a - b);
console.log(
  `host-side per step: median ${hostPerStep[N >> 1].toFixed(3)} ms, least ${hostPerStep[0].toFixed(3)} ms (of ${N} steps)`,
);
for (const [k, s] of [...stats].sort((a, b) => b[1][0] - a[1][0]).slice(0, 14))
  console.log(k.padEnd(44), (s[0] / N).toFixed(3).padStart(8), 'ms', (s[1] / N).toFixed(0).padStart(4));
backend.dispose();
process.exit(0);
