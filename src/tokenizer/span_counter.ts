/**
 * Counts distinct words of a text keyed by span (text, start, end), for BPE training: the hash is computed over
 * the span and a repeat is recognised by comparing characters in place, so only the first occurrence of each
 * distinct word allocates a string (a Map<string, number> would need a substring per occurrence).
 */
import { spanHash } from './word_cache.js';

export class SpanCounter {
  private slots = new Int32Array(1 << 16); // entry + 1, 0 = empty
  private mask = (1 << 16) - 1;
  readonly words: string[] = [];
  readonly counts: number[] = [];
  private hashes: number[] = [];
  /** Total words counted (with repeats). */
  total = 0;

  add(text: string, start: number, end: number): void {
    this.total++;
    const h = spanHash(text, start, end);
    const len = end - start;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const e = this.slots[i]! - 1;
      if (e < 0) break;
      if (this.hashes[e] === h) {
        const w = this.words[e]!;
        if (w.length === len) {
          let k = 0;
          while (k < len && w.charCodeAt(k) === text.charCodeAt(start + k)) k++;
          if (k === len) {
            this.counts[e]!++;
            return;
          }
        }
      }
      i = (i + 1) & mask;
    }
    const e = this.words.length;
    this.words.push(text.slice(start, end));
    this.counts.push(1);
    this.hashes.push(h);
    this.slots[i] = e + 1;
    if (this.words.length * 2 > this.mask) this.grow();
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    this.slots = new Int32Array(cap);
    this.mask = cap - 1;
    for (let e = 0; e < this.words.length; e++) {
      let i = this.hashes[e]! & this.mask;
      while (this.slots[i] !== 0) i = (i + 1) & this.mask;
      this.slots[i] = e + 1;
    }
  }
}
