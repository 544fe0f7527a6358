#!/usr/bin/env node
// webgpu's `sample` paths on the adapter at hand (for the GPU kit: the certificate's bound assumes the WGSL spec's exp
// accuracy, which only a real GPU can show): for each setting, `draws` calls on one row of V logits already on the
// device — flat (uniform in ±3) and peaked (normal·1.5 plus a few logits 6–14 above, like a trained model's row) —
// against ref's float64 `sampleKernel` on the same row and uniform number. Prints the ids that differ (must be 0),
// the rows drawn on the device (top-k candidates; certified plain-temperature draws; certified top-p / min-p
// candidates) and those that fell back to the full row, the bytes read back a call, and the median wall time of a call (run → ids read), which on a GPU is the
// per-token cost of sampling in decode. Settings: greedy; plain temperature 1 and 0.7 (certified in WGSL); top-k 40 +
// top-p 0.9 (candidates in WGSL); top-p 0.9 alone and min-p 0.05 alone (the 1024 largest logits and the tail's
// bounded sum in WGSL, certified on the host: src/backend/sample_nucleus.ts; a flat row falls back to the full row);
// and with penalties (repetition 1.3, frequency 0.2, presence 0.1 on 100 seen ids, the row's top ids among them):
// greedy, top-k 40 (the masked copy's candidates, no extra round trip) and temperature 1 (certified, one extra
// round trip).
// usage: node bench/lab/webgpu-sample-check.mjs [V=50257] [draws=100]   (after npm run build)
const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
const { sampleKernel } = await import('../../dist/backend/sample_rows.js');
const { Rng } = await import('../../dist/util/rng.js');
const V = Number(process.argv[2] || 50257);
const draws = Number(process.argv[3] || 100);
const be = await createWebGpuBackend();
console.log(`sample check: ${be.describe()}, V ${V}, ${draws} draws a setting and row kind`);
const rng = new Rng(7);
/** @param {'flat' | 'peaked'} kind */
function row(kind) {
  const x = new Float32Array(V);
  for (let i = 0; i < V; i++) x[i] = kind === 'flat' ? (rng.random() * 2 - 1) * 3 : rng.normal() * 1.5;
  if (kind === 'peaked')
    for (let k = 0; k < 1 + Math.floor(rng.random() * 6); k++) x[Math.floor(rng.random() * V)] = 6 + rng.random() * 8;
  return x;
}
/** @type {[string, { temperature: number, topK: number, topP: number, minP: number }, boolean?][]} */
const settings = [
  ['greedy', { temperature: 0, topK: 0, topP: 1, minP: 0 }],
  ['temperature 1', { temperature: 1, topK: 0, topP: 1, minP: 0 }],
  ['temperature 0.7', { temperature: 0.7, topK: 0, topP: 1, minP: 0 }],
  ['top-k 40, top-p 0.9', { temperature: 1, topK: 40, topP: 0.9, minP: 0 }],
  ['top-p 0.9', { temperature: 1, topK: 0, topP: 0.9, minP: 0 }],
  ['min-p 0.05', { temperature: 1, topK: 0, topP: 1, minP: 0.05 }],
  ['greedy + penalties', { temperature: 0, topK: 0, topP: 1, minP: 0 }, true],
  ['top-k 40 + penalties', { temperature: 1, topK: 40, topP: 0.9, minP: 0 }, true],
  ['temp. 1 + penalties', { temperature: 1, topK: 0, topP: 1, minP: 0 }, true],
];
const penalty = { repetitionPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1 };
/**
 * 100 seen ids of row `x`: its 10 largest and 90 spread over the row, counts 1–3.
 * @param {Float32Array} x
 */
function seen(x) {
  const top = Array.from(x.keys())
    .sort((a, b) => x[b] - x[a])
    .slice(0, 10);
  const ids = new Set(top);
  for (let j = 0; ids.size < 100; j++) ids.add((j * 7919) % V);
  return [...ids].flatMap((id, j) => [id, 1 + (j % 3)]);
}
const counts = /** @type {Record<string, number>} */ (/** @type {unknown} */ (be.counts));
const keys = [
  'sampleCandidateRows',
  'sampleCertifiedRows',
  'sampleNucleusRows',
  'sampleCertFallbacks',
  'sampleNucleusFallbacks',
  'sampleFullRows',
  'sampleDevicePenaltyRows',
  'sampleBytesRead',
];
let wrongAll = 0;
for (const kind of /** @type {const} */ (['flat', 'peaked'])) {
  const x = row(kind);
  const bx = be.alloc(V, 'f32'),
    ids = be.alloc(1, 'i32'),
    pr = be.alloc(2, 'f32');
  be.write(bx, x);
  const flat = seen(x);
  for (const [name, o, pen] of settings) {
    const pa = pen ? { ...penalty, counts: flat, countOffsets: [0, flat.length] } : {};
    const before = Object.fromEntries(keys.map((k) => [k, counts[k] ?? 0]));
    const times = [];
    let wrong = 0;
    for (let d = 0; d < draws; d++) {
      const u = [rng.random()];
      const t0 = performance.now();
      be.run(
        'sample',
        [{ buf: bx, shape: [1, V] }],
        [
          { buf: ids, shape: [1] },
          { buf: pr, shape: [1, 2] },
        ],
        { ...o, ...pa, u },
      );
      const got = /** @type {Int32Array} */ (await be.read(ids))[0];
      times.push(performance.now() - t0);
      const want = new Int32Array(1);
      const p = pen ? { settings: penalty, counts: [flat] } : undefined;
      sampleKernel({ data: x, shape: [1, V] }, { data: want }, { data: new Float32Array(2) }, o, u, undefined, p);
      if (got !== want[0]) wrong++;
    }
    wrongAll += wrong;
    const d = Object.fromEntries(keys.map((k) => [k, (counts[k] ?? 0) - /** @type {number} */ (before[k])]));
    times.sort((a, b) => a - b);
    console.log(
      `${kind.padEnd(6)} ${name.padEnd(21)} wrong ids ${wrong}/${draws} | device rows: candidates ${d.sampleCandidateRows}, certified ${d.sampleCertifiedRows}, nucleus ${d.sampleNucleusRows}, with penalties ${d.sampleDevicePenaltyRows} | fallbacks ${d.sampleCertFallbacks + d.sampleNucleusFallbacks}, full rows ${d.sampleFullRows} | ${Math.round(d.sampleBytesRead / draws)} B read a call | ${times[times.length >> 1]?.toFixed(3)} ms a call (median)`,
    );
  }
  for (const b of [bx, ids, pr]) be.free(b);
}
console.log(
  wrongAll === 0
    ? 'all ids equal ref'
    : `${wrongAll} ids differ from ref: the certificate or a kernel is wrong on this adapter`,
);
be.dispose?.();
process.exit(wrongAll === 0 ? 0 : 1);
