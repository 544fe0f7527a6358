/**
 * Fused causal attention with grouped-query heads, forward and backward, streaming over keys.
 * q [B, T, Hq, D], k/v [B, S, Hkv, D], o [B, T, Hq, D], lse [B, Hq, T]. Query row t sits at position qOffset + t
 * and sees keys s ≤ qOffset + t (causal). Per query row the only temporary is one row of S scores in this
 * thread's scratch (never a T×S matrix). Exact two-pass softmax over that row (max, then exp), so no rescaling.
 * Forward splits over (b, query head); backward over (b, kv head), so a thread owns the dk/dv rows it writes.
 */
import { fma, hmax, hsum, expv, dot, axpy, zero } from './simd';

/** Number of keys query row t sees. */
// @ts-ignore: decorator
@inline function visible(t: i32, S: i32, causal: bool, qOffset: i32): i32 {
  return causal ? max(0, min(S, qOffset + t + 1)) : S;
}

/** sc[s] = scale·(q·k_s) − sub for s < n; returns max over s. */
function scores(q: usize, k: usize, kStride: usize, D: i32, n: i32, scale: f32, sub: f32, sc: usize): f32 {
  let m: f32 = -Infinity;
  let pk = k;
  for (let s = 0; s < n; s++) {
    const v = dot(q, pk, D) * scale - sub;
    store<f32>(sc + (<usize>s << 2), v);
    m = max(m, v);
    pk += kStride;
  }
  return m;
}

/** sc[s] = exp(sc[s] − m) in place for s < n; returns Σ. */
function expInPlace(sc: usize, n: i32, m: f32): f32 {
  const mv = f32x4.splat(m);
  let a = f32x4.splat(0);
  let s = 0;
  for (; s + 4 <= n; s += 4) {
    const o = <usize>s << 2;
    const e = expv(f32x4.sub(v128.load(sc + o), mv));
    v128.store(sc + o, e);
    a = f32x4.add(a, e);
  }
  let sum = hsum(a);
  for (; s < n; s++) {
    const o = <usize>s << 2;
    const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(sc + o) - m)), 0);
    store<f32>(sc + o, e);
    sum += e;
  }
  return sum;
}

export function attention(q: usize, k: usize, v: usize, o: usize, lse: usize, T: i32, S: i32, Hq: i32, Hkv: i32, D: i32,
  scale: f32, causal: bool, qOffset: i32, scratch: usize, lo: i32, hi: i32): void {
  const group = Hq / Hkv;
  const qStride = <usize>(Hq * D) << 2, kStride = <usize>(Hkv * D) << 2;
  const sc = scratch;
  for (let bh = lo; bh < hi; bh++) {
    const b = bh / Hq, h = bh % Hq, kvh = h / group;
    const kb = k + (<usize>((b * S * Hkv + kvh) * D) << 2);
    const vb = v + (<usize>((b * S * Hkv + kvh) * D) << 2);
    for (let t = 0; t < T; t++) {
      const qo = <usize>((b * T + t) * Hq + h) * D;
      const pq = q + (qo << 2), po = o + (qo << 2);
      const n = visible(t, S, causal, qOffset);
      const pl = lse + (<usize>(bh * T + t) << 2);
      zero(po, D);
      if (n == 0) {
        store<f32>(pl, -Infinity);
        continue;
      }
      const m = scores(pq, kb, kStride, D, n, scale, 0, sc);
      const sum = expInPlace(sc, n, m);
      let pv = vb;
      for (let s = 0; s < n; s++) {
        axpy(load<f32>(sc + (<usize>s << 2)), pv, po, D);
        pv += kStride;
      }
      const inv: f32 = 1 / sum;
      let i = 0;
      const iv = f32x4.splat(inv);
      for (; i + 4 <= D; i += 4) v128.store(po + (<usize>i << 2), f32x4.mul(v128.load(po + (<usize>i << 2)), iv));
      for (; i < D; i++) store<f32>(po + (<usize>i << 2), load<f32>(po + (<usize>i << 2)) * inv);
      store<f32>(pl, m + Mathf.log(sum));
    }
  }
}

export function attention_backward(dO: usize, q: usize, k: usize, v: usize, o: usize, lse: usize, dq: usize, dk: usize,
  dv: usize, T: i32, S: i32, Hq: i32, Hkv: i32, D: i32, scale: f32, causal: bool, qOffset: i32,
  scratch: usize, lo: i32, hi: i32): void {
  const group = Hq / Hkv;
  const kStride = <usize>(Hkv * D) << 2;
  const p = scratch;
  for (let bk = lo; bk < hi; bk++) {
    const b = bk / Hkv, kvh = bk % Hkv;
    const off = <usize>((b * S * Hkv + kvh) * D) << 2;
    const kb = k + off, vb = v + off, dkb = dk + off, dvb = dv + off;
    for (let s = 0; s < S; s++) {
      zero(dkb + <usize>s * kStride, D);
      zero(dvb + <usize>s * kStride, D);
    }
    for (let h = kvh * group; h < (kvh + 1) * group; h++) {
      for (let t = 0; t < T; t++) {
        const qo = <usize>(((b * T + t) * Hq + h) * D) << 2;
        const pq = q + qo, pdo = dO + qo, pdq = dq + qo;
        zero(pdq, D);
        const n = visible(t, S, causal, qOffset);
        if (n == 0) continue;
        const L = load<f32>(lse + (<usize>((b * Hq + h) * T + t) << 2));
        scores(pq, kb, kStride, D, n, scale, L, p);
        expInPlace(p, n, 0);
        const Di = dot(pdo, o + qo, D);
        let pk = kb, pv = vb, pdk = dkb, pdv = dvb;
        for (let s = 0; s < n; s++) {
          const ps = load<f32>(p + (<usize>s << 2));
          const dp = dot(pdo, pv, D);
          const ds = ps * (dp - Di) * scale;
          axpy(ps, pdo, pdv, D);
          axpy(ds, pk, pdq, D);
          axpy(ds, pq, pdk, D);
          pk += kStride;
          pv += kStride;
          pdk += kStride;
          pdv += kStride;
        }
      }
    }
  }
}
