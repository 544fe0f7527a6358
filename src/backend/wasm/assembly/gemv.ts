/**
 * Decode kernels: out = x·Wᵀ for few rows of x (M ≤ 4, batch-1 decoding), W [N, K] row-major, one dot product
 * per output over a contiguous weight row. Memory-bound: every weight is read once per call, x stays in L1.
 * The caller splits the output columns [lo, hi) across threads.
 *
 * - gemv_nt:    W float32                            (the fast path of matmul with transB for M ≤ 4 rows)
 * - matmul_q8:  W int8 in blocks of 32 along K, one f32 scale per block (llama.cpp's Q8_0 weight layout), x
 *               rounded per row to integers in [−8191, 8191] so each block is an integer dot product
 *               (i32x4.dot_i16x8_s on weights widened by one shift or mask, ·256). Any M: decode streams one
 *               weight row at a time (one sequential stream reads DRAM faster than two interleaved rows), prefill
 *               takes four rows of x per weight row (shared widened weights; ≈ the f32 packed matmul's speed).
 * - matmul_q4k:  W llama.cpp's Q4_K (unpacked: f32 d/dmin, u8 scales/mins, nibbles), x rounded to 8 bits per 256 as
 *               llama.cpp's Q8_K; relaxed SIMD multiplies 16 nibbles by 16 int8 in one instruction
 * - matmul_bf16: W bfloat16 (upper 16 bits of a float32), widened exactly by one shift or mask per pair
 * Per-shape timings: bench/lab/gemv-split.mjs; whole decode steps: bench/lab/decode-profile.mjs and
 * bench/decode.bench.mjs (against llama2.c); lab variants: bench/lab/gemv_q.ts, bench/lab/q8_variants.ts (q8-lab.mjs).
 */
import { fma, hsum } from './simd';

/** out[i, j] = alpha·Σ_k x[i, k]·w[j, k] (+ out[i, j] if accumulate), i < M, j in [lo, hi). */
export function gemv_nt(x: usize, w: usize, out: usize, M: i32, N: i32, K: i32, alpha: f32, accumulate: bool,
  scratch: usize, lo: i32, hi: i32): void {
  const K16 = K & ~15;
  for (let j = lo; j < hi; j++) {
    const pw = w + ((<usize>j * <usize>K) << 2);
    for (let i = 0; i < M; i++) {
      const px = x + ((<usize>i * <usize>K) << 2);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let k = 0;
      for (; k < K16; k += 16) {
        const o = <usize>k << 2;
        a0 = fma(v128.load(pw + o), v128.load(px + o), a0);
        a1 = fma(v128.load(pw + o, 16), v128.load(px + o, 16), a1);
        a2 = fma(v128.load(pw + o, 32), v128.load(px + o, 32), a2);
        a3 = fma(v128.load(pw + o, 48), v128.load(px + o, 48), a3);
      }
      for (; k + 4 <= K; k += 4) {
        const o = <usize>k << 2;
        a0 = fma(v128.load(pw + o), v128.load(px + o), a0);
      }
      let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
      for (; k < K; k++) s += load<f32>(pw + (<usize>k << 2)) * load<f32>(px + (<usize>k << 2));
      s *= alpha;
      const po = out + ((<usize>i * <usize>N + <usize>j) << 2);
      store<f32>(po, accumulate ? load<f32>(po) + s : s);
    }
  }
}

/** Rows of x quantised at a time by matmul_q8 (each weight row is reused from L1 across them). */
const Q8_ROWS: i32 = 4;
/** matmul_q8 rounds x to integers in [−Q8_XMAX, Q8_XMAX]: 8 products of 256·q·xq per i32 lane stay below 2³¹. */
const Q8_XMAX: f32 = 8191;

