/**
 * A few prompt caches (src/generate/prompt_cache.ts) kept between requests, as llama-server's slots: a request takes
 * the one its prompt continues, so the next turn of a conversation prefills only its new messages, even when other
 * conversations came in between (up to `size` of them). When none is continued, a fresh one is made while there is
 * room, else the least recently used one is taken (and cut back). Requests run one at a time (./queue.ts), so a cache is never used by
 * two at once. Memory: each cache holds up to the model's window of keys and values.
 */
import type { DecoderModel } from '../generate/interfaces.js';
import { PromptCache, type TruncatableCache } from '../generate/prompt_cache.js';

interface Slot {
  cache: PromptCache;
  /** The clock when last picked. */
  used: number;
  /** The length of the prompt it was last picked for (its ids start the cache's, when that generation settled). */
  promptLen: number;
}

export class PromptCachePool {
  private readonly slots: Slot[] = [];
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
      if (s.promptLen > prompt.length || (best && s.promptLen <= best.promptLen)) continue;
      const held = s.cache.ids;
      let n = 0;
      while (n < s.promptLen && held[n] === prompt[n]) n++;
      if (n === s.promptLen) best = s;
    }
    if (!best) {
      if (this.slots.length < this.size) {
        best = { cache: new PromptCache(this.model as DecoderModel<TruncatableCache>), used: 0, promptLen: 0 };
        this.slots.push(best);
      } else best = this.slots.reduce((a, b) => (a.used <= b.used ? a : b));
    }
    best.used = ++this.clock;
    best.promptLen = prompt.length;
    return best.cache;
  }

  /** Free every cache's keys and values. */
  dispose(): void {
    for (const s of this.slots) s.cache.dispose();
    this.slots.length = 0;
  }
}
