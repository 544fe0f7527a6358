/**
 * The webgpu backend's f16 matmul path (matmulPrecision 'f16', src/backend/webgpu/matmul_wgsl.ts): every matmul
 * kernel — the 32×32, the register-blocked 4×4 and 8×8 (./matmul_tiled.ts), the matrix-vector one (./matmul_gemv.ts)
 * — in every layout (NN, NT, TN, TT) rounds each operand element to binary16 as it loads it and accumulates in f32:
 *
 *  - rounding, bit for bit: with K = 1 and the other operand all ones, each output is one rounded operand element;
 *    it must equal src/formats/half.ts's f32BitsToF16Bits widened back (round to nearest even, ±inf past 65504,
 *    subnormals kept, ties at both ends), for a few thousand values over f16's whole range, on A and on B;
 *  - products: against a float64 product of the f16-rounded operands (tight: f32 accumulation error only), and
 *    measurably far from the float32 backend's result (so the rounding really happens);
 *  - the spelled-out cases: 65519 → 65504, 65520 → inf, −70000 → −inf, 1e-6 → 17·2^-24, 2^-25 → 0, 3·2^-25 → 2^-23.
 *  - why the loop scales the loss: a weight gradient Xᵀ·dY with dY ≈ 1e-8 (a mean over many tokens) is lost in f16
 *    (relative error 1.0), and found again to f16's rounding (3e-4) with dY scaled by 2^16 and the result unscaled;
 *  - how it is chosen: ref / wasm / `llmts train --backend wasm --precision f16` refuse it by name.
 *
 * Skipped where Node finds no WebGPU adapter (as ./webgpu_node.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/registry.js';
import { DEFAULTS, validateConfig } from '../src/pretrain/settings.js';
import { tiledMatmul } from '../src/backend/webgpu/matmul.js';
import { fromF16Bits, toF16Bits } from '../src/formats/half.js';
import { matmul } from '../src/tensor/ops.js';
import { type Tensor, tensor } from '../src/tensor/tensor.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { createWebGpuBackend, type WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { relErr } from './helpers.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu f16 matmul');
const be16 = await gpu.make({ matmulPrecision: 'f16' });
const be32 = be16 ? await gpu.make() : null;

/** x (a float32 value) rounded to binary16 and widened: the oracle. */
const h = (x: number): number => fromF16Bits(toF16Bits(x));

