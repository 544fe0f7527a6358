/**
 * Elementwise kernels: unary maths, broadcast binary ops (up to 4 collapsed axes), GELU/SiLU/SwiGLU and their
 * gradients, dropout (the counter hash of src/util/rng.ts `hashUniform`, bit-exact), casts and the fused AdamW
 * update. Splittable kernels end with (scratch, lo, hi): the element (or outer-axis) range this thread does.
 * Scalar tails go through the same vector formulas, so a result does not depend on where a range is cut.
 */
import { fma, expv } from './simd';

const GELU_C: f32 = 0.7978845608028654; // √(2/π)

// @ts-ignore: decorator
@inline function sigmoidv(x: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expv(f32x4.neg(x))));
}

// @ts-ignore: decorator
@inline function geluv(x: v128): v128 {
  // 0.5·x·(1 + tanh(u)) = x·σ(2u), u = √(2/π)·(x + 0.044715·x³)
  const x2 = f32x4.mul(x, x);
  const u = f32x4.mul(f32x4.mul(x, f32x4.splat(GELU_C)), fma(x2, f32x4.splat(0.044715), f32x4.splat(1)));
  return f32x4.mul(x, sigmoidv(f32x4.add(u, u)));
}

// @ts-ignore: decorator
@inline function geluGradv(x: v128): v128 {
  // d/dx = s + 2x·s(1−s)·u',  s = σ(2u), u' = √(2/π)·(1 + 3·0.044715·x²)
  const x2 = f32x4.mul(x, x);
  const u = f32x4.mul(f32x4.mul(x, f32x4.splat(GELU_C)), fma(x2, f32x4.splat(0.044715), f32x4.splat(1)));
  const s = sigmoidv(f32x4.add(u, u));
  const du = f32x4.mul(f32x4.splat(GELU_C), fma(x2, f32x4.splat(0.134145), f32x4.splat(1)));
  const t = f32x4.mul(f32x4.mul(f32x4.add(x, x), f32x4.mul(s, f32x4.sub(f32x4.splat(1), s))), du);
  return f32x4.add(s, t);
}

// @ts-ignore: decorator
@inline function siluv(x: v128): v128 {
  return f32x4.mul(x, sigmoidv(x));
}

// @ts-ignore: decorator
@inline function siluGradv(x: v128): v128 {
  const s = sigmoidv(x);
  return f32x4.mul(s, fma(x, f32x4.sub(f32x4.splat(1), s), f32x4.splat(1)));
}

// @ts-ignore: decorator
@inline function logv(x: v128): v128 {
  let r = f32x4.splat(Mathf.log(f32x4.extract_lane(x, 0)));
  r = f32x4.replace_lane(r, 1, Mathf.log(f32x4.extract_lane(x, 1)));
  r = f32x4.replace_lane(r, 2, Mathf.log(f32x4.extract_lane(x, 2)));
  r = f32x4.replace_lane(r, 3, Mathf.log(f32x4.extract_lane(x, 3)));
  return r;
}

// @ts-ignore: decorator
@inline function unaryOp(op: i32, x: v128, alpha: v128, beta: v128): v128 {
  switch (op) {
    case 0: return fma(x, alpha, beta); // scale
    case 1: return expv(x);
    case 2: return logv(x);
    case 3: return f32x4.neg(x);
    case 4: return f32x4.sqrt(x);
    case 5: return f32x4.div(f32x4.splat(1), f32x4.sqrt(x));
    case 6: return f32x4.mul(x, x);
    case 7: return geluv(x);
    case 8: return siluv(x);
    default: return x;
  }
}

/** The loop of `unary` for one op (inlined with a constant op, so the switch folds away). */
// @ts-ignore: decorator
@inline function unaryLoop(op: i32, a: usize, out: usize, av: v128, bv: v128, lo: i32, hi: i32): void {
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, unaryOp(op, v128.load(a + o), av, bv));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(unaryOp(op, f32x4.splat(load<f32>(a + o)), av, bv), 0));
  }
}

/** out[i] = op(a[i]) for i in [lo, hi). op: 0 scale(alpha·x+beta) 1 exp 2 log 3 neg 4 sqrt 5 rsqrt 6 square 7 gelu 8 silu. */
export function unary(op: i32, a: usize, out: usize, alpha: f32, beta: f32, scratch: usize, lo: i32, hi: i32): void {
  const av = f32x4.splat(alpha), bv = f32x4.splat(beta);
  switch (op) {
    case 0: unaryLoop(0, a, out, av, bv, lo, hi); break;
    case 1: unaryLoop(1, a, out, av, bv, lo, hi); break;
    case 2: unaryLoop(2, a, out, av, bv, lo, hi); break;
    case 3: unaryLoop(3, a, out, av, bv, lo, hi); break;
    case 4: unaryLoop(4, a, out, av, bv, lo, hi); break;
    case 5: unaryLoop(5, a, out, av, bv, lo, hi); break;
    case 6: unaryLoop(6, a, out, av, bv, lo, hi); break;
    case 7: unaryLoop(7, a, out, av, bv, lo, hi); break;
    case 8: unaryLoop(8, a, out, av, bv, lo, hi); break;
    default: break;
  }
}

