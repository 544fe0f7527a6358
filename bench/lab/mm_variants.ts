// Matmul micro-kernel lab (AssemblyScript): variants of the register tile, timed on packed, cache-resident
// panels by mm-lab.mjs. Reference: a scalar triple loop. Build: see mm-lab.mjs.
// @ts-ignore: decorator
@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Reference: C[M×N] = Ap(packed [M/MR][k][MR]) · Bp([N/8][k][8]), scalar. */
export function ref(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32, MR: i32): void {
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s: f32 = 0;
    for (let k = 0; k < K; k++) {
      const a = load<f32>(ap + (<usize>(((i / MR) * K + k) * MR + i % MR) << 2));
      const b = load<f32>(bp + (<usize>(((j >> 3) * K + k) * 8 + (j & 7)) << 2));
      s += a * b;
    }
    store<f32>(c + (<usize>(i * N + j) << 2), s);
  }
}

// v1: 4×8, A unpacked row-major [M, K] (4 row pointers)
export function v1(a: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  const sai = <usize>K << 2;
  for (let jp = 0; jp < (N >> 3); jp++) {
    for (let i = 0; i < M; i += 4) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let a0 = a + <usize>i * sai, a1 = a0 + sai, a2 = a1 + sai, a3 = a2 + sai;
      let pb = bp + (<usize>(jp * K) << 5);
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let x = v128.load32_splat(a0); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(a1); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(a2); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(a3); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        a0 += 4; a1 += 4; a2 += 4; a3 += 4; pb += 32;
      }
      const pc = c + (<usize>(i * N + jp * 8) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16);
    }
  }
}

// v2: 4×8, A packed [M/4][K][4]: one pointer, immediate offsets
export function v2(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  for (let jp = 0; jp < (N >> 3); jp++) {
    for (let i = 0; i < M; i += 4) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let pa = ap + (<usize>(i * K) << 2);
      let pb = bp + (<usize>(jp * K) << 5);
      const end = pb + (<usize>K << 5);
      while (pb < end) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let x = v128.load32_splat(pa); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(pa, 4); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(pa, 8); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(pa, 12); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        pa += 16; pb += 32;
      }
      const pc = c + (<usize>(i * N + jp * 8) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16);
    }
  }
}

// v3: 6×8, A packed [M/6][K][6]
export function v3(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  for (let jp = 0; jp < (N >> 3); jp++) {
    for (let i = 0; i + 6 <= M; i += 6) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let c40 = f32x4.splat(0), c41 = f32x4.splat(0), c50 = f32x4.splat(0), c51 = f32x4.splat(0);
      let pa = ap + (<usize>(i * K) << 2);
      let pb = bp + (<usize>(jp * K) << 5);
      const end = pb + (<usize>K << 5);
      while (pb < end) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let x = v128.load32_splat(pa); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(pa, 4); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(pa, 8); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(pa, 12); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        x = v128.load32_splat(pa, 16); c40 = fma(x, b0, c40); c41 = fma(x, b1, c41);
        x = v128.load32_splat(pa, 20); c50 = fma(x, b0, c50); c51 = fma(x, b1, c51);
        pa += 24; pb += 32;
      }
      const pc = c + (<usize>(i * N + jp * 8) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16);
      v128.store(pc + 4 * ldc, c40); v128.store(pc + 4 * ldc, c41, 16);
      v128.store(pc + 5 * ldc, c50); v128.store(pc + 5 * ldc, c51, 16);
    }
  }
}

// v4: 5×8, A packed [M/5][K][5]
export function v4(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  for (let jp = 0; jp < (N >> 3); jp++) {
    for (let i = 0; i + 5 <= M; i += 5) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
      let pa = ap + (<usize>(i * K) << 2);
      let pb = bp + (<usize>(jp * K) << 5);
      const end = pb + (<usize>K << 5);
      while (pb < end) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let x = v128.load32_splat(pa); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(pa, 4); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(pa, 8); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(pa, 12); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        x = v128.load32_splat(pa, 16); c40 = fma(x, b0, c40); c41 = fma(x, b1, c41);
        pa += 20; pb += 32;
      }
      const pc = c + (<usize>(i * N + jp * 8) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16);
      v128.store(pc + 4 * ldc, c40); v128.store(pc + 4 * ldc, c41, 16);
    }
  }
}

// v5: 4×12 (12 accumulators, 3 B loads + 1 A per row), A packed [M/4][K][4], B packed 12-wide
export function v5(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  for (let jp = 0; jp < N / 12; jp++) {
    for (let i = 0; i < M; i += 4) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0);
      let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0);
      let c30 = f32x4.splat(0), c31 = f32x4.splat(0), c32 = f32x4.splat(0);
      let pa = ap + (<usize>(i * K) << 2);
      let pb = bp + <usize>(jp * K) * 48;
      const end = pb + <usize>K * 48;
      while (pb < end) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16), b2 = v128.load(pb, 32);
        let x = v128.load32_splat(pa); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01); c02 = fma(x, b2, c02);
        x = v128.load32_splat(pa, 4); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11); c12 = fma(x, b2, c12);
        x = v128.load32_splat(pa, 8); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21); c22 = fma(x, b2, c22);
        x = v128.load32_splat(pa, 12); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31); c32 = fma(x, b2, c32);
        pa += 16; pb += 48;
      }
      const pc = c + (<usize>(i * N + jp * 12) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16); v128.store(pc, c02, 32);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16); v128.store(pc + ldc, c12, 32);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16); v128.store(pc + 2 * ldc, c22, 32);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16); v128.store(pc + 3 * ldc, c32, 32);
    }
  }
}

// v6: 4×8 packed A, k unrolled ×2
export function v6(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  for (let jp = 0; jp < (N >> 3); jp++) {
    for (let i = 0; i < M; i += 4) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let pa = ap + (<usize>(i * K) << 2);
      let pb = bp + (<usize>(jp * K) << 5);
      const end = pb + (<usize>K << 5);
      while (pb < end) {
        let b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let x = v128.load32_splat(pa); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(pa, 4); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(pa, 8); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(pa, 12); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        b0 = v128.load(pb, 32); b1 = v128.load(pb, 48);
        x = v128.load32_splat(pa, 16); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(pa, 20); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(pa, 24); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(pa, 28); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        pa += 32; pb += 64;
      }
      const pc = c + (<usize>(i * N + jp * 8) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16);
    }
  }
}

// v7: as v2 (4×8, A packed) but rows outer, column panels inner (A micro-panel stays in L1, B block from L2)
export function v7(ap: usize, bp: usize, c: usize, M: i32, N: i32, K: i32): void {
  for (let i = 0; i < M; i += 4) {
    for (let jp = 0; jp < (N >> 3); jp++) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let pa = ap + (<usize>(i * K) << 2);
      let pb = bp + (<usize>(jp * K) << 5);
      const end = pb + (<usize>K << 5);
      while (pb < end) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let x = v128.load32_splat(pa); c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
        x = v128.load32_splat(pa, 4); c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
        x = v128.load32_splat(pa, 8); c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
        x = v128.load32_splat(pa, 12); c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
        pa += 16; pb += 32;
      }
      const pc = c + (<usize>(i * N + jp * 8) << 2), ldc = <usize>N << 2;
      v128.store(pc, c00); v128.store(pc, c01, 16);
      v128.store(pc + ldc, c10); v128.store(pc + ldc, c11, 16);
      v128.store(pc + 2 * ldc, c20); v128.store(pc + 2 * ldc, c21, 16);
      v128.store(pc + 3 * ldc, c30); v128.store(pc + 3 * ldc, c31, 16);
    }
  }
}
