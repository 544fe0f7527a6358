/**
 * The f16 path's tensor cores (src/backend/webgpu/tensor_cores.ts, matmul_tc_wgsl.ts, matmul_tc.ts), without a GPU
 * that has them (SwiftShader has no subgroup matrices):
 *
 *  - the gate's decisions with a fake probe: a correct kernel → on; a wrong one (one element off by 1e-3 of its
 *    scale, a transposed operand, a wrong rounding of the cast) → off with the reason; compile failure of one spelling
 *    → the other; of both → off; a probe that throws → off; features missing → absent and the probe never called;
 *    f32 noise (the sums in reverse order) passes the tolerance;
 *  - device creation: the f32 default asks Dawn for no toggles and the device for no features (its descriptor as
 *    before); f16 asks for the toggles, and for the three features only where the adapter has all of them;
 *  - the plan (padding, grid, threshold, layouts, shared operands) and the WGSL generators (both spellings, every
 *    layout, bias, accumulate: deterministic, directives first, one multiply-accumulate per result tile, bindings);
 *  - createWebGpuBackend on a counting device that offers the features (its kernels compute nothing): off, never
 *    wrong; a device lost during the self-check: made again without the features;
 *  - on a WebGPU adapter (SwiftShader here): the real self-check with the 'twin' product kernel (the tensor-core
 *    kernel's plan, cast, padding, batch offsets and epilogue, with plain WGSL for the subgroup-matrix operations) →
 *    on, and the same backend's products at GPT-2-like ragged shapes equal the emulated f16 kernel's to f32 noise;
 *    the f16 backend there says why it has no tensor cores, and the f32 one says nothing of them.
 */
