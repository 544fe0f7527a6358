/**
 * Key/value cache for incremental decoding: per layer, the keys (after RoPE) and values of every position seen so
 * far. Appending a step's (B, T, Hkv, D) makes the next forward attend to S + T positions while computing only the
 * new T rows.
 *
 * For one row (B = 1, the decode case) the cache is one preallocated (maxLen, Hkv, D) buffer per layer; a step is
 * written in place (`write_at`, through the tensor layer's `applyInPlace`) and attention reads a (1, S, Hkv, D) view of its first S positions — no copies of
 * what is already cached. For B > 1 the cache grows by concatenation.
 */
import { ShapeError } from '../util/errors.js';
import { concat } from '../tensor/ops.js';
import { applyInPlace } from '../tensor/record.js';
import { empty, keep, noGrad, Tensor } from '../tensor/tensor.js';

export class KVCache {
  private k: (Tensor | null)[];
  private v: (Tensor | null)[];
  /** Number of positions cached. */
  length = 0;

  private capacity: number;

  constructor(
    readonly numLayers: number,
    readonly batch: number,
    maxLen: number,
  ) {
    this.capacity = maxLen;
    this.k = new Array<Tensor | null>(numLayers).fill(null);
    this.v = new Array<Tensor | null>(numLayers).fill(null);
  }

  /** Append this step's keys/values of `layer`; returns the full (B, S + T, Hkv, D) keys and values. */
  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const [B, T, Hkv, D] = k.shape as [number, number, number, number];
    if (B !== this.batch) throw new ShapeError(`KVCache: batch ${B} but the cache was made for ${this.batch}`);
    const S = this.length + T;
    if (S > this.maxLen) throw new ShapeError(`KVCache: ${S} positions exceed the cache's ${this.maxLen}`);
    return noGrad(() => {
      if (B === 1) {
        const out: Tensor[] = [];
        for (const [store, x] of [
          [this.k, k],
          [this.v, v],
        ] as const) {
          let buf = store[layer];
          if (!buf) buf = store[layer] = keep(empty([1, this.maxLen, Hkv, D], { backend: x.backend, dtype: x.dtype }));
          applyInPlace('write_at', [x], [buf], { offset: this.length * Hkv * D });
          out.push(new Tensor(buf.storage, [1, S, Hkv, D])); // a view of the first S positions
        }
        return [out[0]!, out[1]!];
      }
      const pk = this.k[layer] ?? null,
        pv = this.v[layer] ?? null;
      const nk = keep(pk ? concat([pk, k], 1) : concat([k], 1));
      const nv = keep(pv ? concat([pv, v], 1) : concat([v], 1));
      pk?.dispose();
      pv?.dispose();
      this.k[layer] = nk;
      this.v[layer] = nv;
      return [nk, nv];
    });
  }

  /** Positions the cache can hold (B = 1: the size of its buffers; `reserve` grows it). */
  get maxLen(): number {
    return this.capacity;
  }

  /**
   * Room for at least n positions (B = 1): buffers already allocated are replaced by bigger ones holding the same
   * cached positions (one copy per layer). A cache kept across calls (src/generate/prompt_cache.ts) starts small and
   * grows with the conversation instead of holding the model's whole window from the start.
   */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    if (this.batch !== 1) throw new ShapeError('KVCache.reserve: only for a single row');
    noGrad(() => {
      for (const store of [this.k, this.v]) {
        for (let l = 0; l < store.length; l++) {
          const old = store[l];
          if (!old) continue;
          const [, , Hkv, D] = old.shape as [number, number, number, number];
          const grown = keep(empty([1, n, Hkv, D], { backend: old.backend, dtype: old.dtype }));
          if (this.length > 0)
            applyInPlace('write_at', [new Tensor(old.storage, [1, this.length, Hkv, D])], [grown], { offset: 0 });
          old.dispose();
          store[l] = grown;
        }
      }
    });
    this.capacity = n;
  }

  /** Called by the model after all layers appended a step of T positions. */
  advance(T: number): void {
    this.length += T;
  }

  /** Forget the last positions, keeping the first n (e.g. to re-use a shared prompt prefix). B = 1 only. */
  truncate(n: number): void {
    if (n > this.length || n < 0) throw new ShapeError(`KVCache.truncate: ${n} outside [0, ${this.length}]`);
    if (this.batch !== 1 && n !== this.length) throw new ShapeError('KVCache.truncate: only for a single row');
    this.length = n;
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
