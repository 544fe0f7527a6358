/**
 * WGSL and plan of the tensor-core matmul (the f16 path's fast kernel, ./matmul_tc.ts): out[p] = alpha·op(a[p])·op(b[p])
 * (+ out) (+ bias) with op(a) and op(b) rounded to binary16 and products summed in f32 by 16×16×16 f16 → f32 subgroup
 * matrices (WGSL `chromium_experimental_subgroup_matrix`, Dawn; tensor cores on NVIDIA). Two kernels a call:
 *
 *   1. cast (`castShader`), once per operand: op(x) [R, C] (x stored [R, C], or [C, R] when transposed) → a
 *      zero-padded row-major [Rp, Cp] array of binary16 bits, two a u32 word (element 2w in the low half, as WGSL's
 *      array<f16> lays them out). Rounding with integer operations only, bit for bit src/formats/half.ts's
 *      f32BitsToF16Bits (round to nearest even, ±inf past 65504, subnormals kept, NaN kept) — the value `f16r`
 *      (./matmul_wgsl.ts) gives the emulated kernels. The operands are read as u32 words: no float ever passes
 *      through a register before it is rounded. Every layout (NN, NT, TN, TT) becomes one layout here.
 *   2. the product (`tensorCoreShader`): a workgroup of 32 invocations (one subgroup on NVIDIA) computes a block of
 *      16·RM × 16·RN outputs as RM×RN result matrices, loading per k step RM left and RN right 16×16 f16 tiles
 *      straight from the padded operands (row-major: no bounds checks, padding is zero), then writes each result
 *      tile through workgroup memory, where each invocation applies out = alpha·sum (+ out) (+ bias) in f32 (the
 *      emulated kernels' `storeOutput`, same order) to the elements inside M×N. Ragged M, N, K are padded, not a
 *      fallback: a block past M or N computes zeros and writes nothing.
 *
 *   padded sizes: Mp = ceil(M / 16RM)·16RM, Np = ceil(N / 16RN)·16RN, Kp = ceil(K / 16)·16
 *   params: M, N, K, aBatch, bBatch (f16 elements of the padded operands, 0 if shared), oBatch, alpha, Kp, Np
 *   grid: [Np / 16RN, Mp / 16RM, batches]
 *
 * Dawn's spelling of the builtins: `SPELLINGS`. 'template' (`subgroupMatrixLoad<T, row_major>(&A, offset, stride)`,
 * `subgroupMatrixStore<row_major>(&C, offset, value, stride)`) is the current one: the Dawn of the `webgpu` package
 * (0.6.2) compiles it without a message; 'bool' (`subgroupMatrixLoad<T>(&A, offset, col_major, stride)`, the form of
 * Dawn's older tint tests) still compiles there, with a "use of deprecated builtin" warning on every load and store.
 * The backend tries them in that order and keeps the first that compiles (./tensor_cores.ts). Dawn's null backend
 * (no GPU; it offers subgroup matrices under allow_unsafe_apis) compiles and validates both, and the backend's
 * dispatches of them (test/webgpu_tc_dawn_null.test.ts). WRITTEN WITHOUT THE HARDWARE: nothing here has run on a
 * tensor core; the self-check of ./tensor_cores.ts decides whether it is used.
 */
import { MATMUL_PARAMS, matmulBindings, storeOutput } from './matmul_wgsl.js';

/**
 * The two WGSL spellings of the subgroup-matrix builtins tried on hardware, in order, and 'twin': the same kernel
 * with each subgroup-matrix operation done by plain WGSL (each invocation 8 elements of a tile, k in order, operands
 * decoded from the binary16 bits): it runs anywhere (SwiftShader), so tests check the cast, the padding, the plan,
 * the batch offsets and the epilogue — everything but the subgroup-matrix builtins themselves.
 */
export type TcSpelling = 'bool' | 'template' | 'twin';
export const SPELLINGS: readonly TcSpelling[] = ['template', 'bool'];

/** Side of a subgroup-matrix tile (16×16×16 f16 → f32, the configuration NVIDIA offers). */
export const TILE = 16;
/** Invocations of a workgroup of the product kernel: one NVIDIA subgroup. */
export const TC_WORKGROUP = 32;
/** Invocations of a workgroup of the cast kernel. */
export const CAST_WORKGROUP = 256;

