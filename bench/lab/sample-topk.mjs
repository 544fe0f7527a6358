#!/usr/bin/env node
// webgpu's top-k `sample` (src/backend/webgpu/sample.ts) at V = 50 000, top-p 0.9: (1) the host's float64 draw per
// token, ref's sampleKernel on the full row vs sampleCandidates on the row's top-k candidates (what the device
// selects), alternating in one process, median of 30 × 20 draws, ids checked equal; (2) where Dawn finds an adapter
// (SwiftShader without a GPU: bytes only, its time means nothing), the bytes the sample host step reads back per
// token without top-k (this row is flat for top-p 0.9: the 1024 candidates of ./sample-nucleus.mjs's path, not
// certified, then the full row) and with it (the candidates), from the backend's counts.
//   node bench/lab/sample-topk.mjs [k=40,1024]
const { sampleKernel } = await import('../../dist/backend/sample_rows.js');
const { candidateCap, candidateStride, sampleCandidates } = await import('../../dist/backend/sample_candidates.js');
const { Rng } = await import('../../dist/util/rng.js');
const ks = (process.argv[2] ?? '40,1024').split(',').map(Number);
const V = 50000,
  rng = new Rng(1);
const x = new Float32Array(V);
for (let i = 0; i < V; i++) x[i] = rng.normal() * 2;
/** @param {number[]} a */
const median = (a) => a.sort((p, q) => p - q)[a.length >> 1] ?? NaN;
for (const k of ks) {
  const o = { temperature: 1, topK: k, topP: 0.9, minP: 0 };
  const cap = candidateCap(k, 1024),
    w = new Int32Array(candidateStride(cap)),
    f = new Float32Array(w.buffer);
  const thr = Float32Array.from(x).sort().reverse()[k - 1] ?? -Infinity;
  let c = 0;
  for (let i = 0; i < V; i++)
    if ((x[i] ?? 0) >= thr) {
      w[2 + c] = i;
      f[2 + cap + c] = x[i] ?? 0;
      c++;
    }
  w[0] = c;
  const ids = new Int32Array(1),
    pr = new Float32Array(2);
  /** @type {number[]} */ const full = [];
  /** @type {number[]} */ const cand = [];
  for (let rep = 0; rep < 30; rep++) {
    const u = [rng.random()];
    let t = performance.now();
    for (let j = 0; j < 20; j++) sampleKernel({ data: x, shape: [1, V] }, { data: ids }, { data: pr }, o, u);
    full.push((performance.now() - t) / 20);
    const want = ids[0];
    t = performance.now();
    for (let j = 0; j < 20; j++) sampleCandidates(w, V, cap, { data: ids }, { data: pr }, o, u);
    cand.push((performance.now() - t) / 20);
    if (ids[0] !== want) throw new Error(`k ${k}: the candidates drew ${ids[0]}, the full row ${want}`);
  }
  console.log(
    `k ${k}: host draw per token: full row ${median(full).toFixed(3)} ms, ${c} candidates ${median(cand).toFixed(4)} ms`,
  );
}
try {
  const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
  const be = await createWebGpuBackend();
  const bx = be.alloc(V, 'f32'),
    bi = be.alloc(1, 'i32'),
    bp = be.alloc(2, 'f32');
  be.write(bx, x);
  /** @param {number} topK */
  const bytes = async (topK) => {
    const before = be.counts.sampleBytesRead;
    be.run(
      'sample',
      [{ buf: bx, shape: [1, V] }],
      [
        { buf: bi, shape: [1] },
        { buf: bp, shape: [1, 2] },
      ],
      {
        temperature: 1,
        topK,
        topP: 0.9,
        u: [0.5],
      },
    );
    await be.read(bi);
    return be.counts.sampleBytesRead - before;
  };
  const line = [`${be.describe()}: bytes read back per token: no top-k ${await bytes(0)}`];
  for (const k of ks) line.push(`top-k ${k} ${await bytes(k)}`);
  console.log(line.join(', '));
  be.dispose();
} catch (e) {
  console.log(`webgpu: ${/** @type {Error} */ (e).message}`);
}
