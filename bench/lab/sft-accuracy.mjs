// SFT's token accuracy (src/align/sft_objective.ts) on the wasm backend: the two ways to count how many targets are
// their row's argmax over logits of N rows × V (GPT-2's vocabulary by default), three times each —
//   host:   dataSync (a copy of all N·V floats) + argmaxHits, what a CPU backend's SFT step does;
//   device: the `sample` kernel at temperature 0 (lowest id on ties, argmaxHits's rule) and N ids read back, what a
//           backend without readSync does (the kernel also computes log Σ exp for its probabilities).
// Both must count the same hits; it prints each one's time and the process's resident memory.
// usage: npm run build:ts && node bench/lab/sft-accuracy.mjs [--rows 2048] [--vocab 50257]
import { exitIfHelp } from '../machine.mjs';

exitIfHelp(import.meta.url);

const argv = process.argv.slice(2);
/** The value after flag k, else d. @param {string} k @param {string} d @returns {string} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const N = Number(opt('--rows', '2048')),
  V = Number(opt('--vocab', '50257'));
const dist = (/** @type {string} */ p) => import(new URL(`../../dist/${p}`, import.meta.url).href);
const { initBackend } = await dist('backend/registry.js');
const { tensor, noGrad } = await dist('tensor/tensor.js');
const { apply } = await dist('tensor/record.js');
const { argmaxHits } = await dist('align/sft_objective.js');
const { Rng } = await dist('util/rng.js');

const be = await initBackend('wasm');
const rng = new Rng(1);
const data = Float32Array.from({ length: N * V }, () => rng.normal() * 3);
const logits = tensor(data, [N, V], { backend: be });
const targets = Int32Array.from({ length: N }, () => rng.int(V));
// a third of the targets are their row's argmax, so the counts are not all zero
for (let i = 0; i < N; i += 3) {
  let best = 0;
  for (let v = 1; v < V; v++) if (data[i * V + v] > data[i * V + best]) best = v;
  targets[i] = best;
}
console.log(`backend: ${be.describe()}; ${N} rows × ${V} (${((N * V * 4) / 2 ** 20).toFixed(0)} MiB of logits)`);
for (let r = 0; r < 3; r++) {
  let t0 = performance.now();
  const host = argmaxHits(logits.dataSync(), targets, V);
  const tHost = performance.now() - t0;
  t0 = performance.now();
  const [ids, pr] = noGrad(() =>
    apply('sample', 'sample', [logits], [[N], [N, 2]], { temperature: 0, u: new Array(N).fill(0) }, ['i32', 'f32']),
  );
  const v = await ids.data();
  const tDev = performance.now() - t0;
  let hits = 0;
  for (let i = 0; i < N; i++) if (v[i] === targets[i]) hits++;
  ids.dispose();
  pr.dispose();
  const rss = (process.memoryUsage().rss / 2 ** 20).toFixed(0);
  console.log(
    `host copy + argmaxHits ${tHost.toFixed(0)} ms (${host.correct} hits) | device argmax ${tDev.toFixed(0)} ms (${hits} hits) | rss ${rss} MiB`,
  );
  if (hits !== host.correct) {
    console.error('the two counts differ');
    process.exitCode = 1;
  }
}