/**
 * When a matmul call takes the tensor-core kernels (with them on): M and N both at least `min`, K at least `minK`
 * (below, the cast passes cost more than they save; decode's few rows keep the matrix-vector kernel). `rm` × `rn`:
 * result tiles a subgroup (a block of 16rm × 16rn outputs). `wg`: invocations of the product kernel's workgroup,
 * TC_WORKGROUP (one 32-wide subgroup); Dawn refuses a subgroup-matrix kernel whose workgroup is not a multiple of
 * the adapter's largest subgroup, so only a test on Dawn's null backend (subgroups up to 128) sets it otherwise, to
 * compile and validate the kernel there. Settable for comparisons (min Infinity: never).
 */
export const tensorCoreMatmul = { min: 64, minK: 16, rm: 4, rn: 4, wg: TC_WORKGROUP };

/** What one call dispatches on the tensor-core path. */
export interface TcPlan {
  M: number;
  N: number;
  K: number;
  Mp: number;
  Np: number;
  Kp: number;
  rm: number;
  rn: number;
  /** Invocations a workgroup of the product kernel (tensorCoreMatmul.wg). */
  wg: number;
  /** Workgroups of the product kernel: [x (column blocks), y (row blocks), batches]. */
  grid: [number, number, number];
  /** The cast of op(a): op(a) is [M, K]; a is stored [K, M] when `trans`. Words of one padded batch: Mp·Kp/2. */
  castA: { R: number; C: number; Rp: number; Cp: number; trans: boolean; batches: number };
  /** The cast of op(b): op(b) is [K, N]; b is stored [N, K] when `trans`. */
  castB: { R: number; C: number; Rp: number; Cp: number; trans: boolean; batches: number };
}

const up = (x: number, m: number): number => Math.ceil(x / m) * m;

/**
 * The plan of op(a)[M, K]·op(b)[K, N] over `batches` (a and b shared across them when `aShared` / `bShared`), or null
 * where the call is below the threshold or too large for one dispatch (65535 workgroups a dimension) or one binding.
 */
export function tcPlan(
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  batches: number,
  aShared: boolean,
  bShared: boolean,
  maxBindingBytes: number,
  sel: typeof tensorCoreMatmul = tensorCoreMatmul,
): TcPlan | null {
  if (!(M >= sel.min && N >= sel.min && K >= sel.minK)) return null;
  const rm = sel.rm,
    rn = sel.rn;
  const Mp = up(M, TILE * rm),
    Np = up(N, TILE * rn),
    Kp = up(K, TILE);
  const grid: [number, number, number] = [Np / (TILE * rn), Mp / (TILE * rm), batches];
  if (grid.some((g) => g > 65535)) return null;
  const aBatches = aShared ? 1 : batches,
    bBatches = bShared ? 1 : batches;
  if (Mp * Kp * 2 * aBatches > maxBindingBytes || Kp * Np * 2 * bBatches > maxBindingBytes) return null;
  const castGroups = (R: number, C: number, b: number) => Math.ceil((R * C) / 2 / CAST_WORKGROUP) * b;
  if (castGroups(Mp, Kp, 1) > 65535 * 65535 || castGroups(Kp, Np, 1) > 65535 * 65535) return null;
  return {
    M,
    N,
    K,
    Mp,
    Np,
    Kp,
    rm,
    rn,
    wg: sel.wg,
    grid,
    castA: { R: M, C: K, Rp: Mp, Cp: Kp, trans: transA, batches: aBatches },
    castB: { R: K, C: N, Rp: Kp, Cp: Np, trans: transB, batches: bBatches },
  };
}

/**
 * WGSL `f16bits(u)`: the binary16 bits (in the low 16 of a u32) of the f32 with bits `u`, round to nearest even —
 * src/formats/half.ts's f32BitsToF16Bits line for line, in integer operations.
 */
