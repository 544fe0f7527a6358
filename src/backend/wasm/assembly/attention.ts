/**
 * Fused causal attention with grouped-query heads, forward and backward, as small blocked matmuls.
 * q [B, T, Hq, D], k/v [B, S, Hkv, D], o [B, T, Hq, D], lse [B, Hq, T]. Query row t sits at position qOffset + t
 * and sees keys s ≤ qOffset + t (causal).
 *
 * Per (batch, head) the keys and values are packed once (Kᵀ and V panels for the matmul micro-kernel), then the
 * queries go in blocks of R = 16 rows: scores S = scale·Q_blk·Kᵀ [R × keys], an exact softmax per row (max, exp,
 * normalise; lse kept), O_blk = P·V. The only temporaries are R rows of scores in this thread's scratch — never a
 * T×S matrix (for T = 1024, one block is 16 × 1024). Backward recomputes P per block from lse, then
 * dP = dO·Vᵀ, dS = P ⊙ (dP − Σ dO⊙O)·scale, dQ = dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO, all through the same kernel.
 * Forward splits threads over (b, query head); backward over (b, kv head), so a thread owns the dK/dV it writes.
 * Decoding (T < 4 query rows against a KV cache) skips the packing: per row, S dot products and S axpys
 * straight from the cache.
 */
import { hmax, hsum, expv, dot, axpy, fma } from './simd';
import { packA, packB, kern4x8 } from './matmul';

const R: i32 = 32;

/** Number of keys query row t sees. */
// @ts-ignore: decorator
@inline function visible(t: i32, S: i32, causal: bool, qOffset: i32): i32 {
  return causal ? max(0, min(S, qOffset + t + 1)) : S;
}

/** Bytes of scratch the kernels need (the caller sizes each thread's scratch with the same formula). */
export function attention_scratch_bytes(S: i32, D: i32): i32 {
  const Sp = (S + 7) & ~7, Dp = (D + 7) & ~7;
  return 128 + 4 * (2 * Sp * D + Dp * S + 2 * R * D + 4 * R * Sp + 2 * Dp * R) + 64;
}

/** C[M × N] (row stride ldc bytes) = alpha·Ap·Bp (+ C if beta); Ap 4-row panels of depth kc, Bp 8-column panels. */
function mmPacked(ap: usize, bp: usize, bpPanelBytes: usize, M: i32, N: i32, kc: i32, c: usize, ldc: usize, alpha: f32, beta: bool, tmp: usize): void {
  const av = f32x4.splat(alpha);
  const rp = (M + 3) >> 2, cp = (N + 7) >> 3;
  for (let p = 0; p < cp; p++) {
    const w = min(8, N - (p << 3));
    const b = bp + <usize>p * bpPanelBytes;
    for (let r = 0; r < rp; r++) {
      kern4x8(ap + (<usize>(r * kc) << 4), b, kc, c + <usize>(r << 2) * ldc + (<usize>(p << 3) << 2), ldc, av, beta, min(4, M - (r << 2)), w, tmp);
    }
  }
}

function rowMax(p: usize, n: i32): f32 {
  let m0 = f32x4.splat(-Infinity);
  let s = 0;
  for (; s + 4 <= n; s += 4) m0 = f32x4.max(m0, v128.load(p + (<usize>s << 2)));
  let m = hmax(m0);
  for (; s < n; s++) m = max(m, load<f32>(p + (<usize>s << 2)));
  return m;
}

/** p[s] = exp(p[s] − sub)·mul for s < n (returns Σ exp), p[s] = 0 for n ≤ s < ld. */
function expRow(p: usize, n: i32, ld: i32, sub: f32): f32 {
  const mv = f32x4.splat(sub);
  let a = f32x4.splat(0);
  let s = 0;
  for (; s + 4 <= n; s += 4) {
    const o = <usize>s << 2;
    const e = expv(f32x4.sub(v128.load(p + o), mv));
    v128.store(p + o, e);
    a = f32x4.add(a, e);
  }
  let sum = hsum(a);
  for (; s < n; s++) {
    const o = <usize>s << 2;
    const e = f32x4.extract_lane(expv(f32x4.splat(load<f32>(p + o) - sub)), 0);
    store<f32>(p + o, e);
    sum += e;
  }
  if (ld > n) memory.fill(p + (<usize>n << 2), 0, <usize>(ld - n) << 2);
  return sum;
}

