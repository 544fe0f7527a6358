/**
 * A few prompt caches (src/generate/prompt_cache.ts) kept between requests, as llama-server's slots: a request takes
 * the one whose cached tokens share the longest prefix with its prompt, so the next turn of a conversation prefills
 * only its new messages, even when other conversations came in between. When none shares anything, the least
 * recently used one is taken (and cut back). Requests run one at a time (./queue.ts), so a cache is never used by
 * two at once. Memory: each cache holds up to the model's window of keys and values.
 */
import type { DecoderModel } from '../generate/interfaces.js';
import { PromptCache, type TruncatableCache } from '../generate/prompt_cache.js';

export class PromptCachePool {
  private readonly slots: { cache: PromptCache; used: number }[] = [];
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

  /** The cache for this prompt (the longest shared prefix; else a fresh or the least recently used one), or null. */
  pick(prompt: readonly number[]): PromptCache | null {
    if (this.size === 0) return null;
    let best: { cache: PromptCache; used: number } | null = null;
    let bestLen = 0;
    for (const s of this.slots) {
      const held = s.cache.ids;
      let n = 0;
      const most = Math.min(held.length, prompt.length);
      while (n < most && held[n] === prompt[n]) n++;
      if (n > bestLen) {
        best = s;
        bestLen = n;
      }
    }
    if (!best) {
      if (this.slots.length < this.size) {
        best = { cache: new PromptCache(this.model as DecoderModel<TruncatableCache>), used: 0 };
        this.slots.push(best);
      } else best = this.slots.reduce((a, b) => (a.used <= b.used ? a : b));
    }
    best.used = ++this.clock;
    return best.cache;
  }

  /** Free every cache's keys and values. */
  dispose(): void {
    for (const s of this.slots) s.cache.dispose();
    this.slots.length = 0;
  }
}
