#!/usr/bin/env node
// A/B of two builds of the kernel module (build/kernels-relaxed.wasm here vs another tree's), ONE thread, calling
// matmul_q8 and matmul_bf16 directly: µs per call on decode shapes with the weights in cache, and one stories110M
// token's matmuls streamed from DRAM (12 × (4 × 768×768, 2 × 2048×768, 768×2048) + 32000×768). Interleaved A, B,
// A, B…; medians. The other build: compile the previous src/backend/wasm/assembly (e.g. `git show REV:path` into a
// folder) with scripts/build-wasm.mjs's flags. usage: [MODEL=15M] [KINDS=q8,bf16] [M=1] node bench/lab/q8-ab.mjs <other-build-dir> [relaxed|simd]
import v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const here = path.dirname(fileURLToPath(import.meta.url));
const variant = process.argv[3] ?? 'relaxed';
const files = {
  new: path.join(here, `../../build/kernels-${variant}.wasm`),
  old: path.join(process.argv[2], `kernels-${variant}.wasm`),
};
// MODEL=15M: stories15M's matmuls instead (6 × (4 × 288×288, 2 × 768×288, 288×768) + 32000×288, ≈ 16 MB q8: L3-sized)
const small = process.env.MODEL === '15M';
const [C, F, L] = small ? [288, 768, 6] : [768, 2048, 12];
const mats = [];
for (let l = 0; l < L; l++) mats.push([C, C], [C, C], [C, C], [C, C], [F, C], [F, C], [C, F]);
mats.push([32000, C]);
const M = Number(process.env.M ?? 1); // rows of x (4: the prefill path of matmul_q8)
const kinds = process.env.KINDS ? process.env.KINDS.split(',') : ['q8', 'bf16'];
/** @typedef {{ ex: Record<string, (...a: number[]) => number>, X: number, OUT: number, SCR: number, layout: { N: number, K: number, w: number, sc: number }[], f32: Float32Array }} Inst */
/** @type {Record<string, Inst>} */
const inst = {};
for (const [name, file] of Object.entries(files)) {
  const bytes = mats.reduce((a, [N, K]) => a + N * K * 2 + (N * K) / 8, 0);
  const memory = new WebAssembly.Memory({
    initial: Math.ceil((bytes + (8 << 20)) / 65536),
    maximum: 65536,
    shared: true,
  });
  const { instance } = await WebAssembly.instantiate(readFileSync(file), {
    env: {
      memory,
      abort() {
        throw new Error('abort');
      },
    },
  });
  let p = 4 << 20;
  const X = p;
  p += 4 * 2048 * 4;
  const OUT = p;
  p += 4 * 32000 * 4;
  const SCR = p;
  p += 1 << 20;
  const layout = mats.map(([N, K]) => {
    const w = p;
    p += N * K * 2;
    const sc = p;
    p += (N * K) / 8;
    return { N, K, w, sc };
  });
  // deterministic fill: int8 weights / bf16 words, positive scales, x with a few outliers
  let s = 12345;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const f32 = new Float32Array(memory.buffer),
    u16 = new Uint16Array(memory.buffer);
  for (const m of layout) {
    for (let i = 0; i < m.N * m.K; i++) u16[m.w / 2 + i] = (0x3c00 + ((rnd() * 512) | 0)) ^ (rnd() < 0.5 ? 0x8000 : 0); // bf16 ±(2⁻⁷…)
    for (let i = 0; i < (m.N * m.K) / 32; i++) f32[m.sc / 4 + i] = 0.001 * (0.5 + rnd());
  }
  for (let k = 0; k < 4 * 2048; k++) f32[X / 4 + k] = (rnd() - 0.5) * (rnd() < 0.01 ? 40 : 2);
  inst[name] = {
    ex: /** @type {Record<string, (...a: number[]) => number>} */ (/** @type {unknown} */ (instance.exports)),
    X,
    OUT,
    SCR,
    layout,
    f32,
  };
}
const med = (/** @type {number[]} */ a) => /** @type {number} */ (a.slice().sort((x, y) => x - y)[a.length >> 1]);
/** @param {Inst} I @param {string} kind @param {Inst['layout'][number]} m */
const call = (I, kind, m) =>
  kind === 'q8'
    ? I.ex.matmul_q8(I.X, m.w, m.sc, I.OUT, M, m.N, m.K, I.SCR, 0, m.N)
    : I.ex.matmul_bf16(I.X, m.w, I.OUT, M, m.N, m.K, I.SCR, 0, m.N);
// agreement
for (const kind of kinds)
  for (const mi of [0, 6, mats.length - 1]) {
    const m = inst.old.layout[mi];
    call(inst.old, kind, m);
    call(inst.new, kind, m);
    let d = 0,
      n = 0;
    for (let j = 0; j < M * m.N; j++) {
      const a = inst.old.f32[inst.old.OUT / 4 + j],
        b = inst.new.f32[inst.new.OUT / 4 + j];
      d += (a - b) ** 2;
      n += a * a;
    }
    console.log(`${kind} ${m.N}x${m.K}: new vs old rel. diff ${Math.sqrt(d / n).toExponential(2)}`);
  }
for (const kind of kinds) {
  for (const mi of [0, 4, 6]) {
    /** @type {Record<string, number[]>} */
    const ts = { old: [], new: [] };
    for (let rep = 0; rep < 21; rep++)
      for (const v of rep & 1 ? ['new', 'old'] : ['old', 'new']) {
        const I = inst[v],
          m = I.layout[mi];
        const t0 = performance.now();
        for (let r = 0; r < 50; r++) call(I, kind, m);
        ts[v].push((performance.now() - t0) / 50);
      }
    const m = mats[mi];
    console.log(
      `${kind} ${m[0]}x${m[1]} in cache: old ${(med(ts.old) * 1000).toFixed(1)}µs new ${(med(ts.new) * 1000).toFixed(1)}µs → ×${(med(ts.old) / med(ts.new)).toFixed(2)}`,
    );
  }
  /** @type {Record<string, number[]>} */
  const ts = { old: [], new: [] };
  for (let rep = 0; rep < 11; rep++)
    for (const v of rep & 1 ? ['new', 'old'] : ['old', 'new']) {
      const I = inst[v];
      const t0 = performance.now();
      for (const m of I.layout) call(I, kind, m);
      ts[v].push(performance.now() - t0);
    }
  const bytes = mats.reduce((a, [N, K]) => a + N * K * (kind === 'q8' ? 1.125 : 2), 0);
  console.log(
    `${kind} one ${small ? '15M token (L3-sized)' : '110M token from DRAM'}: old ${med(ts.old).toFixed(2)}ms (${(bytes / med(ts.old) / 1e6).toFixed(1)}GB/s) new ${med(ts.new).toFixed(2)}ms (${(bytes / med(ts.new) / 1e6).toFixed(1)}GB/s) → ×${(med(ts.old) / med(ts.new)).toFixed(2)}`,
  );
}
process.exit(0);
