// The machine's WebAssembly SIMD128 arithmetic peak: `iters` rounds of 12 independent f32x4 multiply-adds (relaxed
// FMA where the build enables it, else mul + add), enough independent chains to cover the FMA latency on both
// ports. 96 flops per round. Built and run by bench/machine.mjs (wasmSimdPeak).
// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

export function fmaPeak(iters: i32, seed: f32): f32 {
  const x = f32x4.splat(seed), y = f32x4.splat(<f32>0.9999);
  let a0 = x, a1 = f32x4.add(x, y), a2 = f32x4.sub(x, y), a3 = f32x4.mul(x, y);
  let a4 = f32x4.add(a0, a1), a5 = f32x4.add(a1, a2), a6 = f32x4.add(a2, a3), a7 = f32x4.add(a3, a0);
  let a8 = f32x4.sub(a0, a1), a9 = f32x4.sub(a1, a2), a10 = f32x4.sub(a2, a3), a11 = f32x4.sub(a3, a0);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, y, x); a1 = madd(a1, y, x); a2 = madd(a2, y, x); a3 = madd(a3, y, x);
    a4 = madd(a4, y, x); a5 = madd(a5, y, x); a6 = madd(a6, y, x); a7 = madd(a7, y, x);
    a8 = madd(a8, y, x); a9 = madd(a9, y, x); a10 = madd(a10, y, x); a11 = madd(a11, y, x);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  const t = f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11));
  return f32x4.extract_lane(f32x4.add(s, t), 0);
}
