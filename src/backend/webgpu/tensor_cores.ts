/**
 * Whether the f16 path uses tensor cores on this device: the self-check that stands between a kernel written
 * without the hardware (./matmul_tc_wgsl.ts) and anyone's results. It runs once, when a backend with
 * `matmulPrecision: 'f16'` is created on a device that offers the features (`TC_FEATURES`; with Dawn in Node the
 * toggles `DAWN_F16_TOGGLES` make NVIDIA offer them), before the backend is handed out:
 *
 *   1. compile the product kernels in each spelling of `SPELLINGS` (both Dawn spellings of the subgroup-matrix
 *      builtins), inside a validation error scope; keep the first that compiles — none: off, with the compiler's words;
 *   2. the cast kernel on `castValues()` (f16's range and past it, ties, subnormals): bit for bit
 *      src/formats/half.ts's f32BitsToF16Bits (restated here as `f16BitsOf`), else off;
 *   3. the products of `TC_CHECKS` (every layout, alpha, bias, accumulate, ragged M/N/K, batched and shared
 *      operands) through the tensor-core path and through the emulated f16 kernel (./matmul_wgsl.ts f16r), each
 *      against the float64 product of the f16-rounded operands and against each other, within `tcTolerance`;
 *      off at the first element outside it (or not finite), saying which check, where, and by how much.
 * Any error thrown on the way (a device error in the scope, a lost device) is also "off" with its message. Off means
 * the emulated f16 kernels run as before and describe() says "tensor cores off: <reason>"; on, describe() says so.
 *
 * The decision (`gateTensorCores`) takes a `TensorCoreProbe`, so tests drive it with fakes (a wrong kernel, one that
 * does not compile) and the backend with its device (./backend.ts). No randomness of Math.random: the check data
 * come from a seeded Rng.
 */
import { Rng } from '../../util/rng.js';
import { SPELLINGS, type TcSpelling } from './matmul_tc_wgsl.js';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * The binary16 bits of x rounded to float32 then to binary16, round to nearest even (NaN keeps its top payload bits):
 * src/formats/half.ts's f32BitsToF16Bits, restated here because this layer does not import formats/
 * (test/webgpu_tensor_cores.test.ts checks that they agree).
 */
export function f16BitsOf(x: number): number {
  F32[0] = x;
  const u = U32[0]!;
  const sign = (u >>> 16) & 0x8000,
    exp = (u >>> 23) & 0xff,
    mant = u & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7c00 | (mant >>> 13 || 0x200);
  const e = exp - 112;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mant | 0x800000,
      shift = 14 - e;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1),
      half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1;
  return h;
}

/** The value of binary16 bits h. */
export function f16Value(h: number): number {
  const e = (h >>> 10) & 0x1f,
    f = h & 0x3ff,
    sg = h & 0x8000 ? -1 : 1;
  if (e === 0) return sg * f * 2 ** -24;
  if (e === 0x1f) return f ? Number.NaN : sg * Number.POSITIVE_INFINITY;
  return sg * (1 + f / 1024) * 2 ** (e - 15);
}

/** The device features the tensor-core kernels need (all three requested together, never required). */
export const TC_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as const;

/** Dawn instance toggles that open the features on NVIDIA (docs/BACKENDS.md, "The f16 path"): Node's `webgpu` create([...]). */
export const DAWN_F16_TOGGLES = 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia';

/** A subgroup-matrix configuration as Dawn's adapter.info.subgroupMatrixConfigs lists it. */
export interface SubgroupMatrixConfig {
  componentType?: string;
  resultComponentType?: string;
  M?: number;
  N?: number;
  K?: number;
}

/** Where the f16 path stands on a device. */
export interface TensorCoreState {
  /** 'absent': not offered (never tried); 'off': tried and refused; 'on': the self-check passed. */
  status: 'absent' | 'off' | 'on';
  /** The spelling in use (on), else null. */
  spelling: TcSpelling | null;
  /** Why absent or off; what passed when on. */
  reason: string;
}

