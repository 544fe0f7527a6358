/**
 * Row kernels: fused LayerNorm / RMSNorm (forward and backward), softmax, fused softmax cross-entropy, RoPE.
 * Each handles rows [lo, hi) of an [N, C] matrix. Backward norms compute dw/db in the same row pass when
 * `withDw` (one thread), or leave them to *_dw kernels that split columns (several threads): both sum rows in the
 * same order with the same operations, so dw/db are bitwise identical for any thread count.
 */
import { fma, hsum, hmax, expv, zero } from './simd';

/** y = (x − mean)·rstd·w + b; mean, rstd per row. */
export function layernorm(x: usize, w: usize, b: usize, y: usize, mean: usize, rstd: usize, C: i32, eps: f32,
  scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  const invC: f32 = 1 / <f32>C;
  for (let n = lo; n < hi; n++) {
    const px = x + <usize>n * rb, py = y + <usize>n * rb;
    let s0 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) s0 = f32x4.add(s0, v128.load(px + (<usize>c << 2)));
    let s = hsum(s0);
    for (; c < C; c++) s += load<f32>(px + (<usize>c << 2));
    const m = s * invC;
    const mv = f32x4.splat(m);
    let v0 = f32x4.splat(0);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const d = f32x4.sub(v128.load(px + (<usize>c << 2)), mv);
      v0 = fma(d, d, v0);
    }
    let vs = hsum(v0);
    for (; c < C; c++) {
      const d = load<f32>(px + (<usize>c << 2)) - m;
      vs += d * d;
    }
    const r: f32 = 1 / Mathf.sqrt(vs * invC + eps);
    const rv = f32x4.splat(r);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + o), mv), rv);
      v128.store(py + o, fma(xh, v128.load(w + o), v128.load(b + o)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(py + o, (load<f32>(px + o) - m) * r * load<f32>(w + o) + load<f32>(b + o));
    }
    store<f32>(mean + (<usize>n << 2), m);
    store<f32>(rstd + (<usize>n << 2), r);
  }
}

/** dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w; dw += dy·x̂; db += dy. */
export function layernorm_backward(dy: usize, x: usize, w: usize, mean: usize, rstd: usize, dx: usize, dw: usize, db: usize,
  C: i32, accumulate: bool, withDw: bool, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  const pw = dw, pb = db;
  if (withDw) {
    zero(pw, C);
    zero(pb, C);
  }
  const invC: f32 = 1 / <f32>C;
  for (let n = lo; n < hi; n++) {
    const px = x + <usize>n * rb, pdy = dy + <usize>n * rb, pdx = dx + <usize>n * rb;
    const m = load<f32>(mean + (<usize>n << 2)), r = load<f32>(rstd + (<usize>n << 2));
    const mv = f32x4.splat(m), rv = f32x4.splat(r);
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + o), mv), rv);
      const d = v128.load(pdy + o);
      const g = f32x4.mul(d, v128.load(w + o));
      a1 = f32x4.add(a1, g);
      a2 = fma(g, xh, a2);
      if (withDw) {
        v128.store(pw + o, fma(d, xh, v128.load(pw + o)));
        v128.store(pb + o, f32x4.add(v128.load(pb + o), d));
      }
    }
    let s1 = hsum(a1), s2 = hsum(a2);
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(px + o) - m) * r;
      const d = load<f32>(pdy + o);
      const g = d * load<f32>(w + o);
      s1 += g;
      s2 += g * xh;
      if (withDw) {
        store<f32>(pw + o, load<f32>(pw + o) + d * xh);
        store<f32>(pb + o, load<f32>(pb + o) + d);
      }
    }
    s1 *= invC;
    s2 *= invC;
    const s1v = f32x4.splat(s1), s2v = f32x4.splat(s2);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + o), mv), rv);
      const g = f32x4.mul(v128.load(pdy + o), v128.load(w + o));
      const d = f32x4.mul(rv, f32x4.sub(f32x4.sub(g, s1v), f32x4.mul(xh, s2v)));
      v128.store(pdx + o, accumulate ? f32x4.add(v128.load(pdx + o), d) : d);
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const xh = (load<f32>(px + o) - m) * r;
      const g = load<f32>(pdy + o) * load<f32>(w + o);
      const d = r * (g - s1 - xh * s2);
      store<f32>(pdx + o, accumulate ? load<f32>(pdx + o) + d : d);
    }
  }
}