import { describe, expect, it } from 'vitest';
import { COUNTING_H200_LIMITS, CountingGpu } from '../src/backend/webgpu/counting_gpu.js';
import { withPrelude } from '../src/backend/webgpu/core.js';
import { dawnFlags, optionalFeatures, requestWebGpuDevice } from '../src/backend/webgpu/device.js';
import {
  castShader,
  SPELLINGS,
  type TcSpelling,
  tcPlan,
  tensorCoreMatmul,
  tensorCoreShader,
} from '../src/backend/webgpu/matmul_tc_wgsl.js';
import {
  castCompare,
  castValues,
  DAWN_F16_TOGGLES,
  f16BitsOf,
  f16Value,
  gateTensorCores,
  TC_CHECKS,
  TC_FEATURES,
  type TcCheck,
  type TcCheckData,
  type TensorCoreProbe,
  tcOracle,
  tcTolerance,
  tensorCoreOffer,
} from '../src/backend/webgpu/tensor_cores.js';
import type { GpuAdapterLike, GpuDeviceLike, GpuLike } from '../src/backend/webgpu/types.js';
import { createWebGpuBackend } from '../src/backend/webgpu/backend.js';
import { f32BitsToF16Bits, f32ToBits, fromF16Bits, toF16Bits } from '../src/formats/half.js';
import { matmul } from '../src/tensor/ops.js';
import { type Tensor, tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { webgpuMaker } from './webgpu_backend.js';

/** A fake device side: products from the float64 oracle (through `kernel` for the tensor-core path), exact casts. */
function fakeProbe(opts: {
  compile?: (s: TcSpelling) => string | null;
  kernel?: (c: TcCheck, d: TcCheckData, right: Float32Array) => Float32Array;
  cast?: (x: Float32Array) => Uint16Array;
  calls?: string[];
}): TensorCoreProbe {
  return {
    compile: async (s) => {
      opts.calls?.push(`compile ${s}`);
      return opts.compile?.(s) ?? null;
    },
    cast: async (x) => {
      opts.calls?.push('cast');
      return opts.cast ? opts.cast(x) : Uint16Array.from(x, (v) => f32BitsToF16Bits(f32ToBits(v)));
    },
    run: async (c, d, path) => {
      opts.calls?.push(`run ${c.name} ${path === 'emulated' ? 'emulated' : path.tc}`);
      const right = Float32Array.from(tcOracle(c, d).out);
      return path !== 'emulated' && opts.kernel ? opts.kernel(c, d, right) : right;
    },
  };
}

describe('tensor cores: the gate decides', () => {
  it('a correct kernel: on, in the first spelling that compiles', async () => {
    const calls: string[] = [];
    const s = await gateTensorCores(null, fakeProbe({ calls }));
    expect(s.status).toBe('on');
    expect(s.spelling).toBe('template');
    expect(calls[0]).toBe('compile template');
    expect(calls.filter((c) => c.startsWith('run')).length).toBe(2 * TC_CHECKS.length);
  });

  it('the first spelling does not compile: the second is used', async () => {
    const s = await gateTensorCores(null, fakeProbe({ compile: (t) => (t === 'template' ? 'unresolved call' : null) }));
    expect(s).toMatchObject({ status: 'on', spelling: 'bool' });
  });

  it('no spelling compiles: off, with each compiler message', async () => {
    const s = await gateTensorCores(null, fakeProbe({ compile: (t) => `error in ${t}` }));
    expect(s.status).toBe('off');
    expect(s.reason).toContain('do not compile');
    expect(s.reason).toContain('error in bool');
    expect(s.reason).toContain('error in template');
  });

  it('one element off by 1e-3 of its scale: off, naming the check and the element', async () => {
    const s = await gateTensorCores(
      null,
      fakeProbe({
        kernel: (c, d, right) => {
          if (c.name !== TC_CHECKS[3]!.name) return right;
          const { scale } = tcOracle(c, d);
          const out = right.slice();
          out[100] = out[100]! + 1e-3 * scale[100]!;
          return out;
        },
      }),
    );
    expect(s.status).toBe('off');
    expect(s.reason).toContain(TC_CHECKS[3]!.name);
    expect(s.reason).toContain('element 100');
  });

  it('a kernel that reads b transposed: off', async () => {
    const s = await gateTensorCores(
      null,
      fakeProbe({
        kernel: (c, d) => Float32Array.from(tcOracle({ ...c, transB: !c.transB }, d).out),
      }),
    );
    expect(s.status).toBe('off');
    expect(s.reason).toContain('tensor cores against float64');
  });

  it('NaN out of the kernel: off', async () => {
    const s = await gateTensorCores(null, fakeProbe({ kernel: (_c, _d, r) => r.map((v, i) => (i === 7 ? NaN : v)) }));
    expect(s.status).toBe('off');
    expect(s.reason).toContain('NaN');
  });

  it('a cast that truncates instead of rounding to nearest even: off', async () => {
    const trunc = (x: Float32Array) =>
      Uint16Array.from(x, (v) => {
        const h = f32BitsToF16Bits(f32ToBits(v));
        // truncation: one below where RNE rounded up (finite, normal results)
        const u = f32ToBits(v) & 0x7fffffff;
        return u > 0x38800000 && u < 0x477fe000 && (u & 0x1fff) >= 0x1000 ? h - 1 : h;
      });
    const s = await gateTensorCores(null, fakeProbe({ cast: trunc }));
    expect(s.status).toBe('off');
    expect(s.reason).toContain('cast kernel');
  });

  it('a probe that throws (a lost device): off, with the message', async () => {
    const probe = fakeProbe({});
    probe.run = async () => {
      throw new Error('device lost (unknown): the GPU hung');
    };
    const s = await gateTensorCores(null, probe);
    expect(s).toMatchObject({ status: 'off', spelling: null });
    expect(s.reason).toContain('the GPU hung');
  });

  it('features missing: absent, and the probe is never called', async () => {
    const calls: string[] = [];
    const offer = tensorCoreOffer(new Set(['shader-f16', 'subgroups']), undefined);
    expect(offer).toContain('chromium-experimental-subgroup-matrix');
    const s = await gateTensorCores(offer, fakeProbe({ calls }));
    expect(s.status).toBe('absent');
    expect(calls).toEqual([]);
  });

  it('the adapter lists subgroup matrices but no f16 → f32 16×16×16: absent', () => {
    const all = new Set<string>(TC_FEATURES);
    expect(tensorCoreOffer(all, [{ componentType: 'i8', resultComponentType: 'i32', M: 8, N: 8, K: 32 }])).toMatch(
      /no f16 → f32 16×16×16/,
    );
    expect(tensorCoreOffer(all, [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }])).toBe(
      null,
    );
    expect(tensorCoreOffer(all, undefined)).toBe(null);
  });

  it('f32 noise passes: the same products summed in reverse order in f32 are inside the tolerance', async () => {
    let worst = 0;
    const reverse = (c: TcCheck, d: TcCheckData): Float32Array => {
      const h = (x: number) => fromF16Bits(toF16Bits(x));
      const { M, K, N } = c;
      const out = new Float32Array(c.batches * M * N);
      const { out: want, scale } = tcOracle(c, d);
      for (let p = 0; p < c.batches; p++)
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let k = K - 1; k >= 0; k--) {
              const av = h(d.a[p * M * K + (c.transA ? k * M + i : i * K + k)]!);
              const bv = h(d.b[(c.bShared ? 0 : p * K * N) + (c.transB ? j * K + k : k * N + j)]!);
              s = Math.fround(s + Math.fround(av * bv));
            }
            const o = p * M * N + i * N + j;
            let v = Math.fround(c.alpha * s);
            if (c.accumulate) v = Math.fround(v + d.prev[o]!);
            if (d.bias) v = Math.fround(v + d.bias[j]!);
            out[o] = v;
            worst = Math.max(worst, Math.abs(v - want[o]!) / scale[o]! / tcTolerance(K));
          }
      return out;
    };
    const s = await gateTensorCores(null, fakeProbe({ kernel: (c, d) => reverse(c, d) }));
    expect(s.status).toBe('on');
    expect(worst).toBeGreaterThan(0); // the noise is there, and below a tenth of the tolerance
    expect(worst).toBeLessThan(0.1);
  });

  it("the gate's own binary16 rounding is src/formats/half.ts's, bit for bit and in value", () => {
    const x = castValues(20000);
    for (const v of x) {
      expect(f16BitsOf(v)).toBe(f32BitsToF16Bits(f32ToBits(v)));
      expect(Object.is(f16Value(f16BitsOf(v)), fromF16Bits(toF16Bits(v)))).toBe(true);
    }
    expect(f16BitsOf(Number.NaN) & 0x7c00).toBe(0x7c00);
  });

  it('the cast oracle itself: castValues round as f32BitsToF16Bits (and a wrong bit is found)', () => {
    const x = castValues();
    const bits = Uint16Array.from(x, (v) => f32BitsToF16Bits(f32ToBits(v)));
    expect(castCompare(x, bits)).toBe(null);
    bits[30] = bits[30]! ^ 1;
    expect(castCompare(x, bits)).toContain('cast kernel');
  });
});

