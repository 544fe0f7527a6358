/**
 * Fused causal attention with grouped-query heads, forward and backward, as small blocked matmuls.
 * q [B, T, Hq, D], k/v [B, S, Hkv, D], o [B, T, Hq, D], lse [B, Hq, T]. Query row t sits at position qOffset + t
 * and sees keys s ≤ qOffset + t (causal). q (and dq) rows are qRow floats apart and k, v (dk, dv) rows kRow apart,
 * so the kernels read q, k, v in place from a fused qkv projection [B, T, (Hq + 2·Hkv)·D] and the backward writes
 * dq, dk, dv into one dqkv of that layout (attention_qkv); plain q/k/v have qRow = Hq·D, kRow = Hkv·D.
 *
 * Per (batch, head) the keys and values are packed once (Kᵀ and V panels for the matmul micro-kernel), then the
 * queries go in blocks of R = 32 rows: scores S = scale·Q_blk·Kᵀ [R × keys], an exact softmax per row (max, exp;
 * lse kept), O_blk = P·V, each row divided by its Σ exp at the end. The only temporaries are R rows of scores in
 * this thread's scratch — never a T×S matrix (for T = 1024, one block is 32 × 1024). Causal blocks skip the upper
 * triangle: a 4-row panel computes only the 8-key panels its last row sees and P·V runs over the keys it sees, so
 * the diagonal block costs about half a block. Given a `prob` buffer [B, Hq, T, S] (short sequences), the forward
 * also writes P there and the backward reads it; otherwise backward recomputes P per block from lse. Then dP = dO·Vᵀ,
 * dS = P ⊙ (dP − Σ dO⊙O)·scale, dQ = dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO (a 4-key panel starts at the first query row
 * that sees it), all through matmul.ts's 4×8 micro-kernel, inlined here (below).
 * Forward splits threads over (b, query head); backward over (b, kv head), so a thread owns the dK/dV it writes.
 * Decoding (T < 4 query rows against a KV cache) skips the packing: per row, S dot products and S axpys
 * straight from the cache.
 */
import { hmax, hsum, expv, dot, axpy, fma } from './simd';
import { kern4x8Inline as kern4x8, packA, packB } from './matmul';

const R: i32 = 32;

/** Number of keys query row t sees. */
// @ts-ignore: decorator
@inline function visible(t: i32, S: i32, causal: bool, qOffset: i32): i32 {
  return causal ? max(0, min(S, qOffset + t + 1)) : S;
}

/** The first key query row t sees under a sliding window of `window` keys (0 = none). */
// @ts-ignore: decorator
@inline function windowStart(t: i32, qOffset: i32, window: i32): i32 {
  return window > 0 ? max(0, qOffset + t - window + 1) : 0;
}