/**
 * Q8_0 weights: wq int8 [N, K] (bytes; K % 32 == 0), sc f32 [N, K/32]. Each row of x is first rounded to
 * integers in [−8191, 8191] with one scale per row (dx = max|x|/8191, xq = nearest-even(x·(1/dx)), all in f32),
 * so a block's sum is an exact integer dot product: out[i, j] = dx[i]·Σ_b sc[j, b]·Σ_{k in b} xq[i, k]·wq[j, k],
 * for columns [lo, hi). Scratch: 16 + Q8_ROWS·2K bytes.
 *
 * The int8 weights are widened without a shuffle: as int16 lanes, a pair of bytes (even k low, odd k high) gives
 * 256·w[even] by a left shift of 8 and 256·w[odd] by masking the low byte (one cheap instruction each, where
 * extend_high costs two). xq is stored permuted to match: per 16 values, the 8 at even k, then the 8 at odd k.
 * i32x4.dot_i16x8_s then sums 256·w·xq exactly (|256·w·xq| ≤ 2²⁸, 8 per lane per block); the 1/256 folds into dx.
 */
export function matmul_q8(x: usize, wq: usize, sc: usize, out: usize, M: i32, N: i32, K: i32,
  scratch: usize, lo: i32, hi: i32): void {
  const nb = K >> 5;
  const xq0 = scratch + 16;
  const hm = i16x8.splat(<i16>0xff00);
  for (let i0 = 0; i0 < M; i0 += Q8_ROWS) {
    const rows = min(Q8_ROWS, M - i0);
    // quantise these rows of x (scale/256 in dxs[r]), permuted even/odd per 16
    for (let r = 0; r < rows; r++) q8QuantRow(x + ((<usize>(i0 + r) * <usize>K) << 2), K, scratch + (<usize>r << 2), xq0 + ((<usize>r * <usize>K) << 1));
    if (rows == 4) {
      // prefill: four rows of x per weight row, the widened weights shared by the four
      q8rows4(xq0, K, wq, sc, out, N, i0, scratch, lo, hi);
      continue;
    }
    // one weight row at a time (a single sequential stream from memory: measured 1.6× faster than two rows
    // from DRAM, bench/lab/q8-lab.mjs), two blocks per step into two accumulators
    for (let j = lo; j < hi; j++) {
      const pw = wq + <usize>j * <usize>K;
      const ps = sc + ((<usize>j * <usize>nb) << 2);
      for (let r = 0; r < rows; r++) {
        const pq = xq0 + ((<usize>r * <usize>K) << 1);
        let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
        let b = 0;
        for (; b + 2 <= nb; b += 2) {
          const w8 = pw + (<usize>b << 5);
          const xo = pq + (<usize>b << 6);
          const v0 = v128.load(w8), v1 = v128.load(w8, 16), v2 = v128.load(w8, 32), v3 = v128.load(w8, 48);
          const s = i32x4.add(
            i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
            i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
          const t = i32x4.add(
            i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v2, 8), v128.load(xo, 64)), i32x4.dot_i16x8_s(v128.and(v2, hm), v128.load(xo, 80))),
            i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v3, 8), v128.load(xo, 96)), i32x4.dot_i16x8_s(v128.and(v3, hm), v128.load(xo, 112))));
          acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
          acc2 = fma(f32x4.convert_i32x4_s(t), v128.load32_splat(ps + (<usize>b << 2), 4), acc2);
        }
        if (b < nb) {
          const w8 = pw + (<usize>b << 5);
          const xo = pq + (<usize>b << 6);
          const v0 = v128.load(w8), v1 = v128.load(w8, 16);
          const s = i32x4.add(
            i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
            i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
          acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
        }
        store<f32>(out + ((<usize>(i0 + r) * <usize>N + <usize>j) << 2), hsum(f32x4.add(acc, acc2)) * load<f32>(scratch + (<usize>r << 2)));
      }
    }
  }
}

/**
 * One row of x (K floats, K % 32 == 0) rounded for matmul_q8: dx/256 stored at pd, the integers as int16 at pq,
 * per 16 values the 8 at even k then the 8 at odd k.
 */
function q8QuantRow(px: usize, K: i32, pd: usize, pq: usize): void {
  let mx = f32x4.splat(0);
  for (let k = 0; k < K; k += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(px + (<usize>k << 2))));
  const amax = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
  const dx: f32 = amax / Q8_XMAX;
  const id: f32 = dx == 0 ? 0 : <f32>1.0 / dx;
  store<f32>(pd, dx * <f32>(1.0 / 256.0));
  const idv = f32x4.splat(id);
  for (let k = 0; k < K; k += 16) {
    const o = px + (<usize>k << 2);
    const a = i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o), idv))),
      i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o, 16), idv))));
    const b = i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o, 32), idv))),
      i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o, 48), idv))));
    const p = pq + (<usize>k << 1);
    v128.store(p, i8x16.shuffle(a, b, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29));
    v128.store(p, i8x16.shuffle(a, b, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31), 16);
  }
}

