// Decode lab (AssemblyScript): variants of the Q8_0 batch-1 matmul out[j] = Σ_b sc[j,b]·Σ_k x̂[k]·q[j,k], j in
// [lo, hi), x one row of K floats. Timed and checked by q8-lab.mjs. Scratch layout: [0, 4K) block scales of x
// (or the row scale at 0), then the quantised x (int16 or bytes) from byte 8K.
// Findings (Node 20 / V8 11.3, AMD EPYC, 2026-11-28; src/backend/wasm/assembly/gemv.ts took q8_mask1):
// - Streaming from DRAM, ONE weight row per pass (q8_mask1) reads 1.6–1.7× faster than two interleaved rows
//   (q8_i16, q8_mask): 12–13 ms vs 20–21 ms for a stories110M token on one thread. In cache, two rows are ≤ 10%
//   faster. Decode at 110M is DRAM-bound, so one row.
// - Widening int8 by i16x8.shl 8 / v128.and 0xff00 (x permuted even/odd, ·256 folded into the scale) beats
//   extend_low/extend_high by ~10–20% in cache; x then has 14 bits (±8191) instead of 16: error vs the exact
//   product 5.7e-4 instead of 1.5e-4, invisible next to the weights' own rounding (fixture logits error unchanged).
// - i32x4.relaxed_dot_i8x16_i7x16_add_s returns TWICE the dot product in this V8 (the i16x8 form is right), so
//   q8_offnc is only a speed bound; the correct relaxed form (q8_off16: 7-bit x per block + 64 offset) is no faster
//   than q8_mask and doubles the x rounding error (2.3e-2 vs 1.1e-2 for int8 per block, q8_blk16). Not used.
// - Four weight rows per pass (q8_i16r4, q8_mask4), a 4×4 transpose-add of block sums (q8_mask1v), four blocks
//   per step (q8_mask1x4: same), a plain load 0.5–8 KB ahead as a prefetch (q8_maskp, q8_mask1p*): slower or equal.
// @ts-ignore: decorator
@inline function fma(a: v128, b: v128, c: v128): v128 {
  return f32x4.relaxed_madd(a, b, c);
}
// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}
// @ts-ignore: decorator
@inline function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** x → int16 with one scale per row (the current kernel's rounding); dx at scratch, xq at scratch + 8K. */
function quantRow16(x: usize, K: i32, scratch: usize): void {
  let mx = f32x4.splat(0);
  for (let k = 0; k < K; k += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(x + (<usize>k << 2))));
  const dx: f32 = hmax(mx) / <f32>32767.0;
  const id: f32 = dx == 0 ? 0 : <f32>1.0 / dx;
  store<f32>(scratch, dx);
  const idv = f32x4.splat(id);
  const pq = scratch + (<usize>K << 3);
  for (let k = 0; k < K; k += 8) {
    const o = <usize>k << 2;
    const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o), idv)));
    const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + o, 16), idv)));
    v128.store(pq + (<usize>k << 1), i16x8.narrow_i32x4_s(a, b));
  }
}

/**
 * x → per block of 32: d = amax/lim, q = nearest-even(x/d) ∈ [−lim, lim], stored as bytes q + off (off = 64 for
 * the 7-bit offset form, 0 for plain int8) at scratch + 8K; d[b] at scratch + 4b. If wide, q is stored as int16.
 */