/**
 * Null where `features` (and, when the adapter lists them, `configs`) offer f16 → f32 16×16×16 subgroup matrices;
 * else what is missing, for describe().
 */
export function tensorCoreOffer(
  features: ReadonlySet<string>,
  configs: readonly SubgroupMatrixConfig[] | undefined,
): string | null {
  const missing = TC_FEATURES.filter((f) => !features.has(f));
  if (missing.length) return `the adapter lacks ${missing.join(', ')}`;
  if (configs && !configs.some(isF16Tile))
    return `the adapter's subgroup matrices include no f16 → f32 16×16×16 (${configs.map(configLabel).join(', ') || 'none'})`;
  return null;
}

const isF16Tile = (c: SubgroupMatrixConfig): boolean =>
  /f16/i.test(String(c.componentType)) &&
  /f32/i.test(String(c.resultComponentType)) &&
  c.M === 16 &&
  c.N === 16 &&
  c.K === 16;
const configLabel = (c: SubgroupMatrixConfig): string =>
  `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`;

/** One product of the self-check: op(a) [M, K], op(b) [K, N], `batches` of them (b shared when `bShared`). */
export interface TcCheck {
  name: string;
  M: number;
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  batches: number;
  bShared: boolean;
  alpha: number;
  bias: boolean;
  accumulate: boolean;
}

const chk = (name: string, [M, K, N]: [number, number, number], lay: string, more: Partial<TcCheck> = {}): TcCheck => ({
  name,
  M,
  K,
  N,
  transA: lay[0] === 'T',
  transB: lay[1] === 'T',
  batches: 1,
  bShared: false,
  alpha: 1,
  bias: false,
  accumulate: false,
  ...more,
});

/** The self-check's products: every layout, alpha, bias, accumulate, ragged M/N/K, batched and shared operands. */
export const TC_CHECKS: readonly TcCheck[] = [
  chk('NN 64×32×64', [64, 32, 64], 'NN'),
  chk('NT 96×48×80 bias', [96, 48, 80], 'NT', { bias: true }),
  chk('TN 80×40×96 alpha 0.5 accumulate', [80, 40, 96], 'TN', { alpha: 0.5, accumulate: true }),
  chk('TT 70×37×90 ragged, alpha −1.5, bias, accumulate', [70, 37, 90], 'TT', {
    alpha: -1.5,
    bias: true,
    accumulate: true,
  }),
  chk('NN 65×64×130 batch 2, b shared', [65, 64, 130], 'NN', { batches: 2, bShared: true }),
  chk('TN 64×24×72 batch 2', [64, 24, 72], 'TN', { batches: 2 }),
];

/** The inputs of a check, as stored (a [batches, M, K] or [batches, K, M]; b likewise or one batch when shared). */
export interface TcCheckData {
  a: Float32Array;
  b: Float32Array;
  bias: Float32Array | null;
  /** What out holds before the call (matters with accumulate). */
  prev: Float32Array;
}

/** Deterministic inputs of check `c` (values in ±2, with 1/16 of them in ±300, where f16's spacing is 0.25). */
export function tcCheckData(c: TcCheck, seed = 13): TcCheckData {
  const rng = new Rng(seed + c.M * 7 + c.N * 131 + c.K);
  const fill = (n: number) => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (rng.random() * 2 - 1) * (rng.random() < 1 / 16 ? 300 : 2);
    return x;
  };
  return {
    a: fill(c.batches * c.M * c.K),
    b: fill((c.bShared ? 1 : c.batches) * c.K * c.N),
    bias: c.bias ? fill(c.N) : null,
    prev: fill(c.batches * c.M * c.N),
  };
}