/** LayerNorm dw/db for columns [lo, hi) (cut at multiples of 4), summing rows 0..N in order. */
export function layernorm_dw(dy: usize, x: usize, mean: usize, rstd: usize, dw: usize, db: usize, N: i32, C: i32,
  scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  const vend = lo + ((min(hi, C & ~3) - lo) & ~3);
  let c = lo;
  // 8 columns at a time with the sums in registers (the same fma/add per row, in row order, as the fused pass)
  for (; c + 8 <= vend; c += 8) {
    const o = <usize>c << 2;
    let w0 = f32x4.splat(0), w1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
    let px = x + o, pdy = dy + o;
    for (let n = 0; n < N; n++) {
      const mv = v128.load32_splat(mean + (<usize>n << 2)), rv = v128.load32_splat(rstd + (<usize>n << 2));
      const d0 = v128.load(pdy), d1 = v128.load(pdy, 16);
      w0 = fma(d0, f32x4.mul(f32x4.sub(v128.load(px), mv), rv), w0);
      w1 = fma(d1, f32x4.mul(f32x4.sub(v128.load(px, 16), mv), rv), w1);
      b0 = f32x4.add(b0, d0);
      b1 = f32x4.add(b1, d1);
      px += rb;
      pdy += rb;
    }
    v128.store(dw + o, w0);
    v128.store(dw + o, w1, 16);
    v128.store(db + o, b0);
    v128.store(db + o, b1, 16);
  }
  zero(dw + (<usize>c << 2), hi - c);
  zero(db + (<usize>c << 2), hi - c);
  for (let n = 0; n < N && c < hi; n++) {
    const px = x + <usize>n * rb, pdy = dy + <usize>n * rb;
    const m = load<f32>(mean + (<usize>n << 2)), r = load<f32>(rstd + (<usize>n << 2));
    const mv = f32x4.splat(m), rv = f32x4.splat(r);
    let j = c;
    for (; j < vend; j += 4) {
      const o = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + o), mv), rv);
      const d = v128.load(pdy + o);
      v128.store(dw + o, fma(d, xh, v128.load(dw + o)));
      v128.store(db + o, f32x4.add(v128.load(db + o), d));
    }
    for (; j < hi; j++) {
      const o = <usize>j << 2;
      const xh = (load<f32>(px + o) - m) * r;
      const d = load<f32>(pdy + o);
      store<f32>(dw + o, load<f32>(dw + o) + d * xh);
      store<f32>(db + o, load<f32>(db + o) + d);
    }
  }
}

/** RMSNorm dw for columns [lo, hi) (cut at multiples of 4), summing rows 0..N in order. */
export function rmsnorm_dw(dy: usize, x: usize, rstd: usize, dw: usize, N: i32, C: i32, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  const vend = lo + ((min(hi, C & ~3) - lo) & ~3);
  let c = lo;
  // 16 columns at a time with the sums in registers (the same fma per row, in row order, as the fused pass)
  for (; c + 16 <= vend; c += 16) {
    const o = <usize>c << 2;
    let w0 = f32x4.splat(0), w1 = f32x4.splat(0), w2 = f32x4.splat(0), w3 = f32x4.splat(0);
    let px = x + o, pdy = dy + o;
    for (let n = 0; n < N; n++) {
      const rv = v128.load32_splat(rstd + (<usize>n << 2));
      w0 = fma(v128.load(pdy), f32x4.mul(v128.load(px), rv), w0);
      w1 = fma(v128.load(pdy, 16), f32x4.mul(v128.load(px, 16), rv), w1);
      w2 = fma(v128.load(pdy, 32), f32x4.mul(v128.load(px, 32), rv), w2);
      w3 = fma(v128.load(pdy, 48), f32x4.mul(v128.load(px, 48), rv), w3);
      px += rb;
      pdy += rb;
    }
    v128.store(dw + o, w0);
    v128.store(dw + o, w1, 16);
    v128.store(dw + o, w2, 32);
    v128.store(dw + o, w3, 48);
  }
  zero(dw + (<usize>c << 2), hi - c);
  for (let n = 0; n < N && c < hi; n++) {
    const px = x + <usize>n * rb, pdy = dy + <usize>n * rb;
    const r = load<f32>(rstd + (<usize>n << 2));
    const rv = f32x4.splat(r);
    let j = c;
    for (; j < vend; j += 4) {
      const o = <usize>j << 2;
      v128.store(dw + o, fma(v128.load(pdy + o), f32x4.mul(v128.load(px + o), rv), v128.load(dw + o)));
    }
    for (; j < hi; j++) {
      const o = <usize>j << 2;
      store<f32>(dw + o, load<f32>(dw + o) + load<f32>(pdy + o) * (load<f32>(px + o) * r));
    }
  }
}

