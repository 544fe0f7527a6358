/**
 * GGML tensor types as GGUF files store them (llama.cpp ggml/include/ggml.h `enum ggml_type`, block layouts from
 * ggml/src/ggml-common.h and the reference row functions of ggml-quants.c): each type's block size and bytes per
 * block, decoding to float32 (F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the k-quants Q2_K … Q6_K, IQ4_NL, IQ4_XS: what
 * llama.cpp's Q2_K … Q8_0 files hold, Q4_K_M and Q5_K_M mixing several) and encoding from float32 (F32, F16, BF16,
 * Q8_0). Blocks of 32 (low nibbles are elements 0–15, high 16–31):
 *
 *   Q8_0  f16 d, 32 × int8 q                              x = q · d                         (34 bytes)
 *   Q4_0  f16 d, 16 bytes of nibbles                      x = (nibble − 8) · d              (18 bytes)
 *   Q4_1  f16 d, f16 m, 16 bytes of nibbles               x = nibble · d + m                (20 bytes)
 *   Q5_0  f16 d, 4 bytes of 5th bits, 16 of nibbles       x = (q5 − 16) · d                 (22 bytes)
 *   Q5_1  f16 d, f16 m, 4 bytes of 5th bits, 16 nibbles   x = q5 · d + m                    (24 bytes)
 * super-blocks of 256 (sub-blocks of 16 or 32, each with its own scale, from ggml-quants.c's dequantize_row_*):
 *   Q2_K  16 bytes of 4-bit scale/min pairs, 64 of 2-bit q, f16 d, f16 dmin                  (84 bytes)
 *   Q3_K  32 bytes of high bits, 64 of 2-bit q, 12 of 6-bit scales, f16 d                     (110 bytes)
 *   Q4_K  f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles               (144 bytes)
 *   Q5_K  f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 32 of 5th bits, 128 of nibbles     (176 bytes)
 *   Q6_K  128 bytes of low nibbles, 64 of 2-bit highs, 16 int8 scales, f16 d                 (210 bytes)
 * and the non-uniform 4-bit i-quants IQ4_NL (blocks of 32, 18 bytes) and IQ4_XS (super-blocks of 256, 136 bytes);
 * the other i-quants (IQ1–IQ3, lattice codebooks) are not decoded.
 * Each product is rounded to float32 where the C code rounds it, so a decoded value is llama.cpp's bit for bit.
 *
 * Q8_0 is quantised as llama.cpp's `quantize_row_q8_0_ref`: d = amax / 127 in float32, q = round(x / d) (half away
 * from zero) with that float32 d, and d stored as f16; so Q8_0 → float32 → Q8_0 gives back the same bytes.
 * Q4_K is quantised as llama.cpp's `quantize_row_q4_K_ref` does it (encodeQ4K): per sub-block of 32 a weighted
 * least-squares scale and min over 21 candidate grids (make_qkx2_quants), then both rounded to 6 bits of the
 * super-block's f16 d and dmin, and the nibbles re-rounded against the rounded scales.
 */
import { FileFormatError, UnsupportedError } from '../util/errors.js';
import {
  bf16ArrayToFloat32,
  f16ArrayToFloat32,
  float32ToBf16Array,
  float32ToF16Array,
  fromF16Bits,
  toF16Bits,
} from './half.js';

/** The ggml_type ids of the format (all of them, so that an error can name a type we do not decode). */
export const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

/** The types this package decodes to float32. */
export type GgmlType =
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F64'
  | 'Q8_0'
  | 'Q4_0'
  | 'Q4_1'
  | 'Q5_0'
  | 'Q5_1'
  | 'Q2_K'
  | 'Q3_K'
  | 'Q4_K'
  | 'Q5_K'
  | 'Q6_K'
  | 'IQ4_NL'
  | 'IQ4_XS';
/** The types this package writes. */
export type GgmlWriteType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_K';

interface TypeInfo {
  id: number;
  /** Elements per block. */
  block: number;
  /** Bytes per block. */
  bytes: number;
}