/**
 * A fake gpu whose adapter has `features` and gives counting devices (no shader runs: every read is zeros); records
 * the requestDevice descriptors; `made` sees each device.
 */
function fakeGpu(features: string[], seen: unknown[], made?: (d: GpuDeviceLike) => void): GpuLike {
  return {
    async requestAdapter(): Promise<GpuAdapterLike> {
      const inner = (await new CountingGpu().requestAdapter())!;
      return {
        limits: COUNTING_H200_LIMITS,
        features: new Set(features),
        info: { vendor: 'fake', architecture: 'tensor cores' },
        requestDevice: async (desc) => {
          seen.push(desc);
          const d = await inner.requestDevice(desc);
          made?.(d);
          return d;
        },
      };
    },
  };
}

describe('tensor cores: device creation', () => {
  it('f32 asks Dawn for no toggles; f16 for the f16 / subgroup-matrix toggles', () => {
    expect(dawnFlags()).toEqual([]);
    expect(dawnFlags({ f16: false })).toEqual([]);
    expect(dawnFlags({ f16: true })).toEqual([DAWN_F16_TOGGLES]);
    expect(DAWN_F16_TOGGLES).toBe('enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia');
  });

  it('features: none for f32 (even offered), all three for f16 where all are offered, else none', async () => {
    for (const [f16, offered, want] of [
      [false, [...TC_FEATURES], []],
      [true, [...TC_FEATURES, 'timestamp-query'], [...TC_FEATURES]],
      [true, ['shader-f16', 'subgroups'], []],
      [true, [], []],
    ] as [boolean, string[], string[]][]) {
      const seen: Record<string, unknown>[] = [];
      const d = await requestWebGpuDevice(fakeGpu(offered, seen), { f16 });
      expect(d.features).toEqual(want);
      expect(optionalFeatures(d.adapter, { f16 })).toEqual(want);
      expect(seen).toHaveLength(1);
      // no requiredFeatures key at all where none are asked: the f32 descriptor is the one it always was
      if (want.length === 0) expect(Object.keys(seen[0]!)).toEqual(['requiredLimits']);
      else expect(seen[0]!['requiredFeatures']).toEqual(want);
    }
  });
});

