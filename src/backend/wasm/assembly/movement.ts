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
