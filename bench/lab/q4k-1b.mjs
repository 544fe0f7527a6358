#!/usr/bin/env node
// A 1.1B Q4_K_M file, as people download it, through `llmts generate`'s loader and llama.cpp: TinyLlama's shape
// (22 layers, 2048 wide, GQA 32/4, MLP 5632, 32,000 ids) with llama.cpp's Q4_K_M type mix — Q4_K matrices and token
// embedding, Q6_K output head, Q6_K attn_v and ffn_down in every other layer (as llama-quantize's use_more_bits) —
// random blocks (speed does not depend on the values; scales kept sane so activations stay finite). Prints the file
// size, load time and what the weights became (loadForGeneration: q4k from the file's blocks, Q6_K → q8, each
// matrix decoded as it is stored: float32 would be 4.4 GB, past WebAssembly's 4 GiB), the process's memory, then
// greedy decode and prefill against llama.cpp on the same file (bench/peers/llamacpp.mjs), the same threads.
// --shape llama3.2-1b: Llama 3.2 1B's shape instead (16 layers, 2048 wide, GQA 32/8, MLP 8192, 128,256 ids, the head
// tied to the embedding: Q4_K_M stores that table as Q6_K, looked up and multiplied from one q8 copy here).
// usage: node bench/lab/q4k-1b.mjs [--shape tinyllama|llama3.2-1b] [--threads N] [--tokens 32] [--prompt 64] [--reps 2]
//   [--layers 22] [--keep FILE] [--load-only]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitIfHelp, printMachine } from '../machine.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
const opt = (/** @type {string} */ k, /** @type {string} */ d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const { serializeGguf } = await import('../../dist/formats/gguf.js');
const { encodeGgml } = await import('../../dist/formats/gguf_types.js');
const { toF16Bits } = await import('../../dist/formats/half.js');
const { fromHfConfig } = await import('../../dist/model/hf/config.js');
const { hparamsToGguf } = await import('../../dist/model/gguf/hparams.js');
const { tensorMappings } = await import('../../dist/model/gguf/tensors.js');
const { tokenizerToGguf } = await import('../../dist/tokenizer/gguf.js');
const { Tokenizer } = await import('../../dist/tokenizer/tokenizer.js');
const { loadForGeneration } = await import('../../dist/cli/generate.js');
const { describeWeights } = await import('../../dist/model/quantize.js');
const { getBackend } = await import('../../dist/backend/registry.js');
const { Rng } = await import('../../dist/util/rng.js');
const { compareWithLlamaCpp } = await import('../peers/llamacpp.mjs');

const shape = opt('--shape', 'tinyllama');
if (shape !== 'tinyllama' && shape !== 'llama3.2-1b') {
  console.error(`--shape: expected tinyllama or llama3.2-1b, got ${shape}`);
  process.exit(2);
}
const l32 = shape === 'llama3.2-1b';
const layers = Number(opt('--layers', l32 ? '16' : '22'));
const loadOnly = argv.includes('--load-only');
const tokens = Number(opt('--tokens', '32'));
const promptLen = Number(opt('--prompt', '64'));
const reps = Number(opt('--reps', '2'));
const threadsFlag = opt('--threads', '');
const keep = opt('--keep', '');

const cfg = fromHfConfig(
  {
    model_type: 'llama',
    vocab_size: l32 ? 128256 : 32000,
    hidden_size: 2048,
    intermediate_size: l32 ? 8192 : 5632,
    num_hidden_layers: layers,
    num_attention_heads: 32,
    num_key_value_heads: l32 ? 8 : 4,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: l32,
    ...(l32 ? { rope_theta: 500000 } : {}),
  },
  l32 ? 'Llama-3.2-1B shape' : 'TinyLlama-1.1B shape',
);
const rng = new Rng(7);
/** Random blocks of a k-quant with sane scales (d, dmin small positive). @param {'Q4_K' | 'Q6_K'} type @param {number} n */
function blocks(type, n) {
  const [per, bytes] = type === 'Q4_K' ? [256, 144] : [256, 210];
  const out = new Uint8Array((n / per) * bytes);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < n / per; b++) {
    const o = b * bytes;
    if (type === 'Q4_K') dv.setUint16(o, toF16Bits(3e-5), true), dv.setUint16(o + 2, toF16Bits(2e-4), true);
    else {
      for (let k = 0; k < 16; k++) dv.setInt8(o + 192 + k, rng.int(17) - 8);
      dv.setUint16(o + 208, toF16Bits(2e-4), true);
    }
  }
  return out;
}
const tensors = tensorMappings(cfg).map((m) => {
  const norm = m.gguf.endsWith('norm.weight');
  const shape = norm
    ? [cfg.hiddenSize]
    : m.gguf === 'token_embd.weight' || m.gguf === 'output.weight'
      ? [cfg.vocabSize, cfg.hiddenSize]
      : m.gguf.includes('ffn_down')
        ? [cfg.hiddenSize, cfg.intermediateSize]
        : m.gguf.includes('ffn_')
          ? [cfg.intermediateSize, cfg.hiddenSize]
          : m.gguf.includes('attn_k') || m.gguf.includes('attn_v')
            ? [cfg.numKvHeads * cfg.headDim, cfg.hiddenSize]
            : [cfg.hiddenSize, cfg.hiddenSize];
  const n = shape.reduce((a, b) => a * b, 1);
  if (norm)
    return {
      name: m.gguf,
      shape,
      type: /** @type {const} */ ('F32'),
      raw: encodeGgml('F32', new Float32Array(n).fill(1)),
    };
  const layer = Number(/^blk\.(\d+)\./.exec(m.gguf)?.[1] ?? -1);
  // the output head is Q6_K, or, tied, the token embedding that serves as one (llama-quantize's rule)
  const wide =
    m.gguf === 'output.weight' ||
    (m.gguf === 'token_embd.weight' && cfg.tieWordEmbeddings) ||
    ((m.gguf.includes('attn_v') || m.gguf.includes('ffn_down')) && layer % 2 === 0);
  const type = /** @type {'Q4_K' | 'Q6_K'} */ (wide ? 'Q6_K' : 'Q4_K');
  return { name: m.gguf, shape, type, raw: blocks(type, n) };
});
const byteTok = new Tokenizer({ tokenBytes: Array.from({ length: 256 }, (_, i) => new Uint8Array([i])), merges: [] });
const meta = new Map([...hparamsToGguf(cfg), ...tokenizerToGguf(byteTok, cfg.vocabSize, { bos: 1, eos: 2 })]);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-q4k-1b-'));
const file = keep || path.join(tmp, `${shape}-shape-Q4_K_M.gguf`);
fs.writeFileSync(file, Buffer.concat(serializeGguf(meta, tensors)));
tensors.length = 0;
const mb = (/** @type {number} */ b) => `${(b / 2 ** 20).toFixed(0)} MiB`;

