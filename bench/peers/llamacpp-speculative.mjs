#!/usr/bin/env node
// llama.cpp as a speculative-decoding peer: node-llama-cpp's prebuilt CPU binary (getLlama({ gpu: false, build:
// 'never' })) decodes a GGUF file greedily from the given prompt ids, on the given threads, in its own process: once
// plainly, and once with node-llama-cpp's InputLookupTokenPredictor (prompt lookup: the last generated tokens looked
// up in the input, what followed them drafted, checked by one llama.cpp batch) drafting up to DRAFT tokens. The two
// alternate REPS times; each side's best is kept. Prints one JSON line:
//   { peer, threads, tokens, plain_tok_s, lookup_tok_s, speedup, validated, refuted, same_ids }
// tok/s: (tokens − 1) / time from the first generated id to the last (the decode span llm.ts's figures time).
// validated / refuted: node-llama-cpp's count of drafted tokens the model took / turned down (the last lookup run).
// usage: node bench/peers/llamacpp-speculative.mjs FILE.gguf THREADS TOKENS PROMPT_IDS DRAFT [REPS]
import { getLlama, InputLookupTokenPredictor, LlamaLogLevel } from 'node-llama-cpp';

const [file, threadsArg, tokensArg, idsArg, draftArg, repsArg] = process.argv.slice(2);
if (!file || !threadsArg || !tokensArg || !idsArg || !draftArg) {
  console.error('usage: node bench/peers/llamacpp-speculative.mjs FILE.gguf THREADS TOKENS PROMPT_IDS DRAFT [REPS]');
  process.exit(2);
}
const threads = Number(threadsArg);
const tokens = Number(tokensArg);
const draft = Number(draftArg);
const reps = Number(repsArg ?? 2);
const prompt = /** @type {import('node-llama-cpp').Token[]} */ (idsArg.split(',').map(Number));
try {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  /** @param {boolean} lookup */
  const run = async (lookup) => {
    const ctx = await model.createContext({
      contextSize: prompt.length + tokens + draft + 8,
      batchSize: Math.max(prompt.length, draft + 1),
      threads,
    });
    const predictor = lookup
      ? new InputLookupTokenPredictor({ patternLength: { min: 1, max: 3 }, predictionLength: { min: 1, max: draft } })
      : undefined;
    // the input to look up in (LlamaChat and LlamaCompletion pass theirs; a bare evaluate passes none)
    predictor?.updateInputTokens(prompt);
    const seq = ctx.getSequence(predictor ? { tokenPredictor: predictor } : {});
    /** @type {number[]} */
    const ids = [];
    let tFirst = 0;
    for await (const id of seq.evaluate(prompt, { temperature: 0 })) {
      if (!ids.length) tFirst = performance.now();
      ids.push(id);
      if (ids.length >= tokens) break;
    }
    const tEnd = performance.now();
    const stats = seq.tokenPredictions;
    await ctx.dispose();
    return { tok_s: (ids.length - 1) / ((tEnd - tFirst) / 1000), ids, stats };
  };
  await run(false); // warm-up
  let plain = 0,
    spec = 0;
  /** @type {{ validated: number, refuted: number }} */
  let stats = { validated: 0, refuted: 0 };
  let same = true;
  for (let r = 0; r < reps; r++) {
    const a = await run(false);
    const b = await run(true);
    plain = Math.max(plain, a.tok_s);
    spec = Math.max(spec, b.tok_s);
    stats = { validated: b.stats.validated, refuted: b.stats.refuted };
    same &&= a.ids.join() === b.ids.join();
  }
  await model.dispose();
  await llama.dispose();
  console.log(
    JSON.stringify({
      peer: 'llama.cpp',
      threads,
      tokens,
      plain_tok_s: +plain.toFixed(2),
      lookup_tok_s: +spec.toFixed(2),
      speedup: +(spec / plain).toFixed(3),
      ...stats,
      same_ids: same,
    }),
  );
} catch (e) {
  console.log(JSON.stringify({ peer: 'llama.cpp', error: String(e instanceof Error ? e.message : e).slice(0, 300) }));
  process.exit(1);
}