describe('tensor cores: createWebGpuBackend on a device that offers them', () => {
  it('kernels that compute nothing (a counting device: every read is zeros): off, never a wrong answer', async () => {
    const seen: Record<string, unknown>[] = [];
    const be = await createWebGpuBackend({ gpu: fakeGpu([...TC_FEATURES], seen), matmulPrecision: 'f16' });
    try {
      expect(seen[0]!['requiredFeatures']).toEqual([...TC_FEATURES]);
      expect(be.tensorCores.status).toBe('off');
      expect(be.tensorCores.reason).toContain('cast kernel');
      expect(be.describe()).toContain('tensor cores off: cast kernel');
    } finally {
      be.dispose();
    }
  });

  it('a device lost during the self-check: off, and the backend made again on a device without the features', async () => {
    const seen: Record<string, unknown>[] = [];
    let n = 0;
    const be = await createWebGpuBackend({
      gpu: fakeGpu([...TC_FEATURES], seen, (d) => {
        if (n++ === 0) setTimeout(() => d.destroy(), 0);
      }),
      matmulPrecision: 'f16',
    });
    try {
      expect(seen).toHaveLength(2);
      expect(seen[0]!['requiredFeatures']).toEqual([...TC_FEATURES]);
      expect(Object.keys(seen[1]!)).toEqual(['requiredLimits']);
      expect(be.tensorCores.status).toBe('off');
      expect(be.tensorCores.reason).toMatch(/\(the device was lost: made again without tensor cores\)$/);
      // the new backend works (a counting device: zeros, but no error)
      const A = tensor(new Float32Array(16).fill(1), [4, 4], { backend: be });
      await matmul(A, A).data();
    } finally {
      be.dispose();
    }
  });
});