function quantBlocks(x: usize, K: i32, scratch: usize, lim: f32, off: i32, wide: bool): void {
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const offv = i8x16.splat(<i8>off);
  for (let b = 0; b < nb; b++) {
    const px = x + (<usize>b << 7);
    const v0 = v128.load(px), v1 = v128.load(px, 16), v2 = v128.load(px, 32), v3 = v128.load(px, 48);
    const v4 = v128.load(px, 64), v5 = v128.load(px, 80), v6 = v128.load(px, 96), v7 = v128.load(px, 112);
    const m = f32x4.max(f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
    const d: f32 = hmax(m) / lim;
    const id = f32x4.splat(d == 0 ? 0 : <f32>1.0 / d);
    store<f32>(scratch + (<usize>b << 2), d);
    const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v0, id)));
    const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v1, id)));
    const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v2, id)));
    const q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v3, id)));
    const q4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v4, id)));
    const q5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v5, id)));
    const q6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v6, id)));
    const q7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v7, id)));
    const h0 = i16x8.narrow_i32x4_s(q0, q1), h1 = i16x8.narrow_i32x4_s(q2, q3);
    const h2 = i16x8.narrow_i32x4_s(q4, q5), h3 = i16x8.narrow_i32x4_s(q6, q7);
    if (wide) {
      const o = pq + (<usize>b << 6);
      v128.store(o, h0); v128.store(o, h1, 16); v128.store(o, h2, 32); v128.store(o, h3, 48);
    } else {
      const o = pq + (<usize>b << 5);
      v128.store(o, i8x16.add(i8x16.narrow_i16x8_s(h0, h1), offv));
      v128.store(o, i8x16.add(i8x16.narrow_i16x8_s(h2, h3), offv), 16);
    }
  }
}

/** A: the current kernel (int16 x per row, two weight rows per pass). */
export function q8_i16(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRow16(x, K, scratch);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch);
  for (let j = lo; j < hi; j += 2) {
    const pw = wq + <usize>j * <usize>K;
    const pw2 = pw + <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const ps2 = ps + (<usize>nb << 2);
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
    store<f32>(out + (<usize>j << 2), hsum(acc) * dx);
    store<f32>(out + (<usize>j << 2), hsum(acc2) * dx, 4);
  }
}

/** F: int8-per-block x stored as int16 (plain SIMD), block scale dx[b]·sc[j,b] per block; two rows. */
export function q8_blk16(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantBlocks(x, K, scratch, 127, 0, true);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  for (let j = lo; j < hi; j += 2) {
    const pw = wq + <usize>j * <usize>K;
    const pw2 = pw + <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const ps2 = ps + (<usize>nb << 2);
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
      const dxb = load<f32>(scratch + (<usize>b << 2));
      acc = fma(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(ps + (<usize>b << 2)) * dxb), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), f32x4.splat(load<f32>(ps2 + (<usize>b << 2)) * dxb), acc2);
    }
    store<f32>(out + (<usize>j << 2), hsum(acc));
    store<f32>(out + (<usize>j << 2), hsum(acc2), 4);
  }
}

/** D: speed bound of C: no correction (wrong results). */
export function q8_offnc(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantBlocks(x, K, scratch, 63, 64, false);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const zero = i32x4.splat(0);
  for (let j = lo; j < hi; j += 2) {
    const pw = wq + <usize>j * <usize>K;
    const pw2 = pw + <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const ps2 = ps + (<usize>nb << 2);
    let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const wo = <usize>b << 5;
      const xo = pq + (<usize>b << 5);
      const x0 = v128.load(xo), x1 = v128.load(xo, 16);
      const v0 = v128.load(pw + wo), v1 = v128.load(pw + wo, 16);
      const u0 = v128.load(pw2 + wo), u1 = v128.load(pw2 + wo, 16);
      let s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v0, x0, zero);
      let t = i32x4.relaxed_dot_i8x16_i7x16_add_s(u0, x0, zero);
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v1, x1, s);
      t = i32x4.relaxed_dot_i8x16_i7x16_add_s(u1, x1, t);
      const dxb = load<f32>(scratch + (<usize>b << 2));
      acc = fma(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(ps + (<usize>b << 2)) * dxb), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), f32x4.splat(load<f32>(ps2 + (<usize>b << 2)) * dxb), acc2);
    }
    store<f32>(out + (<usize>j << 2), hsum(acc));
    store<f32>(out + (<usize>j << 2), hsum(acc2), 4);
  }
}

