#!/usr/bin/env node
// Constrained decoding (src/generate/grammar): what a grammar costs per generated token, against llama.cpp's grammar
// sampler on the same model, in one command.
//   1. Masks: for real vocabularies (GPT-2 50k, cl100k 100k, o200k 200k tokens), the time to build the vocabulary's
//      byte trie (once per tokenizer), and to compute the allowed ids in three states of a JSON Schema — cold (a
//      fresh grammar: every transition computed) and again (memoised transitions, cached mask).
//   2. Decoding: a tiny llama-shaped model (random weights, hidden 64, 2 layers) with GPT-2's vocabulary, so the
//      grammar's share of each step shows; greedy, the same prompt ids. llm.ts decodes free and under the schema;
//      llama.cpp (node-llama-cpp's prebuilt CPU binary, bench/peers/llamacpp-grammar.mjs, its own process) decodes
//      the same weights exported to GGUF, free and under the same schema (its createGrammarForJsonSchema).
//      overhead = ms/token constrained − ms/token free; ratio = llama.cpp's overhead / ours (> 1: ours cheaper).
//   Random weights choose badly, so the grammar often rejects the first pick and the whole vocabulary is masked:
//   close to the worst case for both.
// usage: node bench/grammar.bench.mjs [--tokens 96] [--threads 1] [--json]     (after `npm run build`)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { exitIfHelp, printMachine } from './machine.mjs';
import { storiesConfig } from './stories.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
/** @param {string} k @param {string} d */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? /** @type {string} */ (argv[i + 1]) : d;
};
const json = argv.includes('--json');
const tokens = Number(opt('--tokens', '96'));
const threads = Number(opt('--threads', '1'));

const g = await import('../dist/generate/grammar/index.js');
const { generate, grammarVocab } = await import('../dist/generate/engine.js');
const { tokenizerCodec } = await import('../dist/chat/codec.js');
const { loadTokenizer } = await import('../dist/tokenizer/index.js');
const { tokenizerToGguf } = await import('../dist/tokenizer/gguf.js');
const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { saveGguf } = await import('../dist/model/gguf/file.js');
const { Rng } = await import('../dist/util/rng.js');

const backend = await initBackend('wasm', { threads });
printMachine('grammar', threads, json);

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    score: { type: 'number' },
  },
  required: ['name', 'tags', 'score'],
  additionalProperties: false,
};
/** @param {Record<string, unknown>} row */
const report = (row) => {
  if (json) console.log(JSON.stringify({ bench: 'grammar', ...row }));
};

// 1. masks on real vocabularies
if (!json) console.log('\nmasks (JSON Schema states; cold = fresh grammar, again = memoised):');
for (const name of ['gpt2', 'cl100k_base', 'o200k_base']) {
  const tok = await loadTokenizer(name);
  const codec = tokenizerCodec(tok);
  let t = performance.now();
  const vocab = grammarVocab(codec, tok.vocabSize);
  const buildMs = performance.now() - t;
  const cells = [];
  for (const [label, prefix] of [
    ['value start', ''],
    ['in a string', '{"name": "ab'],
    ['in a number', '{"name": "x", "tags": [], "score": 1'],
  ]) {
    const tg = new g.TokenGrammar(g.compileGrammar(g.jsonSchemaGrammar(SCHEMA)), vocab);
    const s = tg.runtime.advanceBytes(tg.runtime.initial, new TextEncoder().encode(prefix));
    if (!s) throw new Error(`the schema rejects ${prefix}`);
    t = performance.now();
    const ids = tg.textIds(s);
    const cold = performance.now() - t;
    // again: memoised transitions, mask recomputed (the cache emptied by a fresh TokenGrammar over the same runtime)
    const again = new g.TokenGrammar(tg.runtime, vocab);
    t = performance.now();
    again.textIds(s);
    const warm = performance.now() - t;
    cells.push(`${label}: ${ids.length} allowed, ${cold.toFixed(1)} ms cold, ${warm.toFixed(1)} ms again`);
    report({ vocab: name, state: label, allowed: ids.length, cold_ms: +cold.toFixed(2), again_ms: +warm.toFixed(2) });
  }
  report({ vocab: name, tokens: tok.vocabSize, trie_nodes: vocab.trie.size, build_ms: +buildMs.toFixed(1) });
  if (!json)
    console.log(
      `  ${name} (${tok.vocabSize} tokens, trie ${vocab.trie.size} nodes, built in ${buildMs.toFixed(0)} ms)\n    ${cells.join('\n    ')}`,
    );
}