describe('tensor cores: plan and WGSL', () => {
  const BIG = 2 ** 31;
  it('pads M and N to the block, K to 16; grid of blocks; layouts and shared operands', () => {
    const p = tcPlan(70, 90, 37, true, false, 3, false, true, BIG)!;
    expect(p).toMatchObject({ Mp: 128, Np: 128, Kp: 48, rm: 4, rn: 4, grid: [2, 2, 3] });
    expect(p.castA).toEqual({ R: 70, C: 37, Rp: 128, Cp: 48, trans: true, batches: 3 });
    expect(p.castB).toEqual({ R: 37, C: 90, Rp: 48, Cp: 128, trans: false, batches: 1 });
    const g = tcPlan(16384, 3072, 768, false, true, 1, false, false, BIG)!;
    expect(g).toMatchObject({ Mp: 16384, Np: 3072, Kp: 768, grid: [48, 256, 1] });
    expect(g.castB.trans).toBe(true);
  });

  it('threshold: below min (M or N) or minK gives no plan; nor a binding too large', () => {
    const { min, minK } = tensorCoreMatmul;
    expect(tcPlan(min - 1, 4096, 4096, false, false, 1, false, false, BIG)).toBe(null);
    expect(tcPlan(4096, min - 1, 4096, false, false, 1, false, false, BIG)).toBe(null);
    expect(tcPlan(4096, 4096, minK - 1, false, false, 1, false, false, BIG)).toBe(null);
    expect(tcPlan(min, min, minK, false, false, 1, false, false, BIG)).not.toBe(null);
    expect(tcPlan(4096, 4096, 4096, false, false, 1, false, false, 4096 * 4096 * 2 - 1)).toBe(null);
    // decode's few rows never reach it
    expect(tcPlan(1, 50257, 768, false, true, 1, false, false, BIG)).toBe(null);
  });

  const count = (s: string, sub: string) => s.split(sub).length - 1;
  const balanced = (s: string) => count(s, '{') === count(s, '}') && count(s, '(') === count(s, ')');

  it('the product kernel, each spelling × bias × accumulate: deterministic, well-formed, tiles as planned', () => {
    for (const s of SPELLINGS)
      for (const bias of [false, true])
        for (const acc of [false, true]) {
          const code = tensorCoreShader(s, 4, 4, bias, acc);
          expect(tensorCoreShader(s, 4, 4, bias, acc)).toBe(code);
          expect(code.startsWith('enable f16;\nenable chromium_experimental_subgroup_matrix;\n')).toBe(true);
          expect(balanced(code)).toBe(true);
          expect(count(code, 'subgroupMatrixMultiplyAccumulate(')).toBe(16);
          expect(count(code, 'subgroupMatrixLoad<')).toBe(8);
          expect(count(code, 'subgroupMatrixStore')).toBe(16);
          expect(count(code, 'subgroup_matrix_result<f32, 16, 16>()')).toBe(16);
          expect(code).toContain('var<storage, read> A: array<f16>');
          expect(code).toContain('var<storage, read> B: array<f16>');
          expect(code.includes('BIAS[j]')).toBe(bias);
          expect(code.includes('v += O[o];')).toBe(acc);
          if (s === 'bool') {
            expect(code).toContain(
              'subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&A, aOff + (row0 + 0u) * Kp + k0, false, Kp)',
            );
            expect(code).not.toContain('row_major');
          } else {
            expect(code).toContain(
              'subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&B, bOff + k0 * Np + col0 + 16u, Np)',
            );
          }
          // the prelude goes after the directives
          const full = withPrelude(code, 1);
          expect(full.indexOf('enable chromium_experimental_subgroup_matrix;')).toBeLessThan(
            full.indexOf('var<uniform> P'),
          );
          expect(
            full
              .split('\n')
              .slice(0, 2)
              .every((l) => l.startsWith('enable ')),
          ).toBe(true);
        }
    expect(count(tensorCoreShader('bool', 2, 3, false, false), 'subgroupMatrixMultiplyAccumulate(')).toBe(6);
    // code without directives keeps the prelude first, as always
    expect(withPrelude('fn main() {}', 1).startsWith('@group(0) @binding(0) var<uniform> P')).toBe(true);
  });

  it('the cast kernel of each layout reads op(x) as stored', () => {
    const n = castShader(false),
      t = castShader(true);
    expect(n).toContain('X[xOff + r * C + c]');
    expect(t).toContain('X[xOff + c * R + r]');
    for (const code of [n, t]) {
      expect(balanced(code)).toBe(true);
      expect(code).toContain('var<storage, read> X: array<u32>');
      expect(code).toContain('var<storage, read_write> H: array<u32>');
    }
  });
});

const gpu = webgpuMaker('webgpu tensor cores');
const be16 = await gpu.make({ matmulPrecision: 'f16' });
const be32 = be16 ? await gpu.make() : null;

/**
 * The product kernel (bool spelling) with the subgroup-matrix types and builtins replaced by plain WGSL stand-ins of
 * the same argument types (f16 → f32, a matrix → a struct): what remains — bindings, parameters, offsets as u32,
 * scopes, loops, barriers in uniform control flow, the epilogue — must compile on any adapter.
 */
function standIn(code: string): string {
  const out = code
    .replace('enable f16;\nenable chromium_experimental_subgroup_matrix;\n', '')
    .replaceAll('array<f16>', 'array<f32>')
    .replaceAll('subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&A, ', 'loadLeft(')
    .replaceAll('subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&B, ', 'loadRight(')
    .replaceAll('subgroupMatrixStore(&Cs, ', 'storeResult(')
    .replaceAll('subgroupMatrixMultiplyAccumulate(', 'mma(')
    .replaceAll('subgroup_matrix_result<f32, 16, 16>()', 'Res()');
  const defs = `struct Lm { x: f32 }
struct Rm { x: f32 }
struct Res { x: f32 }
fn loadLeft(off: u32, colMajor: bool, stride: u32) -> Lm { return Lm(A[off + select(0u, stride, colMajor)]); }
fn loadRight(off: u32, colMajor: bool, stride: u32) -> Rm { return Rm(B[off + select(0u, stride, colMajor)]); }
fn mma(a: Lm, b: Rm, c: Res) -> Res { return Res(c.x + a.x * b.x); }
fn storeResult(off: u32, v: Res, colMajor: bool, stride: u32) { Cs[off + select(0u, stride, colMajor)] = v.x; }
`;
  const at = out.indexOf('@compute');
  return out.slice(0, at) + defs + out.slice(at);
}