const TYPES: Readonly<Record<GgmlType, TypeInfo>> = {
  F32: { id: 0, block: 1, bytes: 4 },
  F16: { id: 1, block: 1, bytes: 2 },
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q4_1: { id: 3, block: 32, bytes: 20 },
  Q5_0: { id: 6, block: 32, bytes: 22 },
  Q5_1: { id: 7, block: 32, bytes: 24 },
  Q8_0: { id: 8, block: 32, bytes: 34 },
  Q2_K: { id: 10, block: 256, bytes: 84 },
  Q3_K: { id: 11, block: 256, bytes: 110 },
  Q4_K: { id: 12, block: 256, bytes: 144 },
  Q5_K: { id: 13, block: 256, bytes: 176 },
  Q6_K: { id: 14, block: 256, bytes: 210 },
  IQ4_NL: { id: 20, block: 32, bytes: 18 },
  IQ4_XS: { id: 23, block: 256, bytes: 136 },
  F64: { id: 28, block: 1, bytes: 8 },
  BF16: { id: 30, block: 1, bytes: 2 },
};

/** Block sizes of the types we know but do not decode (so the reader can still lay the file out and check it). */
const OTHER_BLOCKS: Readonly<Record<number, [number, number]>> = {
  9: [32, 36], // Q8_1
  15: [256, 292], // Q8_K
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
};

const BY_ID = new Map<number, GgmlType>(Object.entries(TYPES).map(([k, v]) => [v.id, k as GgmlType]));

/** The ggml_type id of a type. */
export function ggmlTypeId(t: GgmlType): number {
  return TYPES[t].id;
}

