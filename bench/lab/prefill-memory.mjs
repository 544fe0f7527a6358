// Memory and time of an inference prefill on the wasm backend: one forward over a T-token prompt (noGrad,
// `lastOnly`), as generation runs it, on a randomly initialised model of stories110M's shape (Llama: C 768, 12 layers,
// 12 heads, F 2048, V 32000; or GPT-2 124M's with --family gpt2). Twice in one process, each on a fresh backend: as the
// model runs it (each layer in a scope of its own, src/model/model.ts) and with every temporary kept to the end of the
// forward (what a `capture` does, and what every forward did before), printing the heap held above the weights at
// the peak, the prefill's time and whether the logits are the same.
// usage: npm run build:ts && node bench/lab/prefill-memory.mjs [--family llama|gpt2] [--tokens 1024] [--threads N]
import os from 'node:os';
import { exitIfHelp } from '../machine.mjs';

exitIfHelp(import.meta.url);

const argv = process.argv.slice(2);
/** The value after flag k, else d. @param {string} k @param {string} d @returns {string} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const family = opt('--family', 'llama');
const T = Number(opt('--tokens', '1024'));
const threads = Number(opt('--threads', String(os.availableParallelism())));
if (!['llama', 'gpt2'].includes(family) || !(T >= 2) || !(threads >= 1)) {
  console.error('prefill-memory: --family llama|gpt2, --tokens ≥ 2, --threads ≥ 1');
  process.exit(2);
}

const { createWasmBackend } = await import('../../dist/backend/wasm/backend.js');
const { initModel } = await import('../../dist/model/init.js');
const { noGrad, tidy } = await import('../../dist/tensor/tensor.js');
const { Rng } = await import('../../dist/util/rng.js');

const C = 768;
/** @type {import('../../dist/model/config.js').ModelConfig} */
const config = {
  family: /** @type {'llama' | 'gpt2'} */ (family),
  vocabSize: family === 'llama' ? 32000 : 50257,
  hiddenSize: C,
  numLayers: 12,
  numHeads: 12,
  numKvHeads: 12,
  headDim: 64,
  intermediateSize: family === 'llama' ? 2048 : 4 * C,
  maxPositions: Math.max(T, 1024),
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: family === 'gpt2',
  attentionBias: family === 'gpt2',
  attentionOutBias: family === 'gpt2',
  mlpBias: family === 'gpt2',
  dropout: 0,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
};
const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919) % config.vocabSize);

/** @param {boolean} keepAll */
async function prefill(keepAll) {
  const be = await createWasmBackend({ threads });
  try {
    const model = initModel(config, new Rng(1), { backend: be });
    const base = be.memory().inUse;
    const t0 = performance.now();
    const logits = noGrad(() =>
      tidy(() => model.forward(ids, 1, T, { lastOnly: true, ...(keepAll ? { capture: { residual: [] } } : {}) })),
    );
    const v = /** @type {Float32Array} */ (await logits.data()).slice();
    const ms = performance.now() - t0;
    return { held: be.memory().peak - base, ms, v };
  } finally {
    be.dispose();
  }
}

const mib = (/** @type {number} */ b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const scoped = await prefill(false);
const kept = await prefill(true);
const same = scoped.v.every((x, i) => Object.is(x, kept.v[i]));
console.log(`${family}, 12 layers, C ${C}: a ${T}-token prefill on wasm (${threads} threads)`);
console.log(`  a scope per layer:    ${mib(scoped.held)} above the weights at the peak, ${scoped.ms.toFixed(0)} ms`);
console.log(`  every temporary kept: ${mib(kept.held)} above the weights at the peak, ${kept.ms.toFixed(0)} ms`);
console.log(
  `  logits ${same ? 'bit for bit the same' : 'DIFFER'}; ${(kept.held / scoped.held).toFixed(1)}× less memory`,
);
if (!same) process.exitCode = 1;