/** out[i] = value (4-byte elements: f32 or i32 bits). */
export function fill32(out: usize, bits: i32, scratch: usize, lo: i32, hi: i32): void {
  const v = i32x4.splat(bits);
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(out + (<usize>i << 2), v);
  for (; i < hi; i++) store<i32>(out + (<usize>i << 2), bits);
}

/** Casts. mode 0: f32→i32 (truncate toward zero, saturating), 1: i32→f32. */
export function cast(mode: i32, a: usize, out: usize, scratch: usize, lo: i32, hi: i32): void {
  let i = lo;
  if (mode == 0) {
    for (; i + 4 <= hi; i += 4) v128.store(out + (<usize>i << 2), i32x4.trunc_sat_f32x4_s(v128.load(a + (<usize>i << 2))));
    for (; i < hi; i++) store<i32>(out + (<usize>i << 2), <i32>load<f32>(a + (<usize>i << 2)));
  } else {
    for (; i + 4 <= hi; i += 4) v128.store(out + (<usize>i << 2), f32x4.convert_i32x4_s(v128.load(a + (<usize>i << 2))));
    for (; i < hi; i++) store<f32>(out + (<usize>i << 2), <f32>load<i32>(a + (<usize>i << 2)));
  }
}

// @ts-ignore: decorator
@inline function binaryOp(op: i32, x: v128, y: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(x, y);
    case 1: return f32x4.sub(x, y);
    case 2: return f32x4.mul(x, y);
    case 3: return f32x4.div(x, y);
    case 4: return f32x4.mul(y, geluGradv(x)); // gelu_backward(x, dy)
    case 5: return f32x4.mul(y, siluGradv(x)); // silu_backward(x, dy)
    case 6: return f32x4.mul(siluv(x), y); // swiglu(gate, up)
    case 7: return f32x4.mul(geluv(x), y); // geglu(gate, up)
    default: return x;
  }
}

/** One row of d elements; sa, sb ∈ {0, 1, other} element strides. */
// @ts-ignore: decorator
@inline function binaryRow(op: i32, a: usize, b: usize, out: usize, d: i32, sa: i32, sb: i32): void {
  let j = 0;
  if (sa == 1 && sb == 1) {
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, binaryOp(op, v128.load(a + o), v128.load(b + o)));
    }
  } else if (sa == 1 && sb == 0) {
    const y = v128.load32_splat(b);
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, binaryOp(op, v128.load(a + o), y));
    }
  } else if (sa == 0 && sb == 1) {
    const x = v128.load32_splat(a);
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, binaryOp(op, x, v128.load(b + o)));
    }
  }
  for (; j < d; j++) {
    const x = v128.load32_splat(a + ((<usize>j * <usize>sa) << 2));
    const y = v128.load32_splat(b + ((<usize>j * <usize>sb) << 2));
    store<f32>(out + (<usize>j << 2), f32x4.extract_lane(binaryOp(op, x, y), 0));
  }
}

// @ts-ignore: decorator
@inline function binaryLoop(op: i32, a: usize, b: usize, out: usize, d1: i32, d2: i32, d3: i32,
  sa0: i32, sa1: i32, sa2: i32, sa3: i32, sb0: i32, sb1: i32, sb2: i32, sb3: i32, lo: i32, hi: i32): void {
  for (let i0 = lo; i0 < hi; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        const pa = a + (<usize>(i0 * sa0 + i1 * sa1 + i2 * sa2) << 2);
        const pb = b + (<usize>(i0 * sb0 + i1 * sb1 + i2 * sb2) << 2);
        const po = out + (<usize>(((i0 * d1 + i1) * d2 + i2) * d3) << 2);
        binaryRow(op, pa, pb, po, d3, sa3, sb3);
      }
    }
  }
}

/**
 * out[i0,i1,i2,i3] = op(a[Σ i·sa], b[Σ i·sb]) over out dims (d0..d3), element strides (0 = broadcast);
 * this thread does i0 in [lo, hi). op: 0 add 1 sub 2 mul 3 div 4 gelu_backward 5 silu_backward 6 swiglu 7 geglu.
 */