/** Our name of a ggml_type id we decode, or undefined. */
export function ggmlTypeOf(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

/** A readable name for any ggml_type id. */
export function ggmlTypeName(id: number): string {
  return GGML_TYPE_NAMES[id] ?? `unknown type ${id}`;
}

/** [elements per block, bytes per block] of a ggml_type id, or undefined for an id the format does not define. */
export function ggmlBlock(id: number): [number, number] | undefined {
  const t = BY_ID.get(id);
  if (t) return [TYPES[t].block, TYPES[t].bytes];
  return OTHER_BLOCKS[id];
}

/** Bytes of `n` elements of a type (n a multiple of its block size). */
export function ggmlByteLength(t: GgmlType, n: number): number {
  return (n / TYPES[t].block) * TYPES[t].bytes;
}

/** Elements per block of a type. */
export function ggmlBlockSize(t: GgmlType): number {
  return TYPES[t].block;
}

/** Decode `n` elements of type `t` from `raw` (exactly their bytes) to float32. */
export function decodeGgml(t: GgmlType, raw: Uint8Array, n: number, file: string, part: string): Float32Array {
  if (raw.byteLength !== ggmlByteLength(t, n))
    throw new FileFormatError('E_GGUF_TENSOR', file, `${raw.byteLength} bytes for ${n} ${t} elements`, part);
  const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  const dv = new DataView(aligned.buffer, aligned.byteOffset, aligned.byteLength);
  switch (t) {
    case 'F32':
      return new Float32Array(aligned.buffer.slice(aligned.byteOffset, aligned.byteOffset + n * 4));
    case 'F16':
      return f16ArrayToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, n));
    case 'BF16':
      return bf16ArrayToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, n));
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
    case 'Q8_0': {
      const out = new Float32Array(n);
      for (let b = 0; b < n / 32; b++) {
        const o = b * 34;
        const d = fromF16Bits(dv.getUint16(o, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = dv.getInt8(o + 2 + j) * d;
      }
      return out;
    }
    case 'Q4_0': {
      const out = new Float32Array(n);
      for (let b = 0; b < n / 32; b++) {
        const o = b * 18;
        const d = fromF16Bits(dv.getUint16(o, true));
        for (let j = 0; j < 16; j++) {
          const q = aligned[o + 2 + j]!;
          out[b * 32 + j] = ((q & 0xf) - 8) * d;
          out[b * 32 + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return out;
    }
    case 'Q4_1':
    case 'Q5_0':
    case 'Q5_1':
      return decodeQ41Q5(t, aligned, dv, n);
    case 'Q2_K':
      return decodeQ2K(aligned, dv, n);
    case 'Q3_K':
      return decodeQ3K(aligned, dv, n);
    case 'Q4_K':
      return decodeQ4K(aligned, dv, n);
    case 'Q5_K':
      return decodeQ5K(aligned, dv, n);
    case 'Q6_K':
      return decodeQ6K(aligned, dv, n);
    case 'IQ4_NL':
    case 'IQ4_XS':
      return decodeIq4(t, aligned, dv, n);
  }
}

/** The sixteen non-uniform levels of IQ4_NL and IQ4_XS (ggml-common.h kvalues_iq4nl). */
const IQ4_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/**
 * IQ4_NL (blocks of 32: f16 d, 16 bytes of nibbles) and IQ4_XS (super-blocks of 256: f16 d, u16 high scale bits,
 * 4 bytes of low scale nibbles, 128 bytes of nibbles; 8 sub-blocks of 32 with 6-bit scales − 32): each nibble picks
 * one of IQ4_LEVELS, times the (sub-)block's scale (dequantize_row_iq4_nl / _iq4_xs).
 */
function decodeIq4(t: 'IQ4_NL' | 'IQ4_XS', raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  const sub = (y: number, qs: number, dl: number) => {
    for (let j = 0; j < 16; j++) {
      out[y + j] = dl * IQ4_LEVELS[raw[qs + j]! & 0xf]!;
      out[y + j + 16] = dl * IQ4_LEVELS[raw[qs + j]! >> 4]!;
    }
  };
  if (t === 'IQ4_NL') {
    for (let b = 0; b < n / 32; b++) sub(b * 32, b * 18 + 2, fromF16Bits(dv.getUint16(b * 18, true)));
    return out;
  }
  for (let b = 0; b < n / 256; b++) {
    const o = b * 136;
    const d = fromF16Bits(dv.getUint16(o, true));
    const hi = dv.getUint16(o + 2, true);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((raw[o + 4 + (ib >> 1)]! >> (4 * (ib & 1))) & 0xf) | (((hi >> (2 * ib)) & 3) << 4);
      sub(b * 256 + ib * 32, o + 8 + ib * 16, f32(d * (ls - 32)));
    }
  }
  return out;
}

const f32 = Math.fround;

/**
 * Q4_1, Q5_0, Q5_1 (dequantize_row_q4_1 / _q5_0 / _q5_1): blocks of 32; the 5-bit types keep element j's fifth bit
 * in bit j of a little-endian u32 (elements 0–15: bits 0–15, 16–31: bits 16–31).
 */
function decodeQ41Q5(t: 'Q4_1' | 'Q5_0' | 'Q5_1', raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  const bytes = t === 'Q4_1' ? 20 : t === 'Q5_0' ? 22 : 24;
  const hasMin = t !== 'Q5_0';
  const five = t !== 'Q4_1';
  for (let b = 0; b < n / 32; b++) {
    const o = b * bytes;
    const d = fromF16Bits(dv.getUint16(o, true));
    const m = hasMin ? fromF16Bits(dv.getUint16(o + 2, true)) : 0;
    const qhAt = o + (hasMin ? 4 : 2);
    const qh = five ? dv.getUint32(qhAt, true) : 0;
    const qs = qhAt + (five ? 4 : 0);
    for (let j = 0; j < 16; j++) {
      const q = raw[qs + j]!;
      let x0 = q & 0xf,
        x1 = q >> 4;
      if (five) {
        x0 |= ((qh >>> j) << 4) & 0x10;
        x1 |= (qh >>> (j + 12)) & 0x10;
      }
      if (t === 'Q5_0') {
        out[b * 32 + j] = (x0 - 16) * d;
        out[b * 32 + j + 16] = (x1 - 16) * d;
      } else {
        out[b * 32 + j] = f32(x0 * d) + m;
        out[b * 32 + j + 16] = f32(x1 * d) + m;
      }
    }
  }
  return out;
}

/** Q2_K (dequantize_row_q2_K): 16 sub-blocks of 16, each a 4-bit scale and a 4-bit min; 2-bit q. */
function decodeQ2K(raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  let y = 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 84; // scales[16], qs[64], d, dmin
    const d = fromF16Bits(dv.getUint16(o + 80, true));
    const min = fromF16Bits(dv.getUint16(o + 82, true));
    let q = o + 16;
    let is = 0;
    for (let half = 0; half < 2; half++) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let off = 0; off <= 16; off += 16) {
          const sc = raw[o + is++]!;
          const dl = f32(d * (sc & 0xf)),
            ml = f32(min * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = f32(dl * ((raw[q + off + l]! >> shift) & 3)) - ml;
        }
      }
      q += 32;
    }
  }
  return out;
}