try {
  console.log(
    `file: ${mb(fs.statSync(file).size)} (${shape} shape, ${layers} layers; Q4_K, Q6_K ${cfg.tieWordEmbeddings ? 'tied embedding' : 'head'} and half of attn_v / ffn_down)`,
  );
  const t0 = performance.now();
  const L = await loadForGeneration(file, {
    backend: 'wasm',
    ...(threadsFlag ? { threads: Number(threadsFlag) } : {}),
  });
  const loadS = (performance.now() - t0) / 1000;
  const be = getBackend();
  const mem = process.memoryUsage();
  const wasm = typeof be.memory === 'function' ? be.memory() : null;
  console.log(
    `loaded in ${loadS.toFixed(1)} s: ${describeWeights(L.weights)} weights; ${be.describe()}; ` +
      `process RSS ${mb(mem.rss)} (peak ${mb(process.resourceUsage().maxRSS * 1024)}), array buffers ${mb(mem.arrayBuffers)}` +
      (wasm ? `, WebAssembly memory peak ${mb(wasm.peak)}` : ''),
  );
  const threads = Number(threadsFlag || /(\d+) thread/.exec(be.describe())?.[1] || 1);
  printMachine('q4k-1b', threads, false);
  if (!loadOnly) {
    const prompt = Array.from({ length: promptLen }, () => 3 + rng.int(cfg.vocabSize - 3));
    const r = await compareWithLlamaCpp(L.model, file, prompt, tokens, threads, reps);
    console.log(
      JSON.stringify({
        bench: 'q4k-1b',
        shape,
        layers,
        threads,
        tokens,
        prompt: promptLen,
        load_s: +loadS.toFixed(1),
        ...r,
      }),
    );
  }
} finally {
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