describe.skipIf(!be16)('tensor cores on a WebGPU adapter', () => {
  it('the product kernel compiles with stand-ins for the subgroup-matrix builtins (each bias / accumulate)', async () => {
    const be = (await gpu.make({ matmulPrecision: 'f16' }))!;
    const ctx = (be as unknown as { ctx: { compileChecked(code: string): Promise<string | null> } }).ctx;
    for (const bias of [false, true])
      for (const acc of [false, true]) {
        const code = standIn(tensorCoreShader('bool', 4, 4, bias, acc));
        expect(code).not.toMatch(/subgroup|f16/);
        expect(await ctx.compileChecked(code)).toBe(null);
      }
    // and a broken one is reported, not raised as a device error
    expect(await ctx.compileChecked(`${standIn(tensorCoreShader('bool', 4, 4, false, false))}\nfn oops( {`)).toMatch(
      /.+/,
    );
    const A = tensor(new Float32Array(16).fill(1), [4, 4], { backend: be });
    expect((await matmul(A, A).data())[0]).toBe(4);
  });

  it('where the kernels cannot compile (no f16 here): off with the compiler words, and the backend still works', async () => {
    const be = (await gpu.make({ matmulPrecision: 'f16' }))!;
    const s = await be.checkTensorCores([...TC_FEATURES]);
    expect(s.status).toBe('off');
    expect(s.reason).toMatch(/do not compile \(template spelling: .+ \| bool spelling: .+\)/);
    expect(be.describe()).toContain('tensor cores off: the kernels do not compile');
    const A = tensor(new Float32Array(100 * 100).fill(1), [100, 100], { backend: be });
    const C = matmul(A, A);
    expect((await C.data())[0]).toBe(100);
    expect(be.tensorCoreCalls).toBe(0);
    A.dispose();
    C.dispose();
  });

  it("the f16 backend says where it stands; the f32 one doesn't mention tensor cores", () => {
    expect(be16!.describe()).toMatch(/tensor cores/);
    if (be16!.tensorCores.status !== 'on') expect(be16!.describe()).toContain(be16!.tensorCores.reason);
    expect(be32!.describe()).not.toMatch(/tensor cores/);
    expect(be32!.tensorCores.status).toBe('absent');
  });

  it('the real self-check with the twin kernel: cast bit for bit, every check passes → on', async () => {
    const be = (await gpu.make({ matmulPrecision: 'f16' }))!;
    const s = await be.checkTensorCores([...TC_FEATURES], undefined, undefined, ['twin']);
    expect(s.reason).toContain('self-check passed');
    expect(s).toMatchObject({ status: 'on', spelling: 'twin' });
    expect(be.describe()).toContain('tensor cores on (subgroup matrices, twin spelling)');

    // the backend then routes products above the threshold through the tensor-core plumbing: equal to the emulated
    // f16 kernel (be16) to f32 accumulation noise, at ragged shapes in every layout
    const rng = new Rng(5);
    const fill = (n: number) => Float32Array.from({ length: n }, () => rng.random() * 2 - 1);
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as [boolean, boolean][]) {
      const [M, K, N] = [100, 75, 130];
      const a = fill(M * K),
        b = fill(K * N);
      const run = async (on: typeof be): Promise<Float32Array> => {
        const ts: Tensor[] = [];
        try {
          const A = tensor(a, tA ? [K, M] : [M, K], { backend: on }),
            B = tensor(b, tB ? [N, K] : [K, N], { backend: on });
          ts.push(A, B);
          const C = matmul(A, B, { transA: tA, transB: tB });
          ts.push(C);
          return (await C.data()) as Float32Array;
        } finally {
          for (const t of ts) t.dispose();
        }
      };
      const before = be.tensorCoreCalls;
      const got = await run(be),
        want = await run(be16!);
      expect(be.tensorCoreCalls).toBe(before + 1);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect(worst).toBeLessThan(K * 2 ** -22); // |values| ≤ 1: sums of ≤ K terms of size ≤ 1
    }
    // below the threshold: the emulated kernels
    const before = be.tensorCoreCalls;
    const A = tensor(fill(8 * 8), [8, 8], { backend: be });
    const C = matmul(A, A);
    await C.data();
    A.dispose();
    C.dispose();
    expect(be.tensorCoreCalls).toBe(before);
  });
});
