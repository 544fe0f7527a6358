/**
 * The byte-level BPE model: the bytes of every token, and the merge list (pairs of token ids in priority order).
 * `encodeWord` turns the bytes of one pre-tokenized word into token ids: each byte its single-byte token, then the
 * merges (bpe_merge.ts: lowest rank first, leftmost on ties, as GPT-2, tiktoken and Hugging Face apply them).
 */
import { ConfigError } from '../util/errors.js';
import { MergeList, type ModelErrorFn } from './bpe_merge.js';
import { bytesKey } from './bytes.js';

export type { ModelErrorFn } from './bpe_merge.js';

const defaultFail: ModelErrorFn = (field, message) => {
  throw new ConfigError(field, message);
};

export interface BpeModelOptions {
  /** Llama-3-style `ignore_merges`: a word that is itself a token is emitted whole, merges skipped. */
  ignoreMerges?: boolean;
  fail?: ModelErrorFn;
}

export class BpeModel {
  /** Bytes of each ordinary token by id (undefined: special token or unused id). */
  readonly tokenBytes: readonly (Uint8Array | undefined)[];
  /** The merges in priority order (rank = index): left, right and result ids. */
  readonly merges: MergeList;
  /** Id of the token for each single byte. */
  readonly byteToId: Int32Array;
  readonly ignoreMerges: boolean;
  /** Token bytes (as a Latin-1 key) → id. */
  readonly bytesToId: Map<string, number>;
  private ids = new Int32Array(64);

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
    this.merges = new MergeList(merges, (a, b, r) => {
      const ka = keys[a];
      const kb = keys[b];
      if (ka === undefined || kb === undefined)
        return fail(`model.merges[${r}]`, `merge (${a}, ${b}) refers to an id that is not an ordinary token`);
      const res = this.bytesToId.get(ka + kb);
      if (res === undefined)
        return fail(`model.merges[${r}]`, `merge (${a}, ${b}) makes a token that is not in the vocabulary`);
      return res;
    });
  }

  /** Left, right and result id of each merge, by rank. */
  get mergeLeft(): Int32Array {
    return this.merges.left;
  }
  get mergeRight(): Int32Array {
    return this.merges.right;
  }
  get mergeResult(): Int32Array {
    return this.merges.result;
  }

  /** Number of merges. */
  get mergeCount(): number {
    return this.merges.length;
  }

  /** Merge rank of the pair (a, b), or -1. */
  rank(a: number, b: number): number {
    return this.merges.rank(a, b);
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
    if (this.ids.length < n) this.ids = new Int32Array(Math.max(n, this.ids.length * 2));
    const ids = this.ids;
    const byteToId = this.byteToId;
    for (let i = 0; i < n; i++) ids[i] = byteToId[bytes[start + i]!]!;
    this.merges.mergeInto(ids, n, out);
  }
}