/** Q3_K (dequantize_row_q3_K): 16 sub-blocks of 16 with 6-bit signed scales; 2 low bits + a high bit (set: +0, clear: −4). */
function decodeQ3K(raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  const scales = new Int8Array(16);
  const aux = new Uint32Array(4);
  let y = 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 110; // hmask[32], qs[64], scales[12], d
    const dAll = fromF16Bits(dv.getUint16(o + 108, true));
    const hm = o,
      sc = o + 96;
    // the 12 scale bytes as three little-endian u32, unpacked to sixteen 6-bit values (kmask1/kmask2)
    const a0 = dv.getUint32(sc, true),
      a1 = dv.getUint32(sc + 4, true),
      tmp = dv.getUint32(sc + 8, true);
    const k1 = 0x03030303,
      k2 = 0x0f0f0f0f;
    aux[0] = (a0 & k2) | (((tmp >>> 0) & k1) << 4);
    aux[1] = (a1 & k2) | (((tmp >>> 2) & k1) << 4);
    aux[2] = ((a0 >>> 4) & k2) | (((tmp >>> 4) & k1) << 4);
    aux[3] = ((a1 >>> 4) & k2) | (((tmp >>> 6) & k1) << 4);
    for (let i = 0; i < 16; i++) scales[i] = (aux[i >> 2]! >>> (8 * (i & 3))) & 0xff;
    let q = o + 32;
    let is = 0;
    let m = 1;
    for (let half = 0; half < 2; half++) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let off = 0; off <= 16; off += 16) {
          const dl = f32(dAll * (scales[is++]! - 32));
          for (let l = 0; l < 16; l++) {
            const v = ((raw[q + off + l]! >> shift) & 3) - (raw[hm + off + l]! & m ? 0 : 4);
            out[y++] = dl * v;
          }
        }
        m <<= 1;
      }
      q += 32;
    }
  }
  return out;
}

/**
 * The twelve bytes at out[at …] holding eight 6-bit scales ls and eight 6-bit mins lm (Q4_K, Q5_K): scaleMinK4 undone.
 * Bytes 0–3: ls[0–3] and the top two bits of ls[4–7]; 4–7: lm[0–3] and the top bits of lm[4–7]; 8–11: the low
 * nibbles of ls[4–7] and lm[4–7].
 */
export function packScaleMinK4(out: Uint8Array, at: number, ls: ArrayLike<number>, lm: ArrayLike<number>): void {
  for (let j = 0; j < 4; j++) {
    out[at + j] = ls[j]! | ((ls[j + 4]! >> 4) << 6);
    out[at + 4 + j] = lm[j]! | ((lm[j + 4]! >> 4) << 6);
    out[at + 8 + j] = (ls[j + 4]! & 0xf) | ((lm[j + 4]! & 0xf) << 4);
  }
}

/** get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 bytes at `sc` (Q4_K, Q5_K). */
function scaleMinK4(raw: Uint8Array, sc: number, j: number): [number, number] {
  return j < 4
    ? [raw[sc + j]! & 63, raw[sc + j + 4]! & 63]
    : [(raw[sc + j + 4]! & 0xf) | ((raw[sc + j - 4]! >> 6) << 4), (raw[sc + j + 4]! >> 4) | ((raw[sc + j]! >> 6) << 4)];
}

