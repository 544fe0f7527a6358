// Quantised prefill on wasm: a prompt of T tokens through a 12 × 768 Llama (85 M parameters, random weights, a 32,000-
// token head of which only the last position is taken) with its linears stored as q8, q4k or bf16, run two ways in
// the same process: the float32 panels (src/backend/wasm/matmul.ts `panels`: the weights dequantised a panel at a
// time, the packed float32 kernel) and the gemv-shaped passes they replace from `quantPanels.minRows` rows of x (the
// peer). The float32 model's prefill is printed as the ceiling. Best of 3 after a warm-up; each form's ratio
// panels / gemv.
// usage: npm run build && node bench/lab/quant-prefill.mjs [T=256] [--forms q8,q4k,bf16]
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { Rng } = await import('../../dist/util/rng.js');
const { fuseModel, quantizeModel } = await import('../../dist/model/quantize.js');
const { quantPanels } = await import('../../dist/backend/wasm/matmul.js');
const { noGrad, tidy } = await import('../../dist/tensor/tensor.js');
const { fromHfConfig } = await import('../../dist/model/hf/config.js');

const T = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 256);
const fi = process.argv.indexOf('--forms');
const forms = /** @type {('q8' | 'q4k' | 'bf16')[]} */ (
  fi > 0 ? (process.argv[fi + 1] ?? '').split(',') : ['q8', 'q4k', 'bf16']
);
const backend = await initBackend('wasm');
const cfg = fromHfConfig(
  {
    model_type: 'llama',
    vocab_size: 32000,
    hidden_size: 768,
    intermediate_size: 2048,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    num_key_value_heads: 12,
    max_position_embeddings: Math.max(2048, T + 8),
    tie_word_embeddings: false,
  },
  'bench shape',
);
const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919) % cfg.vocabSize);
console.log(`${backend.describe()}; 12 × 768 Llama, prefill of ${T} tokens (tokens/s, best of 3)`);

/** @param {import('../../dist/model/model.js').CausalLM} model */
async function prefill(model) {
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const cache = model.newCache(1, T + 8);
    const t0 = performance.now();
    const t = noGrad(() => tidy(() => model.forward(ids, 1, T, { cache, lastOnly: true })));
    await t.data();
    const ms = performance.now() - t0;
    t.dispose();
    cache.dispose();
    if (i > 0) best = Math.min(best, ms); // the first is the warm-up
  }
  return (T / best) * 1000;
}

const f32 = initModel(cfg, new Rng(1), { backend, std: 0.02 });
await fuseModel(f32);
console.log(`float32 (the ceiling): ${(await prefill(f32)).toFixed(0)} tok/s`);
for (const form of forms) {
  const model = initModel(cfg, new Rng(1), { backend, std: 0.02 });
  await quantizeModel(model, form, { dropFloat: true });
  const bound = quantPanels.minRows[form];
  const panels = await prefill(model);
  quantPanels.minRows[form] = Infinity;
  const gemv = await prefill(model);
  quantPanels.minRows[form] = bound;
  console.log(
    `${form.padEnd(4)} panels (from ${bound} rows) ${panels.toFixed(0)} tok/s, gemv ${gemv.toFixed(0)} tok/s: ×${(panels / gemv).toFixed(2)}`,
  );
}
