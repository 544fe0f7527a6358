#!/usr/bin/env node
// The f16 path's tensor cores IN THE BACKEND (src/backend/webgpu/tensor_cores.ts, matmul_tc.ts), for the GPU kit:
//  (a) creates createWebGpuBackend({ matmulPrecision: 'f16' }) and prints describe() and the self-check's verdict
//      (`tensorCores`: on / off with the reason / absent: what the adapter lacks);
//  (b) numerics at GPT-2 shapes (a linear layer's three products at M tokens: x·Wᵀ NT, dY·W NN, dYᵀ·x TN, with bias
//      on the forward one): the tensor-core path against the emulated f16 kernel (tensorCoreMatmul.min = Infinity on
//      the same backend) and both against float64 on 4096 sampled outputs of the f16-rounded operands, in units of
//      each element's scale Σ|aᵢbᵢ| (+|bias|), next to the tolerance the self-check uses (tcTolerance(K));
//  (c) times x·Wᵀ at M16384 K768 N3072 (GPT-2's MLP up-projection over B16·T1024) through the backend: tensor cores,
//      the emulated f16 kernel, and a float32 backend, alternating, best of `reps` (each a batch of 5 calls and a
//      sync); TFLOP/s = 2·M·N·K / time.
//  (d) with tensor cores on, other tilings (2x2, 2x4, 4x2 result tiles a subgroup) of the same product, timed and
//      compared with the self-checked tiling's output.
// Where the path is not on, (b) and (c) still run the emulated and f32 kernels and say so: nothing is skipped silently.
// usage: node bench/lab/webgpu-tensorcore-backend.mjs [M,K,N for (c)=16384,768,3072] [reps=3] [M for (b)=1024] [tiles=4x4]
//        (after npm run build; on SwiftShader use small shapes: 256,64,192 1 128, and LLMTS_TC_TWIN=1 to rehearse the
//        tensor-core branches with the plain-WGSL twin kernel). `tiles`: result tiles a subgroup
//        (tensorCoreMatmul.rm × rn), set before the backend is made, so its self-check compiles and checks that tiling.
const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
const { tensorCoreMatmul } = await import('../../dist/backend/webgpu/matmul_tc_wgsl.js');
const { tcTolerance } = await import('../../dist/backend/webgpu/tensor_cores.js');
const { fromF16Bits, toF16Bits } = await import('../../dist/formats/half.js');
const { Rng } = await import('../../dist/util/rng.js');
const [TM, TK, TN] = (process.argv[2] || '16384,768,3072').split(',').map(Number);
const reps = Number(process.argv[3] || 3);
const NM = Number(process.argv[4] || 1024);
const [RM, RN] = (process.argv[5] || '4x4').split('x').map(Number);
tensorCoreMatmul.rm = RM;
tensorCoreMatmul.rn = RN;

const t0 = performance.now();
const be = await createWebGpuBackend({ matmulPrecision: 'f16' });
// a rehearsal on an adapter without subgroup matrices (run.sh --quick): the self-check again with the plain-WGSL twin
// of the product kernel, so every branch below runs (the twin is correct and slow: its numbers mean nothing)
if (process.env.LLMTS_TC_TWIN === '1' && be.tensorCores.status !== 'on') {
  const { TC_FEATURES } = await import('../../dist/backend/webgpu/tensor_cores.js');
  await be.checkTensorCores([...TC_FEATURES], undefined, undefined, ['twin']);
  console.log('LLMTS_TC_TWIN=1: the twin kernel stands in for the subgroup-matrix one (a rehearsal)');
}
console.log(`backend: ${be.describe()}; tiles a subgroup ${RM}x${RN}`);
console.log(
  `tensor cores: ${be.tensorCores.status}${be.tensorCores.spelling ? ` (${be.tensorCores.spelling})` : ''}: ${be.tensorCores.reason}`,
);
console.log(`  (created and self-checked in ${((performance.now() - t0) / 1e3).toFixed(2)} s)`);
const on = be.tensorCores.status === 'on';
const minOn = tensorCoreMatmul.min;