export const F16_BITS = `fn f16bits(u: u32) -> u32 {
  let s = (u >> 16u) & 0x8000u;
  let ex = (u >> 23u) & 0xffu;
  let mant = u & 0x7fffffu;
  if (ex == 0xffu) {
    if (mant == 0u) { return s | 0x7c00u; }
    let nm = mant >> 13u;
    return s | 0x7c00u | select(nm, 0x200u, nm == 0u);
  }
  let e = i32(ex) - 112;
  if (e >= 31) { return s | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return s; }
    let full = mant | 0x800000u;
    let shift = u32(14 - e);
    var m = full >> shift;
    let rem = full & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (m & 1u) == 1u)) { m += 1u; }
    return s | m;
  }
  var h = s | (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) { h += 1u; }
  return h;
}
`;

/**
 * The cast kernel of one operand layout: X (f32 bits, as u32) → H (binary16 pairs). One invocation a word of the
 * padded [Rp, Cp] output; the flat word index from a 2-D grid (./core.ts `grid`), the batch on z.
 *   params: R, C, Cp, words a batch (Rp·Cp/2), X's batch stride (elements; 0 when shared)
 *   op(x)[r, c] = X[xOff + r·C + c], or X[xOff + c·R + r] when `trans`; 0 outside R×C
 */
export function castShader(trans: boolean): string {
  const at = trans ? 'c * R + r' : 'r * C + c';
  return `@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> H: array<u32>;
${F16_BITS}
fn elem(r: u32, c: u32, R: u32, C: u32, xOff: u32) -> u32 {
  if (r >= R || c >= C) { return 0u; }
  return f16bits(X[xOff + ${at}]);
}
@compute @workgroup_size(${CAST_WORKGROUP}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let R = pu(0u);
  let C = pu(1u);
  let Cp = pu(2u);
  let words = pu(3u);
  let w = (wid.y * nwg.x + wid.x) * ${CAST_WORKGROUP}u + lid;
  if (w >= words) { return; }
  let xOff = wid.z * pu(4u);
  let half = Cp / 2u;
  let r = w / half;
  let c = (w % half) * 2u;
  H[wid.z * words + w] = elem(r, c, R, C, xOff) | (elem(r, c + 1u, R, C, xOff) << 16u);
}`;
}

const LEFT = `subgroup_matrix_left<f16, ${TILE}, ${TILE}>`;
const RIGHT = `subgroup_matrix_right<f16, ${TILE}, ${TILE}>`;
const RESULT = `subgroup_matrix_result<f32, ${TILE}, ${TILE}>`;

/** WGSL: a row-major load of a `type` tile from `buf` at element `off`, rows `stride` elements apart. */
export function tileLoad(s: TcSpelling, type: string, buf: string, off: string, stride: string): string {
  return s === 'bool'
    ? `subgroupMatrixLoad<${type}>(&${buf}, ${off}, false, ${stride})`
    : `subgroupMatrixLoad<${type}, row_major>(&${buf}, ${off}, ${stride})`;
}

/** WGSL: a row-major store of result tile `v` into `buf` at element `off`, rows `stride` apart. */
export function tileStore(s: TcSpelling, buf: string, off: string, v: string, stride: string): string {
  return s === 'bool'
    ? `subgroupMatrixStore(&${buf}, ${off}, ${v}, false, ${stride});`
    : `subgroupMatrixStore<row_major>(&${buf}, ${off}, ${v}, ${stride});`;
}

/**
 * The product kernel: RM×RN result tiles a subgroup, in spelling `s`, with bias and accumulate as asked, `wg`
 * invocations a workgroup (tensorCoreMatmul.wg). A and B are the cast kernel's padded binary16 arrays (bindings as
 * the emulated kernels': A, B, BIAS when `bias`, O).
 */