/** Q5_K (dequantize_row_q5_K): Q4_K's scales and mins with a fifth bit per element. */
function decodeQ5K(raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  let y = 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 176; // d, dmin, scales[12], qh[32], qs[128]
    const d = fromF16Bits(dv.getUint16(o, true));
    const dmin = fromF16Bits(dv.getUint16(o + 2, true));
    const sc = o + 4,
      qh = o + 16;
    let ql = o + 48;
    let u1 = 1,
      u2 = 2;
    for (let j = 0; j < 8; j += 2) {
      const [s1, m1] = scaleMinK4(raw, sc, j);
      const [s2, m2] = scaleMinK4(raw, sc, j + 1);
      const d1 = f32(d * s1),
        mm1 = f32(dmin * m1),
        d2 = f32(d * s2),
        mm2 = f32(dmin * m2);
      for (let l = 0; l < 32; l++) out[y++] = f32(d1 * ((raw[ql + l]! & 0xf) + (raw[qh + l]! & u1 ? 16 : 0))) - mm1;
      for (let l = 0; l < 32; l++) out[y++] = f32(d2 * ((raw[ql + l]! >> 4) + (raw[qh + l]! & u2 ? 16 : 0))) - mm2;
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
  return out;
}

/** Q6_K (dequantize_row_q6_K): 16 sub-blocks of 16 with int8 scales; 4 low bits + 2 high bits, minus 32. */
function decodeQ6K(raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  const sc8 = new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  const ds = new Float32Array(16); // d·scale per sub-block of 16, rounded to float32 as the C code does
  for (let b = 0; b < n / 256; b++) {
    const o = b * 210; // ql[128], qh[64], scales[16] (int8), d
    const d = fromF16Bits(dv.getUint16(o + 208, true));
    for (let i = 0; i < 16; i++) ds[i] = d * sc8[o + 192 + i]!;
    for (let half = 0; half < 2; half++) {
      const ql = o + 64 * half,
        qh = o + 128 + 32 * half,
        y = b * 256 + 128 * half;
      for (let l = 0; l < 32; l++) {
        const is = 8 * half + (l >> 4); // sub-blocks is, is + 2, is + 4, is + 6 scale the four quarters
        const h = raw[qh + l]!,
          a = raw[ql + l]!,
          c = raw[ql + l + 32]!;
        out[y + l] = ds[is]! * (((a & 0xf) | ((h & 3) << 4)) - 32);
        out[y + l + 32] = ds[is + 2]! * (((c & 0xf) | (((h >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = ds[is + 4]! * (((a >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = ds[is + 6]! * (((c >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
    }
  }
  return out;
}

/** Q4_K (ggml-quants.c dequantize_row_q4_K): 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min. */
function decodeQ4K(raw: Uint8Array, dv: DataView, n: number): Float32Array {
  const out = new Float32Array(n);
  let y = 0;
  for (let b = 0; b < n / 256; b++) {
    const o = b * 144;
    const d = fromF16Bits(dv.getUint16(o, true));
    const dmin = fromF16Bits(dv.getUint16(o + 2, true));
    const sc = o + 4; // 12 bytes of scales
    let q = o + 16; // 128 bytes of nibbles
    const scaleMin = (j: number) => scaleMinK4(raw, sc, j);
    for (let j = 0; j < 8; j += 2) {
      const [s1, m1] = scaleMin(j);
      const [s2, m2] = scaleMin(j + 1);
      const d1 = Math.fround(d * s1),
        mm1 = Math.fround(dmin * m1),
        d2 = Math.fround(d * s2),
        mm2 = Math.fround(dmin * m2);
      for (let l = 0; l < 32; l++) out[y++] = Math.fround(d1 * (raw[q + l]! & 0xf)) - mm1;
      for (let l = 0; l < 32; l++) out[y++] = Math.fround(d2 * (raw[q + l]! >> 4)) - mm2;
      q += 32;
    }
  }
  return out;
}

/** Encode float32 values as type `t` (n a multiple of its block size; a ConfigError-free check is the caller's). */
export function encodeGgml(t: GgmlWriteType, x: Float32Array): Uint8Array {
  const n = x.length;
  if (n % TYPES[t].block !== 0)
    throw new UnsupportedError(`${t} needs a multiple of ${TYPES[t].block} elements per row, got ${n}`);
  switch (t) {
    case 'F32':
      return new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + n * 4));
    case 'F16':
      return new Uint8Array(float32ToF16Array(x).buffer);
    case 'BF16':
      return new Uint8Array(float32ToBf16Array(x).buffer);
    case 'Q8_0': {
      const out = new Uint8Array((n / 32) * 34);
      const dv = new DataView(out.buffer);
      for (let b = 0; b < n / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
        const d = Math.fround(amax / 127);
        const id = d === 0 ? 0 : Math.fround(1 / d);
        dv.setUint16(b * 34, toF16Bits(d), true);
        for (let j = 0; j < 32; j++) {
          const v = Math.fround(x[b * 32 + j]! * id);
          dv.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v))); // roundf: half away from zero
        }
      }
      return out;
    }
    case 'Q4_K':
      return encodeQ4K(x);
  }
}

/** The candidate nibbles of fitScaleMin's search (one module-level scratch: it runs per 32 weights). */
const LAUX = new Uint8Array(32);

/**
 * One sub-block's fit (make_qkx2_quants): x ≈ scale·q − min, q ∈ [0, 15], min ≥ 0; weighted least squares over 21
 * grids, each from the best min so far (as the C code, which updates its `min` in the loop). Nibbles round half up
 * ((v + 0.5) | 0; the C code rounds half to even in float32): Math.round would cost ×3 the whole loop.
 */
function fitScaleMin(x: Float32Array, o: number, w: Float32Array, L: Uint8Array): [number, number] {
  const n = 32,
    nmax = 15;
  let lo = x[o]!,
    hi = x[o]!,
    sumW = 0,
    sumX = 0;
  for (let i = 0; i < n; i++) {
    const v = x[o + i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    sumW += w[i]!;
    sumX += w[i]! * v;
  }
  if (lo > 0) lo = 0;
  if (hi === lo) {
    L.fill(0, 0, n);
    return [0, -lo];
  }
  let iscale = nmax / (hi - lo),
    scale = 1 / iscale,
    bestErr = 0;
  for (let i = 0; i < n; i++) {
    let l = (iscale * (x[o + i]! - lo) + 0.5) | 0;
    if (l > nmax) l = nmax;
    L[i] = l;
    const d = scale * l + lo - x[o + i]!;
    bestErr += w[i]! * d * d;
  }
  for (let is = 0; is <= 20; is++) {
    iscale = (-1 + 0.1 * is + nmax) / (hi - lo);
    let sumL = 0,
      sumL2 = 0,
      sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = (iscale * (x[o + i]! - lo) + 0.5) | 0;
      if (l > nmax) l = nmax;
      LAUX[i] = l;
      const wl = w[i]! * l;
      sumL += wl;
      sumL2 += wl * l;
      sumXL += wl * x[o + i]!;
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D <= 0) continue;
    let sc = (sumW * sumXL - sumX * sumL) / D,
      m = (sumL2 * sumX - sumL * sumXL) / D;
    if (m > 0) (m = 0), (sc = sumXL / sumL2);
    let err = 0;
    for (let i = 0; i < n; i++) {
      const d = sc * LAUX[i]! + m - x[o + i]!;
      err += w[i]! * d * d;
    }
    if (err < bestErr) {
      bestErr = err;
      L.set(LAUX);
      scale = sc;
      lo = m;
    }
  }
  return [scale, -lo];
}

/** Q4_K blocks of x (x.length a multiple of 256), as quantize_row_q4_K_ref. */
function encodeQ4K(x: Float32Array): Uint8Array {
  const nb = x.length / 256;
  const out = new Uint8Array(nb * 144);
  const dv = new DataView(out.buffer);
  const L = new Uint8Array(256),
    w = new Float32Array(32),
    scales = new Float64Array(8),
    mins = new Float64Array(8);
  for (let b = 0; b < nb; b++) {
    const xo = b * 256,
      o = b * 144;
    let maxScale = 0,
      maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sum2 = 0;
      for (let i = 0; i < 32; i++) sum2 += x[xo + 32 * j + i]! ** 2;
      const av = Math.sqrt(sum2 / 32);
      for (let i = 0; i < 32; i++) w[i] = av + Math.abs(x[xo + 32 * j + i]!);
      [scales[j], mins[j]] = fitScaleMin(x, xo + 32 * j, w, L.subarray(32 * j, 32 * j + 32));
      maxScale = Math.max(maxScale, scales[j]!);
      maxMin = Math.max(maxMin, mins[j]!);
    }
    const invScale = maxScale > 0 ? 63 / maxScale : 0,
      invMin = maxMin > 0 ? 63 / maxMin : 0;
    const ls = new Uint8Array(8),
      lm = new Uint8Array(8);
    for (let j = 0; j < 8; j++) {
      ls[j] = Math.min(63, Math.round(invScale * scales[j]!));
      lm[j] = Math.min(63, Math.round(invMin * mins[j]!));
    }
    packScaleMinK4(out, o + 4, ls, lm);
    const dBits = toF16Bits(maxScale / 63),
      mBits = toF16Bits(maxMin / 63);
    dv.setUint16(o, dBits, true);
    dv.setUint16(o + 2, mBits, true);
    const d = fromF16Bits(dBits),
      dmin = fromF16Bits(mBits);
    // the nibbles again, against the scales as stored
    for (let j = 0; j < 8; j++) {
      const ds = f32(d * ls[j]!);
      if (ds === 0) {
        L.fill(0, 32 * j, 32 * j + 32);
        continue;
      }
      const dm = f32(dmin * lm[j]!);
      for (let i = 0; i < 32; i++) {
        const v = (x[xo + 32 * j + i]! + dm) / ds;
        const l = v > 0 ? (v + 0.5) | 0 : 0;
        L[32 * j + i] = Math.min(15, l);
      }
    }
    for (let j = 0; j < 4; j++)
      for (let l = 0; l < 32; l++) out[o + 16 + 32 * j + l] = L[64 * j + l]! | (L[64 * j + 32 + l]! << 4);
  }
  return out;
}
