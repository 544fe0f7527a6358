/**
 * Prompt caching across calls (llama.cpp's `cache_prompt`): one KV cache kept between generations for one
 * conversation, with the token ids whose keys and values it holds. A new prompt that starts with some of those ids
 * (a chat's next turn starts with the whole history of the last one) reuses them: the cache is cut back to the
 * common prefix and only the rest of the prompt is prefilled, so a turn costs its new tokens instead of the whole
 * conversation. After the call the cache holds the prompt and every generated token that was fed back. The kept
 * cache starts with room for 512 positions and doubles as prompts grow (copying what it holds), up to the model's
 * window, so a long-context model does not hold its whole window's keys and values from the first turn.
 *
 * Reused positions were computed by earlier forwards (some one token at a time), a fresh prefill computes them in
 * one batch: the logits agree to float32 rounding (~1e-6), not bit for bit, so a sampled token can in principle
 * differ from an uncached run at a near-tie.
 *
 *   const pc = new PromptCache(model);
 *   for await (const ev of stream(model, codec, turn1, { promptCache: pc })) …
 *   for await (const ev of stream(model, codec, turn2, { promptCache: pc })) …   // prefills turn2 minus turn1's prefix
 *   pc.dispose();
 */
import { ConfigError } from '../util/errors.js';
import type { DecoderCache, DecoderModel } from './interfaces.js';

/** A cache that can forget its last positions (src/model/kv_cache.ts KVCache, batch 1), and maybe grow. */
export interface TruncatableCache extends DecoderCache {
  truncate(n: number): void;
  /** Room for at least n positions, keeping what is cached. Without it the cache is made for the whole window. */
  reserve?(n: number): void;
}

/** Positions a kept cache starts with, and its growth factor (it holds no more than the model's window). */
const INITIAL_POSITIONS = 512;
const GROWTH = 2;

export class PromptCache<C extends TruncatableCache = TruncatableCache> {
  private cache: C | null = null;
  private capacity = 0;
  /** The ids whose keys/values the cache holds, in order (its length is the cache's length). */
  private held: number[] = [];
  /** Prompt tokens reused by the last `take` (for reports and tests). */
  lastReused = 0;

  constructor(private readonly model: DecoderModel<C>) {}

  /** Positions the kept cache has room for now (0 before the first call); it grows as prompts do. */
  get room(): number {
    return this.capacity;
  }

  /** The ids the cache holds now. */
  get ids(): readonly number[] {
    return this.held;
  }

  /**
   * The cache for a prompt of `prompt` ids that may grow to `capacity` positions, cut back to the longest prefix of
   * `prompt` it already holds (always leaving at least the last prompt token to prefill: its logits start the reply).
   * Returns the cache and how many leading prompt tokens it holds. Call `settle` when the generation ends.
   */
  take(prompt: readonly number[], capacity: number): { cache: C; reused: number } {
    if (prompt.length === 0) throw new ConfigError('prompt', 'empty prompt');
    const window = this.model.config.maxPositions;
    // a size for `capacity` positions with room to grow into, at most the window
    const size = (need: number) =>
      Math.min(window, Math.max(need, INITIAL_POSITIONS, Math.ceil(this.capacity * GROWTH)));
    if (this.cache && this.capacity < capacity && typeof this.cache.reserve === 'function') {
      this.capacity = size(capacity);
      this.cache.reserve(this.capacity); // keeps the cached positions
    } else if (!this.cache || this.capacity < capacity) {
      this.cache?.reset();
      let cap = size(capacity);
      let cache = this.model.newCache(1, cap);
      if (typeof (cache as Partial<TruncatableCache>).truncate !== 'function') {
        cache.reset();
        throw new ConfigError(
          'promptCache',
          "this model's KV cache cannot be cut back (no truncate()); generate without a prompt cache",
        );
      }
      if (typeof cache.reserve !== 'function' && cap < window) {
        // a cache that cannot grow is made for the whole window
        cache.reset();
        cache = this.model.newCache(1, (cap = window));
      }
      this.cache = cache;
      this.capacity = cap;
      this.held = [];
    }
    let n = 0;
    const most = Math.min(this.held.length, prompt.length - 1);
    while (n < most && this.held[n] === prompt[n]) n++;
    this.cache.truncate(n);
    this.held.length = n;
    this.lastReused = n;
    return { cache: this.cache, reused: n };
  }

  /** After a generation: the cache now holds `ids` (the prompt and the generated tokens fed back, in order). */
  settle(ids: readonly number[]): void {
    if (!this.cache) return;
    if (ids.length !== this.cache.length) {
      // an interrupted forward may have left positions that no id describes: start over next time
      this.cache.truncate(0);
      this.held = [];
      return;
    }
    this.held = [...ids];
  }

  /** Free the cached keys and values (the object stays usable: the next call starts empty). */
  dispose(): void {
    this.cache?.reset();
    this.cache = null;
    this.capacity = 0;
    this.held = [];
  }
}