const rng = new Rng(2026);
/** @param {number} n */
const fill = (n) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.random() * 2 - 1) * 0.5;
  return a;
};
/** @param {any} b @param {number} n @param {Float32Array | null} data */
const put = (b, n, data) => {
  const buf = b.alloc(n, 'f32');
  b.write(buf, data ?? new Float32Array(n));
  return buf;
};
const V = (/** @type {any} */ buf, /** @type {number[]} */ shape) => ({ buf, shape });
const h = (/** @type {number} */ x) => fromF16Bits(toF16Bits(x));

// (b) numerics: x [M, 768], W [2304, 768] (qkv), dY [M, 2304]
{
  const M = NM,
    K = 768,
    N = 2304;
  const x = fill(M * K),
    w = fill(N * K),
    dy = fill(M * N),
    bias = fill(N);
  const X = put(be, M * K, x),
    W = put(be, N * K, w),
    DY = put(be, M * N, dy),
    BI = put(be, N, bias);
  /** [name, M, K, N, inputs, attrs, (i, j, k) → [a, b]] */
  const cases = [
    [
      'x·Wᵀ + bias (NT)',
      M,
      K,
      N,
      [V(X, [M, K]), V(W, [N, K]), V(BI, [N])],
      { transB: true },
      (/** @type {number} */ i, /** @type {number} */ j, /** @type {number} */ k) => [x[i * K + k], w[j * K + k]],
      bias,
    ],
    [
      'dY·W (NN)',
      M,
      N,
      K,
      [V(DY, [M, N]), V(W, [N, K])],
      {},
      (/** @type {number} */ i, /** @type {number} */ j, /** @type {number} */ k) => [dy[i * N + k], w[k * K + j]],
      null,
    ],
    [
      'dYᵀ·x (TN)',
      N,
      M,
      K,
      [V(DY, [M, N]), V(X, [M, K])],
      { transA: true },
      (/** @type {number} */ i, /** @type {number} */ j, /** @type {number} */ k) => [dy[k * N + i], x[k * K + j]],
      null,
    ],
  ];
  for (const [name, m, k, n, ins, attrs, at, bi] of /** @type {any[]} */ (cases)) {
    const O = be.alloc(m * n, 'f32');
    const run = async (/** @type {number} */ min) => {
      tensorCoreMatmul.min = min;
      const calls = be.tensorCoreCalls;
      be.run('matmul', ins, [V(O, [m, n])], attrs);
      const out = /** @type {Float32Array} */ (await be.read(O));
      tensorCoreMatmul.min = minOn;
      return { out, tc: be.tensorCoreCalls > calls };
    };
    const tc = await run(minOn),
      emu = await run(Number.POSITIVE_INFINITY);
    let dTc = 0,
      dEmu = 0,
      dBoth = 0;
    for (let s = 0; s < 4096; s++) {
      const i = (s * 7919) % m,
        j = (s * 104729) % n;
      let sum = 0,
        scale = 0;
      for (let q = 0; q < k; q++) {
        const [a, b] = at(i, j, q);
        const p = h(a) * h(b);
        sum += p;
        scale += Math.abs(p);
      }
      if (bi) {
        sum += bi[j];
        scale += Math.abs(bi[j]);
      }
      const o = i * n + j;
      dTc = Math.max(dTc, Math.abs(tc.out[o] - sum) / scale);
      dEmu = Math.max(dEmu, Math.abs(emu.out[o] - sum) / scale);
      dBoth = Math.max(dBoth, Math.abs(tc.out[o] - emu.out[o]) / scale);
    }
    const tol = tcTolerance(k);
    const ok = dTc <= tol && dEmu <= tol && dBoth <= tol;
    console.log(
      `numerics ${name} M${m} K${k} N${n}: ${tc.tc ? 'tensor cores' : 'NOT on tensor cores'}; |Δ|/scale vs float64 ` +
        `${dTc.toExponential(2)} (emulated f16 ${dEmu.toExponential(2)}), against each other ${dBoth.toExponential(2)}; ` +
        `tolerance ${tol.toExponential(2)}: ${ok ? 'PASS' : 'FAIL'}`,
    );
    be.free(O);
  }
  for (const b of [X, W, DY, BI]) be.free(b);
}