/** Four quantised rows (xq [4, K] int16, permuted; scales dxs[4] at scratch) against weight rows [lo, hi) of matmul_q8. */
function q8rows4(xq: usize, K: i32, wq: usize, sc: usize, out: usize, N: i32, i0: i32, dxs: usize, lo: i32, hi: i32): void {
  const nb = K >> 5;
  const rs = <usize>K << 1;
  const hm = i16x8.splat(<i16>0xff00);
  for (let j = lo; j < hi; j++) {
    const pw = wq + <usize>j * <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const v0 = v128.load(pw + (<usize>b << 5)), v1 = v128.load(pw + (<usize>b << 5), 16);
      const w0 = i16x8.shl(v0, 8), w1 = v128.and(v0, hm);
      const w2 = i16x8.shl(v1, 8), w3 = v128.and(v1, hm);
      const d = v128.load32_splat(ps + (<usize>b << 2));
      let xo = xq + (<usize>b << 6);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xo)), i32x4.dot_i16x8_s(w1, v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xo, 32)), i32x4.dot_i16x8_s(w3, v128.load(xo, 48))));
      a0 = fma(f32x4.convert_i32x4_s(s), d, a0);
      xo += rs;
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xo)), i32x4.dot_i16x8_s(w1, v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xo, 32)), i32x4.dot_i16x8_s(w3, v128.load(xo, 48))));
      a1 = fma(f32x4.convert_i32x4_s(s), d, a1);
      xo += rs;
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xo)), i32x4.dot_i16x8_s(w1, v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xo, 32)), i32x4.dot_i16x8_s(w3, v128.load(xo, 48))));
      a2 = fma(f32x4.convert_i32x4_s(s), d, a2);
      xo += rs;
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(xo)), i32x4.dot_i16x8_s(w1, v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(xo, 32)), i32x4.dot_i16x8_s(w3, v128.load(xo, 48))));
      a3 = fma(f32x4.convert_i32x4_s(s), d, a3);
    }
    const po = out + ((<usize>i0 * <usize>N + <usize>j) << 2), ldo = <usize>N << 2;
    store<f32>(po, hsum(a0) * load<f32>(dxs));
    store<f32>(po + ldo, hsum(a1) * load<f32>(dxs, 4));
    store<f32>(po + 2 * ldo, hsum(a2) * load<f32>(dxs, 8));
    store<f32>(po + 3 * ldo, hsum(a3) * load<f32>(dxs, 12));
  }
}

/** Rows of x that matmul_q4k rounds into scratch at a time (each weight row, ≤ 1.2 KB, is reused from L1 across them). */
const Q4K_ROWS: i32 = 8;

/**
 * q4k weights (llama.cpp's Q4_K unpacked, src/model/q4k.ts): per row K/256 super-blocks of 152 bytes, f32 d, f32 dmin,
 * u8 sc[8], u8 mn[8], u8 qs[128]; sub-block s = 2j + h holds the low (h = 0) or high nibbles of qs[32j … 32j + 31].
 * x is rounded per super-block to 8 bits as llama.cpp's Q8_K (dxb = amax/127, xq ∈ [−127, 127]) with its sums per
 * 32 as int16 (for the mins), Q4K_ROWS rows at a time; then per super-block, exact in int32,
 *   out[i, j] += dxb·(d·Σ_s sc[s]·Σ_l xq·q − dmin·Σ_s mn[s]·Σ_l xq)      for columns [lo, hi).
 * Relaxed-SIMD build: xq int8 in order; i16x8.relaxed_dot_i8x16_i7x16_s multiplies 16 nibbles (a mask or a shift
 * each, 0..15: no sign ambiguity) by 16 xq, pairs summed to int16; a sub-block's two such vectors are added (|Σ| ≤
 * 4·127·15 < 2¹⁵) and i32x4.dot_i16x8_s by the splatted scale sums pairs and scales in one instruction. The
 * products are ALU-bound on two SMT threads of one core, so prefill takes four rows of x per weight super-block,
 * sharing the unpacked nibbles. Plain build: xq int16, per 16 values the 8 at even k then the 8 at odd k, matching
 * nibbles widened without a shuffle (as int16 lanes a pair of bytes gives q[even] by a mask, q[odd] by a shift of
 * 8 and a mask, the high nibbles by shifts of 4 and 12), summed by i32x4.dot_i16x8_s. The mins: mn[0..7] widened
 * to int16 against the eight sums, one i32x4.dot_i16x8_s. Both builds compute the same integers.
 * Scratch: Q4K_ROWS·(4·K/256 + 2·K/32 + 2K) bytes.
 */
