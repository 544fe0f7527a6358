/**
 * The BPE merge step shared by both BPE families (byte-level `BpeModel`, SentencePiece-style `SpmModel`): given a
 * word as initial symbol ids, repeatedly merge the adjacent pair with the lowest merge rank (leftmost first on
 * ties) until no adjacent pair has a merge — the rule GPT-2, tiktoken, Hugging Face `tokenizers` and SentencePiece's
 * BPE all apply. Short words use an in-place scan (tiktoken's approach); long ones (a CJK paragraph, or a whole
 * SentencePiece text, which has no pre-tokenizer) a linked list plus a binary heap, O(n log n).
 */
import { PairTable } from './pair_table.js';

/** Reports a malformed model: `field` names the part (e.g. `model.merges[12]`). Must throw. */
export type ModelErrorFn = (field: string, message: string) => never;

const NO_RANK = 0x7fffffff;
/** Words up to this many symbols use the quadratic in-place scan; longer ones the heap. */
const SHORT_WORD = 64;
const POS_SCALE = 2 ** 32;

export class MergeList {
  /** Merges in priority order (rank = index): left id, right id, result id. */
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly result: Int32Array;
  private readonly ranks: PairTable;
  private prs = new Int32Array(SHORT_WORD);

  /**
   * @param merges [left, right] id pairs in priority order
   * @param resultOf the id the pair at rank r makes (it reports a merge whose result is not a token)
   */
  constructor(merges: ReadonlyArray<readonly [number, number]>, resultOf: (a: number, b: number, r: number) => number) {
    const n = merges.length;
    this.left = new Int32Array(n);
    this.right = new Int32Array(n);
    this.result = new Int32Array(n);
    this.ranks = new PairTable(n);
    for (let r = 0; r < n; r++) {
      const [a, b] = merges[r]!;
      this.left[r] = a;
      this.right[r] = b;
      this.result[r] = resultOf(a, b, r);
      // a pair listed twice keeps its first (lowest) rank, as Hugging Face does
      if (this.ranks.get(a, b) < 0) this.ranks.set(a, b, r);
    }
  }

  get length(): number {
    return this.left.length;
  }

  /** Merge rank of the pair (a, b), or -1. */
  rank(a: number, b: number): number {
    return this.ranks.get(a, b);
  }

  /** Merge the n symbols in ids[0..n) (overwritten) and append the resulting ids to `out`. */
  mergeInto(ids: Int32Array, n: number, out: number[]): void {
    if (n <= 1) {
      if (n === 1) out.push(ids[0]!);
      return;
    }
    if (n <= SHORT_WORD) this.mergeShort(ids, n, out);
    else this.mergeLong(ids, n, out);
  }

  private mergeShort(ids: Int32Array, n: number, out: number[]): void {
    const prs = this.prs; // prs[i] = rank of (ids[i], ids[i+1]) or NO_RANK
    const ranks = this.ranks;
    for (let i = 0; i < n - 1; i++) {
      const r = ranks.get(ids[i]!, ids[i + 1]!);
      prs[i] = r < 0 ? NO_RANK : r;
    }
    for (;;) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i < n - 1; i++) {
        const r = prs[i]!;
        if (r < best) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      ids[at] = this.result[best]!;
      // drop element at+1 from ids and pair at+1 from prs (plain loops: words are short, copyWithin's call costs more)
      for (let i = at + 1; i < n - 1; i++) ids[i] = ids[i + 1]!;
      for (let i = at + 1; i < n - 2; i++) prs[i] = prs[i + 1]!;
      n--;
      if (at + 1 < n) {
        const r = ranks.get(ids[at]!, ids[at + 1]!);
        prs[at] = r < 0 ? NO_RANK : r;
      } else {
        prs[at] = NO_RANK;
      }
      if (at > 0) {
        const r = ranks.get(ids[at - 1]!, ids[at]!);
        prs[at - 1] = r < 0 ? NO_RANK : r;
      }
    }
    for (let i = 0; i < n; i++) out.push(ids[i]!);
  }

  private mergeLong(ids: Int32Array, n: number, out: number[]): void {
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const ranks = this.ranks;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // min-heap of rank * 2^32 + position: lowest rank first, leftmost on ties
    const heap: number[] = [];
    const push = (v: number): void => {
      let i = heap.length;
      heap.push(v);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= v) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = v;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      const len = heap.length;
      if (len > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= len) break;
          const r = l + 1;
          const c = r < len && heap[r]! < heap[l]! ? r : l;
          if (heap[c]! >= last) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    for (let i = 0; i < n - 1; i++) {
      const r = ranks.get(ids[i]!, ids[i + 1]!);
      if (r >= 0) push(r * POS_SCALE + i);
    }
    while (heap.length > 0) {
      const key = pop();
      const r = Math.floor(key / POS_SCALE);
      const p = key - r * POS_SCALE;
      if (ids[p]! < 0) continue;
      const q = next[p]!;
      if (q < 0 || ranks.get(ids[p]!, ids[q]!) !== r) continue; // stale entry
      ids[p] = this.result[r]!;
      ids[q] = -1;
      const nq = next[q]!;
      next[p] = nq;
      if (nq >= 0) prev[nq] = p;
      const pp = prev[p]!;
      if (pp >= 0) {
        const rr = ranks.get(ids[pp]!, ids[p]!);
        if (rr >= 0) push(rr * POS_SCALE + pp);
      }
      if (nq >= 0) {
        const rr = ranks.get(ids[p]!, ids[nq]!);
        if (rr >= 0) push(rr * POS_SCALE + p);
      }
    }
    for (let i = 0; i >= 0; i = next[i]!) out.push(ids[i]!);
  }
}
