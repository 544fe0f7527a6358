/**
 * GGML tensor types as GGUF files store them (llama.cpp ggml/include/ggml.h `enum ggml_type`, block layouts from
 * ggml/src/ggml-common.h and the reference row functions of ggml-quants.c): each type's block size and bytes per
 * block, decoding to float32 (F32, F16, BF16, F64, Q8_0, Q4_0, Q4_K) and encoding from float32 (F32, F16, BF16, Q8_0).
 *
 *   Q8_0  block of 32: f16 d, 32 × int8 q                 x = q · d                (34 bytes)
 *   Q4_0  block of 32: f16 d, 16 bytes of nibbles         x = (nibble − 8) · d     (18 bytes; low nibbles are
 *                                                                                  elements 0–15, high 16–31)
 *   Q4_K  super-block of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles (144 bytes)
 *
 * Q8_0 is quantised as llama.cpp's `quantize_row_q8_0_ref`: d = amax / 127 in float32, q = round(x / d) (half away
 * from zero) with that float32 d, and d stored as f16; so Q8_0 → float32 → Q8_0 gives back the same bytes.
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
export type GgmlType = 'F32' | 'F16' | 'BF16' | 'F64' | 'Q8_0' | 'Q4_0' | 'Q4_K';
/** The types this package writes. */
export type GgmlWriteType = 'F32' | 'F16' | 'BF16' | 'Q8_0';

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
  Q8_0: { id: 8, block: 32, bytes: 34 },
  Q4_K: { id: 12, block: 256, bytes: 144 },
  F64: { id: 28, block: 1, bytes: 8 },
  BF16: { id: 30, block: 1, bytes: 2 },
};

/** Block sizes of the types we know but do not decode (so the reader can still lay the file out and check it). */
const OTHER_BLOCKS: Readonly<Record<number, [number, number]>> = {
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  9: [32, 36], // Q8_1
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
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
    case 'Q4_K':
      return decodeQ4K(aligned, dv, n);
  }
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
    // get_scale_min_k4: sub-block j's 6-bit scale and min
    const scaleMin = (j: number): [number, number] =>
      j < 4
        ? [raw[sc + j]! & 63, raw[sc + j + 4]! & 63]
        : [
            (raw[sc + j + 4]! & 0xf) | ((raw[sc + j - 4]! >> 6) << 4),
            (raw[sc + j + 4]! >> 4) | ((raw[sc + j]! >> 6) << 4),
          ];
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
  }
}
