/**
 * Cache from a pre-tokenized word (a span of the input text) to its token ids. Most words of a text repeat, so
 * most of encoding is this lookup. It is keyed by the span itself: the hash is computed over text[start..end)
 * and a hit is confirmed by comparing characters in place, so a hit allocates nothing (no substring, no array),
 * unlike a Map<string, number[]>. Open addressing over typed arrays; ids live in one growing Int32Array pool.
 * When it holds `maxEntries` words it is cleared (simple, and the working set of a text refills it quickly).
 */

/** FNV-1a over UTF-16 code units of text[start..end). */
export function spanHash(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
}

export class WordCache {
  private slots: Int32Array; // entry + 1, 0 = empty
  private mask: number;
  private words: string[] = [];
  private hashes: number[] = [];
  private idStart: number[] = [];
  private idLen: number[] = [];
  private pool = new Int32Array(1 << 16);
  private poolLen = 0;

  constructor(private readonly maxEntries = 1 << 17) {
    let cap = 1024;
    while (cap < maxEntries * 2) cap *= 2;
    this.slots = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.words.length;
  }

  clear(): void {
    this.slots.fill(0);
    this.words = [];
    this.hashes = [];
    this.idStart = [];
    this.idLen = [];
    this.poolLen = 0;
  }

  /**
   * If text[start..end) (hash `h`) is cached, append its ids to `out` and return true.
   */
  emit(text: string, start: number, end: number, h: number, out: number[]): boolean {
    const len = end - start;
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const e = slots[i]! - 1;
      if (e < 0) return false;
      if (this.hashes[e] === h) {
        const w = this.words[e]!;
        if (w.length === len) {
          let k = 0;
          while (k < len && w.charCodeAt(k) === text.charCodeAt(start + k)) k++;
          if (k === len) {
            const s = this.idStart[e]!;
            const n = this.idLen[e]!;
            const pool = this.pool;
            for (let j = 0; j < n; j++) out.push(pool[s + j]!);
            return true;
          }
        }
      }
      i = (i + 1) & mask;
    }
  }

  /** Remember that `word` (hash `h`) encodes to ids[from..to). */
  add(word: string, h: number, ids: readonly number[], from: number, to: number): void {
    if (this.words.length >= this.maxEntries) this.clear();
    const n = to - from;
    if (this.poolLen + n > this.pool.length) {
      const np = new Int32Array(Math.max(this.pool.length * 2, this.poolLen + n));
      np.set(this.pool.subarray(0, this.poolLen));
      this.pool = np;
    }
    for (let j = 0; j < n; j++) this.pool[this.poolLen + j] = ids[from + j]!;
    const e = this.words.length;
    this.words.push(word);
    this.hashes.push(h);
    this.idStart.push(this.poolLen);
    this.idLen.push(n);
    this.poolLen += n;
    const mask = this.mask;
    let i = h & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = e + 1;
  }
}
