#!/usr/bin/env node
// llm.ts against llama.cpp on the same model, in one command: float32 and 8-bit weights × the stories shapes
// (random weights: speed does not depend on the values). Each model is exported to GGUF as `llmts export --format
// gguf` does (src/model/gguf: f32, or q8_0 for the 8-bit row) and llama.cpp (node-llama-cpp's prebuilt CPU binary,
// bench/peers/llamacpp-decode.mjs, in its own process) decodes that file; llm.ts decodes the same weights (8-bit:
// its own q8 — 32 int8 and a scale per block, the same block as Q8_0) from the same prompt ids, greedy, the same
// token count, on the same thread count. The two sides alternate (llm.ts, llama.cpp, llm.ts, …) --reps times after
// one untimed warm-up of llm.ts; each side's best run is kept (on a shared machine, the least disturbed one) and
// every run is printed. Prefill: prompt tokens / time to the first id; decode: (tokens − 1) / time from the first id
// to the last. ratio = llm.ts / llama.cpp (> 1: llm.ts faster). ids: how many of the first greedy ids agree (random
// weights give near ties, so 8-bit rows may part early; f32 rows should agree throughout).
// usage: node bench/llamacpp.mjs [flags]          (after `npm run build`)
//   --cases stories15M,stories110M   --weights f32,q8   --prompt 64   --tokens N (default 128 at 15M, 48 at 110M)
//   --reps 2   --threads N (default: the backend's)   --backend auto|wasm|…   --json (one JSON line per row)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitIfHelp, printMachine, usageError } from './machine.mjs';
import { STORIES, storiesConfig } from './stories.mjs';

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
const promptLen = Number(opt('--prompt', '64'));
const reps = Math.max(1, Number(opt('--reps', '2')));
const tokensFlag = opt('--tokens', undefined);
for (const c of cases) if (!STORIES[c]) usageError(`--cases: unknown ${c} (${Object.keys(STORIES).join(', ')})`);
for (const k of kinds) if (!['f32', 'q8'].includes(k)) usageError(`--weights: unknown ${k} (f32, q8)`);
/** @type {Record<string, number>} */
const DEFAULT_TOKENS = { stories15M: 128, stories110M: 48 };

const here = path.dirname(fileURLToPath(import.meta.url));
const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { generate } = await import('../dist/generate/engine.js');
const { Rng } = await import('../dist/util/rng.js');
const { quantizeModel, dequantizeModel } = await import('../dist/model/quantize.js');
const { saveGguf } = await import('../dist/model/gguf/file.js');
const { tokenizerToGguf } = await import('../dist/tokenizer/gguf.js');
const { Tokenizer } = await import('../dist/tokenizer/tokenizer.js');
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

// a byte-level vocabulary padded to the model's rows: llama.cpp needs a tokenizer in the file, never uses it here
const byteTok = new Tokenizer({ tokenBytes: Array.from({ length: 256 }, (_, i) => new Uint8Array([i])), merges: [] });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-llamacpp-bench-'));
/** @type {Record<string, any>[]} */
const rows = [];
try {
  for (const name of cases) {
    const s = STORIES[name];
    const tokens = Number(tokensFlag ?? DEFAULT_TOKENS[name] ?? 64);
    const rng = new Rng(1);
    const model = initModel(storiesConfig(s), rng, { backend });
    const prompt = Array.from({ length: promptLen }, () => 3 + rng.int(s.V - 3));
    const meta = tokenizerToGguf(byteTok, s.V, { bos: 1, eos: 2 });
    for (const kind of kinds) {
      const file = path.join(tmp, `${name}-${kind}.gguf`);
      await saveGguf(model, file, { type: kind === 'q8' ? 'q8_0' : 'f32', metadata: meta });
      if (kind === 'q8') await quantizeModel(model, 'q8');
      try {
        rows.push(await compare(name, kind, model, file, prompt, tokens));
      } finally {
        if (kind === 'q8') dequantizeModel(model);
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
  const ours = async () => {
    const r = await generate(model, [prompt], { maxTokens: tokens, temperature: 0, stopTokens: [] });
    const c = r.choices[0];
    const t = c.timings;
    return {
      prefill: prompt.length / (t.ttft_ms / 1000),
      decode: (c.ids.length - 1) / ((t.prefill_ms + t.decode_ms - t.ttft_ms) / 1000),
      ids: c.ids,
    };
  };
  const peer = () => {
    const r = spawnSync(
      process.execPath,
      [path.join(here, 'peers/llamacpp-decode.mjs'), file, String(threads), String(tokens), prompt.join(',')],
      { encoding: 'utf8', timeout: 600_000 },
    );
    const line = (r.stdout ?? '')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    const o = line ? JSON.parse(line) : { error: (r.stderr || `exit ${r.status}`).trim().slice(-300) };
    if (o.error) throw new Error(`llama.cpp: ${o.error}`);
    return { prefill: o.prefill_tok_s, decode: o.decode_tok_s, ids: /** @type {number[]} */ (o.ids) };
  };
  /** @type {Record<string, any>} */
  const row = {
    bench: 'llamacpp',
    case: name,
    weights: kind,
    gguf: kind === 'q8' ? 'q8_0' : 'f32',
    threads,
    prompt: prompt.length,
    tokens,
  };
  try {
    await ours(); // warm-up: V8 and the WebAssembly code still being optimised, memory grown
    /** @type {{ prefill: number, decode: number, ids: number[] }[]} */
    const mine = [];
    /** @type {{ prefill: number, decode: number, ids: number[] }[]} */
    const theirs = [];
    for (let i = 0; i < reps; i++) {
      mine.push(await ours());
      theirs.push(peer());
    }
    const best = (/** @type {typeof mine} */ xs, /** @type {'prefill' | 'decode'} */ k) =>
      Math.max(...xs.map((x) => x[k]));
    const a = mine[0].ids;
    const b = theirs[0].ids;
    let agree = 0;
    while (agree < Math.min(a.length, b.length) && a[agree] === b[agree]) agree++;
    Object.assign(row, {
      decode_tok_s: +best(mine, 'decode').toFixed(1),
      llamacpp_decode_tok_s: +best(theirs, 'decode').toFixed(1),
      decode_ratio: +(best(mine, 'decode') / best(theirs, 'decode')).toFixed(2),
      prefill_tok_s: +best(mine, 'prefill').toFixed(0),
      llamacpp_prefill_tok_s: +best(theirs, 'prefill').toFixed(0),
      prefill_ratio: +(best(mine, 'prefill') / best(theirs, 'prefill')).toFixed(2),
      ids_agree: agree,
      decode_runs: mine.map((m) => +m.decode.toFixed(1)),
      llamacpp_decode_runs: theirs.map((m) => +m.decode.toFixed(1)),
    });
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
