// Decode lab (AssemblyScript): y = W·x for one token with W stored as f32, bf16 or int8 (per-row scale),
// to see what weight storage buys when decode is memory-bound. Timed by gemv-lab.mjs.
// @ts-ignore: decorator
@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** f32 weights [N, K] (K % 16 == 0). */
export function gemv_f32(w: usize, x: usize, y: usize, N: i32, K: i32): void {
  for (let n = 0; n < N; n++) {
    const pw = w + (<usize>(n * K) << 2);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k = 0; k < K; k += 16) {
      const o = <usize>k << 2;
      a0 = fma(v128.load(pw + o), v128.load(x + o), a0);
      a1 = fma(v128.load(pw + o, 16), v128.load(x + o, 16), a1);
      a2 = fma(v128.load(pw + o, 32), v128.load(x + o, 32), a2);
      a3 = fma(v128.load(pw + o, 48), v128.load(x + o, 48), a3);
    }
    store<f32>(y + (<usize>n << 2), hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
  }
}

/** bf16 weights [N, K] (upper 16 bits of f32): widen by a shift. */
export function gemv_bf16(w: usize, x: usize, y: usize, N: i32, K: i32): void {
  for (let n = 0; n < N; n++) {
    const pw = w + (<usize>(n * K) << 1);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    for (let k = 0; k < K; k += 8) {
      const v = v128.load(pw + (<usize>k << 1));
      const lo = i32x4.shl(i32x4.extend_low_i16x8_u(v), 16), hi = i32x4.shl(i32x4.extend_high_i16x8_u(v), 16);
      const o = <usize>k << 2;
      a0 = fma(lo, v128.load(x + o), a0);
      a1 = fma(hi, v128.load(x + o, 16), a1);
    }
    store<f32>(y + (<usize>n << 2), hsum(f32x4.add(a0, a1)));
  }
}

/** int8 weights [N, K] with a float scale per row, f32 activations. */
export function gemv_q8(w: usize, sc: usize, x: usize, y: usize, N: i32, K: i32): void {
  for (let n = 0; n < N; n++) {
    const pw = w + <usize>(n * K);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let k = 0; k < K; k += 16) {
      const v = v128.load(pw + <usize>k);
      const l = i16x8.extend_low_i8x16_s(v), h = i16x8.extend_high_i8x16_s(v);
      const o = <usize>k << 2;
      a0 = fma(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l)), v128.load(x + o), a0);
      a1 = fma(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l)), v128.load(x + o, 16), a1);
      a2 = fma(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h)), v128.load(x + o, 32), a2);
      a3 = fma(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h)), v128.load(x + o, 48), a3);
    }
    store<f32>(y + (<usize>n << 2), load<f32>(sc + (<usize>n << 2)) * hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
  }
}

/** int8 weights and int8 activations (xq as int16, one scale): integer dot products, i32 accumulation. */
export function gemv_q8q8(w: usize, sc: usize, xq: usize, xs: f32, y: usize, N: i32, K: i32): void {
  for (let n = 0; n < N; n++) {
    const pw = w + <usize>(n * K);
    let acc = i32x4.splat(0);
    for (let k = 0; k < K; k += 16) {
      const v = v128.load(pw + <usize>k);
      const o = <usize>k << 1;
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), v128.load(xq + o)));
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), v128.load(xq + o, 16)));
    }
    const s = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
    store<f32>(y + (<usize>n << 2), <f32>s * load<f32>(sc + (<usize>n << 2)) * xs);
  }
}