// (c) timing: x·Wᵀ at TM, TK, TN
{
  const be32 = await createWebGpuBackend();
  const mk = (/** @type {any} */ b) => {
    const x = put(b, TM * TK, fill(TM * TK)),
      w = put(b, TN * TK, fill(TN * TK)),
      y = b.alloc(TM * TN, 'f32');
    return { b, x, w, y };
  };
  const s16 = mk(be),
    s32 = mk(be32);
  const call = (/** @type {any} */ s) =>
    s.b.run('matmul', [V(s.x, [TM, TK]), V(s.w, [TN, TK])], [V(s.y, [TM, TN])], { transB: true });
  /** @type {[string, any, number][]} */
  const paths = [
    ['tensor cores (f16 backend)', s16, minOn],
    ['emulated f16 kernel', s16, Number.POSITIVE_INFINITY],
    ['f32 backend', s32, minOn],
  ];
  const best = paths.map(() => Number.POSITIVE_INFINITY);
  for (let r = 0; r <= reps; r++)
    for (let p = 0; p < paths.length; p++) {
      const [, s, min] = paths[p];
      tensorCoreMatmul.min = min;
      const c0 = be.tensorCoreCalls;
      const t = performance.now();
      for (let q = 0; q < 5; q++) call(s);
      await s.b.sync();
      const ms = (performance.now() - t) / 5;
      if (p === 0 && be.tensorCoreCalls === c0 && r === 0)
        console.log('timing: the tensor-core path is not on here: its row times the emulated kernel');
      if (r > 0) best[p] = Math.min(best[p], ms); // r = 0: compile and warm-up
      tensorCoreMatmul.min = minOn;
    }
  const flop = 2 * TM * TN * TK;
  for (let p = 0; p < paths.length; p++)
    console.log(
      `timing x·Wᵀ M${TM} K${TK} N${TN}: ${paths[p][0].padEnd(28)} ${best[p].toFixed(2)} ms, ${(flop / best[p] / 1e9).toFixed(1)} TFLOP/s`,
    );
  console.log(
    `tensor cores ${on ? 'on' : 'not on'}; speed-up over the emulated f16 kernel ×${(best[1] / best[0]).toFixed(2)}, over f32 ×${(best[2] / best[0]).toFixed(2)}`,
  );
  be32.dispose();
  // (d) with tensor cores on: other tilings of the product kernel (not self-checked: compared here with the checked
  //     tiling's output on the same inputs), last, since a tiling that does not compile breaks the backend
  if (on) {
    const ref = /** @type {Float32Array} */ ((await be.read(s16.y)).slice());
    for (const [rm, rn] of [
      [2, 2],
      [2, 4],
      [4, 2],
    ]) {
      try {
        tensorCoreMatmul.rm = rm;
        tensorCoreMatmul.rn = rn;
        call(s16);
        const got = /** @type {Float32Array} */ (await be.read(s16.y));
        let d = 0;
        for (let i = 0; i < got.length; i += 97) d = Math.max(d, Math.abs(got[i] - ref[i]));
        let ms = Number.POSITIVE_INFINITY;
        for (let r = 0; r < reps; r++) {
          const t = performance.now();
          for (let q = 0; q < 5; q++) call(s16);
          await be.sync();
          ms = Math.min(ms, (performance.now() - t) / 5);
        }
        console.log(
          `tiling ${rm}x${rn}: ${ms.toFixed(2)} ms, ${(flop / ms / 1e9).toFixed(1)} TFLOP/s; max |Δ| against ${RM}x${RN} ${d.toExponential(2)}`,
        );
      } catch (e) {
        console.log(`tiling ${rm}x${rn}: failed: ${/** @type {Error} */ (e).message.split('\n')[0]}`);
        break;
      } finally {
        tensorCoreMatmul.rm = RM;
        tensorCoreMatmul.rn = RN;
      }
    }
  }
}
be.dispose();
process.exit(0);