export function matmul_q4k(x: usize, wq: usize, out: usize, M: i32, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  const nb = K >> 8;
  const rowBytes = <usize>nb * 152;
  const xb: usize = ASC_FEATURE_RELAXED_SIMD ? 1 : 2; // bytes per rounded x
  const xs = <usize>K * xb; // bytes per rounded row
  const pd = scratch; // f32 [rows, nb]: dxb
  const ps = pd + ((<usize>Q4K_ROWS * <usize>nb) << 2); // i16 [rows, K/32]: sums of xq
  const pq = ps + ((<usize>Q4K_ROWS * <usize>(K >> 5)) << 1); // xq [rows, K]
  const dstep = <usize>nb << 2, sstep = <usize>(K >> 5) << 1;
  for (let i0 = 0; i0 < M; i0 += Q4K_ROWS) {
    const rows = min(Q4K_ROWS, M - i0);
    for (let r = 0; r < rows; r++)
      q8kRow(x + ((<usize>(i0 + r) * <usize>K) << 2), K, pd + <usize>r * dstep, ps + <usize>r * sstep, pq + <usize>r * xs);
    for (let j = lo; j < hi; j++) {
      const pw0 = wq + <usize>j * rowBytes;
      const po = out + ((<usize>i0 * <usize>N + <usize>j) << 2), ldo = <usize>N << 2;
      let r = 0;
      if (ASC_FEATURE_RELAXED_SIMD) {
        for (; r + 4 <= rows; r += 4) {
          let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
          let pw = pw0;
          const rq = pq + <usize>r * xs, rd = pd + <usize>r * dstep, rs = ps + <usize>r * sstep;
          for (let b = 0; b < nb; b++) {
            const px = rq + (<usize>b << 8);
            let s0 = i32x4.splat(0), s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
            for (let h = 0; h < 4; h++) {
              const w = pw + 24 + (<usize>h << 5), xa = px + (<usize>h << 6);
              const v0 = v128.load(w), v1 = v128.load(w, 16);
              const n0 = v128.and(v0, i8x16.splat(0x0f)), n1 = v128.and(v1, i8x16.splat(0x0f));
              const n2 = i8x16.shr_u(v0, 4), n3 = i8x16.shr_u(v1, 4);
              const sa = i16x8.splat(<i16>load<u8>(pw + 8 + (<usize>h << 1))), sb = i16x8.splat(<i16>load<u8>(pw + 9 + (<usize>h << 1)));
              s0 = i32x4.add(s0, q4kDot(n0, n1, n2, n3, xa, sa, sb));
              s1 = i32x4.add(s1, q4kDot(n0, n1, n2, n3, xa + xs, sa, sb));
              s2 = i32x4.add(s2, q4kDot(n0, n1, n2, n3, xa + 2 * xs, sa, sb));
              s3 = i32x4.add(s3, q4kDot(n0, n1, n2, n3, xa + 3 * xs, sa, sb));
            }
            const mn = i16x8.extend_low_i8x16_u(v128.load64_zero(pw + 16));
            const d = load<f32>(pw), dmin = load<f32>(pw, 4), bo = <usize>b << 4, bd = <usize>b << 2;
            a0 += load<f32>(rd + bd) * (d * <f32>hsumi(s0) - dmin * <f32>hsumi(i32x4.dot_i16x8_s(mn, v128.load(rs + bo))));
            a1 += load<f32>(rd + dstep + bd) * (d * <f32>hsumi(s1) - dmin * <f32>hsumi(i32x4.dot_i16x8_s(mn, v128.load(rs + sstep + bo))));
            a2 += load<f32>(rd + 2 * dstep + bd) * (d * <f32>hsumi(s2) - dmin * <f32>hsumi(i32x4.dot_i16x8_s(mn, v128.load(rs + 2 * sstep + bo))));
            a3 += load<f32>(rd + 3 * dstep + bd) * (d * <f32>hsumi(s3) - dmin * <f32>hsumi(i32x4.dot_i16x8_s(mn, v128.load(rs + 3 * sstep + bo))));
            pw += 152;
          }
          const o = po + <usize>r * ldo;
          store<f32>(o, a0);
          store<f32>(o + ldo, a1);
          store<f32>(o + 2 * ldo, a2);
          store<f32>(o + 3 * ldo, a3);
        }
      }
      for (; r < rows; r++) {
        const rd = pd + <usize>r * dstep, rs = ps + <usize>r * sstep, rq = pq + <usize>r * xs;
        let acc: f32 = 0;
        let pw = pw0;
        for (let b = 0; b < nb; b++) {
          const qsum = q4kBlock(pw, rq + (<usize>b << 8) * xb);
          const msum = hsumi(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(v128.load64_zero(pw + 16)), v128.load(rs + (<usize>b << 4))));
          acc += load<f32>(rd + (<usize>b << 2)) * (load<f32>(pw) * <f32>qsum - load<f32>(pw, 4) * <f32>msum);
          pw += 152;
        }
        store<f32>(po + <usize>r * ldo, acc);
      }
    }
  }
}

