/**
 * What a model read from a file keeps of it, per parameter: the tensor's type (for `export --type source` and for
 * choosing how to quantise it), and — until `releaseWeightSources` — its bytes: decoded on demand to float32 in the
 * model's layout, a slice of rows at a time, or, for Q4_K, its blocks as they are (rows in the model's order). A model
 * loaded with vacant linears (loadModel's `vacantLinears`, from a GGUF file or a safetensors checkpoint) has no
 * float32 copy of them at all: quantizeModel reads them from here, one matrix at a time.
 */
import type { GgmlType } from '../formats/gguf_types.js';
import type { Tensor } from '../tensor/tensor.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import type { CausalLM } from './model.js';

/** What a vacant load (GGUF or safetensors) leaves undecoded: every matrix but GPT-2's position table. */
export function undecodedMatrix(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && name !== 'transformer.wpe.weight';
}

/** The kind of file the sources are in. */
export type SourceFormat = 'gguf' | 'safetensors';

export interface WeightSource {
  /** The type the file stored the parameter as (GGUF's type; a safetensors dtype by the same name: F32, F16, BF16). */
  type: GgmlType;
  /** The tensor's bytes as stored (file row order); absent once released. */
  raw?: () => Uint8Array;
  /** The values decoded to float32, in the parameter's own layout; absent once released. */
  decode?: () => Float32Array;
  /** Q4_K matrices whose rows are whole blocks: the blocks, rows in the model's order ([out, in]); absent once released. */
  q4k?: () => Uint8Array;
  /**
   * Rows [lo, hi) decoded to float32, for a matrix the model keeps in the file's layout (its rows whole blocks):
   * quantizeModel stores a big one (a 128k-token embedding is 1 GB of float32) a slice at a time. Absent once released.
   */
  rows?: (lo: number, hi: number) => Float32Array;
  /** BF16 matrices in the model's layout: the bytes as they are (bf16's form exactly, nothing to decode). */
  bf16?: () => Uint8Array;
}

const sources = new WeakMap<CausalLM, { format: SourceFormat; byName: Map<string, WeightSource> }>();

export function setWeightSources(model: CausalLM, byName: Map<string, WeightSource>, format: SourceFormat): void {
  sources.set(model, { format, byName });
}

/** The file source of a parameter, when the model keeps one. */
export function weightSource(model: CausalLM, name: string): WeightSource | undefined {
  return sources.get(model)?.byName.get(name);
}

/** What kind of file the model's sources are in, or undefined when it keeps none. */
export function sourceFormat(model: CausalLM): SourceFormat | undefined {
  return sources.get(model)?.format;
}

/** Let go of the file's bytes (the types stay): once the weights a model runs on are stored, they are a second copy. */
export function releaseWeightSources(model: CausalLM): void {
  for (const s of sources.get(model)?.byName.values() ?? []) release(s);
}

/**
 * Let go of one parameter's bytes as soon as it is stored: a checkpoint's tensors are buffers of their own, so a
 * model quantised from a 2.5 GB file never holds the whole file beside its quantised weights.
 */
export function releaseWeightSource(model: CausalLM, name: string): void {
  const s = weightSource(model, name);
  if (s) release(s);
}

function release(s: WeightSource): void {
  delete s.raw;
  delete s.decode;
  delete s.q4k;
  delete s.rows;
  delete s.bf16;
}

/**
 * A matrix's float32 values as its parameter lays them out: a copy of the parameter's, or — vacant (or freed) —
 * decoded from the file it was read from. Quantisation and GGUF export read their weights through this.
 */
export async function matrixValues(model: CausalLM, name: string, t: Tensor): Promise<Float32Array> {
  if (!t.isDisposed && !t.storage.gone) return Float32Array.from(await t.data());
  const decode = weightSource(model, name)?.decode;
  if (!decode)
    throw new ConfigError(
      'weights',
      `the float32 weights of '${name}' are gone (quantised before with dropFloat, or loaded vacant) and its file ` +
        'bytes are gone too (let go once stored): load the model again',
    );
  return decode();
}

/**
 * A source whose decoders refuse what is not a number: NaN or ±Infinity in a stored matrix (a diverged training run)
 * is a FileFormatError `E_WEIGHTS_NOT_FINITE` naming the file and the tensor when the matrix is read (quantised,
 * stored as bf16, exported), not garbage generated later. `where`: the file.
 */
export function finiteSource(s: WeightSource, where: string, name: string): WeightSource {
  const { decode, rows, bf16 } = s;
  const bad = (value: number, index: number) =>
    new FileFormatError(
      'E_WEIGHTS_NOT_FINITE',
      where,
      `holds ${value} at element ${index}: the model is broken (a diverged training run?); use an earlier checkpoint`,
      name,
    );
  const checked = (v: Float32Array, first: number) => {
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw bad(v[i]!, first + i);
    return v;
  };
  return {
    ...s,
    ...(decode ? { decode: () => checked(decode(), 0) } : {}),
    ...(rows
      ? {
          rows: (lo: number, hi: number) => {
            const v = rows(lo, hi);
            return checked(v, (lo * v.length) / Math.max(1, hi - lo));
          },
        }
      : {}),
    ...(bf16
      ? {
          bf16: () => {
            const b = bf16();
            // bfloat16 is float32's top half (little-endian: the high byte second); its 8 exponent bits all set is
            // ±Infinity or NaN
            const at = (i: number) => {
              const u = (b[2 * i + 1]! << 24) | (b[2 * i]! << 16);
              return bad(new Float32Array(new Int32Array([u]).buffer)[0]!, i);
            };
            if (b.byteOffset % 2 === 0) {
              const u = new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
              for (let i = 0; i < u.length; i++) if ((u[i]! & 0x7f80) === 0x7f80) throw at(i);
            } else
              for (let i = 0; 2 * i + 1 < b.length; i++)
                if ((b[2 * i + 1]! & 0x7f) === 0x7f && (b[2 * i]! & 0x80) !== 0) throw at(i);
            return b;
          },
        }
      : {}),
  };
}
