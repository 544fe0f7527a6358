/**
 * The byte-level BPE model: the bytes of every token, and the merge list (pairs of token ids in priority order).
 * `encodeWord` turns the bytes of one pre-tokenized word into token ids by repeatedly merging the adjacent pair with
 * the lowest merge rank (leftmost first on ties) until no adjacent pair has a merge: the rule GPT-2, tiktoken and
 * Hugging Face `tokenizers` all apply. Short words use an in-place scan (tiktoken's approach); long ones (a CJK
 * paragraph is a single "word" under these patterns) a linked list plus a binary heap, O(n log n).
 */
import { ConfigError } from '../util/errors.js';
import { bytesKey } from './bytes.js';
import { PairTable } from './pair_table.js';

/** Reports a malformed model: `field` names the part (e.g. `model.merges[12]`). Must throw. */
export type ModelErrorFn = (field: string, message: string) => never;

const defaultFail: ModelErrorFn = (field, message) => {
  throw new ConfigError(field, message);
};

const NO_RANK = 0x7fffffff;
/** Words up to this many bytes use the quadratic in-place scan; longer ones the heap. */
const SHORT_WORD = 64;
const POS_SCALE = 2 ** 32;

export interface BpeModelOptions {
  /** Llama-3-style `ignore_merges`: a word that is itself a token is emitted whole, merges skipped. */
  ignoreMerges?: boolean;
  fail?: ModelErrorFn;
}

export class BpeModel {
  /** Bytes of each ordinary token by id (undefined: special token or unused id). */
  readonly tokenBytes: readonly (Uint8Array | undefined)[];
  /** Merges in priority order (rank = index): left id, right id, result id. */
  readonly mergeLeft: Int32Array;
  readonly mergeRight: Int32Array;
  readonly mergeResult: Int32Array;
  /** Id of the token for each single byte. */
  readonly byteToId: Int32Array;
  readonly ignoreMerges: boolean;
  /** Token bytes (as a Latin-1 key) → id. */
  readonly bytesToId: Map<string, number>;
  private readonly ranks: PairTable;
  // scratch buffers for the short path
  private ids = new Int32Array(SHORT_WORD);
  private prs = new Int32Array(SHORT_WORD);

  /**
   * @param tokenBytes bytes of each ordinary token by id; all 256 single bytes must be present
   * @param merges [left, right] id pairs in priority order; the token with the concatenated bytes must exist
   */
  constructor(
    tokenBytes: readonly (Uint8Array | undefined)[],
    merges: ReadonlyArray<readonly [number, number]>,
    options: BpeModelOptions = {},
  ) {
    const fail: ModelErrorFn = options.fail ?? defaultFail;
    this.tokenBytes = tokenBytes;
    this.ignoreMerges = options.ignoreMerges ?? false;
    this.bytesToId = new Map();
    this.byteToId = new Int32Array(256).fill(-1);
    const keys: string[] = new Array<string>(tokenBytes.length);
    for (let id = 0; id < tokenBytes.length; id++) {
      const b = tokenBytes[id];
      if (!b) continue;
      if (b.length === 0) fail(`model.vocab[${id}]`, 'a token has no bytes');
      const key = bytesKey(b);
      keys[id] = key;
      if (!this.bytesToId.has(key)) this.bytesToId.set(key, id);
      if (b.length === 1 && this.byteToId[b[0]!] === -1) this.byteToId[b[0]!] = id;
    }
    for (let byte = 0; byte < 256; byte++) {
      if (this.byteToId[byte] === -1) {
        fail(
          'model.vocab',
          `no token for the single byte 0x${byte.toString(16).padStart(2, '0')}; a byte-level vocabulary needs all 256`,
        );
      }
    }
    const n = merges.length;
    this.mergeLeft = new Int32Array(n);
    this.mergeRight = new Int32Array(n);
    this.mergeResult = new Int32Array(n);
    this.ranks = new PairTable(n);
    for (let r = 0; r < n; r++) {
      const [a, b] = merges[r]!;
      const ka = keys[a];
      const kb = keys[b];
      if (ka === undefined || kb === undefined)
        fail(`model.merges[${r}]`, `merge (${a}, ${b}) refers to an id that is not an ordinary token`);
      const res = this.bytesToId.get(ka + kb);
      if (res === undefined)
        fail(`model.merges[${r}]`, `merge (${a}, ${b}) makes a token that is not in the vocabulary`);
      this.mergeLeft[r] = a;
      this.mergeRight[r] = b;
      this.mergeResult[r] = res;
      // a pair listed twice keeps its first (lowest) rank, as Hugging Face does
      if (this.ranks.get(a, b) < 0) this.ranks.set(a, b, r);
    }
  }

  /** Number of merges. */
  get mergeCount(): number {
    return this.mergeLeft.length;
  }

  /** Merge rank of the pair (a, b), or -1. */
  rank(a: number, b: number): number {
    return this.ranks.get(a, b);
  }

  /** Append the token ids of the word bytes[start..end) to `out`. */
  encodeWord(bytes: Uint8Array, start: number, end: number, out: number[]): void {
    const n = end - start;
    if (n <= 0) return;
    if (n === 1) {
      out.push(this.byteToId[bytes[start]!]!);
      return;
    }
    if (this.ignoreMerges) {
      const whole = this.bytesToId.get(bytesKey(bytes, start, end));
      if (whole !== undefined) {
        out.push(whole);
        return;
      }
    }
    if (n <= SHORT_WORD) this.encodeShort(bytes, start, n, out);
    else this.encodeLong(bytes, start, n, out);
  }

  private encodeShort(bytes: Uint8Array, start: number, n: number, out: number[]): void {
    const ids = this.ids;
    const prs = this.prs; // prs[i] = rank of (ids[i], ids[i+1]) or NO_RANK
    const ranks = this.ranks;
    const byteToId = this.byteToId;
    for (let i = 0; i < n; i++) ids[i] = byteToId[bytes[start + i]!]!;
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
      ids[at] = this.mergeResult[best]!;
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

  private encodeLong(bytes: Uint8Array, start: number, n: number, out: number[]): void {
    const ids = new Int32Array(n);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const ranks = this.ranks;
    for (let i = 0; i < n; i++) {
      ids[i] = this.byteToId[bytes[start + i]!]!;
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
      ids[p] = this.mergeResult[r]!;
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