function scaleRow(p: usize, n: i32, a: f32): void {
  const av = f32x4.splat(a);
  let s = 0;
  for (; s + 4 <= n; s += 4) v128.store(p + (<usize>s << 2), f32x4.mul(v128.load(p + (<usize>s << 2)), av));
  for (; s < n; s++) store<f32>(p + (<usize>s << 2), load<f32>(p + (<usize>s << 2)) * a);
}

/**
 * attendRow for D % 4 == 0: four keys at a time, so q (scores) and o (values) are loaded once per four keys and
 * the four dot products are independent chains. Same arithmetic per key as attendRow except the summation order.
 */
function attendRow4(pq: usize, kb: usize, vb: usize, kStride: usize, D: i32, n: i32, scale: f32, po: usize, sc: usize): f32 {
  const Db = <usize>D << 2;
  let s = 0;
  let pk = kb;
  for (; s + 4 <= n; s += 4) {
    const k1 = pk + kStride, k2 = pk + 2 * kStride, k3 = pk + 3 * kStride;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let d: usize = 0; d < Db; d += 16) {
      const qv = v128.load(pq + d);
      a0 = fma(qv, v128.load(pk + d), a0);
      a1 = fma(qv, v128.load(k1 + d), a1);
      a2 = fma(qv, v128.load(k2 + d), a2);
      a3 = fma(qv, v128.load(k3 + d), a3);
    }
    // transpose-and-add: lane i = Σ lanes of a_i
    const t0 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7)); // a0₀+a0₂, a1₀+a1₂, a0₁+a0₃, a1₁+a1₃
    const t1 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
    const r = f32x4.add(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
    v128.store(sc + (<usize>s << 2), f32x4.mul(r, f32x4.splat(scale)));
    pk += 4 * kStride;
  }
  for (; s < n; s++) {
    store<f32>(sc + (<usize>s << 2), dot(pq, pk, D) * scale);
    pk += kStride;
  }
  const m = rowMax(sc, n);
  const sum = expRow(sc, n, n, m);
  memory.fill(po, 0, Db);
  let pv = vb;
  s = 0;
  for (; s + 4 <= n; s += 4) {
    const p0 = v128.load32_splat(sc + (<usize>s << 2)), p1 = v128.load32_splat(sc + (<usize>s << 2), 4);
    const p2 = v128.load32_splat(sc + (<usize>s << 2), 8), p3 = v128.load32_splat(sc + (<usize>s << 2), 12);
    const v1 = pv + kStride, v2 = pv + 2 * kStride, v3 = pv + 3 * kStride;
    for (let d: usize = 0; d < Db; d += 16) {
      let acc = v128.load(po + d);
      acc = fma(p0, v128.load(pv + d), acc);
      acc = fma(p1, v128.load(v1 + d), acc);
      acc = fma(p2, v128.load(v2 + d), acc);
      acc = fma(p3, v128.load(v3 + d), acc);
      v128.store(po + d, acc);
    }
    pv += 4 * kStride;
  }
  for (; s < n; s++) {
    axpy(load<f32>(sc + (<usize>s << 2)), pv, po, D);
    pv += kStride;
  }
  scaleRow(po, D, 1 / sum);
  return m + Mathf.log(sum);
}

/** One query row against n keys, streaming (decode): o = softmax(scale·q·kᵀ)·v; returns lse. sc: n floats. */
function attendRow(pq: usize, kb: usize, vb: usize, kStride: usize, D: i32, n: i32, scale: f32, po: usize, sc: usize): f32 {
  let pk = kb;
  for (let s = 0; s < n; s++) {
    store<f32>(sc + (<usize>s << 2), dot(pq, pk, D) * scale);
    pk += kStride;
  }
  const m = rowMax(sc, n);
  const sum = expRow(sc, n, n, m);
  memory.fill(po, 0, <usize>D << 2);
  let pv = vb;
  for (let s = 0; s < n; s++) {
    axpy(load<f32>(sc + (<usize>s << 2)), pv, po, D);
    pv += kStride;
  }
  scaleRow(po, D, 1 / sum);
  return m + Mathf.log(sum);
}

