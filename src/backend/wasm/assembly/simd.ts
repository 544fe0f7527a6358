/**
 * SIMD helpers shared by every kernel (AssemblyScript, compiled to WebAssembly SIMD128).
 * `fma` is f32x4.relaxed_madd in the relaxed-SIMD build (one fused instruction where the CPU has FMA) and
 * mul+add in the plain build; `ASC_FEATURE_RELAXED_SIMD` is a compile-time constant, so the branch folds away.
 * `expv` is Cephes' expf on four lanes (≈1 ulp on [-87, 88]; 0 below -88.37).
 */

// @ts-ignore: decorator
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/**
 * e^x on four lanes: n = round(x·log2 e) by the 1.5·2²³ trick (no float→int conversion), r = x − n·ln 2 in two
 * parts, Cephes' degree-6 polynomial on r, times 2ⁿ built in the exponent bits. Clamped with pmin/pmax (one
 * instruction each); x below −87.34 gives 0, above 88.38 gives +∞ (true overflow is at 88.72), NaN stays NaN.
 */
// @ts-ignore: decorator
@inline export function expv(x0: v128): v128 {
  const lo = f32x4.splat(-87.33654);
  let x = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(88.5)), lo);
  const magic = f32x4.splat(12582912.0); // 1.5·2²³
  const t = fma(x, f32x4.splat(1.44269504088896341), magic);
  const fx = f32x4.sub(t, magic);
  x = fma(fx, f32x4.splat(-0.693359375), x);
  x = fma(fx, f32x4.splat(2.12194440e-4), x);
  let y = f32x4.splat(1.9875691500e-4);
  y = fma(y, x, f32x4.splat(1.3981999507e-3));
  y = fma(y, x, f32x4.splat(8.3334519073e-3));
  y = fma(y, x, f32x4.splat(4.1665795894e-2));
  y = fma(y, x, f32x4.splat(1.6666665459e-1));
  y = fma(y, x, f32x4.splat(5.0000001201e-1));
  y = fma(y, f32x4.mul(x, x), f32x4.add(x, f32x4.splat(1.0)));
  // integer n sits in the low mantissa bits of t: 2ⁿ = (n + 127) << 23 (n = 128 above 88.38 gives +∞)
  const e = i32x4.shl(i32x4.add(i32x4.sub(t, magic), i32x4.splat(127)), 23);
  // below the smallest normal result: 0 (so exp(−∞) = 0)
  return v128.and(f32x4.mul(y, e), f32x4.ge(x0, lo));
}

/** Scalar e^x through the same polynomial (so scalar tails match SIMD bodies). */
// @ts-ignore: decorator
@inline export function exps(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}

/** Σ a[i]·b[i] over n floats. */
export function dot(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    s0 = fma(v128.load(a + o), v128.load(b + o), s0);
    s1 = fma(v128.load(a + o, 16), v128.load(b + o, 16), s1);
  }
  if (i + 4 <= n) {
    const o = <usize>i << 2;
    s0 = fma(v128.load(a + o), v128.load(b + o), s0);
    i += 4;
  }
  let s = hsum(f32x4.add(s0, s1));
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/** y[i] += alpha·x[i] over n floats. */
export function axpy(alpha: f32, x: usize, y: usize, n: i32): void {
  const av = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, fma(av, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

/** Zero n floats. */
// @ts-ignore: decorator
@inline export function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}
