/**
 * Decode kernels: out = x·Wᵀ for few rows of x (M ≤ 4, batch-1 decoding), W [N, K] row-major, one dot product
 * per output over a contiguous weight row. Memory-bound: every weight is read once per call, x stays in L1.
 * The caller splits the output columns [lo, hi) across threads.
 *
 * - gemv_nt:    W float32                            (the fast path of matmul with transB for M ≤ 4 rows)
 * - matmul_q8:  W int8 in blocks of 32 along K, one f32 scale per block (llama.cpp's Q8_0 weight layout), x
 *               rounded to int16 per row so each block is an integer dot product (i32x4.dot_i16x8_s). Any M:
 *               decode takes two weight rows at a time (shared x loads), prefill four rows of x per weight row
 *               (shared widened weights; ≈ the f32 packed matmul's speed).
 * - matmul_bf16: W bfloat16 (upper 16 bits of a float32), widened exactly by a shift
 * Per-shape timings: bench/lab/gemv-split.mjs; whole decode steps: bench/lab/decode-profile.mjs and
 * bench/decode.bench.mjs (against llama2.c); the first lab variants are in bench/lab/gemv_q.ts.
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

/**
 * Q8_0 weights: wq int8 [N, K] (bytes; K % 32 == 0), sc f32 [N, K/32]. Each row of x is first rounded to int16
 * with one scale per row (dx = max|x|/32767, xq = nearest-even(x·(1/dx)), all in f32), so a block's sum is an
 * exact integer dot product (i32x4.dot_i16x8_s): out[i, j] = dx[i]·Σ_b sc[j, b]·Σ_{k in b} xq[i, k]·wq[j, k],
 * for columns [lo, hi). Scratch: Q8_ROWS·(2K + 4) bytes.
 */
export function matmul_q8(x: usize, wq: usize, sc: usize, out: usize, M: i32, N: i32, K: i32,
  scratch: usize, lo: i32, hi: i32): void {
  const nb = K >> 5;
  const xq0 = scratch + 16;
  for (let i0 = 0; i0 < M; i0 += Q8_ROWS) {
    const rows = min(Q8_ROWS, M - i0);
    // quantise these rows of x to int16 (scale in dxs[r])
    for (let r = 0; r < rows; r++) {
      const px = x + ((<usize>(i0 + r) * <usize>K) << 2);
      let mx = f32x4.splat(0);
      for (let k = 0; k < K; k += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(px + (<usize>k << 2))));
      const amax = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
      const dx: f32 = amax / <f32>32767.0;
      const id: f32 = dx == 0 ? 0 : <f32>1.0 / dx;
      store<f32>(scratch + (<usize>r << 2), dx);
      const idv = f32x4.splat(id);
      const pq = xq0 + ((<usize>r * <usize>K) << 1);
      for (let k = 0; k < K; k += 8) {
        const o = <usize>k << 2;
        const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(px + o), idv)));
        const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(px + o, 16), idv)));
        v128.store(pq + (<usize>k << 1), i16x8.narrow_i32x4_s(a, b));
      }
    }
    if (rows == 4) {
      // prefill: four rows of x per weight row, the widened weights shared by the four
      q8rows4(xq0, K, wq, sc, out, N, i0, scratch, lo, hi);
      continue;
    }
    // two weight rows at a time: the int16 x loads are shared, and two independent accumulator chains
    let j = lo;
    for (; j + 2 <= hi; j += 2) {
      const pw = wq + <usize>j * <usize>K;
      const pw2 = pw + <usize>K;
      const ps = sc + ((<usize>j * <usize>nb) << 2);
      const ps2 = ps + (<usize>nb << 2);
      for (let r = 0; r < rows; r++) {
        const pq = xq0 + ((<usize>r * <usize>K) << 1);
        let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
        for (let b = 0; b < nb; b++) {
          const wo = <usize>b << 5;
          const xo = pq + (<usize>b << 6);
          const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
          const v0 = v128.load(pw + wo), v1 = v128.load(pw + wo, 16);
          const u0 = v128.load(pw2 + wo), u1 = v128.load(pw2 + wo, 16);
          let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), x0);
          let t = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(u0), x0);
          s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), x1));
          t = i32x4.add(t, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(u0), x1));
          s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), x2));
          t = i32x4.add(t, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(u1), x2));
          s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), x3));
          t = i32x4.add(t, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(u1), x3));
          acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
          acc2 = fma(f32x4.convert_i32x4_s(t), v128.load32_splat(ps2 + (<usize>b << 2)), acc2);
        }
        const dx = load<f32>(scratch + (<usize>r << 2));
        const po = out + ((<usize>(i0 + r) * <usize>N + <usize>j) << 2);
        store<f32>(po, hsum(acc) * dx);
        store<f32>(po, hsum(acc2) * dx, 4);
      }
    }
    for (; j < hi; j++) {
      const pw = wq + <usize>j * <usize>K;
      const ps = sc + ((<usize>j * <usize>nb) << 2);
      for (let r = 0; r < rows; r++) {
        const pq = xq0 + ((<usize>r * <usize>K) << 1);
        let acc = f32x4.splat(0);
        for (let b = 0; b < nb; b++) {
          const w8 = pw + (<usize>b << 5);
          const xo = pq + (<usize>b << 6);
          const v0 = v128.load(w8), v1 = v128.load(w8, 16);
          let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), v128.load(xo));
          s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), v128.load(xo, 16)));
          s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), v128.load(xo, 32)));
          s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), v128.load(xo, 48)));
          acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
        }
        store<f32>(out + ((<usize>(i0 + r) * <usize>N + <usize>j) << 2), hsum(acc) * load<f32>(scratch + (<usize>r << 2)));
      }
    }
  }
}

/** Four quantised rows (xq [4, K] int16, scales dxs[4] at scratch) against weight rows [lo, hi) of matmul_q8. */
function q8rows4(xq: usize, K: i32, wq: usize, sc: usize, out: usize, N: i32, i0: i32, dxs: usize, lo: i32, hi: i32): void {
  const nb = K >> 5;
  const rs = <usize>K << 1;
  for (let j = lo; j < hi; j++) {
    const pw = wq + <usize>j * <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const v0 = v128.load(pw + (<usize>b << 5)), v1 = v128.load(pw + (<usize>b << 5), 16);
      const w0 = i16x8.extend_low_i8x16_s(v0), w1 = i16x8.extend_high_i8x16_s(v0);
      const w2 = i16x8.extend_low_i8x16_s(v1), w3 = i16x8.extend_high_i8x16_s(v1);
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

/** bf16 weights wb [N, K] (u16 each, K even); out[i, j] = Σ_k x[i, k]·f32(wb[j, k]) for columns [lo, hi). */
export function matmul_bf16(x: usize, wb: usize, out: usize, M: i32, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
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