/** B: the current int16-per-row kernel, four weight rows per pass (x loads shared by four). */
export function q8_i16r4(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRow16(x, K, scratch);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch);
  const kk = <usize>K;
  for (let j = lo; j < hi; j += 4) {
    const pw = wq + <usize>j * kk;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const sn = <usize>nb << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const wo = pw + (<usize>b << 5);
      const xo = pq + (<usize>b << 6);
      const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
      const so = ps + (<usize>b << 2);
      let v0 = v128.load(wo), v1 = v128.load(wo, 16);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), x3)));
      a0 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so), a0);
      v0 = v128.load(wo + kk); v1 = v128.load(wo + kk, 16);
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), x3)));
      a1 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so + sn), a1);
      v0 = v128.load(wo + 2 * kk); v1 = v128.load(wo + 2 * kk, 16);
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), x3)));
      a2 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so + 2 * sn), a2);
      v0 = v128.load(wo + 3 * kk); v1 = v128.load(wo + 3 * kk, 16);
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), x3)));
      a3 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so + 3 * sn), a3);
    }
    const po = out + (<usize>j << 2);
    store<f32>(po, hsum(a0) * dx); store<f32>(po, hsum(a1) * dx, 4); store<f32>(po, hsum(a2) * dx, 8); store<f32>(po, hsum(a3) * dx, 12);
  }
}

/** x → int16 with one row scale (lim = 8191: headroom for the ·256 of q8_mask), permuted per 16: 8 even k then 8 odd k. */
function quantRowPerm(x: usize, K: i32, scratch: usize, lim: f32): void {
  let mx = f32x4.splat(0);
  for (let k = 0; k < K; k += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(x + (<usize>k << 2))));
  const dx: f32 = hmax(mx) / lim;
  const id: f32 = dx == 0 ? 0 : <f32>1.0 / dx;
  store<f32>(scratch, dx);
  const idv = f32x4.splat(id);
  const pq = scratch + (<usize>K << 3);
  for (let k = 0; k < K; k += 16) {
    const o = x + (<usize>k << 2);
    const a = i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o), idv))),
      i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o, 16), idv))));
    const b = i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o, 32), idv))),
      i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(o, 48), idv))));
    // a = x[k..k+8), b = x[k+8..k+16): even lanes then odd lanes
    const ev = i8x16.shuffle(a, b, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
    const od = i8x16.shuffle(a, b, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    const p = pq + (<usize>k << 1);
    v128.store(p, ev);
    v128.store(p, od, 16);
  }
}

/** G: int16 x (±8191, permuted even/odd); weights widened by shl 8 (even bytes ·256) and and 0xFF00 (odd ·256). */
export function q8_mask(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  for (let j = lo; j < hi; j += 2) {
    const pw = wq + <usize>j * <usize>K;
    const pw2 = pw + <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const ps2 = ps + (<usize>nb << 2);
    let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const wo = <usize>b << 5;
      const xo = pq + (<usize>b << 6);
      const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
      const v0 = v128.load(pw + wo), v1 = v128.load(pw + wo, 16);
      const u0 = v128.load(pw2 + wo), u1 = v128.load(pw2 + wo, 16);
      let s = i32x4.dot_i16x8_s(i16x8.shl(v0, 8), x0);
      let t = i32x4.dot_i16x8_s(i16x8.shl(u0, 8), x0);
      s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(v0, hm), x1));
      t = i32x4.add(t, i32x4.dot_i16x8_s(v128.and(u0, hm), x1));
      s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shl(v1, 8), x2));
      t = i32x4.add(t, i32x4.dot_i16x8_s(i16x8.shl(u1, 8), x2));
      s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(v1, hm), x3));
      t = i32x4.add(t, i32x4.dot_i16x8_s(v128.and(u1, hm), x3));
      acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), v128.load32_splat(ps2 + (<usize>b << 2)), acc2);
    }
    store<f32>(out + (<usize>j << 2), hsum(acc) * dx);
    store<f32>(out + (<usize>j << 2), hsum(acc2) * dx, 4);
  }
}