export function binary(op: i32, a: usize, b: usize, out: usize, d1: i32, d2: i32, d3: i32,
  sa0: i32, sa1: i32, sa2: i32, sa3: i32, sb0: i32, sb1: i32, sb2: i32, sb3: i32, scratch: usize, lo: i32, hi: i32): void {
  switch (op) {
    case 0: binaryLoop(0, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 1: binaryLoop(1, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 2: binaryLoop(2, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 3: binaryLoop(3, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 4: binaryLoop(4, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 5: binaryLoop(5, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 6: binaryLoop(6, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    case 7: binaryLoop(7, a, b, out, d1, d2, d3, sa0, sa1, sa2, sa3, sb0, sb1, sb2, sb3, lo, hi); break;
    default: break;
  }
}

/** swiglu_backward: dgate = dy·up·silu'(gate), dup = dy·silu(gate), same shapes. */
export function swiglu_backward(g: usize, u: usize, dy: usize, dg: usize, du: usize, scratch: usize, lo: i32, hi: i32): void {
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    const x = v128.load(g + o), up = v128.load(u + o), d = v128.load(dy + o);
    v128.store(dg + o, f32x4.mul(f32x4.mul(d, up), siluGradv(x)));
    v128.store(du + o, f32x4.mul(d, siluv(x)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const x = v128.load32_splat(g + o), up = v128.load32_splat(u + o), d = v128.load32_splat(dy + o);
    store<f32>(dg + o, f32x4.extract_lane(f32x4.mul(f32x4.mul(d, up), siluGradv(x)), 0));
    store<f32>(du + o, f32x4.extract_lane(f32x4.mul(d, siluv(x)), 0));
  }
}

// @ts-ignore: decorator
@inline function hashv(seed: v128, idx: v128): v128 {
  // src/util/rng.ts hashUniform, on 4 lanes of u32 (i32x4.mul is Math.imul)
  let x = i32x4.mul(v128.xor(idx, i32x4.splat(0x9e3779b9)), i32x4.splat(0x85ebca6b));
  x = v128.xor(x, seed);
  x = v128.xor(x, i32x4.shr_u(x, 16));
  x = i32x4.mul(x, i32x4.splat(0x7feb352d));
  x = v128.xor(x, i32x4.shr_u(x, 15));
  x = i32x4.mul(x, i32x4.splat(0x846ca68b));
  return v128.xor(x, i32x4.shr_u(x, 16));
}

/**
 * Dropout: y[i] = x[i]·scale where hash(seed, i) ≥ thr (as u32), else 0. thr = ⌈p·2³²⌉ (so the test equals
 * hashUniform(seed, i) ≥ p exactly); dropAll when p ≥ 1.
 */
export function dropout(x: usize, y: usize, seed: i32, thr: u32, dropAll: bool, scale: f32, scratch: usize, lo: i32, hi: i32): void {
  const sv = i32x4.splat(seed), tv = i32x4.splat(<i32>thr), sc = f32x4.splat(dropAll ? 0 : scale);
  const zero = f32x4.splat(0);
  let idx = i32x4(lo, lo + 1, lo + 2, lo + 3);
  const four = i32x4.splat(4);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    const keep = i32x4.ge_u(hashv(sv, idx), tv);
    v128.store(y + o, v128.bitselect(f32x4.mul(v128.load(x + o), sc), zero, keep));
    idx = i32x4.add(idx, four);
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const h = i32x4.extract_lane(hashv(sv, i32x4.splat(i)), 0);
    store<f32>(y + o, !dropAll && <u32>h >= thr ? load<f32>(x + o) * scale : 0);
  }
}

/**
 * Fused AdamW (PyTorch semantics) over [lo, hi): g = gradScale·grad; p ·= 1 − lr·wd; m = β1·m + (1−β1)·g;
 * v = β2·v + (1−β2)·g²; p −= stepSize·m / (√v·invBc2s + eps), stepSize = lr/(1−β1^t), invBc2s = 1/√(1−β2^t).
 */
export function adamw(grad: usize, param: usize, m: usize, v: usize, decay: f32, b1: f32, b2: f32, eps: f32,
  stepSize: f32, invBc2s: f32, gradScale: f32, scratch: usize, lo: i32, hi: i32): void {
  const dv = f32x4.splat(decay), b1v = f32x4.splat(b1), b2v = f32x4.splat(b2), c1 = f32x4.splat(1 - b1), c2 = f32x4.splat(1 - b2);
  const ev = f32x4.splat(eps), ss = f32x4.splat(stepSize), ib = f32x4.splat(invBc2s), gs = f32x4.splat(gradScale);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(v128.load(grad + o), gs);
    const mm = fma(b1v, v128.load(m + o), f32x4.mul(c1, g));
    const vv = fma(b2v, v128.load(v + o), f32x4.mul(c2, f32x4.mul(g, g)));
    v128.store(m + o, mm);
    v128.store(v + o, vv);
    const p = f32x4.mul(v128.load(param + o), dv);
    const den = fma(f32x4.sqrt(vv), ib, ev);
    v128.store(param + o, f32x4.sub(p, f32x4.mul(ss, f32x4.div(mm, den))));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(grad + o) * gradScale;
    const mm = b1 * load<f32>(m + o) + (1 - b1) * g;
    const vv = b2 * load<f32>(v + o) + (1 - b2) * (g * g);
    store<f32>(m + o, mm);
    store<f32>(v + o, vv);
    const p = load<f32>(param + o) * decay;
    store<f32>(param + o, p - stepSize * (mm / (Mathf.sqrt(vv) * invBc2s + eps)));
  }
}
