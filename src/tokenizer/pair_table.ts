/**
 * A hash table from a pair of token ids (a, b) to a non-negative int32 value: open addressing with linear probing
 * over one Int32Array of [a, b, value, -] slots (one cache line holds the whole probe), so lookups allocate nothing
 * (a JavaScript Map keyed by `a * 2^21 + b` would box every key above 2^30 as a heap number). Used for the merge
 * ranks when encoding and for pair ids when training. Entries are never removed (neither use needs it).
 */

const EMPTY = -1;

function hash(a: number, b: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h;
}

export class PairTable {
  /** slot i: [4i] = a (EMPTY if free), [4i+1] = b, [4i+2] = value */
  private slots: Int32Array;
  private mask: number;
  /** Number of entries. */
  size = 0;

  constructor(expected = 16) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = PairTable.alloc(cap);
    this.mask = cap - 1;
  }

  private static alloc(cap: number): Int32Array {
    const s = new Int32Array(cap * 4);
    for (let i = 0; i < s.length; i += 4) s[i] = EMPTY;
    return s;
  }

  /** The value stored for (a, b), or -1. */
  get(a: number, b: number): number {
    const slots = this.slots;
    const mask = this.mask;
    let i = hash(a, b) & mask;
    for (;;) {
      const o = i << 2;
      const ka = slots[o]!;
      if (ka === a && slots[o + 1] === b) return slots[o + 2]!;
      if (ka === EMPTY) return -1;
      i = (i + 1) & mask;
    }
  }

  /** Store `value` (≥ 0) for (a, b), replacing any previous value. */
  set(a: number, b: number, value: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const slots = this.slots;
    const mask = this.mask;
    let i = hash(a, b) & mask;
    for (;;) {
      const o = i << 2;
      const ka = slots[o]!;
      if (ka === EMPTY) {
        slots[o] = a;
        slots[o + 1] = b;
        slots[o + 2] = value;
        this.size++;
        return;
      }
      if (ka === a && slots[o + 1] === b) {
        slots[o + 2] = value;
        return;
      }
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.slots = PairTable.alloc(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let o = 0; o < old.length; o += 4) {
      if (old[o] !== EMPTY) this.set(old[o]!, old[o + 1]!, old[o + 2]!);
    }
  }
}
