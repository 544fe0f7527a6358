/**
 * A hash table from a pair of token ids (a, b) to a non-negative int32 value: open addressing with linear probing
 * over typed arrays, so lookups allocate nothing (a JavaScript Map keyed by `a * 2^21 + b` would box every key
 * above 2^30 as a heap number). Used for the merge ranks when encoding and for pair ids when training.
 * Entries are never removed (neither use needs it).
 */

const EMPTY = -1;

export class PairTable {
  private keysA: Int32Array;
  private keysB: Int32Array;
  private vals: Int32Array;
  private mask: number;
  /** Number of entries. */
  size = 0;

  constructor(expected = 16) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.keysA = new Int32Array(cap).fill(EMPTY);
    this.keysB = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private static hash(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    return h;
  }

  /** The value stored for (a, b), or -1. */
  get(a: number, b: number): number {
    const keysA = this.keysA;
    const mask = this.mask;
    let i = PairTable.hash(a, b) & mask;
    for (;;) {
      const ka = keysA[i]!;
      if (ka === EMPTY) return -1;
      if (ka === a && this.keysB[i] === b) return this.vals[i]!;
      i = (i + 1) & mask;
    }
  }

  /** Store `value` (≥ 0) for (a, b), replacing any previous value. */
  set(a: number, b: number, value: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const mask = this.mask;
    let i = PairTable.hash(a, b) & mask;
    for (;;) {
      const ka = this.keysA[i]!;
      if (ka === EMPTY) {
        this.keysA[i] = a;
        this.keysB[i] = b;
        this.vals[i] = value;
        this.size++;
        return;
      }
      if (ka === a && this.keysB[i] === b) {
        this.vals[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
  }

  /** The value for (a, b); if absent, store `make()` first and return it. */
  getOrAdd(a: number, b: number, make: () => number): number {
    const v = this.get(a, b);
    if (v >= 0) return v;
    const nv = make();
    this.set(a, b, nv);
    return nv;
  }

  private grow(): void {
    const { keysA, keysB, vals } = this;
    const cap = (this.mask + 1) * 2;
    this.keysA = new Int32Array(cap).fill(EMPTY);
    this.keysB = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < keysA.length; i++) {
      if (keysA[i] !== EMPTY) this.set(keysA[i]!, keysB[i]!, vals[i]!);
    }
  }
}
