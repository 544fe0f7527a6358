#!/usr/bin/env node
// Decode A/B in ONE process: this tree's dist/ + build/ against another tree's (e.g. a copy with the previous
// kernels), each with its own wasm backend and worker pool, the same random Llama model (q8 or bf16), KV-cached
// forward steps (no sampler) alternated in blocks so both see the same machine load. Context runs from 1 to
// STEPS+PROMPT positions (llama2.c's run.c default: BOS then 256 tokens). Prints median ms per step and tok/s.
// usage: node bench/lab/decode-ab.mjs <otherTreeRoot> [stories15M|stories110M] [q8|bf16] [threads]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const trees = { old: path.resolve(process.argv[2]), new: path.resolve(here, '../..') };
const shape = process.argv[3] ?? 'stories110M',
  kind = process.argv[4] ?? 'q8',
  threads = Number(process.argv[5] ?? 2);
/** @type {Record<string, [number, number, number, number]>} [L, C, H, F] */
const SHAPES = { stories15M: [6, 288, 6, 768], stories110M: [12, 768, 12, 2048] };
const S = SHAPES[shape];
if (!S) throw new Error(`unknown shape ${shape}; known: ${Object.keys(SHAPES).join(', ')}`);
const [L, C, H, F] = S;
/** @type {import('../../dist/model/config.js').ModelConfig} */
const cfg = {
  family: 'llama',
  vocabSize: 32000,
  hiddenSize: C,
  numLayers: L,
  numHeads: H,
  numKvHeads: H,
  headDim: C / H,
  intermediateSize: F,
  maxPositions: 1024,
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: true,
  attentionBias: false,
  attentionOutBias: false,
  mlpBias: false,
  dropout: 0,
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: null,
};
const STEPS = Number(process.env.STEPS ?? 256),
  BLOCK = 8;
/** @type {Record<string, { step: (id: number) => Float32Array, ts: number[], logits: Float32Array | null }>} */
const side = {};
for (const [name, root] of Object.entries(trees)) {
  const imp = (/** @type {string} */ p) => import(path.join(root, 'dist', p));
  const { createWasmBackend } = await imp('backend/wasm/backend.js');
  const { initModel } = await imp('model/init.js');
  const { quantizeModel } = await imp('model/quantize.js');
  const { noGrad, tidy } = await imp('tensor/tensor.js');
  const { Rng } = await imp('util/rng.js');
  const backend = await createWasmBackend({ threads });
  const model = initModel(cfg, new Rng(1), { backend });
  await quantizeModel(model, kind, { dropFloat: true });
  const cache = model.newCache(1);
  const step = (/** @type {number} */ id) =>
    noGrad(() => tidy(() => model.forward(Int32Array.of(id), 1, 1, { cache, lastOnly: true }).dataSync()));
  side[name] = { step, ts: [], logits: null };
}
let pos = 0;
for (let b = 0; pos < STEPS; b++) {
  for (const name of b & 1 ? ['new', 'old'] : ['old', 'new']) {
    const s = side[name];
    for (let i = 0; i < BLOCK; i++) {
      const t0 = performance.now();
      const l = s.step(3 + (((pos + i) * 7919) % 31000));
      const dt = performance.now() - t0;
      if (i > 0) s.ts.push(dt); // the first step after a switch wakes the pool
      s.logits = l;
    }
  }
  pos += BLOCK;
}
let d = 0,
  n = 0;
const lOld = /** @type {Float32Array} */ (side.old.logits),
  lNew = /** @type {Float32Array} */ (side.new.logits);
for (let i = 0; i < lOld.length; i++) (d += (lNew[i] - lOld[i]) ** 2), (n += lOld[i] ** 2);
const med = (/** @type {number[]} */ a) => /** @type {number} */ (a.slice().sort((x, y) => x - y)[a.length >> 1]);
const q = (/** @type {number[]} */ a, /** @type {number} */ f) =>
  a.slice().sort((x, y) => x - y)[Math.floor(a.length * f)];
const r = Object.fromEntries(
  Object.entries(side).map(([k, s]) => [k, { ms: med(s.ts), p25: q(s.ts, 0.25), p75: q(s.ts, 0.75) }]),
);
console.log(
  `${shape} ${kind}, ${threads} threads, ${STEPS} steps (context 1..${STEPS}), load ${(await import('node:os'))
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
for (const k of ['old', 'new'])
  console.log(
    `  ${k}: ${r[k].ms.toFixed(2)} ms/step = ${(1000 / r[k].ms).toFixed(1)} tok/s forward-only (quartiles ${r[k].p25.toFixed(2)}–${r[k].p75.toFixed(2)} ms)`,
  );
console.log(
  `  new/old speed ×${(r.old.ms / r.new.ms).toFixed(2)}; last logits new vs old rel. diff ${Math.sqrt(d / n).toExponential(2)}`,
);
process.exit(0);
