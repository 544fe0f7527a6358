/**
 * Key/value cache for incremental decoding: per layer, the keys (after RoPE) and values of every position seen so
 * far. Appending a step's (B, T, Hkv, D) makes the next forward attend to S + T positions while computing only the
 * new T rows.
 *
 * The cache is one preallocated (B, maxLen, Hkv, D) buffer per layer for keys and one for values; a step is written
 * in place (`write_at`, through the tensor layer's `applyInPlace`; for B > 1 one call writes each row's T positions as
 * a block, `maxLen` positions apart), so nothing already cached is copied. For one row (B = 1, the decode case)
 * attention reads a (1, S, Hkv, D) view of the first S positions; for B > 1 it reads the whole (B, maxLen, Hkv, D)
 * buffer with its queries placed at `length` (attention's qOffset), so the causal mask keeps it from the positions
 * not written yet (the kernels never read them).
 *
 * Ragged batches (src/generate/batch.ts): `rowStart[b]` is where row b's real tokens start in a left-padded batch;
 * the model then numbers positions from there and attention ignores the padding (the kernels' rowStart). `keepRows`
 * drops finished rows, so they stop costing work.
 */
import { ShapeError } from '../util/errors.js';
import { embedding, ids as idsTensor, ropeFreqAttrs, type RopeFreqs } from '../tensor/ops.js';
import { applyInPlace } from '../tensor/record.js';
import { empty, keep, noGrad, Tensor, tidy } from '../tensor/tensor.js';
import { DecodeGraphSlot } from './decode_graph.js';

export class KVCache {
  private k: (Tensor | null)[];
  private v: (Tensor | null)[];
  /** Number of positions cached. */
  length = 0;
  /** The recorded decode step replayed by CausalLM.forward (./decode_graph.ts); dropped when the buffers change. */
  readonly graph = new DecodeGraphSlot();

  private capacity: number;
  private rows: number;
  private starts: number[] | null;

  /** rowStart: per row, the index of its first real token in a left-padded batch (absent or all 0: no padding). */
  constructor(
    readonly numLayers: number,
    batch: number,
    maxLen: number,
    rowStart?: readonly number[],
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw new ShapeError(`KVCache: batch ${batch} is not an integer ≥ 1`);
    if (rowStart !== undefined) {
      if (rowStart.length !== batch || rowStart.some((s) => !Number.isInteger(s) || s < 0 || s >= maxLen))
        throw new ShapeError(
          `KVCache: rowStart must hold ${batch} integers in [0, ${maxLen}), got [${rowStart.join(', ')}]`,
        );
    }
    this.capacity = maxLen;
    this.rows = batch;
    this.starts = rowStart?.some((s) => s > 0) ? [...rowStart] : null;
    this.k = new Array<Tensor | null>(numLayers).fill(null);
    this.v = new Array<Tensor | null>(numLayers).fill(null);
  }

  /** Number of rows (it shrinks when `keepRows` drops some). */
  get batch(): number {
    return this.rows;
  }

  /** Per row, where its real tokens start (left padding); null when no row is padded. */
  get rowStart(): readonly number[] | null {
    return this.starts;
  }

