#!/usr/bin/env node
// What issuing one KV-cached decode step costs on the host, apart from the arithmetic: a model with stories15M's
// structure (6 Llama layers, fused q/k/v and gate/up, the same ~69 kernel calls a token) but widths so small that the
// kernels do next to nothing, so the step time is the JavaScript (tensor layer, dispatch, kernel wrappers) and the
// calls' fixed costs. Decode graphs (src/model/decode_graph.ts) on and off, alternating, best of 5 rounds.
// usage: node bench/lab/host-overhead.mjs [q8|f32] [threads] [wasm|webgpu|ref]   (after npm run build)
// On webgpu the step includes the device's work and the read of the logits (SwiftShader here: a CPU); its replays
// record captured dispatches (no bind groups or parameter blocks built).
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { tidy, noGrad } = await import('../../dist/tensor/tensor.js');
const { Rng } = await import('../../dist/util/rng.js');
const { fuseModel, quantizeModel } = await import('../../dist/model/quantize.js');
const { setDecodeGraphs } = await import('../../dist/model/decode_graph.js');
const kind = process.argv[2] || 'q8';
const backend = await initBackend(
  /** @type {import('../../dist/backend/registry.js').BackendName} */ (process.argv[4] || 'wasm'),
  { threads: Number(process.argv[3] || 1) },
);
const { storiesConfig } = await import('../stories.mjs');
// stories15M's 6 layers and call structure at widths of 32 (q8 needs rows of ≥ 32); no EOS, so every step runs
const cfg = { ...storiesConfig({ L: 6, C: 32, H: 2, F: 32, V: 32 }), eosTokenId: null };
const model = initModel(cfg, new Rng(1), { backend });
if (kind === 'f32') await fuseModel(model);
else await quantizeModel(model, /** @type {'q8'} */ (kind));
/** µs per decode step over N steps after a 3-token prompt. */
async function run(/** @type {boolean} */ graphs, /** @type {number} */ N) {
  setDecodeGraphs(graphs);
  const cache = model.newCache(1);
  noGrad(() => tidy(() => model.forward(Int32Array.of(1, 2, 3), 1, 3, { cache, lastOnly: true }))).dispose();
  const t0 = performance.now();
  let issue = 0;
  for (let i = 0; i < N; i++) {
    const t1 = performance.now();
    const l = noGrad(() => tidy(() => model.forward(Int32Array.of(7), 1, 1, { cache, lastOnly: true })));
    issue += performance.now() - t1;
    await l.data();
    l.dispose();
  }
  const us = ((performance.now() - t0) / N) * 1000;
  cache.dispose();
  return { us, issue: (issue / N) * 1000 };
}
const N = Number(process.env.STEPS || (backend.name === 'wasm' ? 900 : 200));
for (let k = 0; k < 3; k++) for (const on of [true, false]) await run(on, Math.ceil(N / 3));
const best = { graph: { us: Infinity, issue: Infinity }, plain: { us: Infinity, issue: Infinity } };
/** @param {{ us: number, issue: number }} b @param {{ us: number, issue: number }} r */
const keepBest = (b, r) => ({ us: Math.min(b.us, r.us), issue: Math.min(b.issue, r.issue) });
for (let k = 0; k < 5; k++) {
  best.graph = keepBest(best.graph, await run(true, N));
  best.plain = keepBest(best.plain, await run(false, N));
}
console.log(`${backend.describe()}, ${kind} weights, stories15M's calls at tiny widths: host cost per decode step`);
console.log(
  '  (step: the whole step, logits read back; issue: the forward call alone, which on a GPU only records work)',
);
for (const [k, label] of /** @type {const} */ ([
  ['plain', 'plain forward'],
  ['graph', 'decode graph '],
]))
  console.log(`  ${label}  step ${best[k].us.toFixed(1)} µs   issue ${best[k].issue.toFixed(1)} µs`);
console.log(
  `  graph/plain: step ×${(best.plain.us / best.graph.us).toFixed(2)} less, issue ×${(best.plain.issue / best.graph.issue).toFixed(2)} less`,
);
backend.dispose();
process.exit(0);