/** The float64 oracle of check `c`: out and the scale Σ|terms| of each element (operands rounded to binary16). */
export function tcOracle(c: TcCheck, d: TcCheckData): { out: Float64Array; scale: Float64Array } {
  const { M, K, N } = c;
  const h = (x: number) => f16Value(f16BitsOf(x));
  const out = new Float64Array(c.batches * M * N),
    scale = new Float64Array(out.length);
  for (let p = 0; p < c.batches; p++) {
    const aO = p * M * K,
      bO = c.bShared ? 0 : p * K * N;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0,
          sa = 0;
        for (let k = 0; k < K; k++) {
          const av = h(d.a[aO + (c.transA ? k * M + i : i * K + k)]!);
          const bv = h(d.b[bO + (c.transB ? j * K + k : k * N + j)]!);
          s += av * bv;
          sa += Math.abs(av * bv);
        }
        const o = p * M * N + i * N + j;
        let v = c.alpha * s,
          sc = Math.abs(c.alpha) * sa;
        if (c.accumulate) {
          v += d.prev[o]!;
          sc += Math.abs(d.prev[o]!);
        }
        if (d.bias) {
          v += d.bias[j]!;
          sc += Math.abs(d.bias[j]!);
        }
        out[o] = v;
        scale[o] = sc;
      }
  }
  return { out, scale };
}

/**
 * The allowed |difference| per unit of an element's scale (Σ|alpha·aᵢbᵢ| + |out before| + |bias|) for a sum of K
 * products: two f32 sums of the same exact products (f16 × f16 is exact in f32) in different orders differ by at
 * most 2·K·u·scale (u = 2^-24 rounding to nearest); NVIDIA's tensor cores truncate instead of rounding inside their
 * accumulation (u up to 2^-23), so 4·K·2^-23, plus 8·2^-24 for the epilogue's three f32 operations. At the checks'
 * K ≤ 64 that is ≤ 3.1e-5 of the scale — while any mistake of structure (a transposed or shifted operand, a lost k
 * tile, a wrong batch offset, alpha or bias applied twice or not at all) is off by a fraction of the scale of order
 * 0.1–1, and a wrong rounding of the operands is caught bit for bit by the cast check.
 */
export const tcTolerance = (K: number): number => 4 * Math.max(K, 16) * 2 ** -23 + 8 * 2 ** -24;

/** Null if `got` matches `want` within tcTolerance(K)·scale everywhere; else where and by how much. */
export function tcCompare(
  what: string,
  got: Float32Array,
  want: Float64Array | Float32Array,
  scale: Float64Array,
  K: number,
): string | null {
  const tol = tcTolerance(K);
  if (got.length !== want.length) return `${what}: ${got.length} values, expected ${want.length}`;
  let worst = 0,
    at = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!,
      w = want[i]!;
    if (!Number.isFinite(g)) return `${what}: element ${i} is ${g} (expected ${w})`;
    const r = Math.abs(g - w) / Math.max(scale[i]!, 1e-30);
    if (r > worst) [worst, at] = [r, i];
  }
  return worst > tol
    ? `${what}: element ${at} is ${got[at]}, expected ${want[at]} (off by ${worst.toExponential(2)} of its scale, tolerance ${tol.toExponential(2)})`
    : null;
}

/** f32 values the cast kernel must round exactly as f32BitsToF16Bits: the edges, then random bit patterns. */
export function castValues(n = 2048): Float32Array {
  const edges = [
    0,
    -0,
    1,
    -1,
    65504,
    65519,
    65520,
    -70000,
    1e-6,
    2 ** -25,
    3 * 2 ** -25,
    2 ** -24,
    2 ** -14,
    2 ** -14 - 2 ** -25,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    2049,
    2051,
    Infinity,
    -Infinity,
    1e30,
    -1e-30,
    0.1,
    1 / 3,
  ];
  const x = new Float32Array(n);
  x.set(edges);
  const rng = new Rng(1613);
  const u = new Uint32Array(x.buffer);
  // random sign and mantissa, exponents 2^-30 … 2^17 (biased 97 … 144); one in 8 a tie of the normal rounding
  for (let i = edges.length; i < n; i++) {
    let w = (rng.nextU32() & 0x807fffff) | ((97 + (rng.nextU32() % 48)) << 23);
    if (rng.nextU32() % 8 === 0) w = (w & ~0x1fff) | 0x1000;
    u[i] = w;
  }
  return x;
}