// 2. decoding against llama.cpp
const tok = await loadTokenizer('gpt2');
const V = tok.vocabSize;
// the stories bench's Llama shape builder, GPT-2's vocabulary; its eos doubles as bos
const config = { ...storiesConfig({ L: 2, C: 64, H: 2, F: 128, V }), bosTokenId: V - 1, eosTokenId: V - 1 };
const model = initModel(config, new Rng(7), { std: 0.5, backend });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-grammar-bench-'));
const file = path.join(dir, 'tiny-gpt2vocab.gguf');
await saveGguf(model, file, { type: 'f32', metadata: tokenizerToGguf(tok, V, { bos: V - 1, eos: V - 1 }) });
const prompt = tok.encode('The answer, as JSON:');
const codec = tokenizerCodec(tok);
const grammar = g.jsonSchemaGrammar(SCHEMA);
/** @param {boolean} constrained */
const ours = async (constrained) => {
  const r = await generate(model, [prompt], {
    temperature: 0,
    maxTokens: tokens,
    tokenizer: codec,
    stopTokens: constrained ? [V - 1] : [],
    ...(constrained ? { grammar } : {}),
  });
  const c = r.choices[0];
  const n = c.ids.length + (c.stopped_by && 'token' in c.stopped_by ? 1 : 0);
  return {
    tokens: n,
    ms: (c.timings.prefill_ms + c.timings.decode_ms - c.timings.ttft_ms) / Math.max(1, n - 1),
    text: c.text,
  };
};
await ours(false);
await ours(true); // warm-up (vocabulary tables built once per tokenizer)
const free = await ours(false);
const con = await ours(true);
const peer = spawnSync(
  process.execPath,
  [
    path.join(import.meta.dirname, 'peers', 'llamacpp-grammar.mjs'),
    file,
    String(threads),
    String(tokens),
    prompt.join(','),
    JSON.stringify(SCHEMA),
  ],
  { encoding: 'utf8', timeout: 600_000 },
);
fs.rmSync(dir, { recursive: true, force: true });
const line = (peer.stdout ?? '')
  .trim()
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .pop();
const p = line ? JSON.parse(line) : { error: (peer.stderr || `exit ${peer.status}`).slice(-300) };
const oursOver = con.ms - free.ms;
const row = {
  model: 'llama 2×64, GPT-2 vocabulary',
  threads,
  llmts: {
    free_ms: +free.ms.toFixed(3),
    grammar_ms: +con.ms.toFixed(3),
    tokens: con.tokens,
    overhead_ms: +oursOver.toFixed(3),
  },
  llamacpp: p.error
    ? { error: p.error }
    : {
        free_ms: p.free.ms_per_token,
        grammar_ms: p.grammar.ms_per_token,
        tokens: p.grammar.tokens,
        overhead_ms: +(p.grammar.ms_per_token - p.free.ms_per_token).toFixed(3),
      },
};
report(row);
if (!json) {
  console.log(`\ndecoding under the schema, greedy, ${threads} thread(s), ${tokens} tokens at most (ms per token):`);
  console.log(
    `  llm.ts     free ${free.ms.toFixed(2)}  constrained ${con.ms.toFixed(2)} (${con.tokens} tokens)  overhead ${oursOver.toFixed(2)}`,
  );
  console.log(`             ${JSON.stringify(con.text.slice(0, 120))}`);
  if (p.error) console.log(`  llama.cpp  error: ${p.error}`);
  else {
    const theirs = p.grammar.ms_per_token - p.free.ms_per_token;
    console.log(
      `  llama.cpp  free ${p.free.ms_per_token.toFixed(2)}  constrained ${p.grammar.ms_per_token.toFixed(2)} (${p.grammar.tokens} tokens)  overhead ${theirs.toFixed(2)}`,
    );
    console.log(`             ${JSON.stringify(String(p.grammar.text).slice(0, 120))}`);
    console.log(`  ratio (llama.cpp overhead / llm.ts overhead): ×${(theirs / Math.max(oursOver, 1e-3)).toFixed(1)}`);
  }
}
