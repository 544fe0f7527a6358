#!/usr/bin/env node
// Quality of matmul_q8 on the Hugging Face fixture models (test/fixtures/hf): relative logits error
// ‖Δ‖/‖logits‖ vs float32 and the mean change of the next-token loss over 16 windows of tinyshakespeare bytes (as
// test/quantize.test.ts, with more windows), wasm backend. To compare two kernel builds, point it at a tree whose
// dist/ and build/ hold the other one. usage: node bench/lab/q8-fixture-quality.mjs [treeRoot]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(process.argv[2] ?? path.join(here, '../..'));
const fx = path.join(here, '../../test/fixtures/hf');
const { initBackend } = await import(path.join(root, 'dist/backend/registry.js'));
const { loadModel } = await import(path.join(root, 'dist/model/hf/folder.js'));
const { quantizeModel } = await import(path.join(root, 'dist/model/quantize.js'));
const { shiftTargets } = await import(path.join(root, 'dist/model/model.js'));
const { noGrad, tidy } = await import(path.join(root, 'dist/tensor/tensor.js'));
const backend = await initBackend('wasm', { threads: 1 });
const text = fs.readFileSync(path.join(here, '../../data/tinyshakespeare.txt')).subarray(0, 1 << 15);
for (const d of fs.readdirSync(fx).filter((n) => fs.existsSync(path.join(fx, n, 'config.json')))) {
  const model = await loadModel(path.join(fx, d), { backend });
  const T = Math.min(64, model.config.maxPositions),
    W = 16;
  const wins = Array.from({ length: W }, (_, w) =>
    Int32Array.from(text.subarray(w * 1000, w * 1000 + T), (b) => b % model.config.vocabSize),
  );
  const run = () =>
    wins.map((ids) => ({
      l: noGrad(() => tidy(() => model.forward(ids, 1, T).dataSync())),
      // decode-shaped too: the last position alone through the M = 1 path
      l1: noGrad(() => tidy(() => model.forward(ids.subarray(T - 1), 1, 1).dataSync())),
      loss: noGrad(() => tidy(() => model.loss(ids, shiftTargets(ids, 1, T), 1, T).dataSync()[0])),
    }));
  const ref = run();
  await quantizeModel(model, 'q8');
  const got = run();
  let dd = 0,
    nn = 0,
    d1 = 0,
    n1 = 0,
    dl = 0;
  for (let w = 0; w < W; w++) {
    for (let i = 0; i < ref[w].l.length; i++) (dd += (got[w].l[i] - ref[w].l[i]) ** 2), (nn += ref[w].l[i] ** 2);
    for (let i = 0; i < ref[w].l1.length; i++) (d1 += (got[w].l1[i] - ref[w].l1[i]) ** 2), (n1 += ref[w].l1[i] ** 2);
    dl += got[w].loss - ref[w].loss;
  }
  console.log(
    `${d} q8: logits rel. err ${Math.sqrt(dd / nn).toExponential(3)} (T=${T}), ${Math.sqrt(d1 / n1).toExponential(3)} (one token, M=1), mean Δloss ${(dl / W).toExponential(2)} (${W} windows)`,
  );
}
process.exit(0);
