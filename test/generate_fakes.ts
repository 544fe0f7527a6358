// Test doubles for the generation engine: a scripted model (same interface as CausalLM's forward/newCache) and a
// byte-level tokenizer. Not a test file itself.
import type { DecoderModel, IdStreamDecoder, TextCodec } from '../src/generate/interfaces.js';
import { Rng } from '../src/util/rng.js';

export class FakeCache {
  rows: number[][];
  constructor(
    readonly batch: number,
    readonly maxLen: number | undefined,
  ) {
    this.rows = Array.from({ length: batch }, () => []);
  }
  /** Row 0's sequence (batch-1 callers). */
  get seq(): number[] {
    return this.rows[0]!;
  }
  get length(): number {
    return this.rows[0]!.length;
  }
  reset(): void {
    this.rows = this.rows.map(() => []);
    this.resets++;
  }
  resets = 0;
}

export interface ForwardCall {
  B: number;
  T: number;
  lastOnly: boolean;
  cacheBefore: number;
}

/**
 * A model whose next-token logits are a function of a row's whole sequence so far. Without a cache it recomputes
 * from the given ids; with one it appends each row's ids to the cache first (as a real KV cache does).
 */
export class FakeModel implements DecoderModel<FakeCache> {
  calls: ForwardCall[] = [];
  disposed = 0;
  created = 0;
  caches: FakeCache[] = [];
  private promptLen = 0;
  constructor(
    readonly config: { vocabSize: number; maxPositions: number },
    /** Logits for the position after `seq`; `promptLen` is the length of the last prefill (a fresh cache's first call, and the chunks that continue it). */
    readonly next: (seq: readonly number[], promptLen: number) => ArrayLike<number>,
  ) {}
  newCache(batch: number, maxLen?: number): FakeCache {
    const c = new FakeCache(batch, maxLen);
    this.caches.push(c);
    return c;
  }
  forward(ids: Int32Array, B: number, T: number, opts: { cache?: FakeCache; lastOnly?: boolean } = {}) {
    const cache = opts.cache;
    this.calls.push({ B, T, lastOnly: !!opts.lastOnly, cacheBefore: cache ? cache.length : 0 });
    if (ids.length !== B * T) throw new Error('fake model: ids length');
    if (cache && cache.batch !== B) throw new Error('fake model: cache batch');
    if (!cache || cache.length === 0) this.promptLen = T;
    else if (opts.lastOnly && cache.length === this.promptLen) this.promptLen += T; // a prefill in chunks goes on
    const out: number[] = [];
    for (let b = 0; b < B; b++) {
      const seq = cache ? cache.rows[b]! : [];
      for (let t = 0; t < T; t++) {
        seq.push(ids[b * T + t]!);
        if (cache?.maxLen !== undefined && seq.length > cache.maxLen) throw new Error('fake model: cache overflow');
        if (seq.length > this.config.maxPositions) throw new Error('fake model: past maxPositions');
        if (!opts.lastOnly || t === T - 1) out.push(...Array.from(this.next(seq, this.promptLen)));
      }
    }
    const flat = Float32Array.from(out);
    this.created++;
    return {
      data: async () => flat,
      dispose: () => {
        this.disposed++;
      },
    };
  }
}

/** Logits that put `hot` far above everything else. */
export function oneHot(V: number, hot: number, margin = 20): Float32Array {
  const l = new Float32Array(V);
  l[hot] = margin;
  return l;
}

/** A model that emits `script` (after any prompt), then `fill` forever. */
export function scriptedModel(script: readonly number[], V = 300, maxPositions = 256, fill = 32): FakeModel {
  return new FakeModel({ vocabSize: V, maxPositions }, (seq, promptLen) => {
    const n = seq.length - promptLen;
    return oneHot(V, n < script.length ? script[n]! : fill);
  });
}

/** A model with a fixed random next-token table (logits depend on the last token): good for sampling tests. */
export function randomBigramModel(V = 64, maxPositions = 512, seed = 5): FakeModel {
  const rng = new Rng(seed);
  const table = Array.from({ length: V }, () => Float32Array.from({ length: V }, () => rng.normal() * 2));
  return new FakeModel({ vocabSize: V, maxPositions }, (seq) => table[seq[seq.length - 1]!]!);
}

/**
 * Byte-level tokenizer: ids 0..255 are bytes; extra ids are multi-byte tokens or specials (decode to '').
 */
export class ByteTokenizer implements TextCodec {
  constructor(readonly extra: Record<number, string | Uint8Array> = {}) {}
  tokenBytes(id: number): Uint8Array {
    if (id < 256) return Uint8Array.of(id);
    const e = this.extra[id];
    if (e === undefined) return new Uint8Array(0);
    return typeof e === 'string' ? new TextEncoder().encode(e) : e;
  }
  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text));
  }
  decode(ids: readonly number[]): string {
    const parts = ids.map((i) => this.tokenBytes(i));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return new TextDecoder().decode(all);
  }
  streamDecoder(): IdStreamDecoder {
    const td = new TextDecoder('utf-8');
    return {
      push: (id) => td.decode(this.tokenBytes(id), { stream: true }),
      flush: () => td.decode(),
    };
  }
}

/** Ids (byte tokens) of a string. */
export function bytesOf(s: string): number[] {
  return Array.from(new TextEncoder().encode(s));
}
