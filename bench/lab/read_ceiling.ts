// The fastest a WebAssembly SIMD128 kernel can read memory here: `passes` sweeps over `bytes` bytes at `ptr`, 128-bit
// loads into 8 independent f32x4 sums (no other work, no stores). Built and run by bench/lab/read-ceiling.mjs.
export function readSum(ptr: usize, bytes: usize, passes: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const end = ptr + bytes;
  for (let p = 0; p < passes; p++) {
    for (let q = ptr; q < end; q += 128) {
      a0 = f32x4.add(a0, v128.load(q));
      a1 = f32x4.add(a1, v128.load(q, 16));
      a2 = f32x4.add(a2, v128.load(q, 32));
      a3 = f32x4.add(a3, v128.load(q, 48));
      a4 = f32x4.add(a4, v128.load(q, 64));
      a5 = f32x4.add(a5, v128.load(q, 80));
      a6 = f32x4.add(a6, v128.load(q, 96));
      a7 = f32x4.add(a7, v128.load(q, 112));
    }
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}

// The most int8 multiply-adds WebAssembly SIMD128 does here, data in L1: `passes` sweeps over `n` int8 weights at
// `w` against int16 activations at `x` (widened once per token, the best case), per 16 weights: one load, two
// sign-extends to i16x8, two i32x4.dot_i16x8_s (8 multiply-adds each) into 4 independent i32x4 sums. No block
// scales, no memory traffic: an upper bound for any 8-bit matrix-vector product in WebAssembly.
export function dotI8(w: usize, x: usize, n: usize, passes: i32): i32 {
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let p = 0; p < passes; p++) {
    for (let i: usize = 0; i < n; i += 32) {
      const v0 = v128.load(w + i), v1 = v128.load(w + i, 16);
      const xo = x + (i << 1);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), v128.load(xo)));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), v128.load(xo, 16)));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), v128.load(xo, 32)));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), v128.load(xo, 48)));
    }
  }
  const s = i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}
