// The llama.cpp comparison shared by bench/llamacpp.mjs and the decode bench's llamacpp mode: write a model as the
// GGUF file `llmts export --format gguf` writes, run bench/peers/llamacpp-decode.mjs on it (its own process), and
// time llm.ts's greedy decode of the same prompt ids, the two alternating.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { generate } = await import('../../dist/generate/engine.js');
const { saveGguf } = await import('../../dist/model/gguf/file.js');
const { tokenizerToGguf } = await import('../../dist/tokenizer/gguf.js');
const { Tokenizer } = await import('../../dist/tokenizer/tokenizer.js');

/** @typedef {{ prefill: number, decode: number, ids: number[] }} Run  tok/s, and the greedy ids */

/**
 * Write `model` (float32 weights) to `file` as GGUF of `type`, with a byte-level vocabulary padded to the model's rows
 * (llama.cpp needs a tokenizer in the file; the benches pass token ids and never use it).
 * @param {import('../../dist/model/model.js').CausalLM} model @param {string} file @param {'f32' | 'q8_0' | 'q4_k'} type
 */
export async function writeGgufForPeer(model, file, type) {
  const byteTok = new Tokenizer({ tokenBytes: Array.from({ length: 256 }, (_, i) => new Uint8Array([i])), merges: [] });
  const meta = tokenizerToGguf(byteTok, model.config.vocabSize, { bos: 1, eos: 2 });
  await saveGguf(model, file, { type, metadata: meta });
}

/**
 * llama.cpp's greedy decode of `file`: prefill and decode tok/s, and its ids. Throws with llama.cpp's error.
 * @param {string} file @param {number} threads @param {number} tokens @param {number[]} prompt @returns {Run}
 */
export function llamaCppRun(file, threads, tokens, prompt) {
  const r = spawnSync(
    process.execPath,
    [path.join(here, 'llamacpp-decode.mjs'), file, String(threads), String(tokens), prompt.join(',')],
    { encoding: 'utf8', timeout: 600_000 },
  );
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  const o = line ? JSON.parse(line) : { error: (r.stderr || `exit ${r.status}`).trim().slice(-300) };
  if (o.error) throw new Error(`llama.cpp: ${o.error}`);
  return { prefill: o.prefill_tok_s, decode: o.decode_tok_s, ids: o.ids };
}

/**
 * llm.ts's greedy decode of `model` (as it is: float32 or quantised), timed as llama.cpp's: prefill = prompt tokens /
 * time to the first id, decode = (ids − 1) / time from the first id to the last.
 * @param {import('../../dist/model/model.js').CausalLM} model @param {number[]} prompt @param {number} tokens
 * @returns {Promise<Run>}
 */
export async function llmtsRun(model, prompt, tokens) {
  const r = await generate(model, [prompt], { maxTokens: tokens, temperature: 0, stopTokens: [] });
  const c = r.choices[0];
  const t = c.timings;
  return {
    prefill: prompt.length / (t.ttft_ms / 1000),
    decode: (c.ids.length - 1) / ((t.prefill_ms + t.decode_ms - t.ttft_ms) / 1000),
    ids: c.ids,
  };
}

/**
 * One untimed warm-up of llm.ts, then llm.ts and llama.cpp alternating `reps` times on the same prompt; each side's
 * best run (on a shared machine, the least disturbed), every run's decode rate, and how many first ids agree.
 * @param {import('../../dist/model/model.js').CausalLM} model @param {string} file GGUF of the same weights
 * @param {number[]} prompt @param {number} tokens @param {number} threads @param {number} reps
 */
export async function compareWithLlamaCpp(model, file, prompt, tokens, threads, reps) {
  await llmtsRun(model, prompt, tokens); // V8 and the WebAssembly code still being optimised, memory grown
  /** @type {Run[]} */
  const mine = [];
  /** @type {Run[]} */
  const theirs = [];
  for (let i = 0; i < reps; i++) {
    mine.push(await llmtsRun(model, prompt, tokens));
    theirs.push(llamaCppRun(file, threads, tokens, prompt));
  }
  const best = (/** @type {Run[]} */ xs, /** @type {'prefill' | 'decode'} */ k) => Math.max(...xs.map((x) => x[k]));
  const a = mine[0].ids;
  const b = theirs[0].ids;
  let agree = 0;
  while (agree < Math.min(a.length, b.length) && a[agree] === b[agree]) agree++;
  return {
    decode_tok_s: +best(mine, 'decode').toFixed(1),
    llamacpp_decode_tok_s: +best(theirs, 'decode').toFixed(1),
    decode_ratio: +(best(mine, 'decode') / best(theirs, 'decode')).toFixed(2),
    prefill_tok_s: +best(mine, 'prefill').toFixed(0),
    llamacpp_prefill_tok_s: +best(theirs, 'prefill').toFixed(0),
    prefill_ratio: +(best(mine, 'prefill') / best(theirs, 'prefill')).toFixed(2),
    ids_agree: agree,
    decode_runs: mine.map((m) => +m.decode.toFixed(1)),
    llamacpp_decode_runs: theirs.map((m) => +m.decode.toFixed(1)),
  };
}