/** Bytes of scratch the kernels need (the caller sizes each thread's scratch with the same formula). */
export function attention_scratch_bytes(S: i32, D: i32): i32 {
  const Sp = (S + 7) & ~7, Dp = (D + 7) & ~7;
  return 128 + 4 * (2 * Sp * D + Dp * S + 2 * R * D + 4 * R * Sp + 2 * Dp * R) + 64;
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
function attendRow4(pq: usize, kb: usize, vb: usize, kStride: usize, D: i32, n: i32, scale: f32, po: usize, sc: usize, pr: usize, S: i32): f32 {
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
  if (pr) storeProbs(pr, sc, n, S, 1 / sum);
  return m + Mathf.log(sum);
}

/** p[0..S) = e[s]·inv for s < n, 0 after (a row of the kept probabilities). */
function storeProbs(p: usize, e: usize, n: i32, S: i32, inv: f32): void {
  const iv = f32x4.splat(inv);
  let s = 0;
  for (; s + 4 <= n; s += 4) v128.store(p + (<usize>s << 2), f32x4.mul(v128.load(e + (<usize>s << 2)), iv));
  for (; s < n; s++) store<f32>(p + (<usize>s << 2), load<f32>(e + (<usize>s << 2)) * inv);
  if (S > n) memory.fill(p + (<usize>n << 2), 0, <usize>(S - n) << 2);
}

/** One query row against n keys, streaming (decode): o = softmax(scale·q·kᵀ)·v; returns lse. sc: n floats. */
function attendRow(pq: usize, kb: usize, vb: usize, kStride: usize, D: i32, n: i32, scale: f32, po: usize, sc: usize, pr: usize, S: i32): f32 {
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
  if (pr) storeProbs(pr, sc, n, S, 1 / sum);
  return m + Mathf.log(sum);
}

export function attention(q: usize, k: usize, v: usize, o: usize, lse: usize, prob: usize, T: i32, S: i32, Hq: i32, Hkv: i32, D: i32,
  qRow: i32, kRow: i32, scale: f32, causal: bool, qOffset: i32, window: i32, starts: usize, scratch: usize, lo: i32, hi: i32): void {
  const group = Hq / Hkv;
  const oRow = Hq * D;
  const Sp = (S + 7) & ~7, Dp = (D + 7) & ~7;
  const tmp = scratch;
  const kp = scratch + 128;
  const vp = kp + (<usize>(Sp * D) << 2);
  const qp = vp + (<usize>(Dp * S) << 2);
  const sb = qp + (<usize>(R * D) << 2);
  const pp = sb + (<usize>(R * Sp) << 2);
  const inv = pp + (<usize>(R * Sp) << 2); // R floats: 1 / Σ exp per row
  const sv = f32x4.splat(scale), one = f32x4.splat(1);
  const Sall = S, qOffAll = qOffset;
  for (let bh = lo; bh < hi; bh++) {
    const b = bh / Hq, h = bh % Hq, kvh = h / group;
    // a left-padded row (starts: B int32, 0 = none) sees keys from its first real one: the keys, S and the query
    // offset shift by it, so the rest is the unpadded kernel on keys [ks, S) (kept probabilities are not allowed)
    const ks = starts ? load<i32>(starts + (<usize>b << 2)) : 0;
    const S = Sall - ks, qOffset = qOffAll - ks;
    const nAll = T > 0 ? visible(T - 1, S, causal, qOffset) : 0;
    const kb = k + (<usize>((b * Sall + ks) * kRow + kvh * D) << 2), vb = v + (<usize>((b * Sall + ks) * kRow + kvh * D) << 2);
    if (T < 4) {
      for (let t = 0; t < T; t++) {
        const qr = <usize>((b * T + t) * qRow + h * D) << 2, ro = <usize>(((b * T + t) * Hq + h) * D) << 2;
        const n = visible(t, S, causal, qOffset);
        // a sliding window: the row's keys start at w0 (the keys, kept probabilities and their count shift by it)
        const w0 = min(n, windowStart(t, qOffset, window));
        const pl = lse + (<usize>(bh * T + t) << 2);
        let pr = prob ? prob + (<usize>(bh * T + t) * <usize>S << 2) : 0;
        if (pr && w0 > 0) {
          memory.fill(pr, 0, <usize>w0 << 2);
          pr += <usize>w0 << 2;
        }
        const kw = kb + (<usize>(w0 * kRow) << 2), vw = vb + (<usize>(w0 * kRow) << 2);
        if (n - w0 == 0) {
          memory.fill(o + ro, 0, <usize>D << 2);
          store<f32>(pl, -Infinity);
          if (pr) memory.fill(pr, 0, <usize>(S - w0) << 2);
        } else if ((D & 3) == 0) store<f32>(pl, attendRow4(q + qr, kw, vw, <usize>kRow << 2, D, n - w0, scale, o + ro, sb, pr, S - w0));
        else store<f32>(pl, attendRow(q + qr, kw, vw, <usize>kRow << 2, D, n - w0, scale, o + ro, sb, pr, S - w0));
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
      const qo = <usize>((b * T + t0) * qRow + h * D) << 2, oo = <usize>(((b * T + t0) * Hq + h) * D) << 2;
      const pl = lse + (<usize>(bh * T + t0) << 2);
      if (nb == 0) {
        for (let r = 0; r < rb; r++) {
          memory.fill(o + oo + <usize>(r * oRow) * 4, 0, <usize>D << 2);
          store<f32>(pl + (<usize>r << 2), -Infinity);
        }
        continue;
      }
      const ld = (nb + 7) & ~7;
      const ldb = <usize>ld << 2;
      packA(q + qo, <usize>qRow << 2, 4, 0, rb, 0, D, qp);
      // scores, per 4-row panel only the 8-column panels some row of it sees (causal: skip the upper triangle; a sliding
      // window: skip the panels before its first row's window, whose entries the rows below mask anyway)
      for (let r = 0; r < rb; r += 4) {
        const hgt = min(4, rb - r);
        const cp = (visible(t0 + r + hgt - 1, S, causal, qOffset) + 7) >> 3;
        const p0 = windowStart(t0 + r, qOffset, window) >> 3;
        const ap = qp + (<usize>(r * D) << 2), c = sb + <usize>r * ldb;
        for (let p = p0; p < cp; p++) kern4x8(ap, kp + (<usize>(p * D) << 5), D, c + (<usize>p << 5), ldb, sv, true, false, hgt, 8, tmp);
      }
      for (let r = 0; r < rb; r++) {
        const n = visible(t0 + r, S, causal, qOffset);
        const row = sb + <usize>r * ldb;
        const pr = prob ? prob + (<usize>(bh * T + t0 + r) * <usize>S << 2) : 0;
        if (n == 0) {
          memory.fill(row, 0, ldb);
          store<f32>(pl + (<usize>r << 2), -Infinity);
          store<f32>(inv + (<usize>r << 2), 0);
          if (pr) memory.fill(pr, 0, <usize>S << 2);
          continue;
        }
        // a sliding window: P is 0 at the keys before w0 (their scores may not even be computed), the rest as usual
        const w0 = min(n - 1, windowStart(t0 + r, qOffset, window));
        const rw = row + (<usize>w0 << 2);
        if (w0 > 0) memory.fill(row, 0, <usize>w0 << 2);
        const m = rowMax(rw, n - w0);
        const sum = expRow(rw, n - w0, ld - w0, m); // unnormalised P, zero past n
        store<f32>(inv + (<usize>r << 2), 1 / sum);
        store<f32>(pl + (<usize>r << 2), m + Mathf.log(sum));
        if (pr) storeProbs(pr, row, n, S, 1 / sum); // kept for the backward pass
      }
      packA(sb, ldb, 4, 0, rb, 0, nb, pp);
      // O = P·V, per row panel over the keys it sees, then each row divided by its Σ exp
      for (let r = 0; r < rb; r += 4) {
        const hgt = min(4, rb - r);
        const kc = visible(t0 + r + hgt - 1, S, causal, qOffset);
        // a sliding window: the keys before the panel's first row's window have P = 0 in every row of it
        const k0 = min(kc - 1, windowStart(t0 + r, qOffset, window));
        const ap = pp + (<usize>(r * nb) << 2) + (<usize>k0 << 4), c = o + oo + <usize>(r * oRow) * 4;
        for (let p = 0; p < D; p += 8) kern4x8(ap, vp + <usize>(p >> 3) * (<usize>nAll << 5) + (<usize>k0 << 5), kc - k0, c + (<usize>p << 2), <usize>oRow << 2, one, false, false, hgt, min(8, D - p), tmp);
      }
      for (let r = 0; r < rb; r++) scaleRow(o + oo + <usize>(r * oRow) * 4, D, load<f32>(inv + (<usize>r << 2)));
    }
  }
}

/**
 * C[nb × D] (row stride ldc bytes) += Aᵀ-panels · B over the block's rb query rows: at [4-key panel][query row][4]
 * (depth rb), bn [D/8 panels][query row][8]. Key panel s0 starts at query row max(0, s0 − qOffset − t0) when causal
 * (the rows before it do not see those keys, so their dS and P are 0 there).
 */
function accumulateKeys(at: usize, bn: usize, rb: i32, nb: i32, D: i32, t0: i32, causal: bool, qOffset: i32, c: usize, ldc: usize,
  one: v128, tmp: usize): void {
  for (let s0 = 0; s0 < nb; s0 += 4) {
    const k0 = causal ? min(rb, max(0, s0 - qOffset - t0)) : 0;
    if (k0 >= rb) break;
    const hgt = min(4, nb - s0);
    const ap = at + (<usize>(s0 * rb + (k0 << 2)) << 2), cr = c + <usize>s0 * ldc;
    for (let p = 0; p < D; p += 8) {
      kern4x8(ap, bn + <usize>(p >> 3) * (<usize>rb << 5) + (<usize>k0 << 5), rb - k0, cr + (<usize>p << 2), ldc, one, false, true, hgt, min(8, D - p), tmp);
    }
  }
}

export function attention_backward(dO: usize, q: usize, k: usize, v: usize, o: usize, lse: usize, prob: usize, dq: usize, dk: usize,
  dv: usize, T: i32, S: i32, Hq: i32, Hkv: i32, D: i32, qRow: i32, kRow: i32, scale: f32, causal: bool, qOffset: i32,
  window: i32, scratch: usize, lo: i32, hi: i32): void {
  const group = Hq / Hkv;
  const oRow = Hq * D;
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
  const sv = f32x4.splat(scale), one = f32x4.splat(1);
  for (let bk = lo; bk < hi; bk++) {
    const b = bk / Hkv, kvh = bk % Hkv;
    const off = <usize>(b * S * kRow + kvh * D) << 2;
    const kb = k + off, vb = v + off, dkb = dk + off, dvb = dv + off;
    for (let s = 0; s < S; s++) {
      memory.fill(dkb + <usize>(s * kRow) * 4, 0, <usize>D << 2);
      memory.fill(dvb + <usize>(s * kRow) * 4, 0, <usize>D << 2);
    }
    if (nAll > 0) {
      if (!prob) packB(kb, 1, kRow, 0, D, 0, nAll, kpT); // Kᵀ: (d, s), for the scores (unless P is kept)
      packB(vb, 1, kRow, 0, D, 0, nAll, vpT); // Vᵀ: (d, s)
      packB(kb, kRow, 1, 0, nAll, 0, D, kpN); // K: (s, d)
    }
    for (let h = kvh * group; h < (kvh + 1) * group; h++) {
      for (let t0 = 0; t0 < T; t0 += R) {
        const rb = min(R, T - t0);
        const nb = visible(t0 + rb - 1, S, causal, qOffset);
        const qo = <usize>((b * T + t0) * qRow + h * D) << 2, oo = <usize>(((b * T + t0) * Hq + h) * D) << 2;
        if (nb == 0) {
          for (let r = 0; r < rb; r++) memory.fill(dq + qo + <usize>(r * qRow) * 4, 0, <usize>D << 2);
          continue;
        }
        const ld = (nb + 7) & ~7;
        const ldb = <usize>ld << 2;
        if (!prob) packA(q + qo, <usize>qRow << 2, 4, 0, rb, 0, D, qa);
        packA(dO + oo, <usize>oRow << 2, 4, 0, rb, 0, D, doa);
        // scale·Q·Kᵀ and dP = dO·Vᵀ, per 4-row panel only the 8-key panels some row of it sees
        for (let r = 0; r < rb; r += 4) {
          const hgt = min(4, rb - r);
          const cp = (visible(t0 + r + hgt - 1, S, causal, qOffset) + 7) >> 3;
          const aq = qa + (<usize>(r * D) << 2), ad = doa + (<usize>(r * D) << 2), co = <usize>r * ldb;
          for (let p = 0; p < cp; p++) {
            const bo = <usize>(p * D) << 5, cc = co + (<usize>p << 5);
            if (!prob) kern4x8(aq, kpT + bo, D, sb + cc, ldb, sv, true, false, hgt, 8, tmp);
            kern4x8(ad, vpT + bo, D, dpb + cc, ldb, one, false, false, hgt, 8, tmp);
          }
        }
        const pl = lse + (<usize>((b * Hq + h) * T + t0) << 2);
        for (let r = 0; r < rb; r++) {
          const n = visible(t0 + r, S, causal, qOffset);
          const prow = sb + <usize>r * ldb, drow = dpb + <usize>r * ldb;
          if (n == 0) {
            memory.fill(prow, 0, ldb);
            memory.fill(drow, 0, ldb);
            continue;
          }
          if (prob) {
            // P kept by the forward pass: copy the row's n probabilities, zero past n
            memory.copy(prow, prob + (<usize>((b * Hq + h) * T + t0 + r) * <usize>S << 2), <usize>n << 2);
            if (ld > n) memory.fill(prow + (<usize>n << 2), 0, <usize>(ld - n) << 2);
          } else expRow(prow, n, ld, load<f32>(pl + (<usize>r << 2))); // P recomputed from lse, zero past n
          // a sliding window: P is 0 at the keys before the row's first (so are dS and the row's share of dV)
          const w0 = min(n, windowStart(t0 + r, qOffset, window));
          if (w0 > 0) memory.fill(prow, 0, <usize>w0 << 2);
          const ro = oo + <usize>(r * oRow) * 4;
          const Di = dot(dO + ro, o + ro, D);
          // dS = P·(dP − Di)·scale over the keys this row sees (rounded up to 4: P is 0 there), 0 after
          const dv4 = f32x4.splat(Di);
          const n4 = (n + 3) & ~3;
          for (let s = 0; s < n4; s += 4) {
            const so = <usize>s << 2;
            v128.store(drow + so, f32x4.mul(f32x4.mul(v128.load(prow + so), f32x4.sub(v128.load(drow + so), dv4)), sv));
          }
          if (n4 < ld) memory.fill(drow + (<usize>n4 << 2), 0, <usize>(ld - n4) << 2);
        }
        // dQ = dS·K, per row panel over the keys it sees
        packA(dpb, ldb, 4, 0, rb, 0, nb, dsa);
        for (let r = 0; r < rb; r += 4) {
          const hgt = min(4, rb - r);
          const kc = visible(t0 + r + hgt - 1, S, causal, qOffset);
          const ap = dsa + (<usize>(r * nb) << 2), c = dq + qo + <usize>(r * qRow) * 4;
          for (let p = 0; p < D; p += 8) kern4x8(ap, kpN + <usize>(p >> 3) * (<usize>nAll << 5), kc, c + (<usize>p << 2), <usize>qRow << 2, one, false, false, hgt, min(8, D - p), tmp);
        }
        // dK += dSᵀ·Q_blk and dV += Pᵀ·dO_blk: key panel s0 gets nothing from query rows t < s0 − qOffset (causal)
        packA(dpb, 4, ldb, 0, nb, 0, rb, dsT);
        packB(q + qo, qRow, 1, 0, rb, 0, D, bn);
        accumulateKeys(dsT, bn, rb, nb, D, t0, causal, qOffset, dkb, <usize>kRow << 2, one, tmp);
        packA(sb, 4, ldb, 0, nb, 0, rb, dsT);
        packB(dO + oo, oRow, 1, 0, rb, 0, D, bn);
        accumulateKeys(dsT, bn, rb, nb, D, t0, causal, qOffset, dvb, <usize>kRow << 2, one, tmp);
      }
    }
  }
}
