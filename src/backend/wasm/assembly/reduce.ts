/**
 * Reductions: sum_to over up to 4 collapsed axes (out strides 0 on the summed axes), and Σa / Σa² accumulated
 * in float64 (one partial per chunk, summed by the caller).
 */
import { hsum } from './simd';

/**
 * out (already zeroed by the caller) += a over a's dims (d0..d3), a contiguous; so0..so3 are out's element strides
 * per a axis (0 where out has size 1). Single-threaded (lo/hi span d0).
 */
export function sum_to(a: usize, out: usize, d1: i32, d2: i32, d3: i32, so0: i32, so1: i32, so2: i32, so3: i32,
  scratch: usize, lo: i32, hi: i32): void {
  let pa = a + (<usize>(lo * d1 * d2 * d3) << 2);
  for (let i0 = lo; i0 < hi; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        const po = out + (<usize>(i0 * so0 + i1 * so1 + i2 * so2) << 2);
        let j = 0;
        if (so3 == 1) {
          for (; j + 4 <= d3; j += 4) {
            const o = <usize>j << 2;
            v128.store(po + o, f32x4.add(v128.load(po + o), v128.load(pa + o)));
          }
          for (; j < d3; j++) {
            const o = <usize>j << 2;
            store<f32>(po + o, load<f32>(po + o) + load<f32>(pa + o));
          }
        } else if (so3 == 0) {
          let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
          for (; j + 8 <= d3; j += 8) {
            const o = <usize>j << 2;
            s0 = f32x4.add(s0, v128.load(pa + o));
            s1 = f32x4.add(s1, v128.load(pa + o, 16));
          }
          let s = hsum(f32x4.add(s0, s1));
          for (; j < d3; j++) s += load<f32>(pa + (<usize>j << 2));
          store<f32>(po, load<f32>(po) + s);
        } else {
          for (; j < d3; j++) {
            const o = po + (<usize>(j * so3) << 2);
            store<f32>(o, load<f32>(o) + load<f32>(pa + (<usize>j << 2)));
          }
        }
        pa += <usize>d3 << 2;
      }
    }
  }
}

/**
 * Column sums of an R×K matrix (the bias gradient): out[lo:hi] = Σ_r a[r, lo:hi], rows in order — the same
 * additions as `sum_to` does for this pattern, so splitting columns across threads changes no bit.
 */
export function col_sum(a: usize, out: usize, R: i32, K: i32, scratch: usize, lo: i32, hi: i32): void {
  const rs = <usize>K << 2;
  let j = lo;
  // 16 columns at a time in registers (no load/store of out per row), rows in order
  for (; j + 16 <= hi; j += 16) {
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let pa = a + (<usize>j << 2);
    for (let r = 0; r < R; r++) {
      s0 = f32x4.add(s0, v128.load(pa));
      s1 = f32x4.add(s1, v128.load(pa, 16));
      s2 = f32x4.add(s2, v128.load(pa, 32));
      s3 = f32x4.add(s3, v128.load(pa, 48));
      pa += rs;
    }
    const po = out + (<usize>j << 2);
    v128.store(po, s0);
    v128.store(po, s1, 16);
    v128.store(po, s2, 32);
    v128.store(po, s3, 48);
  }
  for (; j + 4 <= hi; j += 4) {
    let s0 = f32x4.splat(0);
    let pa = a + (<usize>j << 2);
    for (let r = 0; r < R; r++) {
      s0 = f32x4.add(s0, v128.load(pa));
      pa += rs;
    }
    v128.store(out + (<usize>j << 2), s0);
  }
  for (; j < hi; j++) {
    let s: f32 = 0;
    let pa = a + (<usize>j << 2);
    for (let r = 0; r < R; r++) {
      s += load<f32>(pa);
      pa += rs;
    }
    store<f32>(out + (<usize>j << 2), s);
  }
}

/** out[0] (f64) = Σ a[i] (sq = false) or Σ a[i]² (sq = true) over [lo, hi), accumulated in float64. */
export function sum_f64(a: usize, sq: bool, out: usize, scratch: usize, lo: i32, hi: i32): void {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    let x = v128.load(a + (<usize>i << 2));
    if (sq) x = f32x4.mul(x, x);
    // squares rounded to f32 lose nothing relevant for a norm; promote and accumulate in f64
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(x));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1)));
  }
  let s = f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s0, 1) + f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s1, 1);
  for (; i < hi; i++) {
    const x = <f64>load<f32>(a + (<usize>i << 2));
    s += sq ? x * x : x;
  }
  store<f64>(out, s);
}