/** G4: q8_mask, four weight rows per pass. */
export function q8_mask4(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  const kk = <usize>K;
  for (let j = lo; j < hi; j += 4) {
    const pw = wq + <usize>j * kk;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const sn = <usize>nb << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const wo = pw + (<usize>b << 5);
      const xo = pq + (<usize>b << 6);
      const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
      const so = ps + (<usize>b << 2);
      let v0 = v128.load(wo), v1 = v128.load(wo, 16);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), x0), i32x4.dot_i16x8_s(v128.and(v0, hm), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), x2), i32x4.dot_i16x8_s(v128.and(v1, hm), x3)));
      a0 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so), a0);
      v0 = v128.load(wo + kk); v1 = v128.load(wo + kk, 16);
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), x0), i32x4.dot_i16x8_s(v128.and(v0, hm), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), x2), i32x4.dot_i16x8_s(v128.and(v1, hm), x3)));
      a1 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so + sn), a1);
      v0 = v128.load(wo + 2 * kk); v1 = v128.load(wo + 2 * kk, 16);
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), x0), i32x4.dot_i16x8_s(v128.and(v0, hm), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), x2), i32x4.dot_i16x8_s(v128.and(v1, hm), x3)));
      a2 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so + 2 * sn), a2);
      v0 = v128.load(wo + 3 * kk); v1 = v128.load(wo + 3 * kk, 16);
      s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), x0), i32x4.dot_i16x8_s(v128.and(v0, hm), x1)),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), x2), i32x4.dot_i16x8_s(v128.and(v1, hm), x3)));
      a3 = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(so + 3 * sn), a3);
    }
    const po = out + (<usize>j << 2);
    store<f32>(po, hsum(a0) * dx); store<f32>(po, hsum(a1) * dx, 4); store<f32>(po, hsum(a2) * dx, 8); store<f32>(po, hsum(a3) * dx, 12);
  }
}

/** C16: relaxed i16x8 dot (correct in V8 11; the i32x4 _add form doubles), x 7-bit offset, correction in kernel. */
export function q8_off16(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantBlocks(x, K, scratch, 63, 64, false);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const one = i16x8.splat(1), c64 = i8x16.splat(64);
  for (let j = lo; j < hi; j += 2) {
    const pw = wq + <usize>j * <usize>K;
    const pw2 = pw + <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const ps2 = ps + (<usize>nb << 2);
    let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const wo = <usize>b << 5;
      const xo = pq + (<usize>b << 5);
      const x0 = v128.load(xo), x1 = v128.load(xo, 16);
      const v0 = v128.load(pw + wo), v1 = v128.load(pw + wo, 16);
      const u0 = v128.load(pw2 + wo), u1 = v128.load(pw2 + wo, 16);
      // i16 pair sums of w·(x+64) and of w·64 (both fit), difference fits too: |Σ2 w·x| ≤ 2·128·63
      const ds0 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(v0, x0), i16x8.relaxed_dot_i8x16_i7x16_s(v0, c64));
      const ds1 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(v1, x1), i16x8.relaxed_dot_i8x16_i7x16_s(v1, c64));
      const dt0 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(u0, x0), i16x8.relaxed_dot_i8x16_i7x16_s(u0, c64));
      const dt1 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(u1, x1), i16x8.relaxed_dot_i8x16_i7x16_s(u1, c64));
      const s = i32x4.dot_i16x8_s(i16x8.add(ds0, ds1), one);
      const t = i32x4.dot_i16x8_s(i16x8.add(dt0, dt1), one);
      const dxb = load<f32>(scratch + (<usize>b << 2));
      acc = fma(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(ps + (<usize>b << 2)) * dxb), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), f32x4.splat(load<f32>(ps2 + (<usize>b << 2)) * dxb), acc2);
    }
    store<f32>(out + (<usize>j << 2), hsum(acc));
    store<f32>(out + (<usize>j << 2), hsum(acc2), 4);
  }
}

/** G1: q8_mask, one weight row per pass (one weight stream). */
export function q8_mask1(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  for (let j = lo; j < hi; j++) {
    const pw = wq + <usize>j * <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
    let b = 0;
    for (; b + 2 <= nb; b += 2) {
      const w8 = pw + (<usize>b << 5);
      const xo = pq + (<usize>b << 6);
      const v0 = v128.load(w8), v1 = v128.load(w8, 16), v2 = v128.load(w8, 32), v3 = v128.load(w8, 48);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
      let t = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v2, 8), v128.load(xo, 64)), i32x4.dot_i16x8_s(v128.and(v2, hm), v128.load(xo, 80))),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v3, 8), v128.load(xo, 96)), i32x4.dot_i16x8_s(v128.and(v3, hm), v128.load(xo, 112))));
      acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), v128.load32_splat(ps + (<usize>b << 2), 4), acc2);
    }
    if (b < nb) {
      const w8 = pw + (<usize>b << 5);
      const xo = pq + (<usize>b << 6);
      const v0 = v128.load(w8), v1 = v128.load(w8, 16);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
      acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
    }
    store<f32>(out + (<usize>j << 2), hsum(f32x4.add(acc, acc2)) * dx);
  }
}