/** y = w·(x·rstd), rstd = 1/√(mean(x²) + eps). */
export function rmsnorm(x: usize, w: usize, y: usize, rstd: usize, C: i32, eps: f32, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  for (let n = lo; n < hi; n++) {
    const px = x + <usize>n * rb, py = y + <usize>n * rb;
    let s0 = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const v = v128.load(px + (<usize>c << 2));
      s0 = fma(v, v, s0);
    }
    let s = hsum(s0);
    for (; c < C; c++) {
      const v = load<f32>(px + (<usize>c << 2));
      s += v * v;
    }
    const r: f32 = 1 / Mathf.sqrt(s / <f32>C + eps);
    const rv = f32x4.splat(r);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      v128.store(py + o, f32x4.mul(v128.load(w + o), f32x4.mul(v128.load(px + o), rv)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(py + o, load<f32>(w + o) * (load<f32>(px + o) * r));
    }
    store<f32>(rstd + (<usize>n << 2), r);
  }
}

/** dx = rstd·(dy·w − x·rstd²·mean(dy·w·x)) (added to dx if accumulate); dw += dy·x·rstd. */
export function rmsnorm_backward(dy: usize, x: usize, w: usize, rstd: usize, dx: usize, dw: usize, C: i32, accumulate: bool,
  withDw: bool, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  const pw = dw;
  if (withDw) zero(pw, C);
  for (let n = lo; n < hi; n++) {
    const px = x + <usize>n * rb, pdy = dy + <usize>n * rb, pdx = dx + <usize>n * rb;
    const r = load<f32>(rstd + (<usize>n << 2));
    const rv = f32x4.splat(r);
    let a = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const d = v128.load(pdy + o), xv = v128.load(px + o);
      a = fma(f32x4.mul(d, v128.load(w + o)), xv, a);
      if (withDw) v128.store(pw + o, fma(d, f32x4.mul(xv, rv), v128.load(pw + o)));
    }
    let s = hsum(a);
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const d = load<f32>(pdy + o), xv = load<f32>(px + o);
      s += d * load<f32>(w + o) * xv;
      if (withDw) store<f32>(pw + o, load<f32>(pw + o) + d * (xv * r));
    }
    const k = r * r * (s / <f32>C);
    const kv = f32x4.splat(k);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      const g = f32x4.mul(v128.load(pdy + o), v128.load(w + o));
      const d = f32x4.mul(rv, f32x4.sub(g, f32x4.mul(v128.load(px + o), kv)));
      v128.store(pdx + o, accumulate ? f32x4.add(v128.load(pdx + o), d) : d);
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      const d = r * (load<f32>(pdy + o) * load<f32>(w + o) - load<f32>(px + o) * k);
      store<f32>(pdx + o, accumulate ? load<f32>(pdx + o) + d : d);
    }
  }
}

/** Row max of n floats. */
function rowMax(p: usize, n: i32): f32 {
  let m0 = f32x4.splat(-Infinity);
  let c = 0;
  for (; c + 4 <= n; c += 4) m0 = f32x4.max(m0, v128.load(p + (<usize>c << 2)));
  let m = hmax(m0);
  for (; c < n; c++) m = max(m, load<f32>(p + (<usize>c << 2)));
  return m;
}

/** dst[c] = exp(src[c] − sub)·mul (if store) and returns Σ exp(src[c] − sub). */
function expRow(src: usize, dst: usize, n: i32, sub: f32, mul: f32, doStore: bool): f32 {
  const sv = f32x4.splat(sub), mv = f32x4.splat(mul);
  let s0 = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= n; c += 4) {
    const o = <usize>c << 2;
    const e = expv(f32x4.sub(v128.load(src + o), sv));
    s0 = f32x4.add(s0, e);
    if (doStore) v128.store(dst + o, f32x4.mul(e, mv));
  }
  let s = hsum(s0);
  for (; c < n; c++) {
    const o = <usize>c << 2;
    const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(src + o) - sub)), 0);
    s += e;
    if (doStore) store<f32>(dst + o, e * mul);
  }
  return s;
}

/** Scale n floats in place. */
function scaleRow(p: usize, n: i32, a: f32): void {
  const av = f32x4.splat(a);
  let c = 0;
  for (; c + 4 <= n; c += 4) v128.store(p + (<usize>c << 2), f32x4.mul(v128.load(p + (<usize>c << 2)), av));
  for (; c < n; c++) store<f32>(p + (<usize>c << 2), load<f32>(p + (<usize>c << 2)) * a);
}

/** Softmax over the last axis. */
export function softmax(x: usize, y: usize, C: i32, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  for (let n = lo; n < hi; n++) {
    const px = x + <usize>n * rb, py = y + <usize>n * rb;
    const m = rowMax(px, C);
    const s = expRow(px, py, C, m, 1, true);
    scaleRow(py, C, 1 / s);
  }
}

