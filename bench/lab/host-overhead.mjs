#!/usr/bin/env node
// What issuing one KV-cached decode step costs on the host, apart from the arithmetic: a model with stories15M's
// structure (6 Llama layers, fused q/k/v and gate/up, the same ~69 kernel calls a token) but widths so small that the
// kernels do next to nothing, so the step time is the JavaScript (tensor layer, dispatch, kernel wrappers) and the
// calls' fixed costs. Decode graphs (src/model/decode_graph.ts) on and off, alternating, best of 5 rounds.
// usage: node bench/lab/host-overhead.mjs [q8|f32] [threads]   (after npm run build)
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { tidy, noGrad } = await import('../../dist/tensor/tensor.js');
const { Rng } = await import('../../dist/util/rng.js');
const { fuseModel, quantizeModel } = await import('../../dist/model/quantize.js');
const { setDecodeGraphs } = await import('../../dist/model/decode_graph.js');
const kind = process.argv[2] || 'q8';
const backend = await initBackend('wasm', { threads: Number(process.argv[3] || 1) });
/** @type {import('../../dist/model/config.js').ModelConfig} */
const cfg = {
  family: 'llama',
  vocabSize: 32,
  hiddenSize: 32,
  numLayers: 6,
  numHeads: 2,
  numKvHeads: 2,
  headDim: 16,
  intermediateSize: 32,
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
else await quantizeModel(model, /** @type {'q8'} */ (kind));
/** µs per decode step over N steps after a 3-token prompt. */
function run(/** @type {boolean} */ graphs, /** @type {number} */ N) {
  setDecodeGraphs(graphs);
  const cache = model.newCache(1);
  noGrad(() => tidy(() => model.forward(Int32Array.of(1, 2, 3), 1, 3, { cache, lastOnly: true }))).dispose();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const l = noGrad(() => tidy(() => model.forward(Int32Array.of(7), 1, 1, { cache, lastOnly: true })));
    l.dataSync();
    l.dispose();
  }
  const us = ((performance.now() - t0) / N) * 1000;
  cache.dispose();
  return us;
}
for (let k = 0; k < 3; k++) for (const on of [true, false]) run(on, 300);
const best = { graph: Infinity, plain: Infinity };
for (let k = 0; k < 5; k++) {
  best.graph = Math.min(best.graph, run(true, 900));
  best.plain = Math.min(best.plain, run(false, 900));
}
console.log(`${backend.describe()}, ${kind} weights, stories15M's calls at tiny widths: host cost per decode step`);
console.log(`  plain forward  ${best.plain.toFixed(1)} µs`);
console.log(`  decode graph   ${best.graph.toFixed(1)} µs   (×${(best.plain / best.graph).toFixed(2)} less)`);
backend.dispose();
process.exit(0);
