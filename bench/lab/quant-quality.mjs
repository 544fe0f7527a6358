#!/usr/bin/env node
// Quality cost of quantised weights on a trained model: mean next-token loss on held-out text (the last 8 KB of
// tinyshakespeare, windows of the model's context), relative logits error ‖Δ‖/‖logits‖ and top-1 agreement with
// float32, for q8 and bf16. usage: node bench/lab/quant-quality.mjs <model-dir> [text-file]
import fs from 'node:fs';
const dir = process.argv[2];
const file = process.argv[3] ?? new URL('../../data/tinyshakespeare.txt', import.meta.url);
const { initBackend } = await import('../../dist/backend/registry.js');
const { loadModel } = await import('../../dist/model/hf/folder.js');
const { loadTokenizer } = await import('../../dist/tokenizer/io.js');
const { quantizeModel, dequantizeModel } = await import('../../dist/model/quantize.js');
const { shiftTargets } = await import('../../dist/model/model.js');
const { noGrad, tidy } = await import('../../dist/tensor/tensor.js');
await initBackend('wasm', { threads: 2 });
const model = await loadModel(dir);
const tok = await loadTokenizer(dir);
const raw = fs.readFileSync(file, 'utf8');
const ids = Int32Array.from(tok.encode(raw.slice(raw.length - 8192)));
const T = model.config.maxPositions,
  W = Math.floor(ids.length / T);
const batch = ids.subarray(0, W * T);
const run = () =>
  noGrad(() =>
    tidy(() => {
      const loss = model.loss(batch, shiftTargets(batch, W, T), W, T).dataSync()[0];
      const logits = model.forward(batch, W, T).dataSync();
      return { loss, logits: Float32Array.from(logits) };
    }),
  );
const ref = run();
const V = model.config.vocabSize;
const argmax = (/** @type {Float32Array} */ l, /** @type {number} */ o) => {
  let b = 0;
  for (let i = 1; i < V; i++) if (l[o + i] > l[o + b]) b = i;
  return b;
};
console.log(
  `${dir}: ${model.config.family}, ${(model.numParams() / 1e6).toFixed(2)}M params, ${W}×${T} tokens of held-out text; float32 loss ${ref.loss.toFixed(4)}`,
);
for (const kind of /** @type {const} */ (['q8', 'bf16'])) {
  await quantizeModel(model, kind);
  const q = run();
  let d = 0,
    n = 0,
    agree = 0;
  for (let i = 0; i < ref.logits.length; i++) (d += (q.logits[i] - ref.logits[i]) ** 2), (n += ref.logits[i] ** 2);
  for (let p = 0; p < W * T; p++) agree += argmax(q.logits, p * V) === argmax(ref.logits, p * V) ? 1 : 0;
  console.log(
    `  ${kind.padEnd(4)} loss ${q.loss.toFixed(4)} (Δ ${(q.loss - ref.loss >= 0 ? '+' : '') + (q.loss - ref.loss).toFixed(4)}), logits rel. err ${Math.sqrt(d / n).toExponential(2)}, top-1 agreement ${((100 * agree) / (W * T)).toFixed(2)}%`,
  );
  dequantizeModel(model);
}
process.exit(0);
