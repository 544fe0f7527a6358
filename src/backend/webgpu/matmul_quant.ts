/**
 * The quantised linears on WebGPU (../kernels.ts `matmul_q8`, `matmul_q4k`, `matmul_bf16`): out [M, N] ≈ x [M, K]·Wᵀ with W packed in
 * i32 words and unpacked in WGSL. Inference only: decode's few rows (M ≤ 4) in the matrix-vector form (a column's
 * row read by 32 lanes together, `Q8_GEMV`, `BF16_GEMV`), more rows one thread per output element, looping over K in
 * the weight row's order; no tiling.
 *
 * matmul_q8 (llama.cpp's Q8_0 layout): two dispatches. First, one workgroup per row of x finds max |x| (a tree
 * reduction in workgroup memory), dx = max/8191, id = 1/dx (0 if dx = 0), and rounds the row to integers
 * xq = clamp(round(x·id), ±8191) (WGSL's round is half-to-even, as the catalogue says) into a scratch [M, K] i32
 * buffer, dx into [M]. Then out[m, n] = dx[m]·Σ_b scales[n, b]·(Σ over the block's 32 k of xq·q, an exact i32 sum),
 * q = the signed byte k mod 4 of wq[n, k/4] (extractBits on i32 sign-extends; byte 0 is the lowest).
 * matmul_q4k (llama.cpp's Q4_K, src/model/q4k.ts): two dispatches as well. One workgroup per 256 of a row of x
 * rounds it to 8 bits (llama.cpp's Q8_K: dxb = max/127) and sums the rounded values per 32; then per super-block
 * (38 words: d, dmin, scales, mins, 32 words of nibbles) the exact i32 sums of the catalogue, dxb·(d·Σ − dmin·Σ) in f32.
 * matmul_bf16: w[n, 2j] = the f32 with upper bits the low u16 of wb[n, j], w[n, 2j+1] from its high u16;
 * out[m, n] = Σ_k x[m, k]·w[n, k] in f32.
 */