export function attention(q: usize, k: usize, v: usize, o: usize, lse: usize, T: i32, S: i32, Hq: i32, Hkv: i32, D: i32,
  scale: f32, causal: bool, qOffset: i32, scratch: usize, lo: i32, hi: i32): void {
  const group = Hq / Hkv;
  const qRow = Hq * D, kRow = Hkv * D;
  const nAll = T > 0 ? visible(T - 1, S, causal, qOffset) : 0;
  const Sp = (S + 7) & ~7, Dp = (D + 7) & ~7;
  const tmp = scratch;
  const kp = scratch + 128;
  const vp = kp + (<usize>(Sp * D) << 2);
  const qp = vp + (<usize>(Dp * S) << 2);
  const sb = qp + (<usize>(R * D) << 2);
  const pp = sb + (<usize>(R * Sp) << 2);
  for (let bh = lo; bh < hi; bh++) {
    const b = bh / Hq, h = bh % Hq, kvh = h / group;
    const kb = k + (<usize>((b * S * Hkv + kvh) * D) << 2), vb = v + (<usize>((b * S * Hkv + kvh) * D) << 2);
    if (T < 4) {
      for (let t = 0; t < T; t++) {
        const ro = <usize>(((b * T + t) * Hq + h) * D) << 2;
        const n = visible(t, S, causal, qOffset);
        const pl = lse + (<usize>(bh * T + t) << 2);
        if (n == 0) {
          memory.fill(o + ro, 0, <usize>D << 2);
          store<f32>(pl, -Infinity);
        } else if ((D & 3) == 0) store<f32>(pl, attendRow4(q + ro, kb, vb, <usize>kRow << 2, D, n, scale, o + ro, sb));
        else store<f32>(pl, attendRow(q + ro, kb, vb, <usize>kRow << 2, D, n, scale, o + ro, sb));
      }
      continue;
    }
    if (nAll > 0) {
      packB(kb, 1, kRow, 0, D, 0, nAll, kp); // Kᵀ: (d, s)
      packB(vb, kRow, 1, 0, nAll, 0, D, vp); // V: (s, d)
    }
    for (let t0 = 0; t0 < T; t0 += R) {
      const rb = min(R, T - t0);
      const nb = visible(t0 + rb - 1, S, causal, qOffset);
      const qo = <usize>(((b * T + t0) * Hq + h) * D) << 2;
      const pl = lse + (<usize>(bh * T + t0) << 2);
      if (nb == 0) {
        for (let r = 0; r < rb; r++) {
          memory.fill(o + qo + <usize>(r * qRow) * 4, 0, <usize>D << 2);
          store<f32>(pl + (<usize>r << 2), -Infinity);
        }
        continue;
      }
      const ld = (nb + 7) & ~7;
      packA(q + qo, <usize>qRow << 2, 4, 0, rb, 0, D, qp);
      mmPacked(qp, kp, <usize>D << 5, rb, ld, D, sb, <usize>ld << 2, scale, false, tmp);
      for (let r = 0; r < rb; r++) {
        const n = visible(t0 + r, S, causal, qOffset);
        const row = sb + (<usize>(r * ld) << 2);
        if (n == 0) {
          memory.fill(row, 0, <usize>ld << 2);
          store<f32>(pl + (<usize>r << 2), -Infinity);
          continue;
        }
        const m = rowMax(row, n);
        const sum = expRow(row, n, ld, m);
        scaleRow(row, n, 1 / sum);
        store<f32>(pl + (<usize>r << 2), m + Mathf.log(sum));
      }
      packA(sb, <usize>ld << 2, 4, 0, rb, 0, nb, pp);
      mmPacked(pp, vp, <usize>nAll << 5, rb, D, nb, o + qo, <usize>qRow << 2, 1, false, tmp);
    }
  }
}

