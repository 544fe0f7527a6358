#!/usr/bin/env node
// llama.cpp as a constrained-decoding peer: node-llama-cpp's prebuilt CPU binary (getLlama({ gpu: false, build:
// 'never' })) decodes a GGUF file greedily from the given prompt ids, once free and once under a JSON Schema
// (node-llama-cpp's createGrammarForJsonSchema: its schema → GBNF, llama.cpp's grammar sampler), in its own process.
// Prints one JSON line: { peer, threads, free: { tokens, ms_per_token }, grammar: { tokens, ms_per_token, text } }
// ms_per_token: time from the first generated id to the last, over (tokens − 1): the decode steps only.
// usage: node bench/peers/llamacpp-grammar.mjs FILE.gguf THREADS TOKENS PROMPT_IDS SCHEMA_JSON
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const [file, threadsArg, tokensArg, idsArg, schemaArg] = process.argv.slice(2);
if (!file || !threadsArg || !tokensArg || !idsArg || !schemaArg) {
  console.error('usage: node bench/peers/llamacpp-grammar.mjs FILE.gguf THREADS TOKENS PROMPT_IDS SCHEMA_JSON');
  process.exit(2);
}
const threads = Number(threadsArg);
const tokens = Number(tokensArg);
const prompt = /** @type {import('node-llama-cpp').Token[]} */ (idsArg.split(',').map(Number));
try {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const grammar = await llama.createGrammarForJsonSchema(JSON.parse(schemaArg));
  /** @param {boolean} constrained */
  const run = async (constrained) => {
    const ctx = await model.createContext({
      contextSize: prompt.length + tokens + 8,
      batchSize: prompt.length,
      threads,
    });
    /** @type {import('node-llama-cpp').Token[]} */
    const ids = [];
    let tFirst = 0;
    const { LlamaGrammarEvaluationState } = await import('node-llama-cpp');
    const opts = constrained
      ? { temperature: 0, grammarEvaluationState: new LlamaGrammarEvaluationState({ model, grammar }) }
      : { temperature: 0 };
    for await (const id of ctx.getSequence().evaluate(prompt, opts)) {
      if (!ids.length) tFirst = performance.now();
      ids.push(id);
      if (ids.length >= tokens || (constrained && model.isEogToken(id))) break;
    }
    const tEnd = performance.now();
    await ctx.dispose();
    const text = model.detokenize(
      /** @type {import('node-llama-cpp').Token[]} */ (ids.filter((t) => !model.isEogToken(t))),
    );
    return { tokens: ids.length, ms_per_token: +((tEnd - tFirst) / Math.max(1, ids.length - 1)).toFixed(3), text };
  };
  await run(false); // warm-up
  const free = await run(false);
  const constrained = await run(true);
  await model.dispose();
  await llama.dispose();
  console.log(
    JSON.stringify({
      peer: 'llama.cpp',
      threads,
      free: { tokens: free.tokens, ms_per_token: free.ms_per_token },
      grammar: constrained,
    }),
  );
} catch (e) {
  console.log(JSON.stringify({ peer: 'llama.cpp', error: String(e instanceof Error ? e.message : e).slice(0, 300) }));
  process.exit(1);
}
