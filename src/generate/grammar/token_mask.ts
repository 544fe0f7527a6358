/**
 * From a grammar state to the tokens that may come next: a trie of the vocabulary's byte strings, walked through
 * the recognizer's memoised transitions (a subtree is skipped as soon as its prefix is rejected, as llama.cpp's
 * `llama_grammar_reject_candidates` does with partial matches). Tokens with no text of their own (special tokens)
 * are never in it; the end-of-sequence tokens are the caller's to allow when the state is accepting.
 *
 *   TokenTrie.build(bytesOf, V)  once per vocabulary (linear in its bytes)
 *   trie.allowed(runtime, state) → ids whose whole byte string the grammar accepts from `state`
 */
import type { GrammarRuntime, GrammarState } from './matcher.js';

/** A byte trie of a vocabulary. Node 0 is the root; ids ending at a node are listed per node. */
export class TokenTrie {
  /** Per node: first child, next sibling, the byte on the edge into it. */
  private readonly firstChild: Int32Array;
  private readonly nextSibling: Int32Array;
  private readonly byte: Uint8Array;
  /** Per node: ids whose bytes end here (start/end into `ids`). */
  private readonly idStart: Int32Array;
  private readonly idEnd: Int32Array;
  private readonly ids: Int32Array;
  /** Ids with a non-empty byte string. */
  readonly textTokens: number;

  private constructor(
    firstChild: Int32Array,
    nextSibling: Int32Array,
    byte: Uint8Array,
    idStart: Int32Array,
    idEnd: Int32Array,
    ids: Int32Array,
    readonly vocabSize: number,
  ) {
    this.firstChild = firstChild;
    this.nextSibling = nextSibling;
    this.byte = byte;
    this.idStart = idStart;
    this.idEnd = idEnd;
    this.ids = ids;
    this.textTokens = ids.length;
  }

  /**
   * @param bytesOf  a token's bytes, or null for a token that is never text (special, padding, out of the tokenizer)
   * @param V        ids 0..V−1
   */
  static build(bytesOf: (id: number) => Uint8Array | null, V: number): TokenTrie {
    // children as maps while building, then flattened
    const kids: Map<number, number>[] = [new Map()];
    const ends: number[][] = [[]];
    const byteOf: number[] = [0];
    for (let id = 0; id < V; id++) {
      const b = bytesOf(id);
      if (!b || b.length === 0) continue;
      let n = 0;
      for (const x of b) {
        let c = kids[n]!.get(x);
        if (c === undefined) {
          c = kids.length;
          kids.push(new Map());
          ends.push([]);
          byteOf.push(x);
          kids[n]!.set(x, c);
        }
        n = c;
      }
      ends[n]!.push(id);
    }
    const N = kids.length;
    const firstChild = new Int32Array(N).fill(-1);
    const nextSibling = new Int32Array(N).fill(-1);
    for (let n = 0; n < N; n++) {
      let prev = -1;
      for (const c of [...kids[n]!.values()].sort((a, b) => byteOf[a]! - byteOf[b]!)) {
        if (prev < 0) firstChild[n] = c;
        else nextSibling[prev] = c;
        prev = c;
      }
    }
    const idStart = new Int32Array(N);
    const idEnd = new Int32Array(N);
    const all: number[] = [];
    for (let n = 0; n < N; n++) {
      idStart[n] = all.length;
      for (const id of ends[n]!) all.push(id);
      idEnd[n] = all.length;
    }
    return new TokenTrie(firstChild, nextSibling, Uint8Array.from(byteOf), idStart, idEnd, Int32Array.from(all), V);
  }

  /** Nodes in the trie (a measure of the walk's worst case). */
  get size(): number {
    return this.byte.length;
  }

  /** The ids whose whole byte string `runtime` accepts from `state`, ascending. */
  allowed(runtime: GrammarRuntime, state: GrammarState): Int32Array {
    const out: number[] = [];
    // iterative depth-first walk: (node, state) pairs
    const nodeStack: number[] = [0];
    const stateStack: GrammarState[] = [state];
    const { firstChild, nextSibling, byte, idStart, idEnd, ids } = this;
    while (nodeStack.length > 0) {
      const n = nodeStack.pop()!;
      const s = stateStack.pop()!;
      for (let c = firstChild[n]!; c >= 0; c = nextSibling[c]!) {
        const b = byte[c]!;
        let t = s.edges[b];
        if (t === undefined) t = runtime.advance(s, b);
        if (t === null) continue;
        for (let i = idStart[c]!; i < idEnd[c]!; i++) out.push(ids[i]!);
        if (firstChild[c]! >= 0) {
          nodeStack.push(c);
          stateStack.push(t);
        }
      }
    }
    return Int32Array.from(out).sort();
  }
}
