/**
 * Blocked, register-tiled matmul: C = alpha·op(A)·op(B) (+ C), for the three shapes of a linear layer
 * (NN: dx = dy·W, NT: y = x·Wᵀ, TN: dW = dyᵀ·x) and batched matrices.
 *
 * Goto-style blocking: for each NC-column block and KC-deep slab, B is packed into 8-wide panels
 * bp[panel][k][0..8]; for each MC-row block, A is packed into 4-row panels ap[panel][k][0..4] (whatever its
 * layout, so NN, NT and TN all run the same inner loop). The 4×8 micro-kernel keeps 8 f32x4 accumulators in
 * registers: per k, 2 vector loads of B, 4 broadcast loads (v128.load32_splat) of A, 8 FMAs; one pointer each,
 * immediate offsets. Measured in bench/lab/mm-lab.mjs against 4×8 on unpacked A, 5×8, 6×8 (those spill in V8),
 * 4×12 and a k-unrolled 4×8.
 * Rows M < 4 (decode) take a matrix-vector path without packing.
 */
import { fma, dot } from './simd';

const KC: i32 = 256;
const NC: i32 = 256;
const MC: i32 = 64;

/** Pack B[pc..pc+kc, jc..jc+nc] (element (k, j) at b + (k·sbk + j·sbj)·4) into 8-wide zero-padded panels. */
export function packB(b: usize, sbk: i32, sbj: i32, pc: i32, kc: i32, jc: i32, nc: i32, bp: usize): void {
  const panels = (nc + 7) >> 3;
  for (let p = 0; p < panels; p++) {
    const j0 = jc + (p << 3);
    const w = min(8, jc + nc - j0);
    const dst = bp + (<usize>(p * kc) << 5);
    if (sbj == 1 && w == 8) {
      let src = b + (<usize>(pc * sbk + j0) << 2);
      const step = <usize>sbk << 2;
      for (let kk = 0; kk < kc; kk++) {
        const d = dst + (<usize>kk << 5);
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
        src += step;
      }
    } else if (sbk == 1 && w == 8) {
      // B is [N, K] (transB): 8 source rows, each contiguous along k
      const r = <usize>sbj << 2;
      const s0 = b + (<usize>(j0 * sbj + pc) << 2);
      let kk = 0;
      for (; kk + 4 <= kc; kk += 4) {
        const o = <usize>kk << 2;
        // 4×4 transposes of rows 0-3 and 4-7
        const a0 = v128.load(s0 + o), a1 = v128.load(s0 + r + o), a2 = v128.load(s0 + 2 * r + o), a3 = v128.load(s0 + 3 * r + o);
        const b0 = v128.load(s0 + 4 * r + o), b1 = v128.load(s0 + 5 * r + o), b2 = v128.load(s0 + 6 * r + o), b3 = v128.load(s0 + 7 * r + o);
        const t0 = v128.shuffle<i32>(a0, a1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(a2, a3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(a0, a1, 2, 6, 3, 7), t3 = v128.shuffle<i32>(a2, a3, 2, 6, 3, 7);
        const u0 = v128.shuffle<i32>(b0, b1, 0, 4, 1, 5), u1 = v128.shuffle<i32>(b2, b3, 0, 4, 1, 5);
        const u2 = v128.shuffle<i32>(b0, b1, 2, 6, 3, 7), u3 = v128.shuffle<i32>(b2, b3, 2, 6, 3, 7);
        const d = dst + (<usize>kk << 5);
        v128.store(d, v128.shuffle<i64>(t0, t1, 0, 2));
        v128.store(d, v128.shuffle<i64>(u0, u1, 0, 2), 16);
        v128.store(d, v128.shuffle<i64>(t0, t1, 1, 3), 32);
        v128.store(d, v128.shuffle<i64>(u0, u1, 1, 3), 48);
        v128.store(d, v128.shuffle<i64>(t2, t3, 0, 2), 64);
        v128.store(d, v128.shuffle<i64>(u2, u3, 0, 2), 80);
        v128.store(d, v128.shuffle<i64>(t2, t3, 1, 3), 96);
        v128.store(d, v128.shuffle<i64>(u2, u3, 1, 3), 112);
      }
      for (; kk < kc; kk++) {
        const d = dst + (<usize>kk << 5);
        for (let jj = 0; jj < 8; jj++) store<f32>(d + (<usize>jj << 2), load<f32>(s0 + <usize>jj * r + (<usize>kk << 2)));
      }
    } else {
      for (let kk = 0; kk < kc; kk++) {
        const d = dst + (<usize>kk << 5);
        for (let jj = 0; jj < 8; jj++) {
          const v: f32 = jj < w ? load<f32>(b + (<usize>((pc + kk) * sbk + (j0 + jj) * sbj) << 2)) : 0;
          store<f32>(d + (<usize>jj << 2), v);
        }
      }
    }
  }
}

/** Write one 8-wide accumulator row: c = alpha·acc (+ c if beta). Partial (w < 8) rows go through tmp. */
// @ts-ignore: decorator
@inline function storeRow(c: usize, lo4: v128, hi4: v128, alpha: v128, scaled: bool, beta: bool, w: i32, tmp: usize): void {
  let x = lo4, y = hi4;
  if (scaled) {
    x = f32x4.mul(x, alpha);
    y = f32x4.mul(y, alpha);
  }
  if (w == 8) {
    if (beta) {
      x = f32x4.add(x, v128.load(c));
      y = f32x4.add(y, v128.load(c, 16));
    }
    v128.store(c, x);
    v128.store(c, y, 16);
  } else {
    v128.store(tmp, x);
    v128.store(tmp, y, 16);
    for (let j = 0; j < w; j++) {
      const o = <usize>j << 2;
      store<f32>(c + o, load<f32>(tmp + o) + (beta ? load<f32>(c + o) : 0));
    }
  }
}

/** Pack A[ic..ic+mc, pc..pc+kc] (element (i, k) at a + i·sai + k·sak bytes) into 4-row panels ap[panel][k][0..4], zero-padded. */
export function packA(a: usize, sai: usize, sak: usize, ic: i32, mc: i32, pc: i32, kc: i32, ap: usize): void {
  const panels = (mc + 3) >> 2;
  for (let p = 0; p < panels; p++) {
    const i0 = ic + (p << 2);
    const h = min(4, ic + mc - i0);
    const dst = ap + (<usize>(p * kc) << 4);
    const src = a + <usize>i0 * sai + <usize>pc * sak;
    if (h == 4 && sak == 4) {
      // rows contiguous along k: 4×4 transposes
      let kk = 0;
      for (; kk + 4 <= kc; kk += 4) {
        const o = <usize>kk << 2;
        const r0 = v128.load(src + o), r1 = v128.load(src + sai + o), r2 = v128.load(src + 2 * sai + o), r3 = v128.load(src + 3 * sai + o);
        const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
        const d = dst + (<usize>kk << 4);
        v128.store(d, v128.shuffle<i64>(t0, t1, 0, 2));
        v128.store(d, v128.shuffle<i64>(t0, t1, 1, 3), 16);
        v128.store(d, v128.shuffle<i64>(t2, t3, 0, 2), 32);
        v128.store(d, v128.shuffle<i64>(t2, t3, 1, 3), 48);
      }
      for (; kk < kc; kk++) {
        const d = dst + (<usize>kk << 4), s0 = src + (<usize>kk << 2);
        store<f32>(d, load<f32>(s0));
        store<f32>(d, load<f32>(s0 + sai), 4);
        store<f32>(d, load<f32>(s0 + 2 * sai), 8);
        store<f32>(d, load<f32>(s0 + 3 * sai), 12);
      }
    } else if (h == 4 && sai == 4) {
      // Aᵀ storage: the 4 rows of one k are adjacent
      for (let kk = 0; kk < kc; kk++) v128.store(dst + (<usize>kk << 4), v128.load(src + <usize>kk * sak));
    } else {
      for (let kk = 0; kk < kc; kk++) {
        const d = dst + (<usize>kk << 4), s0 = src + <usize>kk * sak;
        for (let r = 0; r < 4; r++) store<f32>(d + (<usize>r << 2), r < h ? load<f32>(s0 + <usize>r * sai) : 0);
      }
    }
  }
}

/** 4×8 micro-kernel over kc on packed panels: 8 f32x4 accumulators; stores h ≤ 4 rows, w ≤ 8 columns. */
export function kern4x8(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, alpha: v128, beta: bool, h: i32, w: i32, tmp: usize): void {
  kern4x8Inline(ap, bp, kc, c, ldc, alpha, true, beta, h, w, tmp);
}

/**
 * The same micro-kernel, inlined at each call site (./attention.ts calls it with short depths, ~1,000 times per head,
 * where a call's fixed cost shows): c[h × w] (row stride ldc) = (alpha· if scaled) ap·bp (+ c if beta).
 */
// @ts-ignore: decorator
@inline export function kern4x8Inline(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, alpha: v128, scaled: bool, beta: bool, h: i32, w: i32, tmp: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let pa = ap, pb = bp;
  const end = bp + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let x = v128.load32_splat(pa);
    c00 = fma(x, b0, c00);
    c01 = fma(x, b1, c01);
    x = v128.load32_splat(pa, 4);
    c10 = fma(x, b0, c10);
    c11 = fma(x, b1, c11);
    x = v128.load32_splat(pa, 8);
    c20 = fma(x, b0, c20);
    c21 = fma(x, b1, c21);
    x = v128.load32_splat(pa, 12);
    c30 = fma(x, b0, c30);
    c31 = fma(x, b1, c31);
    pa += 16;
    pb += 32;
  }
  storeRow(c, c00, c01, alpha, scaled, beta, w, tmp);
  if (h > 1) storeRow(c + ldc, c10, c11, alpha, scaled, beta, w, tmp);
  if (h > 2) storeRow(c + 2 * ldc, c20, c21, alpha, scaled, beta, w, tmp);
  if (h > 3) storeRow(c + 3 * ldc, c30, c31, alpha, scaled, beta, w, tmp);
}

/** C rows [i0, i1) × columns [j0, j1) of one matrix. */
function gemm(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, transA: bool, transB: bool, alpha: f32, accumulate: bool,
  i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize): void {
  if (i1 <= i0 || j1 <= j0) return;
  const ldc = <usize>N << 2;
  if (K == 0) {
    if (!accumulate) for (let i = i0; i < i1; i++) memory.fill(c + <usize>i * ldc + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
    return;
  }
  const sai: usize = transA ? 4 : <usize>K << 2, sak: usize = transA ? <usize>M << 2 : 4;
  const sbk = transB ? 1 : N, sbj = transB ? K : 1;
  if (M < 4) {
    gemv(a, b, c, N, K, sai, sak, sbk, sbj, alpha, accumulate, i0, i1, j0, j1);
    return;
  }
  const tmp = scratch;
  const ap = scratch + 128;
  const bp = ap + (<usize>(MC * KC) << 2);
  const av = f32x4.splat(alpha);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    const panels = (nc + 7) >> 3;
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      packB(b, sbk, sbj, pc, kc, jc, nc, bp);
      const beta = pc > 0 || accumulate;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        packA(a, sai, sak, ic, mc, pc, kc, ap);
        const rpanels = (mc + 3) >> 2;
        for (let p = 0; p < panels; p++) {
          const w = min(8, nc - (p << 3));
          const pbp = bp + (<usize>(p * kc) << 5);
          const cj = c + (<usize>(jc + (p << 3)) << 2);
          for (let r = 0; r < rpanels; r++) {
            const i = ic + (r << 2);
            kern4x8(ap + (<usize>(r * kc) << 4), pbp, kc, cj + <usize>i * ldc, ldc, av, beta, min(4, ic + mc - i), w, tmp);
          }
        }
      }
    }
  }
}

