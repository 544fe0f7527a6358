#!/usr/bin/env node
// llm.ts against llama.cpp on the same model, in one command: float32, 8-bit and 4-bit weights × the stories shapes
// (random weights: speed does not depend on the values). Each model is exported to GGUF as `llmts export --format
// gguf` does (src/model/gguf: f32, q8_0 for the 8-bit row, q4_k for the 4-bit one: Q4_K matrices and a Q8_0 head) and llama.cpp (node-llama-cpp's prebuilt CPU binary,
// bench/peers/llamacpp-decode.mjs, in its own process) decodes that file; llm.ts decodes the same weights (8-bit:
// its own q8 — 32 int8 and a float32 scale per block, Q8_0's blocks with an f16 scale; 4-bit: the file's Q4_K blocks
// themselves, as q4k) from the same prompt ids, greedy, the same
// token count, on the same thread count. The two sides alternate (llm.ts, llama.cpp, llm.ts, …) --reps times after
// one untimed warm-up of llm.ts; each side's best run is kept (on a shared machine, the least disturbed one) and
// every run is printed. Prefill: prompt tokens / time to the first id; decode: (tokens − 1) / time from the first id
// to the last. ratio = llm.ts / llama.cpp (> 1: llm.ts faster). ids: how many of the first greedy ids agree (random
// weights give near ties, so 8-bit rows may part early; f32 rows should agree throughout).
// On a shared machine: llama.cpp's threads meet at a barrier after every operation and wait there spinning, so when
// other processes hold the cores each barrier waits for a descheduled thread and its 2-thread rate collapses
// (measured: 15M Q8_0 at 1–5 tok/s here under a load of 10, 800 on a quiet Zen 5 in ANCHORS.md); llm.ts's workers
// spin 2 ms, then sleep. --threads 1 (no barrier on either side) compares the engines on a loaded machine; ratios at
// 2 threads hold only on a quiet one.
// usage: node bench/llamacpp.mjs [flags]          (after `npm run build`)
//   --cases stories15M,stories110M[,gemma3-270m]   --weights f32,q8[,q4k]   --prompt 64
//   --tokens N (default 128 at 15M, 48 at 110M, 32 at gemma3-270m)
//   --reps 2   --threads N (default: the backend's)   --backend auto|wasm|…   --json (one JSON line per row)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitIfHelp, printMachine, usageError } from './machine.mjs';
import { gemma3_270m, STORIES, storiesConfig } from './stories.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
/** The value after flag k, else d. @template {string | undefined} D @param {string} k @param {D} d @returns {string | D} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const cases = opt('--cases', 'stories15M,stories110M').split(',');
const kinds = opt('--weights', 'f32,q8').split(',');
/** The GGUF type llama.cpp reads for each weight storage. @type {Record<string, 'f32' | 'q8_0' | 'q4_k'>} */
const GGUF_OF = { f32: 'f32', q8: 'q8_0', q4k: 'q4_k' };
const promptLen = Number(opt('--prompt', '64'));
const reps = Math.max(1, Number(opt('--reps', '2')));
const tokensFlag = opt('--tokens', undefined);
/**
 * Shapes given as a Hugging Face config.json (fromHfConfig): gemma-3-270m's (./stories.mjs).
 * @type {Record<string, Record<string, unknown>>}
 */
const HF_CASES = { 'gemma3-270m': gemma3_270m() };
for (const c of cases)
  if (!STORIES[c] && !HF_CASES[c])
    usageError(`--cases: unknown ${c} (${[...Object.keys(STORIES), ...Object.keys(HF_CASES)].join(', ')})`);
for (const k of kinds) if (!['f32', 'q8', 'q4k'].includes(k)) usageError(`--weights: unknown ${k} (f32, q8, q4k)`);
/** @type {Record<string, number>} */
const DEFAULT_TOKENS = { stories15M: 128, stories110M: 48, 'gemma3-270m': 32 };

