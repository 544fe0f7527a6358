#!/usr/bin/env node
// Decode speed with top alternatives and a penalty, sampling on the device (the `sample` kernel) vs on the host
// (the logits read back and sampled in JavaScript, as a backend without the kernel does), alternating in one
// process; stories15M shape, random weights, q8, BOS + 256 tokens at T 1, top-p 0.9.
//   node bench/lab/sample-paths.mjs [topLogprobs=5] [repetitionPenalty=1.1]
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { generate } = await import('../../dist/generate/engine.js');
const { Rng } = await import('../../dist/util/rng.js');
const { quantizeModel } = await import('../../dist/model/quantize.js');
const K = Number(process.argv[2] ?? 5),
  RP = Number(process.argv[3] ?? 1.1);
const backend = await initBackend('auto');
const { STORIES, storiesConfig } = await import('../stories.mjs');
const model = initModel(storiesConfig(STORIES.stories15M), new Rng(1), { backend });
await quantizeModel(model, 'q8');
const supports = backend.supports.bind(backend);
/** Decode tokens/s with the sampler on the host or the device. @param {boolean} host @param {number} k @param {number} rp */
const run = async (host, k, rp) => {
  backend.supports = host ? (/** @type {string} */ name) => name !== 'sample' && supports(name) : supports;
  const c = (
    await generate(model, [[1]], {
      maxTokens: 256,
      temperature: 1,
      topP: 0.9,
      topLogprobs: k,
      repetitionPenalty: rp,
      seed: 1,
    })
  ).choices[0];
  backend.supports = supports;
  return (c.ids.length - 1) / ((c.timings.prefill_ms + c.timings.decode_ms - c.timings.ttft_ms) / 1000);
};
await run(false, K, RP);
await run(true, K, RP);
/** @type {number[]} */
const dev = [],
  host = [],
  plain = [];
for (let i = 0; i < 4; i++) {
  dev.push(await run(false, K, RP));
  host.push(await run(true, K, RP));
  plain.push(await run(false, 0, 1));
}
const med = (/** @type {number[]} */ a) => /** @type {number} */ ([...a].sort((x, y) => x - y)[a.length >> 1]);
console.log(
  `stories15M q8, topLogprobs ${K}, repetition penalty ${RP}: device ${med(dev).toFixed(0)} tok/s, host ${med(host).toFixed(0)} tok/s; ` +
    `without either (device) ${med(plain).toFixed(0)} tok/s`,
);
process.exit(0);