/** dx = y·(dy − Σ y·dy). */
export function softmax_backward(y: usize, dy: usize, dx: usize, C: i32, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>C << 2;
  for (let n = lo; n < hi; n++) {
    const py = y + <usize>n * rb, pdy = dy + <usize>n * rb, pdx = dx + <usize>n * rb;
    let a = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) a = fma(v128.load(py + (<usize>c << 2)), v128.load(pdy + (<usize>c << 2)), a);
    let s = hsum(a);
    for (; c < C; c++) s += load<f32>(py + (<usize>c << 2)) * load<f32>(pdy + (<usize>c << 2));
    const sv = f32x4.splat(s);
    c = 0;
    for (; c + 4 <= C; c += 4) {
      const o = <usize>c << 2;
      v128.store(pdx + o, f32x4.mul(v128.load(py + o), f32x4.sub(v128.load(pdy + o), sv)));
    }
    for (; c < C; c++) {
      const o = <usize>c << 2;
      store<f32>(pdx + o, load<f32>(py + o) * (load<f32>(pdy + o) - s));
    }
  }
}

/** loss[n] = lse[n] − logits[n, t] (0 where t = ignore); lse[n] = log Σ exp(logits[n]). Targets checked by the caller. */
export function cross_entropy(logits: usize, targets: usize, loss: usize, lse: usize, V: i32, ignore: i32,
  scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>V << 2;
  for (let n = lo; n < hi; n++) {
    const p = logits + <usize>n * rb;
    const m = rowMax(p, V);
    const s = expRow(p, 0, V, m, 1, false);
    const l = m + Mathf.log(s);
    store<f32>(lse + (<usize>n << 2), l);
    const t = load<i32>(targets + (<usize>n << 2));
    store<f32>(loss + (<usize>n << 2), t == ignore ? 0 : l - load<f32>(p + (<usize>t << 2)));
  }
}

/** dlogits[n] = dloss[n]·(softmax(logits[n]) − onehot(t)); 0 rows where t = ignore. */
export function cross_entropy_backward(logits: usize, targets: usize, lse: usize, dloss: usize, dlogits: usize, V: i32,
  ignore: i32, scratch: usize, lo: i32, hi: i32): void {
  const rb = <usize>V << 2;
  for (let n = lo; n < hi; n++) {
    const p = logits + <usize>n * rb, pd = dlogits + <usize>n * rb;
    const t = load<i32>(targets + (<usize>n << 2));
    if (t == ignore) {
      zero(pd, V);
      continue;
    }
    const g = load<f32>(dloss + (<usize>n << 2));
    expRow(p, pd, V, load<f32>(lse + (<usize>n << 2)), g, true);
    const o = pd + (<usize>t << 2);
    store<f32>(o, load<f32>(o) - g);
  }
}

/**
 * RoPE, rotate-half layout, x [B, T, H, D] with tables cos/sin [T, D/2] prepared by the caller (offset and
 * direction folded in); y [B, T, H, D]. x's rows (b·T + t) are xs elements apart (H·D, or a fused qkv's width when
 * x points at its q or k columns). Rows in [lo, hi).
 */
export function rope(x: usize, y: usize, cosT: usize, sinT: usize, T: i32, H: i32, D: i32, xs: i32, scratch: usize, lo: i32, hi: i32): void {
  const half = D >> 1;
  const hb = <usize>half << 2;
  for (let bt = lo; bt < hi; bt++) {
    const t = bt % T;
    const pc = cosT + <usize>(t * half) * 4, ps = sinT + <usize>(t * half) * 4;
    for (let h = 0; h < H; h++) {
      const px = x + (<usize>(bt * xs + h * D) << 2), py = y + (<usize>((bt * H + h) * D) << 2);
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = <usize>i << 2;
        const c = v128.load(pc + o), s = v128.load(ps + o);
        const x1 = v128.load(px + o), x2 = v128.load(px + hb + o);
        v128.store(py + o, f32x4.sub(f32x4.mul(x1, c), f32x4.mul(x2, s)));
        v128.store(py + hb + o, f32x4.add(f32x4.mul(x2, c), f32x4.mul(x1, s)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 2;
        const c = load<f32>(pc + o), s = load<f32>(ps + o);
        const x1 = load<f32>(px + o), x2 = load<f32>(px + hb + o);
        store<f32>(py + o, x1 * c - x2 * s);
        store<f32>(py + hb + o, x2 * c + x1 * s);
      }
    }
  }
}
