/**
 * Data movement on 4-byte elements (f32 or i32 alike): a strided copy over up to 4 collapsed axes that serves
 * transpose, slice, pad_slice and concat; embedding gather and its scatter-add gradient.
 */

/**
 * dst[Σ i·ds] = src[Σ i·ss] over dims (d0..d3), element strides; this thread does i0 in [lo, hi).
 * A contiguous innermost axis (both strides 1) copies with memory.copy.
 */
export function strided_copy(src: usize, dst: usize, d1: i32, d2: i32, d3: i32,
  ss0: i32, ss1: i32, ss2: i32, ss3: i32, ds0: i32, ds1: i32, ds2: i32, ds3: i32, scratch: usize, lo: i32, hi: i32): void {
  for (let i0 = lo; i0 < hi; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        const ps = src + (<usize>(i0 * ss0 + i1 * ss1 + i2 * ss2) << 2);
        const pd = dst + (<usize>(i0 * ds0 + i1 * ds1 + i2 * ds2) << 2);
        if (ss3 == 1 && ds3 == 1) {
          if (d3 >= 256) memory.copy(pd, ps, <usize>d3 << 2);
          else {
            // short rows: an inline loop beats the call behind memory.copy
            let j = 0;
            for (; j + 4 <= d3; j += 4) v128.store(pd + (<usize>j << 2), v128.load(ps + (<usize>j << 2)));
            for (; j < d3; j++) store<u32>(pd + (<usize>j << 2), load<u32>(ps + (<usize>j << 2)));
          }
        } else {
          for (let j = 0; j < d3; j++) store<u32>(pd + (<usize>(j * ds3) << 2), load<u32>(ps + (<usize>(j * ss3) << 2)));
        }
      }
    }
  }
}

/**
 * 2-D transpose of 4-byte elements: dst[c, r] = src[r, c] for an R×Cn matrix, rows [lo, hi) of src,
 * in 8×8 blocks so both sides stay in cache.
 */
export function transpose2d(src: usize, dst: usize, R: i32, Cn: i32, scratch: usize, lo: i32, hi: i32): void {
  for (let r0 = lo; r0 < hi; r0 += 8) {
    const r1 = min(r0 + 8, hi);
    for (let c0 = 0; c0 < Cn; c0 += 8) {
      const c1 = min(c0 + 8, Cn);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          store<u32>(dst + (<usize>(c * R + r) << 2), load<u32>(src + (<usize>(r * Cn + c) << 2)));
        }
      }
    }
  }
}

/** out[n, :] = w[ids[n], :] for rows n in [lo, hi) (ids checked by the caller). */
export function embedding(w: usize, ids: usize, out: usize, C: i32, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  for (let n = lo; n < hi; n++) {
    const id = load<i32>(ids + (<usize>n << 2));
    memory.copy(out + <usize>n * rb, w + <usize>id * rb, rb);
  }
}

/** out[n, c] = q[ids[n], c]·scales[ids[n], c/32] (a Q8_0 table: int8 rows, one f32 scale per 32) for rows n in [lo, hi). */
export function embedding_q8(wq: usize, sc: usize, ids: usize, out: usize, C: i32, scratch: usize, lo: i32, hi: i32): void {
  for (let n = lo; n < hi; n++) {
    const id = <usize>load<i32>(ids + (<usize>n << 2));
    const pq = wq + id * <usize>C, ps = sc + ((id * <usize>C) >> 3), po = out + ((<usize>n * <usize>C) << 2);
    for (let b = 0; b < C >> 5; b++) {
      const d = f32x4.splat(load<f32>(ps + (<usize>b << 2)));
      for (let j = 0; j < 32; j += 8) {
        const k = <usize>(b * 32 + j);
        const w = i16x8.extend_low_i8x16_s(v128.load64_zero(pq + k)); // 8 int8 → int16
        v128.store(po + (k << 2), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d));
        v128.store(po + (k << 2) + 16, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d));
      }
    }
  }
}