/** One row's share of 64 weights (relaxed build): nibbles n0, n1 (sub-block 2h) and n2, n3 (2h + 1) against xq at xa. */
// @ts-ignore: decorator
@inline function q4kDot(n0: v128, n1: v128, n2: v128, n3: v128, xa: usize, sa: v128, sb: v128): v128 {
  const l = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xa), n0), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xa, 16), n1));
  const h = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xa, 32), n2), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xa, 48), n3));
  return i32x4.add(i32x4.dot_i16x8_s(l, sa), i32x4.dot_i16x8_s(h, sb));
}

/** Σ_s sc[s]·Σ_l xq·q over one super-block at pw (152 bytes), one row's rounded x at px (256 values). */
// @ts-ignore: decorator
@inline function q4kBlock(pw: usize, px: usize): i32 {
  let isum = i32x4.splat(0);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // (i32x4.relaxed_dot_i8x16_i7x16_add_s would sum to int32 at once, but Node 20's V8 returns twice the product)
    for (let h = 0; h < 4; h++) {
      const w = pw + 24 + (<usize>h << 5);
      const v0 = v128.load(w), v1 = v128.load(w, 16);
      isum = i32x4.add(isum, q4kDot(v128.and(v0, i8x16.splat(0x0f)), v128.and(v1, i8x16.splat(0x0f)), i8x16.shr_u(v0, 4), i8x16.shr_u(v1, 4),
        px + (<usize>h << 6), i16x8.splat(<i16>load<u8>(pw + 8 + (<usize>h << 1))), i16x8.splat(<i16>load<u8>(pw + 9 + (<usize>h << 1)))));
    }
  } else {
    const m4 = i16x8.splat(0x000f);
    for (let h = 0; h < 4; h++) {
      const w = pw + 24 + (<usize>h << 5), xa = px + (<usize>h << 7);
      const v0 = v128.load(w), v1 = v128.load(w, 16);
      const a = i32x4.add(
        i32x4.add(i32x4.dot_i16x8_s(v128.and(v0, m4), v128.load(xa)), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v0, 8), m4), v128.load(xa, 16))),
        i32x4.add(i32x4.dot_i16x8_s(v128.and(v1, m4), v128.load(xa, 32)), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v1, 8), m4), v128.load(xa, 48))));
      const c = i32x4.add(
        i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v0, 4), m4), v128.load(xa, 64)), i32x4.dot_i16x8_s(i16x8.shr_u(v0, 12), v128.load(xa, 80))),
        i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v1, 4), m4), v128.load(xa, 96)), i32x4.dot_i16x8_s(i16x8.shr_u(v1, 12), v128.load(xa, 112))));
      isum = i32x4.add(isum, i32x4.add(
        i32x4.mul(a, i32x4.splat(<i32>load<u8>(pw + 8 + (<usize>h << 1)))),
        i32x4.mul(c, i32x4.splat(<i32>load<u8>(pw + 9 + (<usize>h << 1))))));
    }
  }
  return hsumi(isum);
}

