// Sliding-window prefill on wasm: a Gemma-3-270M-shaped model (18 layers, five in six with a 512-key window; a
// 32,000-token head, since only the last position's logits are taken) prefills T tokens, against the same weights
// with every layer full (what the window saves: the keys before each block's window are skipped). Random weights;
// the time of one `forward(ids, 1, T, { lastOnly: true })`, each config twice, alternating.
// usage: npm run build && node bench/lab/window-prefill.mjs [T=2048]
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { CausalLM } = await import('../../dist/model/model.js');
const { Rng } = await import('../../dist/util/rng.js');
const { fromHfConfig } = await import('../../dist/model/hf/config.js');
const { noGrad, tidy } = await import('../../dist/tensor/tensor.js');
const { gemma3_270m } = await import('../stories.mjs');

const T = Number(process.argv[2] ?? 2048);
const backend = await initBackend('wasm');
const cfg = fromHfConfig(
  gemma3_270m({ vocab_size: 32000, max_position_embeddings: Math.max(T, 1024) }),
  'gemma3-270m shape',
);
const sliding = initModel(cfg, new Rng(1), { backend });
const full = new CausalLM({ ...cfg, layerTypes: cfg.layerTypes?.map(() => 'full') }, sliding.params);
const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919) % cfg.vocabSize);
console.log(`${backend.describe()}, T = ${T}`);
/** @type {[string, import('../../dist/model/model.js').CausalLM][]} */
const runs = [
  ['sliding (window 512)', sliding],
  ['full', full],
  ['sliding (window 512)', sliding],
  ['full', full],
];
for (const [name, model] of runs) {
  const t0 = performance.now();
  const out = tidy(() => noGrad(() => model.forward(ids, 1, T, { lastOnly: true })));
  await out.data();
  out.dispose();
  const s = (performance.now() - t0) / 1000;
  console.log(`${name.padEnd(22)} ${s.toFixed(2)} s  ${(T / s).toFixed(0)} tok/s`);
}
process.exit(0);