export function attention_backward(dO: usize, q: usize, k: usize, v: usize, o: usize, lse: usize, dq: usize, dk: usize,
  dv: usize, T: i32, S: i32, Hq: i32, Hkv: i32, D: i32, scale: f32, causal: bool, qOffset: i32,
  scratch: usize, lo: i32, hi: i32): void {
  const group = Hq / Hkv;
  const qRow = Hq * D, kRow = Hkv * D;
  const nAll = T > 0 ? visible(T - 1, S, causal, qOffset) : 0;
  const Sp = (S + 7) & ~7, Dp = (D + 7) & ~7;
  const tmp = scratch;
  const kpT = scratch + 128;
  const vpT = kpT + (<usize>(Sp * D) << 2);
  const kpN = vpT + (<usize>(Sp * D) << 2);
  const qa = kpN + (<usize>(Dp * S) << 2);
  const doa = qa + (<usize>(R * D) << 2);
  const sb = doa + (<usize>(R * D) << 2);
  const dpb = sb + (<usize>(R * Sp) << 2);
  const dsa = dpb + (<usize>(R * Sp) << 2);
  const dsT = dsa + (<usize>(R * Sp) << 2);
  const bn = dsT + (<usize>(R * Sp) << 2);
  for (let bk = lo; bk < hi; bk++) {
    const b = bk / Hkv, kvh = bk % Hkv;
    const off = <usize>((b * S * Hkv + kvh) * D) << 2;
    const kb = k + off, vb = v + off, dkb = dk + off, dvb = dv + off;
    for (let s = 0; s < S; s++) {
      memory.fill(dkb + <usize>(s * kRow) * 4, 0, <usize>D << 2);
      memory.fill(dvb + <usize>(s * kRow) * 4, 0, <usize>D << 2);
    }
    if (nAll > 0) {
      packB(kb, 1, kRow, 0, D, 0, nAll, kpT); // Kᵀ: (d, s)
      packB(vb, 1, kRow, 0, D, 0, nAll, vpT); // Vᵀ: (d, s)
      packB(kb, kRow, 1, 0, nAll, 0, D, kpN); // K: (s, d)
    }
    for (let h = kvh * group; h < (kvh + 1) * group; h++) {
      for (let t0 = 0; t0 < T; t0 += R) {
        const rb = min(R, T - t0);
        const nb = visible(t0 + rb - 1, S, causal, qOffset);
        const qo = <usize>(((b * T + t0) * Hq + h) * D) << 2;
        if (nb == 0) {
          for (let r = 0; r < rb; r++) memory.fill(dq + qo + <usize>(r * qRow) * 4, 0, <usize>D << 2);
          continue;
        }
        const ld = (nb + 7) & ~7;
        const ldb = <usize>ld << 2;
        packA(q + qo, <usize>qRow << 2, 4, 0, rb, 0, D, qa);
        packA(dO + qo, <usize>qRow << 2, 4, 0, rb, 0, D, doa);
        mmPacked(qa, kpT, <usize>D << 5, rb, ld, D, sb, ldb, scale, false, tmp); // scale·q·kᵀ
        mmPacked(doa, vpT, <usize>D << 5, rb, ld, D, dpb, ldb, 1, false, tmp); // dP = dO·Vᵀ
        const pl = lse + (<usize>((b * Hq + h) * T + t0) << 2);
        for (let r = 0; r < rb; r++) {
          const n = visible(t0 + r, S, causal, qOffset);
          const prow = sb + <usize>r * ldb, drow = dpb + <usize>r * ldb;
          if (n == 0) {
            memory.fill(prow, 0, ldb);
            memory.fill(drow, 0, ldb);
            continue;
          }
          expRow(prow, n, ld, load<f32>(pl + (<usize>r << 2))); // P
          const ro = qo + <usize>(r * qRow) * 4;
          const Di = dot(dO + ro, o + ro, D);
          // dS = P·(dP − Di)·scale (0 where P is 0)
          const dv4 = f32x4.splat(Di), sc = f32x4.splat(scale);
          for (let s = 0; s < ld; s += 4) {
            const so = <usize>s << 2;
            v128.store(drow + so, f32x4.mul(f32x4.mul(v128.load(prow + so), f32x4.sub(v128.load(drow + so), dv4)), sc));
          }
        }
        // dQ = dS·K
        packA(dpb, ldb, 4, 0, rb, 0, nb, dsa);
        mmPacked(dsa, kpN, <usize>nAll << 5, rb, D, nb, dq + qo, <usize>qRow << 2, 1, false, tmp);
        // dK += dSᵀ·Q_blk
        packA(dpb, 4, ldb, 0, nb, 0, rb, dsT);
        packB(q + qo, qRow, 1, 0, rb, 0, D, bn);
        mmPacked(dsT, bn, <usize>rb << 5, nb, D, rb, dkb, <usize>kRow << 2, 1, true, tmp);
        // dV += Pᵀ·dO_blk
        packA(sb, 4, ldb, 0, nb, 0, rb, dsT);
        packB(dO + qo, qRow, 1, 0, rb, 0, D, bn);
        mmPacked(dsT, bn, <usize>rb << 5, nb, D, rb, dvb, <usize>kRow << 2, 1, true, tmp);
      }
    }
  }
}