/** GP: q8_mask (two rows) touching the cache line 2 KB ahead once per 64 bytes of each row (a software prefetch). */
export function q8_maskp(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  let sink: i32 = 0;
  const end = wq + <usize>N * <usize>K;
  for (let j = lo; j < hi; j += 2) {
    const pw = wq + <usize>j * <usize>K;
    const pw2 = pw + <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    const ps2 = ps + (<usize>nb << 2);
    let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const wo = <usize>b << 5;
      const xo = pq + (<usize>b << 6);
      if ((b & 1) == 0) {
        const a = pw + wo + 2 * <usize>K + 1024;
        if (a < end) sink ^= load<i32>(a);
        const a2 = pw2 + wo + 2 * <usize>K + 1024;
        if (a2 < end) sink ^= load<i32>(a2);
      }
      const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
      const v0 = v128.load(pw + wo), v1 = v128.load(pw + wo, 16);
      const u0 = v128.load(pw2 + wo), u1 = v128.load(pw2 + wo, 16);
      let s = i32x4.dot_i16x8_s(i16x8.shl(v0, 8), x0);
      let t = i32x4.dot_i16x8_s(i16x8.shl(u0, 8), x0);
      s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(v0, hm), x1));
      t = i32x4.add(t, i32x4.dot_i16x8_s(v128.and(u0, hm), x1));
      s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shl(v1, 8), x2));
      t = i32x4.add(t, i32x4.dot_i16x8_s(i16x8.shl(u1, 8), x2));
      s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(v1, hm), x3));
      t = i32x4.add(t, i32x4.dot_i16x8_s(v128.and(u1, hm), x3));
      acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), v128.load32_splat(ps2 + (<usize>b << 2)), acc2);
    }
    store<f32>(out + (<usize>j << 2), hsum(acc) * dx);
    store<f32>(out + (<usize>j << 2), hsum(acc2) * dx, 4);
  }
  store<i32>(scratch + 4, sink);
}

// @ts-ignore: decorator
@inline function blk(w8: usize, xo: usize, hm: v128): v128 {
  const v0 = v128.load(w8), v1 = v128.load(w8, 16);
  return i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
}

/** G1x4: q8_mask1 with four blocks per step, four accumulators. */
export function q8_mask1x4(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  for (let j = lo; j < hi; j++) {
    const pw = wq + <usize>j * <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b = 0;
    for (; b + 4 <= nb; b += 4) {
      const w8 = pw + (<usize>b << 5), xo = pq + (<usize>b << 6), so = ps + (<usize>b << 2);
      a0 = fma(f32x4.convert_i32x4_s(blk(w8, xo, hm)), v128.load32_splat(so), a0);
      a1 = fma(f32x4.convert_i32x4_s(blk(w8 + 32, xo + 64, hm)), v128.load32_splat(so, 4), a1);
      a2 = fma(f32x4.convert_i32x4_s(blk(w8 + 64, xo + 128, hm)), v128.load32_splat(so, 8), a2);
      a3 = fma(f32x4.convert_i32x4_s(blk(w8 + 96, xo + 192, hm)), v128.load32_splat(so, 12), a3);
    }
    for (; b < nb; b++) a0 = fma(f32x4.convert_i32x4_s(blk(pw + (<usize>b << 5), pq + (<usize>b << 6), hm)), v128.load32_splat(ps + (<usize>b << 2)), a0);
    store<f32>(out + (<usize>j << 2), hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))) * dx);
  }
}