  /** Append this step's keys/values of `layer`; returns the full (B, S + T, Hkv, D) keys and values. */
  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const [B, T, Hkv, D] = k.shape as [number, number, number, number];
    const S = this.check(B, T);
    return noGrad(() => {
      const bufs = this.buffers(layer, B, Hkv, D, k);
      const row = this.maxLen * Hkv * D; // elements per row of a buffer
      bufs.forEach((buf, i) =>
        B === 1
          ? applyInPlace('write_at', [i ? v : k], [buf], { offset: this.length * Hkv * D })
          : // each row's T positions land `row` elements apart: one call for the batch
            applyInPlace('write_at', [i ? v : k], [buf], {
              offset: this.length * Hkv * D,
              blocks: B,
              blockStride: row,
            }),
      );
      return this.views(bufs, S);
    });
  }

  /**
   * A fused q/k/v projection's step of `layer`, qkv (B, T, (H + 2·Hkv)·D): q and k rotated (positions from `length`,
   * the cache's rowStart), k and v appended, in one kernel (`rope_qkv_cache`). Returns q (B, T, H, D) and the full
   * keys and values as `append` does.
   */
  appendQKV(layer: number, qkv: Tensor, H: number, Hkv: number, freqs: RopeFreqs): [Tensor, Tensor, Tensor] {
    const [B, T, W] = qkv.shape as [number, number, number];
    const D = W / (H + 2 * Hkv);
    if (!Number.isInteger(D)) throw new ShapeError(`KVCache.appendQKV: width ${W} is not (${H} + 2·${Hkv})·D`);
    const S = this.check(B, T);
    return noGrad(() => {
      const bufs = this.buffers(layer, B, Hkv, D, qkv);
      const q = empty([B, T, H, D], { backend: qkv.backend, dtype: qkv.dtype });
      applyInPlace('rope_qkv_cache', [qkv], [q, ...bufs], {
        heads: H,
        kvHeads: Hkv,
        ...ropeFreqAttrs(freqs),
        offset: this.length,
        ...(this.starts ? { rowStart: this.starts } : {}),
      });
      return [q, ...this.views(bufs, S)];
    });
  }

  /** Checks a step of B rows and T positions against the cache; returns S, the positions after it. */
  private check(B: number, T: number): number {
    if (B !== this.batch) throw new ShapeError(`KVCache: batch ${B} but the cache was made for ${this.batch}`);
    const S = this.length + T;
    if (S > this.maxLen) throw new ShapeError(`KVCache: ${S} positions exceed the cache's ${this.maxLen}`);
    return S;
  }

  /** The (B, maxLen, Hkv, D) key and value buffers of `layer`, allocated on first use. */
  private buffers(layer: number, B: number, Hkv: number, D: number, like: Tensor): [Tensor, Tensor] {
    const make = () => keep(empty([B, this.maxLen, Hkv, D], { backend: like.backend, dtype: like.dtype }));
    return [(this.k[layer] ??= make()), (this.v[layer] ??= make())];
  }

  /**
   * What attention reads after a step ending at S: for one row a (1, S, Hkv, D) view of the first S positions; for
   * B > 1 the whole (B, maxLen, Hkv, D) buffers (the caller places its queries at `length`: qOffset).
   */
  private views(bufs: [Tensor, Tensor], S: number): [Tensor, Tensor] {
    if (bufs[0].shape[0] !== 1) return bufs;
    return bufs.map((b) => new Tensor(b.storage, [1, S, b.shape[2]!, b.shape[3]!])) as [Tensor, Tensor];
  }

  /**
   * Keep only these rows (indices into the current rows, in the order given): a gather of their cached positions
   * into smaller buffers, one per layer, so finished rows stop costing work. Their rowStart follows them.
   */
  keepRows(rows: readonly number[]): void {
    if (rows.length === 0 || rows.some((r) => !Number.isInteger(r) || r < 0 || r >= this.rows))
      throw new ShapeError(`KVCache.keepRows: rows [${rows.join(', ')}] are not rows of a batch of ${this.rows}`);
    if (rows.length === this.rows && rows.every((r, i) => r === i)) return;
    this.replaceBuffers((old) => {
      const [B, L, Hkv, D] = old.shape as [number, number, number, number];
      // rows of the flattened buffer (B, L·Hkv·D) gathered by index: the embedding kernel is a row gather
      const picked = embedding(new Tensor(old.storage, [B, L * Hkv * D]), idsTensor(rows, [rows.length], old));
      return new Tensor(picked.storage, [rows.length, L, Hkv, D]);
    });
    if (this.starts) {
      const s = rows.map((r) => this.starts![r]!);
      this.starts = s.some((x) => x > 0) ? s : null;
    }
    this.rows = rows.length;
  }

  /** Positions the cache can hold (the size of its buffers; `reserve` grows it for B = 1). */
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
    this.replaceBuffers((old) => {
      const [, , Hkv, D] = old.shape as [number, number, number, number];
      const grown = empty([1, n, Hkv, D], { backend: old.backend, dtype: old.dtype });
      if (this.length > 0)
        applyInPlace('write_at', [new Tensor(old.storage, [1, this.length, Hkv, D])], [grown], { offset: 0 });
      return grown;
    });
    this.capacity = n;
  }

  /**
   * Every layer's k and v buffer replaced by `make(old)`, the old one freed. In a scope: views and temporaries made
   * on the way are freed too, only the new buffers survive (views made outside one would keep the old buffers alive).
   */
  private replaceBuffers(make: (old: Tensor) => Tensor): void {
    this.graph.drop();
    tidy(() =>
      noGrad(() => {
        for (const store of [this.k, this.v])
          for (let l = 0; l < store.length; l++) {
            const old = store[l];
            if (!old) continue;
            store[l] = keep(make(old));
            old.dispose();
          }
      }),
    );
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
    this.graph.drop();
    for (const t of [...this.k, ...this.v]) t?.dispose();
    this.k.fill(null);
    this.v.fill(null);
    this.length = 0;
  }

  dispose(): void {
    this.reset();
  }
}
