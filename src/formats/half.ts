/**
 * 16-bit floats: IEEE 754 binary16 (F16, "half") and bfloat16 (BF16), converted to and from float32 bit for bit.
 *
 * Widening (16 → 32 bits) is exact for every value, NaN payloads included. Narrowing (32 → 16 bits) rounds to
 * nearest, ties to even (what PyTorch's `.half()` / `.bfloat16()` do): values past the largest finite 16-bit value
 * round to ±infinity, tiny values round to subnormals or ±0. NaN stays NaN with its sign and the top bits of its
 * payload (a payload that would become 0 is replaced by the quiet bit), so F16/BF16 → F32 → F16/BF16 is the identity
 * on every bit pattern. (PyTorch maps every NaN to one canonical NaN instead; only NaN payload bits differ.)
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bits of a float32 value (the number is rounded to float32 first). */
export function f32ToBits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0]!;
}

/** The float32 value with these bits. */
export function bitsToF32(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0]!;
}

/** float32 bits → binary16 bits, round to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  x >>>= 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00; // ±inf
    const m = mant >>> 13;
    return sign | 0x7c00 | (m === 0 ? 0x200 : m); // NaN, payload kept
  }
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    // binary16 subnormal (value = m · 2^-24) or zero
    if (e < -10) return sign; // below half the smallest subnormal → ±0
    const full = mant | 0x800000; // 24-bit significand with its implicit 1
    const shift = 14 - e; // 14..24
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m += 1; // may carry into the smallest normal: still right
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // a carry rolls into the exponent (up to inf)
  return h;
}

/** binary16 bits → float32 bits (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalise
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e -= 1;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** float32 bits → bfloat16 bits, round to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  x >>>= 0;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
    const h = x >>> 16;
    return (h & 0x7f) === 0 ? h | 0x40 : h; // NaN, payload kept
  }
  const lsb = (x >>> 16) & 1;
  return Math.floor((x + 0x7fff + lsb) / 65536) & 0xffff;
}

/** bfloat16 bits → float32 bits (exact). */
export function bf16BitsToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

/** A number → the nearest binary16 bits. */
export function toF16Bits(x: number): number {
  return f32BitsToF16Bits(f32ToBits(x));
}

/** binary16 bits → a number. */
export function fromF16Bits(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h));
}

/** A number → the nearest bfloat16 bits (via float32, as PyTorch does). */
export function toBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32ToBits(x));
}

/** bfloat16 bits → a number. */
export function fromBf16Bits(h: number): number {
  return bitsToF32(bf16BitsToF32Bits(h));
}

let f16Table: Uint32Array | null = null;

/** Lookup table of all 65536 binary16 → float32 bit patterns (256 KiB, built on first use). */
function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** binary16 array → Float32Array (exact). */
export function f16ArrayToFloat32(src: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = table[src[i]!]!;
  return out;
}

/** Float32Array → binary16 array (round to nearest even). */
export function float32ToF16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** bfloat16 array → Float32Array (exact). */
export function bf16ArrayToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** Float32Array → bfloat16 array (round to nearest even). */
export function float32ToBf16Array(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}