/** Few rows: each output c[i, j] for j in [j0, j1). */
function gemv(a: usize, b: usize, c: usize, N: i32, K: i32, sai: usize, sak: usize, sbk: i32, sbj: i32, alpha: f32,
  accumulate: bool, i0: i32, i1: i32, j0: i32, j1: i32): void {
  const ldc = <usize>N << 2;
  for (let i = i0; i < i1; i++) {
    const ai = a + <usize>i * sai;
    const ci = c + <usize>i * ldc;
    if (sbk == 1 && sak == 4) {
      // a row contiguous, B rows contiguous along k: dot products
      for (let j = j0; j < j1; j++) {
        const d = dot(ai, b + (<usize>(j * sbj) << 2), K) * alpha;
        const o = ci + (<usize>j << 2);
        store<f32>(o, accumulate ? load<f32>(o) + d : d);
      }
    } else {
      // c[i, j0..j1] = Σ_k a[i, k]·B[k, j0..j1], B rows contiguous along j (sbj == 1) or strided
      if (!accumulate) memory.fill(ci + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
      for (let k = 0; k < K; k++) {
        const x = load<f32>(ai + <usize>k * sak) * alpha;
        const xv = f32x4.splat(x);
        const bk = b + (<usize>(k * sbk) << 2);
        let j = j0;
        if (sbj == 1) {
          for (; j + 4 <= j1; j += 4) {
            const o = <usize>j << 2;
            v128.store(ci + o, fma(xv, v128.load(bk + o), v128.load(ci + o)));
          }
        }
        for (; j < j1; j++) {
          const o = <usize>j << 2;
          store<f32>(ci + o, load<f32>(ci + o) + x * load<f32>(bk + (<usize>(j * sbj) << 2)));
        }
      }
    }
  }
}

/**
 * Batched matmul. Batch p uses a + p·bsA, b + p·bsB, c + p·bsC (element strides; 0 = shared matrix).
 * split 0: this thread does batches [lo, hi); 1: rows [lo, hi) of every batch; 2: columns [lo, hi).
 * scratch: 128 + (MC + NC)·KC·4 bytes per thread.
 */
export function matmul(a: usize, b: usize, c: usize, batch: i32, bsA: i32, bsB: i32, bsC: i32, M: i32, N: i32, K: i32,
  transA: bool, transB: bool, alpha: f32, accumulate: bool, split: i32, scratch: usize, lo: i32, hi: i32): void {
  const p0 = split == 0 ? lo : 0, p1 = split == 0 ? hi : batch;
  const i0 = split == 1 ? lo : 0, i1 = split == 1 ? hi : M;
  const j0 = split == 2 ? lo : 0, j1 = split == 2 ? hi : N;
  for (let p = p0; p < p1; p++) {
    gemm(a + (<usize>(p * bsA) << 2), b + (<usize>(p * bsB) << 2), c + (<usize>(p * bsC) << 2), M, N, K, transA, transB,
      alpha, accumulate, i0, i1, j0, j1, scratch);
  }
}