const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { Rng } = await import('../dist/util/rng.js');
const { fromHfConfig } = await import('../dist/model/hf/config.js');
const { fuseModel, quantizeModel, dequantizeModel } = await import('../dist/model/quantize.js');
const { compareWithLlamaCpp, writeGgufForPeer } = await import('./peers/llamacpp.mjs');
const threadsFlag = opt('--threads', undefined);
const backend = await initBackend(
  /** @type {import('../dist/backend/registry.js').BackendName | 'auto'} */ (opt('--backend', 'auto')),
  threadsFlag ? { threads: Number(threadsFlag) } : {},
);
const threads = /** @type {{ threads?: number }} */ (backend).threads ?? 1;
printMachine('llamacpp', threads, json);
if (!json)
  console.log(
    `llm.ts ${backend.describe()} against llama.cpp (node-llama-cpp, prebuilt CPU binary), ${threads} thread(s) each, greedy, ${promptLen}-token prompt, best of ${reps} alternating runs`,
  );

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-llamacpp-bench-'));
/** @type {Record<string, any>[]} */
const rows = [];
try {
  for (const name of cases) {
    const cfg = HF_CASES[name] ? fromHfConfig(HF_CASES[name], name) : storiesConfig(STORIES[name]);
    const tokens = Number(tokensFlag ?? DEFAULT_TOKENS[name] ?? 64);
    const rng = new Rng(1);
    const model = initModel(cfg, rng, { backend });
    const prompt = Array.from({ length: promptLen }, () => 3 + rng.int(cfg.vocabSize - 3));
    for (const kind of kinds) {
      const file = path.join(tmp, `${name}-${kind}.gguf`);
      await writeGgufForPeer(model, file, GGUF_OF[kind]);
      // as `llmts generate` decodes: q8, or float32 with q/k/v and gate/up fused (the same logits)
      if (kind === 'q8' || kind === 'q4k') await quantizeModel(model, kind);
      else await fuseModel(model);
      try {
        rows.push(await compare(name, kind, model, file, prompt, tokens));
      } finally {
        dequantizeModel(model);
        fs.rmSync(file, { force: true });
      }
    }
    for (const t of model.params.values()) t.dispose();
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
if (!json) printTable(rows);
// the backend's worker threads must not keep the script alive
process.exit(rows.some((r) => r.error) ? 1 : 0);

/**
 * One row: llm.ts and llama.cpp alternating on one model and weight kind.
 * @param {string} name @param {string} kind @param {import('../dist/model/model.js').CausalLM} model
 * @param {string} file @param {number[]} prompt @param {number} tokens
 */
async function compare(name, kind, model, file, prompt, tokens) {
  /** @type {Record<string, any>} */
  const row = {
    bench: 'llamacpp',
    case: name,
    weights: kind,
    gguf: GGUF_OF[kind],
    threads,
    prompt: prompt.length,
    tokens,
  };
  try {
    Object.assign(row, await compareWithLlamaCpp(model, file, prompt, tokens, threads, reps));
  } catch (e) {
    row.error = String(e instanceof Error ? e.message : e).slice(0, 300);
  }
  if (json) console.log(JSON.stringify(row));
  else
    console.log(
      row.error
        ? `${name} ${kind}: failed: ${row.error}`
        : `${name} ${kind}: decode llm.ts ${row.decode_runs.join(', ')} / llama.cpp ${row.llamacpp_decode_runs.join(', ')} tok/s`,
    );
  return row;
}

/** The table: one line per model × weights. @param {Record<string, any>[]} rs */
function printTable(rs) {
  const head = [
    'model',
    'weights (GGUF)',
    'decode llm.ts',
    'llama.cpp',
    'ratio',
    'prefill llm.ts',
    'llama.cpp',
    'ratio',
    'ids agree',
  ];
  const body = rs.map((r) =>
    r.error
      ? [r.case, `${r.weights} (${r.gguf})`, 'failed', '', '', '', '', '', '']
      : [
          r.case,
          `${r.weights} (${r.gguf})`,
          `${r.decode_tok_s} tok/s`,
          `${r.llamacpp_decode_tok_s}`,
          `×${r.decode_ratio.toFixed(2)}`,
          `${r.prefill_tok_s} tok/s`,
          `${r.llamacpp_prefill_tok_s}`,
          `×${r.prefill_ratio.toFixed(2)}`,
          `${r.ids_agree}/${r.tokens}`,
        ],
  );
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (/** @type {string[]} */ cells) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  console.log(`\n${line(head)}\n|${w.map((n) => '-'.repeat(n + 2)).join('|')}|\n${body.map(line).join('\n')}`);
}
