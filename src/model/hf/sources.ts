/**
 * A safetensors checkpoint read for quantised inference: its linear weights and token embedding stay undecoded (the
 * file's bytes), the model's parameters for them vacant, and quantizeModel decodes each matrix a slice of rows at a
 * time to store it (../weight_source.ts). A bfloat16 Llama 3.2 1B is 2.5 GB of bytes and would be 4.9 GB of float32,
 * past WebAssembly's 4 GiB; read this way it runs as bf16 (2.5 GB) or q8 (1.3 GB) without a float32 copy ever made.
 */
import { decodeTensorBytes, dtypeSize, type StoredTensor } from '../../formats/safetensors_bytes.js';
import { FileFormatError } from '../../util/errors.js';
import { finiteSource, undecodedMatrix, type WeightSource } from '../weight_source.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/**
 * The vacant parameters and their sources for a checkpoint's undecoded tensors (read with `undecodedMatrix`).
 * `where` names the checkpoint in errors.
 */
export function safetensorsSources(
  stored: ReadonlyMap<string, StoredTensor>,
  where: string,
): { vacant: Set<string>; sources: Map<string, WeightSource> } {
  const vacant = new Set<string>();
  const sources = new Map<string, WeightSource>();
  for (const [name, t] of stored) {
    if (!undecodedMatrix(name, t.shape)) continue;
    const dtype = t.dtype;
    if (!FLOAT_DTYPES.has(dtype))
      throw new FileFormatError('E_TENSOR_DTYPE', where, `dtype ${dtype} is not a floating-point type`, name);
    const raw = t.raw,
      rowBytes = t.shape[1]! * dtypeSize(dtype);
    const decode = (bytes: Uint8Array) => decodeTensorBytes(dtype, bytes, where, name) as Float32Array;
    vacant.add(name);
    sources.set(
      name,
      finiteSource(
        {
          type: dtype as 'F32' | 'F16' | 'BF16',
          raw: () => raw,
          decode: () => decode(raw),
          rows: (lo, hi) => decode(raw.subarray(lo * rowBytes, hi * rowBytes)),
          ...(dtype === 'BF16' ? { bf16: () => raw } : {}),
        },
        where,
        name,
      ),
    );
  }
  return { vacant, sources };
}