/**
 * One row of x (K floats, K % 256 == 0) rounded per 256 as llama.cpp's Q8_K: dxb = amax/127 at pd (f32 per block),
 * xq = nearest-even(x·(127/amax)) at pq (int8 in order in the relaxed build; int16, per 16 the 8 at even k then
 * the 8 at odd k, in the plain build), and the sums of xq per 32 at ps (int16: |Σ| ≤ 32·127).
 */
function q8kRow(px: usize, K: i32, pd: usize, ps: usize, pq: usize): void {
  for (let b = 0; b < (K >> 8); b++) {
    const xb = px + (<usize>b << 10);
    let mx = f32x4.splat(0);
    for (let k = 0; k < 256; k += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(xb + (<usize>k << 2))));
    const amax = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
    store<f32>(pd + (<usize>b << 2), amax / <f32>127.0);
    const idv = f32x4.splat(amax == 0 ? <f32>0 : <f32>127.0 / amax);
    for (let k = 0; k < 256; k += 32) {
      const o = xb + (<usize>k << 2);
      let t = i32x4.splat(0);
      for (let u = 0; u < 2; u++) {
        const ou = o + (<usize>u << 6);
        const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ou), idv)));
        const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ou, 16), idv)));
        const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ou, 32), idv)));
        const q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ou, 48), idv)));
        const a = i16x8.narrow_i32x4_s(q0, q1), c = i16x8.narrow_i32x4_s(q2, q3);
        const kk = (b << 8) + k + (u << 4); // index in the row
        if (ASC_FEATURE_RELAXED_SIMD) v128.store(pq + <usize>kk, i8x16.narrow_i16x8_s(a, c));
        else {
          const p = pq + (<usize>kk << 1);
          v128.store(p, i8x16.shuffle(a, c, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29));
          v128.store(p, i8x16.shuffle(a, c, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31), 16);
        }
        t = i32x4.add(t, i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)));
      }
      store<i16>(ps + (<usize>(((b << 8) + k) >> 5) << 1), <i16>hsumi(t));
    }
  }
}

