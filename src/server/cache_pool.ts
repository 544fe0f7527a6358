/**
 * A few prompt caches (src/generate/prompt_cache.ts) kept between requests, as llama-server's slots: a request takes
 * the one its prompt continues, so the next turn of a conversation prefills only its new messages, even when other
 * conversations came in between (up to `size` of them). When none is continued, a fresh one is made while there is
 * room, else the least recently used one is taken (and cut back). A cache in use by a generation (several run at once
 * with `--parallel`, ./queue.ts) is never picked for another: it is given back with `release`; when every cache is in
 * use a request gets one of its own, freed at its release. Memory: each cache holds up to the model's window of keys
 * and values.
 */
import type { DecoderModel } from '../generate/interfaces.js';
import { PromptCache, type TruncatableCache } from '../generate/prompt_cache.js';

interface Slot {
  cache: PromptCache;
  /** The clock when last picked. */
  used: number;
  /** The length of the prompt it was last picked for (its ids start the cache's, when that generation settled). */
  promptLen: number;
  /** A generation uses it now. */
  busy: boolean;
}

export class PromptCachePool {
  private readonly slots: Slot[] = [];
  /** Caches handed out while every slot was in use: freed at their release. */
  private readonly loose = new Set<PromptCache>();
  private clock = 0;

  /** `size` caches at most (0: none, every prompt is prefilled whole). A model whose cache cannot be cut back gets none. */
  constructor(
    private readonly model: DecoderModel,
    readonly size: number,
  ) {
    if (size > 0) {
      const probe = model.newCache(1, 1);
      const ok = typeof (probe as Partial<TruncatableCache>).truncate === 'function';
      probe.reset();
      if (!ok) this.size = 0;
    }
  }

  /**
   * The cache for this prompt: the one it continues — whose last prompt is a prefix of this one (a conversation's
   * earlier turn, or the same prompt's previous choice), the longest such; else a fresh one while there is room; else
   * the least recently used one. So a new conversation that shares only a system prompt with a cached one does not
   * take (and cut back) that one's cache. Null when the pool has none.
   */
  pick(prompt: readonly number[]): PromptCache | null {
    if (this.size === 0) return null;
    let best: Slot | null = null;
    for (const s of this.slots) {
      if (s.busy || s.promptLen > prompt.length || (best && s.promptLen <= best.promptLen)) continue;
      const held = s.cache.ids;
      let n = 0;
      while (n < s.promptLen && held[n] === prompt[n]) n++;
      if (n === s.promptLen) best = s;
    }
    if (!best) {
      if (this.slots.length < this.size) {
        best = { cache: this.fresh(), used: 0, promptLen: 0, busy: false };
        this.slots.push(best);
      } else {
        const idle = this.slots.filter((s) => !s.busy);
        if (idle.length === 0) {
          const own = this.fresh();
          this.loose.add(own);
          return own;
        }
        best = idle.reduce((a, b) => (a.used <= b.used ? a : b));
      }
    }
    best.used = ++this.clock;
    best.promptLen = prompt.length;
    best.busy = true;
    return best.cache;
  }

  /** The generation that picked `cache` is over: it may serve the next request. */
  release(cache: PromptCache | null): void {
    if (!cache) return;
    if (this.loose.delete(cache)) {
      cache.dispose();
      return;
    }
    const s = this.slots.find((x) => x.cache === cache);
    if (s) s.busy = false;
  }

  private fresh(): PromptCache {
    return new PromptCache(this.model as DecoderModel<TruncatableCache>);
  }

  /** Free every cache's keys and values. */
  dispose(): void {
    for (const s of this.slots) s.cache.dispose();
    for (const c of this.loose) c.dispose();
    this.slots.length = 0;
    this.loose.clear();
  }
}
