#!/usr/bin/env node
// llama.cpp as a decode peer: node-llama-cpp's prebuilt CPU binary (a devDependency, loaded with
// getLlama({ gpu: false, build: 'never' }): nothing is built or downloaded) decodes a GGUF file — the one `llmts
// export --format gguf` writes — greedily from the given prompt ids, on the given number of threads. Run in its own
// process, so that no worker of ours shares the cores while it runs. Prints one JSON line:
//   { peer: "llama.cpp", threads, prompt, tokens, prefill_tok_s, decode_tok_s, ids }
// prefill_tok_s: prompt tokens / time to the first generated id (the prompt's evaluation and one sampling);
// decode_tok_s: (tokens − 1) / time from the first id to the last (each one a KV-cached step of one token and a
// greedy pick), the same span llm.ts's decode figures time. An error prints { peer, error } and exits 1.
// usage: node bench/peers/llamacpp-decode.mjs FILE.gguf THREADS TOKENS PROMPT_IDS(comma-separated)
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const [file, threadsArg, tokensArg, idsArg] = process.argv.slice(2);
if (!file || !threadsArg || !tokensArg || !idsArg) {
  console.error('usage: node bench/peers/llamacpp-decode.mjs FILE.gguf THREADS TOKENS PROMPT_IDS');
  process.exit(2);
}
const threads = Number(threadsArg);
const tokens = Number(tokensArg);
const prompt = idsArg.split(',').map(Number);
try {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: prompt.length + tokens + 8,
    batchSize: prompt.length,
    threads,
  });
  /** @type {number[]} */
  const ids = [];
  const t0 = performance.now();
  let tFirst = 0;
  // temperature 0: llama.cpp's greedy pick; no stop token, no repeat penalty
  for await (const id of ctx
    .getSequence()
    .evaluate(/** @type {import('node-llama-cpp').Token[]} */ (prompt), { temperature: 0 })) {
    if (!ids.length) tFirst = performance.now();
    ids.push(id);
    if (ids.length >= tokens) break;
  }
  const tEnd = performance.now();
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  console.log(
    JSON.stringify({
      peer: 'llama.cpp',
      threads,
      prompt: prompt.length,
      tokens: ids.length,
      prefill_tok_s: +(prompt.length / ((tFirst - t0) / 1000)).toFixed(1),
      decode_tok_s: +((ids.length - 1) / ((tEnd - tFirst) / 1000)).toFixed(2),
      ids,
    }),
  );
} catch (e) {
  console.log(JSON.stringify({ peer: 'llama.cpp', error: String(e instanceof Error ? e.message : e).slice(0, 300) }));
  process.exit(1);
}