/** G1v: q8_mask1 with the scales of four blocks applied as one f32x4 after a 4×4 transpose-add of the block sums. */
export function q8_mask1v(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  for (let j = lo; j < hi; j++) {
    const pw = wq + <usize>j * <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    let a0 = f32x4.splat(0);
    let b = 0;
    for (; b + 4 <= nb; b += 4) {
      const w8 = pw + (<usize>b << 5), xo = pq + (<usize>b << 6);
      const s0 = blk(w8, xo, hm), s1 = blk(w8 + 32, xo + 64, hm), s2 = blk(w8 + 64, xo + 128, hm), s3 = blk(w8 + 96, xo + 192, hm);
      const t0 = i32x4.add(i32x4.shuffle(s0, s1, 0, 4, 2, 6), i32x4.shuffle(s0, s1, 1, 5, 3, 7));
      const t1 = i32x4.add(i32x4.shuffle(s2, s3, 0, 4, 2, 6), i32x4.shuffle(s2, s3, 1, 5, 3, 7));
      const h = i32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
      a0 = fma(f32x4.convert_i32x4_s(h), v128.load(ps + (<usize>b << 2)), a0);
    }
    let s: f32 = hsum(a0);
    for (; b < nb; b++) s += hsum(f32x4.convert_i32x4_s(blk(pw + (<usize>b << 5), pq + (<usize>b << 6), hm))) * load<f32>(ps + (<usize>b << 2));
    store<f32>(out + (<usize>j << 2), s * dx);
  }
}

/** G1p: q8_mask1 touching the cache line DIST bytes ahead once per 64 bytes (a software prefetch by plain load). */
// @ts-ignore: decorator
@inline function mask1p(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32, dist: usize): void {
  quantRowPerm(x, K, scratch, 8191);
  const nb = K >> 5;
  const pq = scratch + (<usize>K << 3);
  const dx = load<f32>(scratch) * <f32>(1.0 / 256.0);
  const hm = i16x8.splat(<i16>0xff00);
  const end = wq + <usize>N * <usize>K - 4;
  let sink: i32 = 0;
  for (let j = lo; j < hi; j++) {
    const pw = wq + <usize>j * <usize>K;
    const ps = sc + ((<usize>j * <usize>nb) << 2);
    let acc = f32x4.splat(0), acc2 = f32x4.splat(0);
    let b = 0;
    for (; b + 2 <= nb; b += 2) {
      const w8 = pw + (<usize>b << 5);
      const xo = pq + (<usize>b << 6);
      const ahead = min(w8 + dist, end);
      sink += load<i32>(ahead);
      const v0 = v128.load(w8), v1 = v128.load(w8, 16), v2 = v128.load(w8, 32), v3 = v128.load(w8, 48);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
      let t = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v2, 8), v128.load(xo, 64)), i32x4.dot_i16x8_s(v128.and(v2, hm), v128.load(xo, 80))),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v3, 8), v128.load(xo, 96)), i32x4.dot_i16x8_s(v128.and(v3, hm), v128.load(xo, 112))));
      acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
      acc2 = fma(f32x4.convert_i32x4_s(t), v128.load32_splat(ps + (<usize>b << 2), 4), acc2);
    }
    if (b < nb) {
      const w8 = pw + (<usize>b << 5);
      const xo = pq + (<usize>b << 6);
      const v0 = v128.load(w8), v1 = v128.load(w8, 16);
      let s = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v0, 8), v128.load(xo)), i32x4.dot_i16x8_s(v128.and(v0, hm), v128.load(xo, 16))),
        i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v1, 8), v128.load(xo, 32)), i32x4.dot_i16x8_s(v128.and(v1, hm), v128.load(xo, 48))));
      acc = fma(f32x4.convert_i32x4_s(s), v128.load32_splat(ps + (<usize>b << 2)), acc);
    }
    store<f32>(out + (<usize>j << 2), hsum(f32x4.add(acc, acc2)) * dx);
  }
  store<i32>(scratch + 4, sink);
}
export function q8_mask1p512(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void { mask1p(x, wq, sc, out, N, K, scratch, lo, hi, 512); }
export function q8_mask1p2k(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void { mask1p(x, wq, sc, out, N, K, scratch, lo, hi, 2048); }
export function q8_mask1p8k(x: usize, wq: usize, sc: usize, out: usize, N: i32, K: i32, scratch: usize, lo: i32, hi: i32): void { mask1p(x, wq, sc, out, N, K, scratch, lo, hi, 8192); }