/** Null if `bits` are f32BitsToF16Bits of each of `x`; else the first that is not. */
export function castCompare(x: Float32Array, bits: Uint16Array): string | null {
  for (let i = 0; i < x.length; i++) {
    const want = f16BitsOf(x[i]!);
    if (bits[i] !== want)
      return `cast kernel: ${Object.is(x[i], -0) ? '-0' : x[i]} gave binary16 bits 0x${bits[i]?.toString(16)}, expected 0x${want.toString(16)}`;
  }
  return null;
}

/** What the gate needs from a device (./backend.ts implements it; tests fake it). */
export interface TensorCoreProbe {
  /** Compile the product kernels in spelling `s`: null if they compile, else the compiler's complaint. */
  compile(s: TcSpelling): Promise<string | null>;
  /** The cast kernel on `x` (unpadded, one row): the binary16 bits it wrote. */
  cast(x: Float32Array): Promise<Uint16Array>;
  /** Check `c` on data `d` through the tensor-core path in spelling `s` ('tc') or the emulated f16 kernel. */
  run(c: TcCheck, d: TcCheckData, path: { tc: TcSpelling } | 'emulated'): Promise<Float32Array>;
}

/**
 * The gate: `offer` is tensorCoreOffer's answer (non-null: absent, the probe is never called). `spellings`: those
 * tried, in order (SPELLINGS on hardware; tests pass others).
 */
export async function gateTensorCores(
  offer: string | null,
  probe: TensorCoreProbe,
  spellings: readonly TcSpelling[] = SPELLINGS,
  checks: readonly TcCheck[] = TC_CHECKS,
): Promise<TensorCoreState> {
  if (offer !== null) return { status: 'absent', spelling: null, reason: offer };
  const off = (reason: string): TensorCoreState => ({ status: 'off', spelling: null, reason });
  try {
    const refused: string[] = [];
    let s: TcSpelling | null = null;
    for (const t of spellings) {
      const why = await probe.compile(t);
      if (why === null) {
        s = t;
        break;
      }
      refused.push(`${t} spelling: ${why.split('\n')[0]!.slice(0, 300)}`);
    }
    if (s === null) return off(`the kernels do not compile (${refused.join(' | ') || 'no spelling tried'})`);
    const xs = castValues();
    const castWhy = castCompare(xs, await probe.cast(xs));
    if (castWhy) return off(castWhy);
    for (const c of checks) {
      const d = tcCheckData(c);
      const { out, scale } = tcOracle(c, d);
      const tc = await probe.run(c, d, { tc: s }),
        emu = await probe.run(c, d, 'emulated');
      const why =
        tcCompare(`check '${c.name}', emulated kernel against float64`, emu, out, scale, c.K) ??
        tcCompare(`check '${c.name}', tensor cores against float64`, tc, out, scale, c.K) ??
        tcCompare(`check '${c.name}', tensor cores against the emulated kernel`, tc, emu, scale, c.K);
      if (why) return off(why);
    }
    return {
      status: 'on',
      spelling: s,
      reason: `self-check passed: ${checks.length} products (every layout, alpha, bias, accumulate, ragged, batched) and the cast of ${xs.length} values, ${s} spelling`,
    };
  } catch (e) {
    return off(`the self-check failed: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** describe()'s words for the state. */
export function tensorCoreNote(s: TensorCoreState): string {
  if (s.status === 'on') return `tensor cores on (subgroup matrices, ${s.spelling} spelling)`;
  if (s.status === 'off') return `tensor cores off: ${s.reason}`;
  return `no tensor cores: ${s.reason}`;
}
