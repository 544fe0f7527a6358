// Attention kernel lab: forward and backward of two builds timed alternately in one process (the machine is shared
// and noisy: A, B, A, B…, best of `reps`), e.g. the tree before and after a kernel change, each built with
// `npm run build` (dist/ next to its build/).
// usage: node bench/lab/attention-ab.mjs <distA> <distB> [B,T,H,D=8,128,4,32] [threads=1] [reps=100]
// prints each build's best ms and B/A; causal, qOffset 0.
const [dA, dB] = [process.argv[2], process.argv[3]];
const [B, T, H, D] = (process.argv[4] || '8,128,4,32').split(',').map(Number);
const threads = Number(process.argv[5] || 1),
  reps = Number(process.argv[6] || 100);
/** A backend from the dist/ folder at `dist` with attention buffers, and its timed calls. @param {string} dist */
async function setup(dist) {
  const { createWasmBackend } = await import(dist + '/backend/wasm/backend.js');
  const be = await createWasmBackend({ threads });
  const n = B * T * H * D;
  const mk = (/** @type {number} */ len) => {
    const b = be.alloc(len, 'f32');
    const a = new Float32Array(len);
    for (let i = 0; i < len; i++) a[i] = Math.sin(i * 0.37) * 0.5;
    be.write(b, a);
    return b;
  };
  const q = mk(n),
    k = mk(n),
    v = mk(n),
    o = mk(n),
    lse = mk(B * H * T),
    dO = mk(n),
    dq = mk(n),
    dk = mk(n),
    dv = mk(n);
  const sh = [B, T, H, D];
  const V = (/** @type {unknown} */ b, s = sh) => ({ buf: b, shape: s });
  const attrs = { scale: 1 / Math.sqrt(D), causal: true, qOffset: 0 };
  return {
    be,
    fwd: () => be.run('attention', [V(q), V(k), V(v)], [V(o), V(lse, [B, H, T])], attrs),
    bwd: () =>
      be.run('attention_backward', [V(dO), V(q), V(k), V(v), V(o), V(lse, [B, H, T])], [V(dq), V(dk), V(dv)], attrs),
  };
}
const A = await setup(dA),
  Bv = await setup(dB);
/** @type {Record<string, Record<'fwd' | 'bwd', number>>} */
const best = { A: { fwd: Infinity, bwd: Infinity }, B: { fwd: Infinity, bwd: Infinity } };
/** @type {[string, Awaited<ReturnType<typeof setup>>][]} */
const builds = [
  ['A', A],
  ['B', Bv],
];
for (let r = 0; r < reps; r++)
  for (const [name, s] of builds)
    for (const f of /** @type {const} */ (['fwd', 'bwd'])) {
      const t0 = performance.now();
      s[f]();
      const dt = performance.now() - t0;
      if (dt < best[name][f]) best[name][f] = dt;
    }
console.log(
  `A fwd ${best.A.fwd.toFixed(3)} bwd ${best.A.bwd.toFixed(3)} | B fwd ${best.B.fwd.toFixed(3)} bwd ${best.B.bwd.toFixed(3)} | B/A fwd ${(best.B.fwd / best.A.fwd).toFixed(3)} bwd ${(best.B.bwd / best.A.bwd).toFixed(3)}`,
);
A.be.dispose();
Bv.be.dispose();