/** The kernel selections (tiledMatmul settings) and the products they serve. */
const KERNELS: Record<string, Partial<typeof tiledMatmul>> = {
  '32×32': { min: Infinity, gemvRows: 0 },
  'tiled 4×4': { min: 32, big: Infinity, gemvRows: 0 },
  'tiled 8×8': { min: 32, big: 0, gemvRows: 0 },
};
const LAYOUTS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];
const lay = (tA: boolean, tB: boolean) => `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;

/** op(a)·op(b) on `be` under the kernel selection `sel`, read back. a: [M, K] ([K, M] if tA); b: [K, N] ([N, K] if tB). */
async function product(
  be: WebGpuBackend,
  sel: Partial<typeof tiledMatmul>,
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  tA: boolean,
  tB: boolean,
): Promise<Float32Array> {
  const before = { ...tiledMatmul };
  Object.assign(tiledMatmul, sel);
  const ts: Tensor[] = [];
  try {
    const A = tensor(a, aShape, { backend: be }),
      B = tensor(b, bShape, { backend: be });
    ts.push(A, B);
    const C = matmul(A, B, { transA: tA, transB: tB });
    ts.push(C);
    return (await C.data()) as Float32Array;
  } finally {
    Object.assign(tiledMatmul, before);
    for (const t of ts) t.dispose();
  }
}

/** Values over f16's whole range and past it: the edges spelled out, then random bit patterns of 2^-30 … 2^17. */
function testValues(n: number): Float32Array {
  const edges = [
    0,
    -0,
    1,
    -1,
    65504,
    65519,
    65520,
    65536,
    -70000,
    1e5,
    3e38,
    2 ** -14,
    2 ** -14 * (1 - 2 ** -11),
    2 ** -24,
    2 ** -25,
    3 * 2 ** -25,
    5 * 2 ** -25,
    2 ** -25 * 1.0001,
    2 ** -26,
    1e-6,
    -1e-6,
    3e-8,
    6e-5,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -11 + 2 ** -20,
    2049,
    2051,
    1e-40,
    Infinity,
    -Infinity,
  ];
  const v = new Float32Array(n);
  v.set(edges);
  const u = new Uint32Array(v.buffer);
  const rng = new Rng(7);
  for (let i = edges.length; i < n; i++) {
    const e = 97 + Math.floor(rng.random() * 47); // biased exponents 97 … 143: 2^-30 … 2^16·(2 − ε)
    const sign = rng.random() < 0.5 ? 0x80000000 : 0;
    // low mantissa bits at the rounding boundaries now and then (ties and one-off-ties), else random
    const r = rng.random();
    let mant = Math.floor(rng.random() * 0x800000);
    if (r < 0.1) mant = (mant & ~0x1fff) | 0x1000;
    else if (r < 0.15) mant = (mant & ~0x1fff) | 0x0fff;
    u[i] = (sign | (e << 23) | mant) >>> 0;
  }
  return v;
}

describe.skipIf(!be16)('webgpu f16 matmul: rounding, bit for bit', () => {
  const n = 3000;
  const vals = testValues(n);
  const want = Array.from(vals, h);
  const ones = (k: number) => new Float32Array(k).fill(1);

  function same(got: Float32Array, at: (i: number) => number, count: number, what: string): void {
    let bad = 0,
      first = '';
    for (let i = 0; i < count; i++) {
      const g = got[at(i)]!,
        w = want[i]!;
      if (g !== w && !(Number.isNaN(g) && Number.isNaN(w))) {
        if (!bad++)
          first = `value ${vals[i]} (0x${new Uint32Array(vals.slice(i, i + 1).buffer)[0]!.toString(16)}): got ${g}, want ${w}`;
      }
    }
    expect(bad, `${what}: ${bad} of ${count} differ; first ${first}`).toBe(0);
  }

  for (const [kname, sel] of Object.entries(KERNELS))
    for (const [tA, tB] of LAYOUTS)
      it(`${kname} ${lay(tA, tB)}: A's and B's elements each rounded as f32BitsToF16Bits`, async () => {
        // K = 1: out[i][j] = h(a_i)·h(b_j) exactly; the stored layout of a K = 1 operand is the same either way
        const N = 40;
        const onA = await product(be16!, sel, vals, tA ? [1, n] : [n, 1], ones(N), tB ? [N, 1] : [1, N], tA, tB);
        same(onA, (i) => i * N + 7, n, 'on A');
        const onB = await product(be16!, sel, ones(N), tA ? [1, N] : [N, 1], vals, tB ? [n, 1] : [1, n], tA, tB);
        same(onB, (j) => 3 * n + j, n, 'on B');
      });

  it('matrix-vector (x·Wᵀ, a few rows): W and x rounded as f32BitsToF16Bits', async () => {
    const onW = await product(be16!, {}, ones(2), [2, 1], vals, [n, 1], false, true);
    same(onW, (j) => n + j, n, 'on W');
    const x = vals.slice(0, 4);
    const onX = await product(be16!, {}, x, [4, 1], ones(9), [9, 1], false, true);
    same(onX, (i) => i * 9 + 5, 4, 'on x');
  });

  it('the spelled-out cases: overflow to ±inf, 65519 → 65504, subnormals and their ties', async () => {
    const a = Float32Array.from([65519, 65520, -70000, 1e-6, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 2 ** -14 * 0.75]);
    const got = await product(be16!, {}, a, [8, 1], Float32Array.from([1]), [1, 1], false, false);
    expect(Array.from(got)).toEqual([65504, Infinity, -Infinity, 17 * 2 ** -24, 0, 2 ** -23, 1, 0.75 * 2 ** -14]);
    // float32 keeps them all (the f32 path is untouched)
    const f32 = await product(be32!, {}, a, [8, 1], Float32Array.from([1]), [1, 1], false, false);
    expect(Array.from(f32)).toEqual(Array.from(a));
  });
});

describe.skipIf(!be16)('webgpu f16 matmul: products against float64 of the rounded operands', () => {
  /** ‖got − want‖∞ over Σ|terms| per element (the f32 accumulation bound's scale). */
  function worst(got: Float32Array, want: Float64Array, mag: Float64Array): number {
    let w = 0;
    for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i]! - want[i]!) / mag[i]!);
    return w;
  }

  const cases: [string, Partial<typeof tiledMatmul>, number, number, number][] = [
    ...Object.entries(KERNELS).map(([k, sel]): [string, Partial<typeof tiledMatmul>, number, number, number] => [
      k,
      sel,
      70,
      150,
      37,
    ]),
    ['matrix-vector', {}, 3, 77, 100],
  ];
  for (const [kname, sel, M, N, K] of cases)
    for (const [tA, tB] of kname === 'matrix-vector' ? LAYOUTS.filter(([a, b]) => !a && b) : LAYOUTS)
      it(`${kname} ${lay(tA, tB)} M${M} N${N} K${K}: f32-tight against the rounded operands, far from float32`, async () => {
        const rng = new Rng(M * 7 + N + (tA ? 1 : 0) + (tB ? 2 : 0));
        const a = Float32Array.from({ length: M * K }, () => rng.normal() * 3),
          b = Float32Array.from({ length: K * N }, () => rng.normal() * 0.01);
        const aAt = (i: number, k: number) => a[tA ? k * M + i : i * K + k]!,
          bAt = (k: number, j: number) => b[tB ? j * K + k : k * N + j]!;
        const want = new Float64Array(M * N),
          mag = new Float64Array(M * N);
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let s = 0,
              m = 0;
            for (let k = 0; k < K; k++) {
              const p = h(aAt(i, k)) * h(bAt(k, j));
              s += p;
              m += Math.abs(p);
            }
            want[i * N + j] = s;
            mag[i * N + j] = m;
          }
        const aShape = tA ? [K, M] : [M, K],
          bShape = tB ? [N, K] : [K, N];
        const got16 = await product(be16!, sel, a, aShape, b, bShape, tA, tB);
        const got32 = await product(be32!, sel, a, aShape, b, bShape, tA, tB);
        const e16 = worst(got16, want, mag),
          e32 = worst(got32, want, mag);
        if (process.env['LLMTS_F16_LOG'])
          console.log(`${kname} ${lay(tA, tB)}: f16 ${e16.toExponential(2)} f32 ${e32.toExponential(2)}`);
        // f32 accumulation of K exact products: ≤ K·2^-24 relative to Σ|terms| (measured ≤ 1.9e-7)
        expect(e16, `f16 path vs float64 of the rounded operands`).toBeLessThan(1e-6);
        // the float32 kernel misses the operands' rounding (up to 2^-11 a term; measured ≥ 1e-4): 50× that bound
        expect(e32, `float32 result vs the f16 oracle`).toBeGreaterThan(5e-5);
      });
});

describe.skipIf(!be16)('webgpu f16 matmul: why the loop scales the loss', () => {
  it('a weight gradient Xᵀ·dY with per-token dY ≈ 1e-8 flushes to zero in f16; scaled by 2^16 it is back', async () => {
    // dY as a mean loss over many tokens gives it: below half f16's smallest subnormal (2^-25 ≈ 3e-8) → 0
    const M = 64,
      K = 48,
      N = 40;
    const rng = new Rng(11);
    const x = Float32Array.from({ length: K * M }, () => rng.normal()),
      dy = Float32Array.from({ length: K * N }, () => rng.normal() * 1e-8);
    const want = new Float64Array(M * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x[k * M + i]! * dy[k * N + j]!;
        want[i * N + j] = s;
      }
    const sel = KERNELS['tiled 4×4']!;
    const plain = await product(be16!, sel, x, [K, M], dy, [K, N], true, false);
    const S = 2 ** 16;
    const scaled = await product(
      be16!,
      sel,
      x,
      [K, M],
      dy.map((v) => v * S),
      [K, N],
      true,
      false,
    );
    const f32 = await product(be32!, sel, x, [K, M], dy, [K, N], true, false);
    const err = (got: Float32Array, div = 1) =>
      relErr(
        Array.from(got, (v) => v / div),
        want,
      );
    if (process.env['LLMTS_F16_LOG'])
      console.log(
        `dY ≈ 1e-8: f32 ${err(f32).toExponential(2)}, f16 ${err(plain).toExponential(2)}, f16 scaled ${err(scaled, S).toExponential(2)}`,
      );
    expect(err(f32)).toBeLessThan(1e-5);
    expect(err(plain), 'unscaled: all of it lost (measured 1.0)').toBeGreaterThan(0.9);
    expect(err(scaled, S), 'scaled by 2^16, then unscaled: f16 rounding only (measured 3e-4)').toBeLessThan(2e-3);
  });
});

describe('webgpu f16 matmul: how it is chosen', () => {
  it('ref and wasm refuse f16 with a ConfigError naming precision', async () => {
    for (const name of ['ref', 'wasm'] as const) {
      const e = await initBackend(name, { matmulPrecision: 'f16', setDefault: false }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).field).toBe('precision');
    }
  });

  it('llmts train: --precision f16 with --backend wasm or ref is a ConfigError; with webgpu or auto it passes', () => {
    for (const backend of ['wasm', 'ref'] as const)
      expect(() => validateConfig({ ...DEFAULTS, precision: 'f16', backend })).toThrow(/precision: f16 matmuls/);
    for (const backend of ['webgpu', 'auto'] as const)
      expect(validateConfig({ ...DEFAULTS, precision: 'f16', backend }).precision).toBe('f16');
    expect(DEFAULTS.precision).toBe('f32');
  });

  it.skipIf(!be16)('the backend says so, and an unknown precision is refused', async () => {
    expect(be16!.matmulPrecision).toBe('f16');
    expect(be32!.matmulPrecision).toBe('f32');
    expect(be16!.describe()).toMatch(/f16/);
    const e = await createWebGpuBackend({ matmulPrecision: 'bf16' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
  });
});
