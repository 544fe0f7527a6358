#!/usr/bin/env node
// Tensor-core lab (issue 13's f16 path), for the GPU kit: C[M, N] = A[M, K]·B[K, N] with f16 operands and f32
// accumulation through WGSL's `chromium_experimental_subgroup_matrix` (16×16×16 f16 → f32 tiles), on an adapter that
// offers it: NVIDIA with the Dawn toggles of ../shared/design/GPU.md (`allow_unsafe_apis,vulkan_enable_f16_on_nvidia`).
// Each subgroup (one workgroup of 32 invocations) computes RM×RN tiles of 16×16, operands straight from global
// memory, the left tiles reused across RN right tiles and the right across RM left: RM×RN = 1×1 is GPU.md's naive
// kernel (19.5 TFLOP/s at 4096³ there). Checked first at 256³ against the float64 product of the f16-rounded
// operands (relative error), then timed: `reps` dispatches in one compute pass, one submit; TFLOP/s = 2·M·N·K·reps / t.
// WRITTEN WITHOUT THE HARDWARE: SwiftShader has neither shader-f16 nor subgroup matrices, so on any adapter without
// them this prints what is missing and exits 0. Dawn's WGSL spelling of the builtins changed over versions (the
// layout as a template argument or as a bool argument): both are generated and the one that compiles is used.
// usage: node bench/lab/webgpu-tensorcore.mjs [M,K,N=4096,4096,4096] [reps=20] [tiles=1x1,2x2,2x4,4x4]  (after npm run build)
const { loadNodeWebGpu, withVulkanEnv } = await import('../../dist/backend/webgpu/node_gpu.js');
const { f32BitsToF16Bits, f32ToBits } = await import('../../dist/formats/half.js');
const [M, K, N] = (process.argv[2] || '4096,4096,4096').split(',').map(Number);
const reps = Number(process.argv[3] || 20);
const tilings = (process.argv[4] || '1x1,2x2,2x4,4x4').split(',').map((t) => t.split('x').map(Number));

const mod = await loadNodeWebGpu();
/** @type {any} */
let gpu = null;
/** @type {any} */
const adapter = await withVulkanEnv(async () => {
  gpu = mod.create(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia']);
  return gpu.requestAdapter({ powerPreference: 'high-performance' });
});
if (!adapter) {
  console.log('tensorcore: no WebGPU adapter');
  process.exit(0);
}
const info = adapter.info ?? {};
console.log(`tensorcore: adapter ${info.vendor} ${info.architecture} (${info.description})`);
const need = ['shader-f16', 'chromium-experimental-subgroup-matrix', 'subgroups'];
const missing = need.filter((f) => !adapter.features.has(f));
if (missing.length) {
  console.log(`tensorcore: skipped, the adapter lacks ${missing.join(', ')}`);
  process.exit(0);
}
console.log(`subgroupMatrixConfigs: ${JSON.stringify(info.subgroupMatrixConfigs ?? null)}`);
const device = await adapter.requestDevice({
  requiredFeatures: need,
  requiredLimits: {
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  },
});
const G = /** @type {any} */ (globalThis).GPUBufferUsage ?? {
  STORAGE: 0x80,
  COPY_DST: 0x8,
  COPY_SRC: 0x4,
  MAP_READ: 0x1,
};

/**
 * The kernel for RM×RN tiles a subgroup, in spelling `s` (0: layout as a template argument, 1: as a bool).
 * @param {number} RM @param {number} RN @param {number} k @param {number} n @param {0 | 1} s
 */
function kernel(RM, RN, k, n, s) {
  const L = 'subgroup_matrix_left<f16, 16, 16>',
    R = 'subgroup_matrix_right<f16, 16, 16>',
    Res = 'subgroup_matrix_result<f32, 16, 16>';
  const load = (
    /** @type {string} */ T,
    /** @type {string} */ buf,
    /** @type {string} */ off,
    /** @type {number} */ stride,
  ) =>
    s === 0
      ? `subgroupMatrixLoad<${T}, row_major>(&${buf}, ${off}, ${stride}u)`
      : `subgroupMatrixLoad<${T}>(&${buf}, ${off}, false, ${stride}u)`;
  const store = (/** @type {string} */ off, /** @type {string} */ v) =>
    s === 0
      ? `subgroupMatrixStore<row_major>(&C, ${off}, ${v}, ${n}u);`
      : `subgroupMatrixStore(&C, ${off}, ${v}, false, ${n}u);`;
  const lines = [];
  for (let i = 0; i < RM; i++) for (let j = 0; j < RN; j++) lines.push(`var c${i}_${j} = ${Res}();`);
  const body = [];
  for (let i = 0; i < RM; i++) body.push(`let a${i} = ${load(L, 'A', `(row0 + ${16 * i}u) * ${k}u + kk`, k)};`);
  for (let j = 0; j < RN; j++) {
    body.push(`let b${j} = ${load(R, 'B', `kk * ${n}u + col0 + ${16 * j}u`, n)};`);
    for (let i = 0; i < RM; i++) body.push(`c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`);
  }
  const out = [];
  for (let i = 0; i < RM; i++)
    for (let j = 0; j < RN; j++) out.push(store(`(row0 + ${16 * i}u) * ${n}u + col0 + ${16 * j}u`, `c${i}_${j}`));
  return `enable f16;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(32) fn main(@builtin(workgroup_id) wg: vec3<u32>) {
  let row0 = wg.y * ${16 * RM}u;
  let col0 = wg.x * ${16 * RN}u;
  ${lines.join('\n  ')}
  for (var kk = 0u; kk < ${k}u; kk += 16u) {
    ${body.join('\n    ')}
  }
  ${out.join('\n  ')}
}`;
}

/** A compiled pipeline for the kernel, whichever spelling compiles (null, with the errors printed, if neither). */
async function pipeline(
  /** @type {number} */ RM,
  /** @type {number} */ RN,
  /** @type {number} */ k,
  /** @type {number} */ n,
) {
  const errs = [];
  for (const s of /** @type {(0 | 1)[]} */ ([0, 1])) {
    const module = device.createShaderModule({ code: kernel(RM, RN, k, n, s) });
    const ci = await module.getCompilationInfo();
    const e = ci.messages.filter((/** @type {any} */ x) => x.type === 'error');
    if (e.length) {
      errs.push(
        `spelling ${s}: ${e.map((/** @type {any} */ x) => `${x.lineNum}:${x.linePos} ${x.message}`).join(' | ')}`,
      );
      continue;
    }
    device.pushErrorScope('validation');
    const p = await device
      .createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } })
      .catch((/** @type {Error} */ x) => x);
    const v = await device.popErrorScope();
    if (p instanceof Error || v) {
      errs.push(`spelling ${s}: pipeline: ${p instanceof Error ? p.message : v.message}`);
      continue;
    }
    return { p, s };
  }
  console.log(`  ${RM}x${RN}: does not compile: ${errs.join(' || ')}`);
  return null;
}

