#!/usr/bin/env node
// Time to first token of each turn of a growing conversation, with and without a prompt cache
// (src/generate/prompt_cache.ts): turn k's prompt is turn k−1's prompt and reply plus a new ~60-token message, as a
// chat renders it. Llama shapes of llama2.c's stories models, random weights, q8, greedy 24-token replies.
//   node bench/lab/chat-ttft.mjs [stories15M|stories110M] [turns]
const { initBackend } = await import('../../dist/backend/registry.js');
const { initModel } = await import('../../dist/model/init.js');
const { generate } = await import('../../dist/generate/engine.js');
const { PromptCache } = await import('../../dist/generate/prompt_cache.js');
const { quantizeModel } = await import('../../dist/model/quantize.js');
const { Rng } = await import('../../dist/util/rng.js');
const { STORIES, storiesConfig } = await import('../stories.mjs');
const name = process.argv[2] || 'stories110M',
  turns = Number(process.argv[3] || 4);
if (!STORIES[name]) throw new Error(`unknown model ${name}; known: ${Object.keys(STORIES).join(', ')}`);
const backend = await initBackend('auto');
const model = initModel(storiesConfig(STORIES[name]), new Rng(1), { backend });
await quantizeModel(model, 'q8');
const rng = new Rng(2);
const message = (/** @type {number} */ n) => Array.from({ length: n }, () => 3 + rng.int(31000));
const opts = { temperature: 0, maxTokens: 24 };
await generate(model, [message(40)], opts); // warm-up
const pc = new PromptCache(model);
let prompt = [1, ...message(80)]; // a system prompt and the first message
console.log(`${name} q8, ${backend.describe()}: time to first token per turn`);
for (let t = 1; t <= turns; t++) {
  const a = (await generate(model, [prompt], { ...opts, promptCache: pc })).choices[0];
  const reused = pc.lastReused;
  const b = (await generate(model, [prompt], opts)).choices[0];
  console.log(
    `turn ${t}: prompt ${prompt.length} tokens: cached ${a.timings.ttft_ms.toFixed(0)} ms (reused ${reused}, prefilled ${prompt.length - reused}) | uncached ${b.timings.ttft_ms.toFixed(0)} ms | same reply: ${a.ids.join() === b.ids.join()}`,
  );
  prompt = [...prompt, ...a.ids, ...message(60)];
}
pc.dispose();
process.exit(0);