// @ts-ignore: decorator
@inline function hsumi(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/** Rows of x that matmul_bf16 permutes into scratch at a time (decode); more rows take the plain loop. */
const BF16_ROWS: i32 = 4;

/**
 * bf16 weights wb [N, K] (u16 each, K even); out[i, j] = Σ_k x[i, k]·f32(wb[j, k]) for columns [lo, hi).
 * Decode (M ≤ 4, K % 8 == 0): read as u32 lanes, a pair of bf16 (even k low, odd k high) widens exactly by one
 * instruction each: shl 16 gives w[even], masking the low half gives w[odd]; x is copied permuted to match (per 8
 * values: the 4 at even k, then the 4 at odd k) into scratch (BF16_ROWS·4K bytes), one weight row at a time.
 */
export function matmul_bf16(x: usize, wb: usize, out: usize, M: i32, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  if (M > BF16_ROWS || (K & 7) != 0) {
    bf16Plain(x, wb, out, M, N, K, lo, hi);
    return;
  }
  // permute x: per 8 floats [e0 e1 e2 e3 | o0 o1 o2 o3]
  for (let i = 0; i < M; i++) {
    const px = x + ((<usize>i * <usize>K) << 2), pp = scratch + ((<usize>i * <usize>K) << 2);
    for (let k = 0; k < K; k += 8) {
      const o = <usize>k << 2;
      const a = v128.load(px + o), b = v128.load(px + o, 16);
      v128.store(pp + o, i32x4.shuffle(a, b, 0, 2, 4, 6));
      v128.store(pp + o, i32x4.shuffle(a, b, 1, 3, 5, 7), 16);
    }
  }
  const hm = i32x4.splat(0xffff0000);
  const K16 = K & ~15;
  for (let j = lo; j < hi; j++) {
    const pw = wb + ((<usize>j * <usize>K) << 1);
    for (let i = 0; i < M; i++) {
      const pp = scratch + ((<usize>i * <usize>K) << 2);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let k = 0;
      for (; k < K16; k += 16) {
        const wo = pw + (<usize>k << 1), xo = pp + (<usize>k << 2);
        const v0 = v128.load(wo), v1 = v128.load(wo, 16);
        a0 = fma(i32x4.shl(v0, 16), v128.load(xo), a0);
        a1 = fma(v128.and(v0, hm), v128.load(xo, 16), a1);
        a2 = fma(i32x4.shl(v1, 16), v128.load(xo, 32), a2);
        a3 = fma(v128.and(v1, hm), v128.load(xo, 48), a3);
      }
      if (k < K) {
        const v0 = v128.load(pw + (<usize>k << 1)), xo = pp + (<usize>k << 2);
        a0 = fma(i32x4.shl(v0, 16), v128.load(xo), a0);
        a1 = fma(v128.and(v0, hm), v128.load(xo, 16), a1);
      }
      store<f32>(out + ((<usize>i * <usize>N + <usize>j) << 2), hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
    }
  }
}

/** matmul_bf16 for columns [lo, hi) without the permuted copy of x (any M, any even K). */
function bf16Plain(x: usize, wb: usize, out: usize, M: i32, N: i32, K: i32, lo: i32, hi: i32): void {
  const K16 = K & ~15;
  for (let j = lo; j < hi; j++) {
    const pw = wb + ((<usize>j * <usize>K) << 1);
    for (let i = 0; i < M; i++) {
      const px = x + ((<usize>i * <usize>K) << 2);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let k = 0;
      for (; k < K16; k += 16) {
        const v = v128.load(pw + (<usize>k << 1)), u = v128.load(pw + (<usize>k << 1), 16);
        const o = <usize>k << 2;
        a0 = fma(i32x4.shl(i32x4.extend_low_i16x8_u(v), 16), v128.load(px + o), a0);
        a1 = fma(i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), v128.load(px + o, 16), a1);
        a2 = fma(i32x4.shl(i32x4.extend_low_i16x8_u(u), 16), v128.load(px + o, 32), a2);
        a3 = fma(i32x4.shl(i32x4.extend_high_i16x8_u(u), 16), v128.load(px + o, 48), a3);
      }
      let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
      for (; k < K; k++) s += reinterpret<f32>(<u32>load<u16>(pw + (<usize>k << 1)) << 16) * load<f32>(px + (<usize>k << 2));
      store<f32>(out + ((<usize>i * <usize>N + <usize>j) << 2), s);
    }
  }
}

/**
 * Rows [lo, hi) of x (M × K floats) as the quantised products see them, written to out: each value its rounded
 * integer times its scale, in f32 (the wasm backend's float32 panels multiply these by the dequantised weights).
 * q4k = 0: per row as matmul_q8 (dx = amax/8191, xq = nearest-even(x·(1/dx))); q4k = 1: per 256 as matmul_q4k's
 * Q8_K (dx = amax/127, xq = nearest-even(x·(127/amax))). |x·id| ≤ the limit up to rounding, so no clamp is needed.
 */
export function round_rows(x: usize, out: usize, K: i32, q4k: i32, scratch: usize, lo: i32, hi: i32): void {
  const block = q4k ? 256 : K;
  for (let r = lo; r < hi; r++) {
    for (let b0 = 0; b0 < K; b0 += block) {
      const off = (<usize>r * <usize>K + <usize>b0) << 2;
      const px = x + off, po = out + off;
      let mx = f32x4.splat(0);
      for (let k = 0; k < block; k += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(px + (<usize>k << 2))));
      const amax = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
      let dx: f32, id: f32;
      if (q4k) {
        dx = amax / <f32>127.0;
        id = amax == 0 ? <f32>0 : <f32>127.0 / amax;
      } else {
        dx = amax / Q8_XMAX;
        id = dx == 0 ? <f32>0 : <f32>1.0 / dx;
      }
      const idv = f32x4.splat(id), dxv = f32x4.splat(dx);
      for (let k = 0; k < block; k += 4) {
        const o = <usize>k << 2;
        v128.store(po + o, f32x4.mul(f32x4.nearest(f32x4.mul(v128.load(px + o), idv)), dxv));
      }
    }
  }
}
