/**
 * BPE training (byte level), the algorithm of Hugging Face `tokenizers`' BpeTrainer:
 *  1. cut the corpus into words with the split pattern and count each distinct word (a 10 MB corpus has ~2 M
 *     words but only tens of thousands of distinct ones, and all the work below is per distinct word);
 *  2. count every adjacent pair of tokens over the distinct words (weighted by word count) and remember, per pair,
 *     which words hold it;
 *  3. repeatedly take the most frequent pair from a max-heap (ties: smaller left id, then smaller right id),
 *     rewrite only the words that hold it, and apply the resulting count changes to the neighbouring pairs
 *     (never recounting from scratch). Heap entries are checked lazily: a popped entry whose count is stale is
 *     pushed back with the current count.
 * Ids 0..255 are the single bytes, learned tokens follow in the order they were made, then the special tokens.
 * If a merge makes bytes an earlier merge already made (a+bc and ab+c), it reuses that token's id, as Hugging Face
 * does; so the vocabulary grows by one token per merge except in that case.
 */
import { ConfigError } from '../util/errors.js';
import { bytesKey, encodeUtf8Into, utf8Length } from './bytes.js';
import { PairTable } from './pair_table.js';
import { scannerFor } from './gpt2_splitter.js';
import { compilePattern, namedPattern, type PatternName } from './patterns.js';
import { SpanCounter } from './span_counter.js';
import { SpecialMatcher } from './special_tokens.js';
import { Tokenizer } from './tokenizer.js';
import type { TokenizerConfig } from './types.js';

export interface TrainBpeOptions {
  /** Total vocabulary size: 256 byte tokens + learned tokens + special tokens. */
  vocabSize: number;
  /** Split pattern. Default 'gpt2'. */
  pattern?: PatternName;
  /** Special tokens, given the last ids in this order (e.g. ['<|endoftext|>', '<|im_start|>', '<|im_end|>']). */
  specialTokens?: readonly string[];
  /** Stop early when the best pair occurs fewer times than this. Default 2. */
  minFrequency?: number;
  config?: TokenizerConfig;
  /** Called every 256 merges and at the end with (merges done, merges wanted). */
  onProgress?: (done: number, total: number) => void;
}

export interface TrainStats {
  /** Words (pre-tokens) in the corpus, and distinct ones. */
  words: number;
  distinctWords: number;
  merges: number;
  /** Seconds spent counting words, and merging. */
  countSeconds: number;
  mergeSeconds: number;
}

/** Count the words of `texts` under `pattern`, skipping special-token text (it is never merged into anything). */
export function countWords(
  texts: Iterable<string>,
  pattern: PatternName,
  specialTokens: readonly string[] = [],
): { counts: Map<string, number>; total: number } {
  const counter = countSpans(texts, pattern, specialTokens);
  const counts = new Map<string, number>();
  counter.words.forEach((w, i) => counts.set(w, counter.counts[i]!));
  return { counts, total: counter.total };
}

function countSpans(texts: Iterable<string>, pattern: PatternName, specialTokens: readonly string[]): SpanCounter {
  const src = namedPattern(pattern);
  const re = compilePattern(src);
  const scanner = scannerFor(src);
  const matcher = new SpecialMatcher(specialTokens.map((content, id) => ({ id, content, special: true })));
  const counter = new SpanCounter();
  for (const text of texts) {
    matcher.split(
      text,
      { allowed: 'all' },
      (a, b) => {
        if (scanner !== null) {
          for (let i = a; i < b; ) {
            const j = scanner(text, i, b);
            counter.add(text, i, j);
            i = j;
          }
          return;
        }
        const seg = a === 0 && b === text.length ? text : text.slice(a, b);
        re.lastIndex = 0;
        let m: RegExpExecArray | null;
        while ((m = re.exec(seg)) !== null) counter.add(seg, m.index, m.index + m[0].length);
      },
      () => undefined,
    );
  }
  return counter;
}

/** Train a byte-level BPE tokenizer on `corpus` (one string or several documents). */
export function trainBpe(corpus: string | Iterable<string>, options: TrainBpeOptions): Tokenizer {
  return trainBpeWithStats(corpus, options).tokenizer;
}

