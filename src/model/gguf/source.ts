/**
 * What a model read from a GGUF file keeps of the file, per parameter: the tensor's type (for `export --type source`
 * and for choosing how to quantise it), and — until `releaseGgufSources` — its bytes: decoded on demand to float32 in
 * the model's layout, or, for Q4_K, its blocks as they are (rows in the model's order). A model loaded with vacant
 * linears (modelFromGguf's `vacantLinears`) has no float32 copy of them at all: quantizeModel reads them from here,
 * one matrix at a time.
 */
import type { GgmlType } from '../../formats/gguf_types.js';
import type { CausalLM } from '../model.js';

export interface GgufSource {
  /** The GGUF type the file stored the parameter as. */
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
}

const sources = new WeakMap<CausalLM, Map<string, GgufSource>>();

export function setGgufSources(model: CausalLM, m: Map<string, GgufSource>): void {
  sources.set(model, m);
}

/** The GGUF source of a parameter, when the model was read from GGUF. */
export function ggufSource(model: CausalLM, name: string): GgufSource | undefined {
  return sources.get(model)?.get(name);
}

/** Whether the model was read from a GGUF file. */
export function hasGgufSources(model: CausalLM): boolean {
  return sources.has(model);
}

/** Let go of the file's bytes (the types stay): once the weights a model runs on are stored, they are a second copy. */
export function releaseGgufSources(model: CausalLM): void {
  for (const s of sources.get(model)?.values() ?? []) {
    delete s.raw;
    delete s.decode;
    delete s.q4k;
    delete s.rows;
  }
}
