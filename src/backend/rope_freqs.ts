/**
 * The inverse frequencies of a rope kernel call, shared by every backend so they rotate by the same angles.
 *
 * attrs: `theta` (RoPE base) and, optionally, `invFreq` (D/2 numbers): the inverse frequencies themselves, for a
 * scaled RoPE (Llama 3's `rope_type: llama3`, linear scaling, a GGUF's `rope_freqs` factors: src/model/rope.ts
 * computes them). Without `invFreq`, inv_freq[i] = 1 / theta^(2i/D) with the exponent rounded to float32, as
 * transformers computes it. Either way the result is float32.
 */
import type { Attrs } from './backend.js';
import { ShapeError } from '../util/errors.js';

/** inv_freq [D/2] of a rope call's attrs. */
export function ropeInvFreq(a: Attrs | undefined, D: number): Float32Array {
  const given = a?.['invFreq'] as readonly number[] | undefined;
  if (given) {
    if (given.length !== D / 2)
      throw new ShapeError(`rope: invFreq has ${given.length} values, head dimension ${D} needs ${D / 2}`);
    return Float32Array.from(given);
  }
  const theta = a?.['theta'] as number;
  const f = new Float32Array(D / 2);
  for (let i = 0; i < D / 2; i++) f[i] = 1 / Math.pow(theta, Math.fround((2 * i) / D));
  return f;
}

const ids = new WeakMap<object, number>();
let nextId = 0;

/**
 * A short key naming a call's frequencies (for a backend that keeps a table between calls): theta, or the identity of
 * the `invFreq` array (a model passes the same array to every call, so its table is kept across layers and steps).
 */
export function ropeFreqKey(a: Attrs | undefined): string {
  const given = a?.['invFreq'] as readonly number[] | undefined;
  if (!given) return `θ${a?.['theta'] as number}`;
  let id = ids.get(given);
  if (id === undefined) ids.set(given, (id = nextId++));
  return `f${id}`;
}
