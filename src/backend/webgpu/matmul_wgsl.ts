/**
 * WGSL the webgpu matmul kernels share (./matmul.ts's 32×32, ./matmul_tiled.ts, ./matmul_gemv.ts): the bindings
 * (A, B, an optional BIAS, O), the parameter block's reading (M, N, K, then the batch strides of A, B and O times the
 * grid's z, then alpha), the write of one output, out = alpha·sum (+ out) (+ bias), and the operand load of the
 * matmul precision (`operand`): 'f32' reads the element as it is; 'f16' rounds it to the nearest binary16 value
 * first (`f16r` below) and the kernel still accumulates in f32 — the numerics of f16 tensor-core products (f16
 * operands, f32 accumulators), emulated on any adapter (no `shader-f16` needed). docs/BACKENDS.md, "f16 path".
 */
import { storage } from './core.js';

/**
 * What a matmul kernel does with its operands: 'f32' (default) uses them as they are; 'f16' rounds each element of
 * A and B to binary16 when it loads it and accumulates in f32 (bias, alpha, the output and `accumulate` stay f32).
 */
export type MatmulPrecision = 'f32' | 'f16';

/** The precisions a webgpu backend accepts. */
export const MATMUL_PRECISIONS: readonly MatmulPrecision[] = ['f32', 'f16'];

/**
 * WGSL `f16r(x)`: x rounded to the nearest binary16 value, returned as f32, with integer bit operations only (no
 * pack2x16float: its result is undefined out of f16's range), bit for bit src/formats/half.ts's f32BitsToF16Bits
 * then widening: round to nearest, ties to even; |x| ≥ 65520 (halfway past 65504) → ±inf; below 2^-14 the
 * subnormals (multiples of 2^-24) are kept, below 2^-25 → ±0; ±inf and NaN pass through.
 *
 *   normal  (2^-14 ≤ |x| < 65520): drop the 13 low mantissa bits, adding 0xfff + (lowest kept bit) first (RNE; a
 *           carry rolls into the exponent)
 *   subnormal (|x| < 2^-14): q = significand >> shift rounded to even, shift = 126 − biased exponent; value q·2^-24
 */
export const F16_ROUND = `fn f16r(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  let s = u & 0x80000000u;
  let a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) { return x; }
  if (a >= 0x477ff000u) { return bitcast<f32>(s | 0x7f800000u); }
  if (a >= 0x38800000u) { return bitcast<f32>(s | ((a + 0xfffu + ((a >> 13u) & 1u)) & 0xffffe000u)); }
  let shift = 126u - (a >> 23u);
  if (shift > 24u) { return bitcast<f32>(s); }
  let m = (a & 0x7fffffu) | 0x800000u;
  var q = m >> shift;
  let rem = m & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q += 1u; }
  return bitcast<f32>(s | bitcast<u32>(f32(q) * 5.9604644775390625e-8));
}
`;

/** WGSL helpers a kernel of `precision` needs (before its entry point): f16r for 'f16', nothing for 'f32'. */
export const precisionHelpers = (precision: MatmulPrecision): string => (precision === 'f16' ? F16_ROUND : '');

/** WGSL: the operand element `expr` as the kernel multiplies it (rounded to binary16 under 'f16'). */
export const operand = (expr: string, precision: MatmulPrecision): string =>
  precision === 'f16' ? `f16r(${expr})` : expr;

/** Bindings 1… : A, B, BIAS when `bias`, O. */
export const matmulBindings = (bias: boolean): string =>
  `${storage(1, 'A', 'f32', false)}${storage(2, 'B', 'f32', false)}${bias ? storage(3, 'BIAS', 'f32', false) : ''}${storage(bias ? 4 : 3, 'O', 'f32', true)}`;

/** WGSL: M, N, K and this batch's element offsets (expects `wid`, the workgroup id). */
export const MATMUL_PARAMS = `let M = pu(0u);
  let N = pu(1u);
  let K = pu(2u);
  let aOff = wid.z * pu(3u);
  let bOff = wid.z * pu(4u);
  let oOff = wid.z * pu(5u);`;

/** WGSL: O[oOff + i·N + j] = alpha·`sum` (+ what O held, with `accumulate`) (+ BIAS[j], with `bias`). */
export const storeOutput = (sum: string, bias: boolean, accumulate: boolean): string => `let o = oOff + i * N + j;
        var v = pf(6u) * ${sum};
        ${accumulate ? 'v += O[o];' : ''}
        ${bias ? 'v += BIAS[j];' : ''}
        O[o] = v;`;
