/**
 * q4k: llama.cpp's Q4_K weights (4.5 bits each: the format of the Q4_K_M files people download) in the layout the
 * `matmul_q4k` kernel reads (src/backend/kernels.ts). Per row of W [N, K] (K % 256 = 0), K/256 super-blocks of
 * 38 i32 words (152 bytes) each:
 *
 *   f32 d, f32 dmin, u8 sc[8], u8 mn[8], u8 qs[128]        w = d·sc[s]·q − dmin·mn[s], q ∈ [0, 15]
 *
 * sub-block s = 2j + h (weights 32s … 32s + 31) takes the low (h = 0) or high (h = 1) nibbles of qs[32j … 32j + 31].
 * GGUF's block (f16 d, f16 dmin, twelve bytes of packed 6-bit scales/mins, the same 128 bytes of nibbles) is unpacked
 * once at load, so the kernel reads plain bytes and floats; the conversion is exact both ways (d and dmin are f16
 * values), so a GGUF Q4_K tensor runs on exactly the weights llama.cpp runs on, and exports back byte for byte.
 */
import { ConfigError } from '../util/errors.js';
import { decodeGgml, encodeGgml, packScaleMinK4 } from '../formats/gguf_types.js';
import { fromF16Bits, toF16Bits } from '../formats/half.js';

/** Weights per super-block. */
export const Q4K_BLOCK = 256;
/** i32 words per super-block in the kernel layout; bytes per block in GGUF's. */
export const Q4K_WORDS = 38;
const GGUF_BYTES = 144;

function checkWidth(K: number): void {
  if (K % Q4K_BLOCK !== 0)
    throw new ConfigError('inFeatures', `q4k needs the input width to be a multiple of ${Q4K_BLOCK}, got ${K}`);
}

/** GGUF Q4_K blocks of W [N, K] (row-major, as llama.cpp stores a [K, N] tensor) → the kernel layout [N, K/256·38]. */
export function q4kFromGguf(raw: Uint8Array, N: number, K: number): Int32Array {
  checkWidth(K);
  const nb = (N * K) / Q4K_BLOCK;
  if (raw.length !== nb * GGUF_BYTES)
    throw new ConfigError(
      'q4k',
      `expected ${nb * GGUF_BYTES} bytes of Q4_K blocks for [${N}, ${K}], got ${raw.length}`,
    );
  const out = new Int32Array(nb * Q4K_WORDS);
  const ob = new Uint8Array(out.buffer),
    of = new Float32Array(out.buffer);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let b = 0; b < nb; b++) {
    const i = b * GGUF_BYTES,
      o = b * Q4K_WORDS * 4;
    of[b * Q4K_WORDS] = fromF16Bits(dv.getUint16(i, true));
    of[b * Q4K_WORDS + 1] = fromF16Bits(dv.getUint16(i + 2, true));
    const sc = i + 4;
    for (let j = 0; j < 8; j++) {
      // get_scale_min_k4
      ob[o + 8 + j] = j < 4 ? raw[sc + j]! & 63 : (raw[sc + j + 4]! & 0xf) | ((raw[sc + j - 4]! >> 6) << 4);
      ob[o + 16 + j] = j < 4 ? raw[sc + j + 4]! & 63 : (raw[sc + j + 4]! >> 4) | ((raw[sc + j]! >> 6) << 4);
    }
    ob.set(raw.subarray(i + 16, i + GGUF_BYTES), o + 24);
  }
  return out;
}

/** The kernel layout back to GGUF Q4_K blocks (d and dmin must be f16 values: they are, from q4kFromGguf/quantizeQ4K). */
export function q4kToGguf(data: Int32Array, N: number, K: number): Uint8Array {
  checkWidth(K);
  const nb = (N * K) / Q4K_BLOCK;
  const out = new Uint8Array(nb * GGUF_BYTES);
  const dv = new DataView(out.buffer);
  const ib = new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    iv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0; b < nb; b++) {
    const i = b * Q4K_WORDS * 4,
      o = b * GGUF_BYTES;
    dv.setUint16(o, toF16Bits(iv.getFloat32(i, true)), true);
    dv.setUint16(o + 2, toF16Bits(iv.getFloat32(i + 4, true)), true);
    packScaleMinK4(out, o + 4, ib.subarray(i + 8, i + 16), ib.subarray(i + 16, i + 24));
    out.set(ib.subarray(i + 24, i + Q4K_WORDS * 4), o + 16);
  }
  return out;
}

/** W [N, K] float32 → q4k (llama.cpp's Q4_K quantiser, src/formats/gguf_types.ts encodeQ4K). */
export function quantizeQ4K(w: Float32Array, N: number, K: number): Int32Array {
  checkWidth(K);
  return q4kFromGguf(encodeGgml('Q4_K', w), N, K);
}

/** The float32 matrix [N, K] a q4k weight stands for (llama.cpp's dequantize_row_q4_K). */
export function dequantizeQ4K(data: Int32Array, N: number, K: number): Float32Array {
  return decodeGgml('Q4_K', q4kToGguf(data, N, K), N * K, 'q4k', 'weight');
}
