#!/usr/bin/env node
// webgpu's top-p / min-p `sample` without top-k (src/backend/webgpu/sample.ts, plan 'nucleus') at V = 50 000:
// (1) the host's float64 draw per token: ref's sampleKernel on the full row vs sampleNucleus (certificate + draw) on
// the row's 1 024 largest logits and tail sums (what the device writes), alternating in one process, median of
// 30 × 20 draws, ids checked equal; (2) the fraction of rows certified (drawn from the candidates, not the full row)
// on Zipf-like rows (logit of rank r = −s·ln r + 0.3·normal; s ≥ 1.5 is peaked, 1.1 near flat), 40 rows each;
// (3) where Dawn finds an adapter (SwiftShader without a GPU: bytes only), the bytes read back per token, peaked and
// flat. The slots here are computed in float64 (the device's are float32 within the certificate's bound).
//   node bench/lab/sample-nucleus.mjs
const { sampleKernel } = await import('../../dist/backend/sample_rows.js');
const { nucleusConstants, nucleusStride, sampleNucleus } = await import('../../dist/backend/sample_nucleus.js');
const { Rng } = await import('../../dist/util/rng.js');
const V = 50000,
  CAP = 1024,
  rng = new Rng(1);

/** @param {number} s */
function zipfRow(s) {
  const x = new Float32Array(V),
    perm = Array.from({ length: V }, (_, i) => i);
  for (let i = V - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  for (let r = 0; r < V; r++) x[perm[r]] = -s * Math.log(r + 1) + 0.3 * rng.normal();
  return x;
}

/** The device's slot for row x at temperature T (float64 tail sums). @param {Float32Array} x @param {number} T */
function slot(x, T) {
  const w = new Int32Array(nucleusStride(CAP)),
    f = new Float32Array(w.buffer);
  const sorted = Float32Array.from(x).sort().reverse(),
    thr = sorted[CAP - 1],
    mx = sorted[0],
    c = nucleusConstants(T, V);
  let n = 0,
    ts = 0,
    ta = 0,
    e = 0;
  for (let i = 0; i < V; i++) {
    e += Math.exp(x[i] - mx);
    if (x[i] >= thr) {
      if (n < CAP) {
        w[4 + n] = i;
        f[4 + CAP + n] = x[i];
      }
      n++;
    } else {
      const y = (x[i] - mx) * c.invT;
      if (y >= -80) {
        ts += Math.exp(y);
        ta += (c.c0 + c.c1 * Math.abs(y)) * Math.exp(y);
      }
    }
  }
  w[0] = n;
  f[1] = mx + Math.log(e);
  f[2] = ts;
  f[3] = ta * 1.01;
  return w;
}

/** @param {number[]} a */
const median = (a) => a.sort((p, q) => p - q)[a.length >> 1] ?? NaN;
const ids = new Int32Array(1),
  pr = new Float32Array(2);
for (const o of [
  { temperature: 1, topK: 0, topP: 0.9, minP: 0 },
  { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
]) {
  const x = zipfRow(2),
    w = slot(x, o.temperature);
  /** @type {number[]} */ const full = [];
  /** @type {number[]} */ const cand = [];
  for (let rep = 0; rep < 30; rep++) {
    const u = [rng.random()];
    let t = performance.now();
    for (let j = 0; j < 20; j++) sampleKernel({ data: x, shape: [1, V] }, { data: ids }, { data: pr }, o, u);
    full.push((performance.now() - t) / 20);
    const want = ids[0];
    t = performance.now();
    let ok = true;
    for (let j = 0; j < 20; j++) ok = sampleNucleus(w, V, CAP, { data: ids }, { data: pr }, o, u);
    cand.push((performance.now() - t) / 20);
    if (!ok) throw new Error(`${JSON.stringify(o)}: not certified`);
    if (ids[0] !== want) throw new Error(`${JSON.stringify(o)}: the candidates drew ${ids[0]}, the full row ${want}`);
  }
  console.log(
    `top-p ${o.topP} min-p ${o.minP}, Zipf s 2: host draw per token: full row ${median(full).toFixed(3)} ms, ` +
      `certificate + draw on ${CAP} candidates ${median(cand).toFixed(4)} ms`,
  );
}
/** @type {[string, { temperature: number, topK: number, topP: number, minP: number }][]} */
const settings = [
  ['top-p 0.9', { temperature: 1, topK: 0, topP: 0.9, minP: 0 }],
  ['top-p 0.95', { temperature: 1, topK: 0, topP: 0.95, minP: 0 }],
  ['top-p 0.9 T 0.7', { temperature: 0.7, topK: 0, topP: 0.9, minP: 0 }],
  ['min-p 0.05', { temperature: 1, topK: 0, topP: 1, minP: 0.05 }],
  ['top-p 0.95 min-p 0.05', { temperature: 1, topK: 0, topP: 0.95, minP: 0.05 }],
];
for (const s of [1.1, 1.3, 1.5, 2, 3]) {
  const rows = Array.from({ length: 40 }, () => zipfRow(s));
  const line = [];
  for (const [name, o] of settings) {
    let c = 0;
    for (const x of rows) if (sampleNucleus(slot(x, o.temperature), V, CAP, { data: ids }, { data: pr }, o, [0.5])) c++;
    line.push(`${name} ${((100 * c) / rows.length).toFixed(0)} %`);
  }
  const p1 = rows.map((x) => {
    let mx = -Infinity,
      e = 0;
    for (const v of x) mx = Math.max(mx, v);
    for (const v of x) e += Math.exp(v - mx);
    return 1 / e;
  });
  console.log(`Zipf s ${s} (median top-1 probability ${median(p1).toFixed(2)}): certified ${line.join(', ')}`);
}
try {
  const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
  const be = await createWebGpuBackend();
  const bx = be.alloc(V, 'f32'),
    bi = be.alloc(1, 'i32'),
    bp = be.alloc(2, 'f32');
  /** @param {Float32Array} x */
  const bytes = async (x) => {
    be.write(bx, x);
    const before = be.counts.sampleBytesRead;
    const outs = [
      { buf: bi, shape: [1] },
      { buf: bp, shape: [1, 2] },
    ];
    be.run('sample', [{ buf: bx, shape: [1, V] }], outs, { temperature: 1, topP: 0.9, u: [0.5] });
    await be.read(bi);
    return be.counts.sampleBytesRead - before;
  };
  const flat = new Float32Array(V).map(() => rng.normal() * 0.5);
  console.log(
    `${be.describe()}: bytes read back per token, top-p 0.9: peaked (Zipf 2) ${await bytes(zipfRow(2))}, ` +
      `flat (falls back) ${await bytes(flat)}, counts ${JSON.stringify({ rows: be.counts.sampleNucleusRows, fallbacks: be.counts.sampleNucleusFallbacks })}`,
  );
  be.dispose();
} catch (e) {
  console.log(`webgpu: ${/** @type {Error} */ (e).message}`);
}
