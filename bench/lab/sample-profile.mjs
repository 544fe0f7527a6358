#!/usr/bin/env node
// Where one decode token's time goes outside the model forward: the sampler per setting on real logits rows of a
// random-initialised stories15M (flat) and on the same rows ×40 (peaked, like a trained model's), both the JavaScript
// sampler (sampleToken, the host path) and the backend's `sample` kernel (the device path generate() takes when no
// penalty or top alternatives are asked); then generate()'s loop vs forward-only steps, interleaved.
// usage: node bench/lab/sample-profile.mjs [L,C,H,F,V] [f32|q8] [tokens]
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { tidy, noGrad } = await import('../../dist/tensor/tensor.js');
const { Rng } = await import('../../dist/util/rng.js');
const { quantizeModel } = await import('../../dist/model/quantize.js');
const { sampleToken, resolveSamplerOptions } = await import('../../dist/generate/sampler.js');
const { generate } = await import('../../dist/generate/engine.js');
const { sampleOnDevice } = await import('../../dist/generate/device_sample.js');
const { tensor } = await import('../../dist/tensor/tensor.js');
const [L, C, H, F, V] = (process.argv[2] || '6,288,6,768,32000').split(',').map(Number);
const kind = process.argv[3] || 'q8';
const N = Number(process.argv[4] || 64);
const backend = await initBackend('wasm', {});
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
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: null,
};
const model = initModel(cfg, new Rng(1), { backend });
if (kind !== 'f32') await quantizeModel(model, /** @type {'q8' | 'bf16'} */ (kind));
const cache = model.newCache(1);
/** @type {Float32Array[]} */
const rows = [];
let l = noGrad(() => tidy(() => model.forward(Int32Array.of(1), 1, 1, { cache, lastOnly: true })));
for (let i = 0; i < 16; i++) {
  const d = /** @type {Float32Array} */ (l.dataSync());
  l.dispose();
  rows.push(d);
  l = noGrad(() => tidy(() => model.forward(Int32Array.of(5 + i * 7), 1, 1, { cache, lastOnly: true })));
}
l.dispose();
{
  let mx = -Infinity,
    mn = Infinity;
  for (const x of rows[0]) {
    mx = Math.max(mx, x);
    mn = Math.min(mn, x);
  }
  console.log(`logits range ${mn.toFixed(3)}..${mx.toFixed(3)}`);
}
// a peaked row like a trained model's: scaled logits
const peaked = rows.map((r) => Float32Array.from(r, (x) => x * 40));
const med = (/** @type {number[]} */ a) => /** @type {number} */ (a.sort((x, y) => x - y)[a.length >> 1]);
const time = (/** @type {(i: number) => unknown} */ fn, reps = 40) => {
  /** @type {number[]} */ const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn(i);
    ts.push(performance.now() - t0);
  }
  return med(ts);
};
const settings = {
  'T1 p0.9': { temperature: 1, topP: 0.9 },
  T1: { temperature: 1 },
  T0: { temperature: 0 },
  'T0.8 k40': { temperature: 0.8, topK: 40 },
  'T1 p0.9 lp5': { temperature: 1, topP: 0.9, topLogprobs: 5 },
};
const rng = new Rng(3);
for (const [name, o] of Object.entries(settings)) {
  const ro = resolveSamplerOptions(o);
  const flat = time((i) => sampleToken(rows[i % 16], ro, rng));
  const pk = time((i) => sampleToken(peaked[i % 16], ro, rng));
  console.log(`sampleToken ${name.padEnd(12)} flat ${flat.toFixed(3)} ms   peaked ${pk.toFixed(3)} ms`);
}
{
  const dev = (/** @type {Float32Array[]} */ rs) => rs.map((r) => tensor(r, [1, 1, V], { backend }));
  const [tf, tp] = [dev(rows), dev(peaked)];
  for (const [name, o] of Object.entries(settings)) {
    const ro = resolveSamplerOptions({ ...o, topLogprobs: 0 });
    const run = async (/** @type {import('../../dist/tensor/tensor.js').Tensor[]} */ ts) => {
      /** @type {number[]} */ const t = [];
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        await sampleOnDevice(ts[i % 16], ro, [rng.random()]);
        t.push(performance.now() - t0);
      }
      return med(t);
    };
    const flat = await run(tf),
      pk = await run(tp);
    console.log(`kernel      ${name.padEnd(12)} flat ${flat.toFixed(3)} ms   peaked ${pk.toFixed(3)} ms`);
  }
  for (const t of [...tf, ...tp]) t.dispose();
}
// generate vs forward-only, interleaved
const prompt = [1];
await generate(model, [prompt], { maxTokens: 8, seed: 1 });
const gen = [],
  fwd = [];
for (let rep = 0; rep < 3; rep++) {
  const r = await generate(model, [prompt], { maxTokens: N, temperature: 1, topP: 0.9, seed: rep });
  const c = r.choices[0];
  gen.push((c.timings.prefill_ms + c.timings.decode_ms - c.timings.ttft_ms) / (c.ids.length - 1));
  const cache2 = model.newCache(1);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const t = noGrad(() => tidy(() => model.forward(Int32Array.of(5 + i), 1, 1, { cache: cache2, lastOnly: true })));
    t.dataSync();
    t.dispose();
  }
  fwd.push((performance.now() - t0) / N);
  cache2.reset();
}
console.log(
  `generate ${med(gen).toFixed(3)} ms/token (${(1000 / med(gen)).toFixed(1)} tok/s), forward-only ${med(fwd).toFixed(3)} ms/token (${(1000 / med(fwd)).toFixed(1)} tok/s); outside ${(med(gen) - med(fwd)).toFixed(3)} ms`,
);
backend.dispose();
process.exit(0);
