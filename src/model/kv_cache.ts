/**
 * Key/value cache for incremental decoding: per layer, the keys (after RoPE) and values of every position seen so
 * far, shape (B, S, Hkv, D). Appending a step's (B, T, Hkv, D) makes the next forward attend to S + T positions
 * while computing only the new T rows.
 */
import { concat } from '../tensor/ops.js';
import { keep, noGrad, Tensor } from '../tensor/tensor.js';

export class KVCache {
  private k: (Tensor | null)[];
  private v: (Tensor | null)[];
  /** Number of positions cached. */
  length = 0;

  constructor(readonly numLayers: number, readonly batch: number, readonly maxLen: number) {
    this.k = new Array<Tensor | null>(numLayers).fill(null);
    this.v = new Array<Tensor | null>(numLayers).fill(null);
  }

  /** Append this step's keys/values of `layer`; returns the full (B, S + T, Hkv, D) keys and values. */
  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    return noGrad(() => {
      const pk = this.k[layer] ?? null, pv = this.v[layer] ?? null;
      const nk = keep(pk ? concat([pk, k], 1) : concat([k], 1));
      const nv = keep(pv ? concat([pv, v], 1) : concat([v], 1));
      pk?.dispose();
      pv?.dispose();
      this.k[layer] = nk;
      this.v[layer] = nv;
      return [nk, nv];
    });
  }

  /** Called by the model after all layers appended a step of T positions. */
  advance(T: number): void {
    this.length += T;
  }

  /** Forget everything (free the memory). */
  reset(): void {
    for (const t of [...this.k, ...this.v]) t?.dispose();
    this.k.fill(null);
    this.v.fill(null);
    this.length = 0;
  }

  dispose(): void {
    this.reset();
  }
}