export function trainBpeWithStats(
  corpus: string | Iterable<string>,
  options: TrainBpeOptions,
): { tokenizer: Tokenizer; stats: TrainStats } {
  const specials = [...new Set(options.specialTokens ?? [])];
  const vocabSize = options.vocabSize;
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + specials.length) {
    throw new ConfigError(
      'vocabSize',
      `must be an integer ≥ 256 + the number of special tokens (${256 + specials.length}), got ${vocabSize}`,
    );
  }
  if (vocabSize > 1 << 24) throw new ConfigError('vocabSize', `must be at most ${1 << 24}, got ${vocabSize}`);
  for (const s of specials)
    if (s.length === 0) throw new ConfigError('specialTokens', 'a special token cannot be empty');
  const minFrequency = options.minFrequency ?? 2;
  const pattern = options.pattern ?? 'gpt2';
  const texts = typeof corpus === 'string' ? [corpus] : corpus;

  const t0 = performance.now();
  const counter = countSpans(texts, pattern, specials);
  const total = counter.total;

  // ---- distinct words as token-id sequences in one pool (ids 0..255 are bytes) ----
  const nWords = counter.words.length;
  let poolLen = 0;
  for (const w of counter.words) poolLen += utf8Length(w);
  const pool = new Int32Array(poolLen);
  const wordStart = new Int32Array(nWords);
  const wordLen = new Int32Array(nWords);
  const wordCount = new Float64Array(nWords);
  {
    const scratch = new Uint8Array(4096);
    let buf = scratch;
    let pos = 0;
    let w = 0;
    for (let k = 0; k < nWords; k++) {
      const word = counter.words[k]!;
      const c = counter.counts[k]!;
      if (buf.length < word.length * 3) buf = new Uint8Array(word.length * 3);
      const n = encodeUtf8Into(word, buf, 0);
      for (let i = 0; i < n; i++) pool[pos + i] = buf[i]!;
      wordStart[w] = pos;
      wordLen[w] = n;
      wordCount[w] = c;
      pos += n;
      w++;
    }
  }
  const t1 = performance.now();

  // ---- pair statistics ----
  const table = new PairTable(1 << 16);
  const pairA: number[] = [];
  const pairB: number[] = [];
  const pairCount: number[] = [];
  const where: number[][] = [];
  const pairOf = (a: number, b: number): number => {
    let p = table.get(a, b);
    if (p < 0) {
      p = pairA.length;
      table.set(a, b, p);
      pairA.push(a);
      pairB.push(b);
      pairCount.push(0);
      where.push([]);
    }
    return p;
  };
  for (let w = 0; w < nWords; w++) {
    const s = wordStart[w]!;
    const e = s + wordLen[w]! - 1;
    const c = wordCount[w]!;
    for (let i = s; i < e; i++) {
      const p = pairOf(pool[i]!, pool[i + 1]!);
      pairCount[p] += c;
      const lst = where[p]!;
      if (lst.length === 0 || lst[lst.length - 1] !== w) lst.push(w);
    }
  }

  // ---- max-heap of (count, pair): larger count first, then smaller (left, right) ----
  const hc: number[] = [];
  const hp: number[] = [];
  const above = (c1: number, p1: number, c2: number, p2: number): boolean =>
    c1 > c2 || (c1 === c2 && (pairA[p1]! < pairA[p2]! || (pairA[p1] === pairA[p2] && pairB[p1]! < pairB[p2]!)));
  const heapPush = (c: number, p: number): void => {
    let i = hc.length;
    hc.push(c);
    hp.push(p);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!above(c, p, hc[up]!, hp[up]!)) break;
      hc[i] = hc[up]!;
      hp[i] = hp[up]!;
      i = up;
    }
    hc[i] = c;
    hp[i] = p;
  };
  let topC = 0;
  let topP = 0;
  const heapPop = (): void => {
    topC = hc[0]!;
    topP = hp[0]!;
    const lc = hc.pop()!;
    const lp = hp.pop()!;
    const n = hc.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const k = r < n && above(hc[r]!, hp[r]!, hc[l]!, hp[l]!) ? r : l;
      if (!above(hc[k]!, hp[k]!, lc, lp)) break;
      hc[i] = hc[k]!;
      hp[i] = hp[k]!;
      i = k;
    }
    hc[i] = lc;
    hp[i] = lp;
  };
  for (let p = 0; p < pairA.length; p++) if (pairCount[p]! > 0) heapPush(pairCount[p]!, p);

  // ---- merge loop ----
  const tokenBytes: Uint8Array[] = [];
  const bytesToId = new Map<string, number>();
  for (let b = 0; b < 256; b++) {
    tokenBytes.push(Uint8Array.of(b));
    bytesToId.set(String.fromCharCode(b), b);
  }
  const merges: [number, number][] = [];
  const target = vocabSize - specials.length;
  const wantMerges = target - 256;
  const wordStamp = new Int32Array(nWords).fill(-1);
  let pairStamp = new Int32Array(1024).fill(-1);
  const grown: number[] = [];
  let step = 0;

  while (tokenBytes.length < target && hc.length > 0) {
    heapPop();
    const p = topP;
    const actual = pairCount[p]!;
    if (actual !== topC) {
      if (actual > 0 && actual < topC) heapPush(actual, p);
      continue; // stale (a fresher, larger entry exists when actual > topC)
    }
    if (actual < minFrequency) break;
    const a = pairA[p]!;
    const b = pairB[p]!;
    const ba = tokenBytes[a]!;
    const bb = tokenBytes[b]!;
    const joined = new Uint8Array(ba.length + bb.length);
    joined.set(ba, 0);
    joined.set(bb, ba.length);
    const key = bytesKey(joined);
    let x = bytesToId.get(key);
    if (x === undefined) {
      x = tokenBytes.length;
      tokenBytes.push(joined);
      bytesToId.set(key, x);
    }
    merges.push([a, b]);
    const X = x;
    grown.length = 0;
    const inc = (l: number, r: number, c: number, w: number): void => {
      const q = pairOf(l, r);
      pairCount[q] += c;
      const lst = where[q]!;
      if (lst.length === 0 || lst[lst.length - 1] !== w) lst.push(w);
      if (q >= pairStamp.length) {
        const ns = new Int32Array(Math.max(q + 1, pairStamp.length * 2)).fill(-1);
        ns.set(pairStamp);
        pairStamp = ns;
      }
      if (pairStamp[q] !== step) {
        pairStamp[q] = step;
        grown.push(q);
      }
    };
    const dec = (l: number, r: number, c: number): void => {
      pairCount[table.get(l, r)] -= c;
    };
    for (const w of where[p]!) {
      if (wordStamp[w] === step) continue;
      wordStamp[w] = step;
      const s = wordStart[w]!;
      const end = s + wordLen[w]!;
      const c = wordCount[w]!;
      let r = s;
      let wr = s;
      while (r < end) {
        if (r + 1 < end && pool[r] === a && pool[r + 1] === b) {
          if (wr > s) {
            const prev = pool[wr - 1]!;
            dec(prev, a, c);
            inc(prev, X, c, w);
          }
          if (r + 2 < end) {
            const nxt = pool[r + 2]!;
            dec(b, nxt, c);
            inc(X, nxt, c, w);
          }
          pool[wr++] = X;
          r += 2;
        } else {
          pool[wr++] = pool[r++]!;
        }
      }
      wordLen[w] = wr - s;
    }
    pairCount[p] = 0;
    where[p] = [];
    for (const q of grown) if (pairCount[q]! > 0) heapPush(pairCount[q]!, q);
    step++;
    if (options.onProgress && step % 256 === 0) options.onProgress(tokenBytes.length - 256, wantMerges);
  }
  options.onProgress?.(tokenBytes.length - 256, wantMerges);
  const t2 = performance.now();

  const base = tokenBytes.length;
  const tokenizer = new Tokenizer({
    tokenBytes,
    merges,
    specialTokens: specials.map((content, i) => ({ id: base + i, content, special: true })),
    pattern,
    ...(options.config ? { config: options.config } : {}),
  });
  return {
    tokenizer,
    stats: {
      words: total,
      distinctWords: nWords,
      merges: merges.length,
      countSeconds: (t1 - t0) / 1000,
      mergeSeconds: (t2 - t1) / 1000,
    },
  };
}