/** f16 bits of n values sin(i·a + b)·0.5, and their float values. */
function operand(/** @type {number} */ n, /** @type {number} */ a, /** @type {number} */ b) {
  const bits = new Uint16Array(n),
    vals = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    bits[i] = f32BitsToF16Bits(f32ToBits(Math.sin(i * a + b) * 0.5));
    vals[i] = f16ToNumber(bits[i]);
  }
  return { bits, vals };
}
/** The value of binary16 bits h. */
function f16ToNumber(/** @type {number} */ h) {
  const e = (h >> 10) & 31,
    f = h & 1023,
    sg = h & 0x8000 ? -1 : 1;
  if (e === 0) return sg * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : sg * Number.POSITIVE_INFINITY;
  return sg * (1 + f / 1024) * 2 ** (e - 15);
}

function buffer(/** @type {ArrayBufferView} */ data, /** @type {number} */ usage) {
  const b = device.createBuffer({ size: Math.ceil(data.byteLength / 4) * 4, usage: usage | G.COPY_DST });
  device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, Math.ceil(data.byteLength / 4) * 4);
  return b;
}

/** Run the kernel `times` times in one pass on fresh operands of m×k, k×n; returns { ms, out? }. */
async function run(
  /** @type {any} */ pl,
  /** @type {number} */ RM,
  /** @type {number} */ RN,
  /** @type {number} */ m,
  /** @type {number} */ k,
  /** @type {number} */ n,
  /** @type {number} */ times,
  /** @type {boolean} */ readBack,
) {
  const a = operand(m * k, 0.37, 1),
    b = operand(k * n, 0.23, 2);
  const A = buffer(a.bits, G.STORAGE),
    B = buffer(b.bits, G.STORAGE),
    C = device.createBuffer({ size: m * n * 4, usage: G.STORAGE | G.COPY_SRC });
  const bg = device.createBindGroup({
    layout: pl.p.getBindGroupLayout(0),
    entries: [A, B, C].map((buf, i) => ({ binding: i, resource: { buffer: buf } })),
  });
  const go = async (/** @type {number} */ t) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pl.p);
    pass.setBindGroup(0, bg);
    for (let r = 0; r < t; r++) pass.dispatchWorkgroups(n / (16 * RN), m / (16 * RM));
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await go(1);
  const t0 = performance.now();
  await go(times);
  const ms = performance.now() - t0;
  let err = null;
  if (readBack) {
    const rb = device.createBuffer({ size: m * n * 4, usage: G.MAP_READ | G.COPY_DST });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(C, 0, rb, 0, m * n * 4);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(1);
    const got = new Float32Array(rb.getMappedRange().slice(0));
    let num = 0,
      den = 0;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a.vals[i * k + q] * b.vals[q * n + j];
        num = Math.max(num, Math.abs(got[i * n + j] - s));
        den = Math.max(den, Math.abs(s));
      }
    err = num / den;
    rb.destroy();
  }
  A.destroy();
  B.destroy();
  C.destroy();
  return { ms, err };
}

console.log(`C[${M},${N}] = A[${M},${K}]·B[${K},${N}], f16 operands, f32 accumulation, ${reps} dispatches in one pass`);
for (const [RM, RN] of tilings) {
  if (M % (16 * RM) || N % (16 * RN) || K % 16) {
    console.log(`  ${RM}x${RN}: skipped (shape not a multiple of the tile)`);
    continue;
  }
  const small = await pipeline(RM, RN, 256, 256);
  if (!small) continue;
  const check = await run(small, RM, RN, 256, 256, 256, 1, true);
  const big = await pipeline(RM, RN, K, N);
  if (!big) continue;
  const t = await run(big, RM, RN, M, K, N, reps, false);
  const tflops = (2 * M * N * K * reps) / (t.ms / 1e3) / 1e12;
  console.log(
    `  ${RM}x${RN} tiles a subgroup (spelling ${big.s}): ${tflops.toFixed(1)} TFLOP/s, max error vs float64 ${check.err?.toExponential(2)} (256³)`,
  );
}
device.destroy?.();
void gpu;
process.exit(0);