/**
 * Rows of a Q4_K table (src/model/q4k.ts: per 256, f32 d, f32 dmin, u8 sc[8], u8 mn[8], u8 qs[128]) as float32:
 * out = (d·sc[s])·q − dmin·mn[s], each product rounded to f32 (the ref's order), for rows n in [lo, hi).
 */
export function embedding_q4k(wq: usize, ids: usize, out: usize, C: i32, scratch: usize, lo: i32, hi: i32): void {
  const nb = C >> 8, rowBytes = <usize>nb * 152;
  for (let n = lo; n < hi; n++) {
    const row = wq + <usize>load<i32>(ids + (<usize>n << 2)) * rowBytes;
    let po = out + ((<usize>n * <usize>C) << 2);
    for (let b = 0; b < nb; b++) {
      const p = row + <usize>b * 152;
      const d = load<f32>(p), dmin = load<f32>(p + 4);
      for (let s = 0; s < 8; s++) {
        const ds = f32x4.splat(d * <f32>load<u8>(p + 8 + s)), ms = f32x4.splat(dmin * <f32>load<u8>(p + 16 + s));
        const pq = p + 24 + <usize>(32 * (s >> 1));
        for (let l = 0; l < 32; l += 16) {
          let q = v128.load(pq + l);
          q = s & 1 ? i8x16.shr_u(q, 4) : v128.and(q, i8x16.splat(15));
          const lo16 = i16x8.extend_low_i8x16_u(q), hi16 = i16x8.extend_high_i8x16_u(q);
          v128.store(po, f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(lo16))), ms));
          v128.store(po + 16, f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(lo16))), ms));
          v128.store(po + 32, f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(hi16))), ms));
          v128.store(po + 48, f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(hi16))), ms));
          po += 64;
        }
      }
    }
  }
}

/** out[n, c] = the bfloat16 c of row ids[n] (two per i32, low half first) widened to f32, for rows n in [lo, hi). */
export function embedding_bf16(wb: usize, ids: usize, out: usize, C: i32, scratch: usize, lo: i32, hi: i32): void {
  for (let n = lo; n < hi; n++) {
    const pw = wb + <usize>load<i32>(ids + (<usize>n << 2)) * (<usize>C << 1), po = out + ((<usize>n * <usize>C) << 2);
    let c = 0;
    for (; c + 8 <= C; c += 8) {
      const h = v128.load(pw + (<usize>c << 1)); // eight u16
      v128.store(po + (<usize>c << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
      v128.store(po + (<usize>c << 2) + 16, i32x4.shl(i32x4.extend_high_i16x8_u(h), 16));
    }
    for (; c < C; c++) store<u32>(po + (<usize>c << 2), <u32>load<u16>(pw + (<usize>c << 1)) << 16);
  }
}

/**
 * dw[:, lo:hi] = 0 (unless accumulate: dw keeps what it holds), then dw[ids[n], lo:hi] += dy[n, lo:hi] for every n < N, in order of n (so the sums do not
 * depend on how the columns are split across threads; cut at multiples of 4).
 */
export function embedding_backward(dy: usize, ids: usize, dw: usize, V: i32, C: i32, N: i32, accumulate: bool, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  const cb = <usize>lo << 2, wb = <usize>(hi - lo) << 2;
  if (accumulate) {
    // dw already holds a gradient (a tied embedding's head gradient): add to it
  } else if (lo == 0 && hi == C) memory.fill(dw, 0, <usize>V * rb);
  else for (let v = 0; v < V; v++) memory.fill(dw + <usize>v * rb + cb, 0, wb);
  const vend = lo + ((hi - lo) & ~3);
  for (let n = 0; n < N; n++) {
    const id = load<i32>(ids + (<usize>n << 2));
    const pd = dw + <usize>id * rb, ps = dy + <usize>n * rb;
    let j = lo;
    for (; j < vend; j += 4) {
      const o = <usize>j << 2;
      v128.store(pd + o, f32x4.add(v128.load(pd + o), v128.load(ps + o)));
    }
    for (; j < hi; j++) {
      const o = <usize>j << 2;
      store<f32>(pd + o, load<f32>(pd + o) + load<f32>(ps + o));
    }
  }
}
