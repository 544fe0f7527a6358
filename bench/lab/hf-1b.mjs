#!/usr/bin/env node
// A 1B Hugging Face checkpoint as people download it — Llama 3.2 1B's shape (16 layers, 2048 wide, GQA 32/8, MLP
// 8192, 128,256 ids, tied head), one bfloat16 model.safetensors of 2.5 GB, random N(0, 0.02) weights — through
// `llmts generate`'s loader: read vacant (the matrices stay the file's bytes, each quantised from them a slice of
// rows at a time), so no float32 copy (4.9 GB, past WebAssembly's 4 GiB) is ever made. For each --quantize choice
// (default: bf16, the checkpoint's own precision, then q8 and q4k) prints the load time, what the weights became,
// WebAssembly's memory and the process's peak, and greedy decoding speed (random weights: speed only).
// usage: node bench/lab/hf-1b.mjs [--kinds bf16,q8,q4k] [--tokens 16] [--layers 16] [--threads N] [--keep DIR]
import { spawnSync } from 'node:child_process';
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
const mib = (/** @type {number} */ b) => `${(b / 2 ** 20).toFixed(0)} MiB`;

if (argv[0] === '--child') {
  // one load and decode in a fresh process, so each kind's memory peak is its own
  const [, dir, kind, tokens, threads] = argv;
  const { loadForGeneration } = await import('../../dist/cli/generate.js');
  const { describeWeights } = await import('../../dist/model/quantize.js');
  const { getBackend } = await import('../../dist/backend/registry.js');
  const { generate } = await import('../../dist/generate/engine.js');
  const t0 = performance.now();
  const L = await loadForGeneration(dir, {
    backend: 'wasm',
    ...(threads ? { threads: Number(threads) } : {}),
    ...(kind === 'default' ? {} : { quantize: /** @type {'f32' | 'q8' | 'q4k' | 'bf16'} */ (kind) }),
  });
  const loadS = (performance.now() - t0) / 1000;
  const be = getBackend();
  const prompt = [[1, 2, 3, 4, 5, 6, 7, 8]];
  await generate(L.model, prompt, { temperature: 0, maxTokens: 2, stopTokens: [] }); // warm-up
  const t1 = performance.now();
  await generate(L.model, prompt, { temperature: 0, maxTokens: Number(tokens), stopTokens: [] });
  const s = (performance.now() - t1) / 1000;
  const row = {
    kind,
    load_s: +loadS.toFixed(1),
    weights: describeWeights(L.weights),
    wasm_peak: mib(be.memory().peak),
    process_peak: mib(process.resourceUsage().maxRSS * 1024),
    decode_tok_s: +(Number(tokens) / s).toFixed(2),
    backend: be.describe(),
  };
  console.log(JSON.stringify(row));
  process.exit(0);
}

const kinds = opt('--kinds', 'default,q8,q4k').split(',');
const tokens = opt('--tokens', '16');
const layers = Number(opt('--layers', '16'));
const threads = opt('--threads', '');
const keep = opt('--keep', '');
const { fromHfConfig, toHfConfig } = await import('../../dist/model/hf/config.js');
const { paramSpecs } = await import('../../dist/model/params.js');
const { Rng } = await import('../../dist/util/rng.js');

const cfg = fromHfConfig(
  {
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: layers,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
  },
  'Llama-3.2-1B shape',
);
const dir = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-hf-1b-'));
try {
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    // bfloat16 N(0, 0.02) values, one 1M-value block tiled (the values do not matter to speed), norms 1.0
    const rng = new Rng(3);
    const block = new Uint16Array(1 << 20);
    const f = new Float32Array(1),
      u = new Uint32Array(f.buffer);
    for (let i = 0; i < block.length; i++) (f[0] = rng.normal() * 0.02), (block[i] = u[0] >>> 16);
    const specs = paramSpecs(cfg);
    /** @type {Record<string, unknown>} */
    const header = {};
    let off = 0;
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      header[s.name] = { dtype: 'BF16', shape: s.shape, data_offsets: [off, off + 2 * n] };
      off += 2 * n;
    }
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    const one = Buffer.from(new Uint16Array(1).fill(0x3f80).buffer); // bf16 1.0
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (s.shape.length === 1) {
        fs.writeSync(fd, Buffer.concat(Array.from({ length: n }, () => one)));
        continue;
      }
      for (let o = 0; o < n; o += block.length) {
        const m = Math.min(block.length, n - o);
        fs.writeSync(fd, Buffer.from(block.buffer, 0, 2 * m));
      }
    }
    fs.closeSync(fd);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(cfg)));
  }
  const size = fs.statSync(path.join(dir, 'model.safetensors')).size;
  console.log(
    `checkpoint: ${mib(size)} of bfloat16 (Llama 3.2 1B shape, ${layers} layers), float32 would be ${mib(2 * size)}`,
  );
  printMachine('hf-1b', Number(threads || 2), false);
  for (const kind of kinds) {
    const r = spawnSync(process.execPath, [import.meta.filename, '--child', dir, kind, tokens, threads], {
      encoding: 'utf8',
    });
    process.stdout.write(r.stdout);
    if (r.status !== 0)
      process.stdout.write(`${kind}: exit ${r.status}\n${r.stderr.split('\n').slice(-5).join('\n')}\n`);
  }
} finally {
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
}