export function tensorCoreShader(
  s: TcSpelling,
  RM: number,
  RN: number,
  bias: boolean,
  accumulate: boolean,
  wg = TC_WORKGROUP,
): string {
  if (s === 'twin') return twinShader(RM, RN, bias, accumulate);
  const bindings = matmulBindings(bias)
    .replace('var<storage, read> A: array<f32>', 'var<storage, read> A: array<f16>')
    .replace('var<storage, read> B: array<f32>', 'var<storage, read> B: array<f16>');
  const acc: string[] = [],
    body: string[] = [],
    out: string[] = [];
  for (let i = 0; i < RM; i++) for (let j = 0; j < RN; j++) acc.push(`var c${i}_${j} = ${RESULT}();`);
  for (let i = 0; i < RM; i++)
    body.push(`let a${i} = ${tileLoad(s, LEFT, 'A', `aOff + (row0 + ${TILE * i}u) * Kp + k0`, 'Kp')};`);
  for (let j = 0; j < RN; j++) {
    body.push(`let b${j} = ${tileLoad(s, RIGHT, 'B', `bOff + k0 * Np + col0 + ${TILE * j}u`, 'Np')};`);
    for (let i = 0; i < RM; i++) body.push(`c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`);
  }
  for (let i = 0; i < RM; i++)
    for (let j = 0; j < RN; j++)
      out.push(`${tileStore(s, 'Cs', '0u', `c${i}_${j}`, `${TILE}u`)}
  workgroupBarrier();
  for (var e = t; e < ${TILE * TILE}u; e += ${wg}u) {
    let i = row0 + ${TILE * i}u + e / ${TILE}u;
    let j = col0 + ${TILE * j}u + e % ${TILE}u;
    if (i < M && j < N) {
      ${storeOutput('Cs[e]', bias, accumulate)}
    }
  }
  workgroupBarrier();`);
  return `enable f16;
enable chromium_experimental_subgroup_matrix;
${bindings}var<workgroup> Cs: array<f32, ${TILE * TILE}>;
@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${MATMUL_PARAMS}
  let Kp = pu(7u);
  let Np = pu(8u);
  let row0 = wid.y * ${TILE * RM}u;
  let col0 = wid.x * ${TILE * RN}u;
  ${acc.join('\n  ')}
  for (var k0 = 0u; k0 < Kp; k0 += ${TILE}u) {
    ${body.join('\n    ')}
  }
  ${out.join('\n  ')}
}`;
}

/** WGSL `f16val(h)`: the value of binary16 bits h (exact; src/formats/half.ts f16BitsToF32Bits). */
const F16_VALUE = `fn f16val(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
  if (e == 0u) { return select(1.0, -1.0, s != 0u) * f32(m) * 5.9604644775390625e-8; }
  return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}
`;

/** The 'twin' product kernel: tensorCoreShader's plan, params, bindings (A, B as u32 pairs) and epilogue, no builtins. */
function twinShader(RM: number, RN: number, bias: boolean, accumulate: boolean): string {
  const bindings = matmulBindings(bias)
    .replace('var<storage, read> A: array<f32>', 'var<storage, read> A: array<u32>')
    .replace('var<storage, read> B: array<f32>', 'var<storage, read> B: array<u32>');
  const per = (TILE * TILE) / TC_WORKGROUP;
  return `${bindings}${F16_VALUE}
fn ha(x: u32) -> f32 { return f16val((A[x / 2u] >> ((x % 2u) * 16u)) & 0xffffu); }
fn hb(x: u32) -> f32 { return f16val((B[x / 2u] >> ((x % 2u) * 16u)) & 0xffffu); }
var<workgroup> Cs: array<f32, ${TILE * TILE}>;
@compute @workgroup_size(${TC_WORKGROUP}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  ${MATMUL_PARAMS}
  let Kp = pu(7u);
  let Np = pu(8u);
  let row0 = wid.y * ${TILE * RM}u;
  let col0 = wid.x * ${TILE * RN}u;
  for (var ti = 0u; ti < ${RM}u; ti++) {
    for (var tj = 0u; tj < ${RN}u; tj++) {
      for (var q = 0u; q < ${per}u; q++) {
        let e = t + q * ${TC_WORKGROUP}u;
        let r = row0 + ti * ${TILE}u + e / ${TILE}u;
        let c = col0 + tj * ${TILE}u + e % ${TILE}u;
        var sum = 0.0;
        for (var k = 0u; k < Kp; k++) { sum += ha(aOff + r * Kp + k) * hb(bOff + k * Np + c); }
        Cs[e] = sum;
      }
      workgroupBarrier();
      for (var e = t; e < ${TILE * TILE}u; e += ${TC_WORKGROUP}u) {
        let i = row0 + ti * ${TILE}u + e / ${TILE}u;
        let j = col0 + tj * ${TILE}u + e % ${TILE}u;
        if (i < M && j < N) {
          ${storeOutput('Cs[e]', bias, accumulate)}
        }
      }
      workgroupBarrier();
    }
  }
}`;
}