import { size } from '../../util/shape.js';
import { BUILTINS, FLAT_ELEMENT, FLAT_GROUP, type GpuContext, Params, USAGE, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';
import { GEMV_COLUMNS, GEMV_ROWS, gemvKernel } from './matmul_gemv.js';

export const QUANT_KERNELS = ['matmul_q8', 'matmul_q4k', 'matmul_bf16'] as const;

/** x [M, K] → XQ [M, K] i32, DX [M] f32. One workgroup per row. params: K */
const QUANTISE = `${storage(1, 'X', 'f32', false)}${storage(2, 'XQ', 'i32', true)}${storage(3, 'DX', 'f32', true)}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let K = pu(0u);
  let m = grp;
  var mx = 0.0;
  for (var k = lid; k < K; k += ${WG}u) { mx = max(mx, abs(X[m * K + k])); }
  red[lid] = mx;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let dx = red[0] / 8191.0;
  let id = select(1.0 / dx, 0.0, dx == 0.0);
  for (var k = lid; k < K; k += ${WG}u) {
    XQ[m * K + k] = i32(clamp(round(X[m * K + k] * id), -8191.0, 8191.0));
  }
  if (lid == 0u) { DX[m] = dx; }
}`;

/** params: n = M·N, N, K */
const Q8 = `${storage(1, 'XQ', 'i32', false)}${storage(2, 'DX', 'f32', false)}${storage(3, 'WQ', 'i32', false)}${storage(4, 'S', 'f32', false)}${storage(5, 'O', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  let N = pu(1u);
  let K = pu(2u);
  let m = e / N;
  let n = e % N;
  let nb = K / 32u;
  var s = 0.0;
  for (var b = 0u; b < nb; b++) {
    var d = 0i;
    for (var j = 0u; j < 8u; j++) {
      let w = WQ[n * (K / 4u) + b * 8u + j];
      let x0 = m * K + b * 32u + j * 4u;
      for (var t = 0u; t < 4u; t++) { d += XQ[x0 + t] * extractBits(w, 8u * t, 8u); }
    }
    s += S[n * nb + b] * f32(d);
  }
  O[e] = DX[m] * s;
}`;

/** params: n = M·N, N, K */
const BF16 = `${storage(1, 'X', 'f32', false)}${storage(2, 'WB', 'i32', false)}${storage(3, 'O', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  let N = pu(1u);
  let K = pu(2u);
  let m = e / N;
  let n = e % N;
  let K2 = K / 2u;
  var s = 0.0;
  for (var j = 0u; j < K2; j++) {
    let w = bitcast<u32>(WB[n * K2 + j]);
    s += X[m * K + 2u * j] * bitcast<f32>(w << 16u);
    s += X[m * K + 2u * j + 1u] * bitcast<f32>(w & 0xffff0000u);
  }
  O[e] = s;
}`;

/**
 * Decode (M ≤ GEMV_ROWS): the matrix-vector form, as ./matmul_gemv.ts — a workgroup of 8 output columns, 32 lanes a
 * column walking its row of packed words together (word w = lane, lane + 32, …: contiguous reads, where a thread per
 * output reads rows K bytes apart), the lanes' partial sums halved in workgroup memory. q8: a word's 4 bytes are in
 * one 32-block, so a lane adds S[n, block]·(its 4-term i32 dot) — the blocks' exact i32 sums regrouped, the same
 * products summed in another order. params: M, N, K.
 */
const Q8_GEMV = gemvKernel(
  `${storage(1, 'XQ', 'i32', false)}${storage(2, 'DX', 'f32', false)}${storage(3, 'WQ', 'i32', false)}${storage(4, 'S', 'f32', false)}${storage(5, 'O', 'f32', true)}`,
  `let K4 = K / 4u;
    for (var w = lane; w < K4; w += 32u) {
      let word = WQ[j * K4 + w];
      let sc = S[j * (K / 32u) + w / 8u];
      for (var m = 0u; m < M; m++) {
        let x0 = m * K + w * 4u;
        var d = 0i;
        for (var b = 0u; b < 4u; b++) { d += XQ[x0 + b] * extractBits(word, 8u * b, 8u); }
        part[m] += sc * f32(d);
      }
    }`,
  'O[m * N + j] = DX[m] * v0;',
);

/** matmul_bf16 in the matrix-vector form (see Q8_GEMV). params: M, N, K. */
const BF16_GEMV = gemvKernel(
  `${storage(1, 'X', 'f32', false)}${storage(2, 'WB', 'i32', false)}${storage(3, 'O', 'f32', true)}`,
  `let K2 = K / 2u;
    for (var i = lane; i < K2; i += 32u) {
      let w = bitcast<u32>(WB[j * K2 + i]);
      let lo = bitcast<f32>(w << 16u);
      let hi = bitcast<f32>(w & 0xffff0000u);
      for (var m = 0u; m < M; m++) { part[m] += X[m * K + 2u * i] * lo + X[m * K + 2u * i + 1u] * hi; }
    }`,
  'O[m * N + j] = v0;',
);

/**
 * x [M, K] → XQ [M, K] i32, DXB [M, K/256] f32, BS [M, K/32] i32: each 256 of a row rounded to 8 bits as llama.cpp's
 * Q8_K (the catalogue's matmul_q4k), and the sums of the rounded values per 32. One workgroup per (row, 256).
 * params: K
 */
const QUANTISE_K = `${storage(1, 'X', 'f32', false)}${storage(2, 'XQ', 'i32', true)}${storage(3, 'DXB', 'f32', true)}${storage(4, 'BS', 'i32', true)}
var<workgroup> red: array<f32, 256>;
var<workgroup> qv: array<i32, 256>;
@compute @workgroup_size(256) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let K = pu(0u);
  let nb = K / 256u;
  let m = grp / nb;
  let b = grp % nb;
  let i = m * K + b * 256u + lid;
  let v = X[i];
  red[lid] = abs(v);
  workgroupBarrier();
  for (var s = 128u; s > 0u; s /= 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let amax = red[0];
  let id = select(127.0 / amax, 0.0, amax == 0.0);
  let q = i32(clamp(round(v * id), -127.0, 127.0));
  XQ[i] = q;
  qv[lid] = q;
  workgroupBarrier();
  if (lid < 8u) {
    var t = 0i;
    for (var l = 0u; l < 32u; l++) { t += qv[lid * 32u + l]; }
    BS[m * (K / 32u) + b * 8u + lid] = t;
  }
  if (lid == 0u) { DXB[m * nb + b] = amax / 127.0; }
}`;

/** One super-block's share of out[m, n] (WGSL helpers of Q4K and Q4K_GEMV): byte k of a row's words, unsigned. */
const Q4K_BYTE = `fn wbyte(base: u32, k: u32) -> u32 { return extractBits(bitcast<u32>(WQ[base + k / 4u]), 8u * (k % 4u), 8u); }`;

/**
 * params: n = M·N, N, K. One thread per output element: per super-block the integer sums of the catalogue (the
 * nibbles against the rounded x per sub-block, scaled by its 6-bit scale; the mins against the sums per 32), then
 * dxb·(d·Σ − dmin·Σ) in f32.
 */
const Q4K = `${storage(1, 'XQ', 'i32', false)}${storage(2, 'DXB', 'f32', false)}${storage(3, 'BS', 'i32', false)}${storage(4, 'WQ', 'i32', false)}${storage(5, 'O', 'f32', true)}
${Q4K_BYTE}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  let N = pu(1u);
  let K = pu(2u);
  let m = e / N;
  let n = e % N;
  let nb = K / 256u;
  var s = 0.0;
  for (var b = 0u; b < nb; b++) {
    let base = (n * nb + b) * 38u;
    var isum = 0i;
    var msum = 0i;
    for (var sb = 0u; sb < 8u; sb++) {
      let g = sb / 2u;
      let shift = 4u * (sb % 2u);
      var dot = 0i;
      for (var l = 0u; l < 32u; l++) {
        let q = i32(extractBits(wbyte(base, 24u + 32u * g + l), shift, 4u));
        dot += q * XQ[m * K + b * 256u + 32u * sb + l];
      }
      isum += i32(wbyte(base, 8u + sb)) * dot;
      msum += i32(wbyte(base, 16u + sb)) * BS[m * (K / 32u) + b * 8u + sb];
    }
    s += DXB[m * nb + b] * (bitcast<f32>(WQ[base]) * f32(isum) - bitcast<f32>(WQ[base + 1u]) * f32(msum));
  }
  O[e] = s;
}`;

/**
 * matmul_q4k in the matrix-vector form (see Q8_GEMV): a super-block is 38 words, 32 of them nibbles, so lane i takes
 * nibble word i of every super-block of the column's row (4 bytes of the 32-byte group i / 8: sub-blocks 2g low and
 * 2g + 1 high) and lanes 0–7 also the min of sub-block i. params: M, N, K.
 */
const Q4K_GEMV = gemvKernel(
  `${storage(1, 'XQ', 'i32', false)}${storage(2, 'DXB', 'f32', false)}${storage(3, 'BS', 'i32', false)}${storage(4, 'WQ', 'i32', false)}${storage(5, 'O', 'f32', true)}
${Q4K_BYTE}`,
  `let nb = K / 256u;
    let g = lane / 8u;
    let l0 = (lane % 8u) * 4u;
    for (var b = 0u; b < nb; b++) {
      let base = (j * nb + b) * 38u;
      let word = bitcast<u32>(WQ[base + 6u + lane]);
      let d = bitcast<f32>(WQ[base]);
      let dmin = bitcast<f32>(WQ[base + 1u]);
      let sa = i32(wbyte(base, 8u + 2u * g));
      let sb = i32(wbyte(base, 9u + 2u * g));
      let mn = i32(wbyte(base, 16u + lane % 8u));
      for (var m = 0u; m < M; m++) {
        let x0 = m * K + b * 256u + 64u * g + l0;
        var lo = 0i;
        var hi = 0i;
        for (var t = 0u; t < 4u; t++) {
          lo += i32(extractBits(word, 8u * t, 4u)) * XQ[x0 + t];
          hi += i32(extractBits(word, 8u * t + 4u, 4u)) * XQ[x0 + 32u + t];
        }
        var v = d * f32(sa * lo + sb * hi);
        if (lane < 8u) { v -= dmin * f32(mn * BS[m * (K / 32u) + b * 8u + lane]); }
        part[m] += DXB[m * nb + b] * v;
      }
    }`,
  'O[m * N + j] = v0;',
);

/** Rows of x up to which the quantised products take the matrix-vector kernels (settable: 0 = never, for tests). */
export const quantGemv = { rows: GEMV_ROWS };

export function runMatmulQuant(ctx: GpuContext, name: string, ins: readonly KView[], outs: readonly KView[]): void {
  const x = ins[0]!,
    w = ins[1]!,
    o = outs[0]!;
  const N = w.shape[0]!,
    K = x.shape[x.shape.length - 1]!,
    M = size(x.shape) / Math.max(1, K),
    n = M * N;
  if (n === 0) return;
  const groups = grid(Math.ceil(n / WG));
  const gemv = M <= quantGemv.rows && Math.ceil(N / GEMV_COLUMNS) <= 65535;
  const columns = [Math.ceil(N / GEMV_COLUMNS)];
  if (name === 'matmul_bf16') {
    if (gemv) ctx.dispatch(BF16_GEMV, new Params().u32(M, N, K), [x.b.gpu, w.b.gpu, o.b.gpu], columns);
    else ctx.dispatch(BF16, new Params().u32(n, N, K), [x.b.gpu, w.b.gpu, o.b.gpu], groups);
    return;
  }
  if (name === 'matmul_q4k') {
    const nb = K / 256;
    const xq = ctx.createBuffer(M * K * 4, USAGE.STORAGE),
      dxb = ctx.createBuffer(M * nb * 4, USAGE.STORAGE),
      bs = ctx.createBuffer((M * K) / 8, USAGE.STORAGE);
    ctx.dispatch(QUANTISE_K, new Params().u32(K), [x.b.gpu, xq, dxb, bs], grid(M * nb));
    const bufs = [xq, dxb, bs, w.b.gpu, o.b.gpu];
    if (gemv) ctx.dispatch(Q4K_GEMV, new Params().u32(M, N, K), bufs, columns);
    else ctx.dispatch(Q4K, new Params().u32(n, N, K), bufs, groups);
    ctx.release(xq);
    ctx.release(dxb);
    ctx.release(bs);
    return;
  }
  const xq = ctx.createBuffer(M * K * 4, USAGE.STORAGE),
    dx = ctx.createBuffer(M * 4, USAGE.STORAGE);
  ctx.dispatch(QUANTISE, new Params().u32(K), [x.b.gpu, xq, dx], grid(M));
  const bufs = [xq, dx, w.b.gpu, ins[2]!.b.gpu, o.b.gpu];
  if (gemv) ctx.dispatch(Q8_GEMV, new Params().u32(M, N, K), bufs, columns);
  else ctx.dispatch(Q8, new Params().u32(n, N, K), bufs, groups);
  ctx.release(xq);
  ctx.release(dx);
}
