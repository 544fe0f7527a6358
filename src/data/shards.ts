/**
 * Token shards: a corpus is tokenized once into binary files of ids (`uint16` when the vocabulary has at most 65,535
 * ids, else `uint32`, little-endian) plus a small `meta.json` (tokenizer hash, corpus fingerprint, counts). The next
 * run with the same corpus, tokenizer and split finds the folder by its fingerprint and reads the shards back
 * instead of tokenizing again.
 *
 * The train/validation split is deterministic: a corpus of few documents (one text, like tinyshakespeare) is split
 * by position, the first (1 − valFraction) of its characters for training and the rest for validation, as nanoGPT
 * splits tinyshakespeare 90/10; a corpus of many documents puts whole documents in validation, chosen by a fixed-seed
 * shuffle, until they hold valFraction of the text.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { writeFileAtomicSync } from '../util/fs.js';
import { Rng } from '../util/rng.js';
import { type Document, utf8Bytes } from './corpus.js';

/** What the shard builder needs from a tokenizer (BPE or character-level). */
export interface TokenEncoder {
  encode(text: string): ArrayLike<number>;
}

export type IdArray = Uint16Array | Uint32Array;
export type IdDType = 'uint16' | 'uint32';

/** One side of the split: its shards (in memory) and what they hold. */
export interface TokenSplit {
  shards: IdArray[];
  /** Number of token ids over all shards. */
  tokens: number;
  /** UTF-8 bytes of the text these tokens encode (for bits per byte). */
  bytes: number;
  /** Number of documents (or document pieces) in this split. */
  documents: number;
}

export interface ShardMeta {
  version: 1;
  /** Hash of the tokenizer that made the ids (its vocabulary and merges). */
  tokenizerHash: string;
  /** sha256 of the corpus texts, in order. */
  corpusFingerprint: string;
  vocabSize: number;
  dtype: IdDType;
  valFraction: number;
  splitMode: 'position' | 'documents';
  train: { tokens: number; bytes: number; documents: number; files: string[] };
  val: { tokens: number; bytes: number; documents: number; files: string[] };
  createdAt: string;
}

export interface TokenData {
  meta: ShardMeta;
  train: TokenSplit;
  val: TokenSplit;
  /** Folder of the shards and meta.json. */
  dir: string;
  /** True when the shards were read from the cache instead of tokenized now. */
  reused: boolean;
}

export interface PrepareOptions {
  docs: Document[];
  tokenizer: TokenEncoder;
  /** Identifies the tokenizer (a hash of its files); part of the cache key. */
  tokenizerHash: string;
  vocabSize: number;
  /** Fraction of the corpus held out for validation (0 < f < 1); nanoGPT uses 0.1. */
  valFraction: number;
  /** Root folder of the token cache; the shards go into `<cacheDir>/<key>/`. Omit to keep them in memory only. */
  cacheDir?: string;
  /** Ids placed between documents (an end-of-text id, or the ids of "\n\n"). */
  separator?: number[];
  /** Largest number of ids per shard file (default 2^26). */
  shardTokens?: number;
  /** Up to this many documents the split is by position (default 8). */
  positionSplitMaxDocs?: number;
  /** Called while tokenizing: documents done, documents in all. */
  onProgress?: (done: number, total: number) => void;
}

/** sha256 (hex) of the corpus: every document's length and text, in order. */
export function corpusFingerprint(docs: readonly Document[]): string {
  const h = crypto.createHash('sha256');
  for (const d of docs) {
    h.update(`${d.text.length}\n`);
    h.update(d.text);
  }
  return h.digest('hex');
}

/** The id dtype for a vocabulary size. */
export function idDType(vocabSize: number): IdDType {
  return vocabSize <= 65535 ? 'uint16' : 'uint32';
}

/** Split the corpus into training and validation texts (deterministic). */
export function splitCorpus(
  docs: readonly Document[],
  valFraction: number,
  positionSplitMaxDocs = 8,
): { train: string[]; val: string[]; mode: 'position' | 'documents' } {
  if (!(valFraction > 0 && valFraction < 1))
    throw new ConfigError('valFraction', `must be between 0 and 1 (exclusive), got ${valFraction}`);
  if (docs.length <= positionSplitMaxDocs) {
    // Few texts: one stream, split by character position (nanoGPT: data[:int(n*0.9)], data[int(n*0.9):]).
    const whole = docs.map((d) => d.text).join('\n\n');
    const cut = Math.floor(whole.length * (1 - valFraction));
    return { train: [whole.slice(0, cut)], val: [whole.slice(cut)], mode: 'position' };
  }
  // Many documents: a fixed-seed shuffle picks whole documents for validation until they hold valFraction of the text.
  const order = Array.from(docs.keys());
  new Rng(0x5eed).shuffle(order);
  const total = docs.reduce((n, d) => n + d.text.length, 0);
  const isVal = new Uint8Array(docs.length);
  let held = 0;
  for (const i of order) {
    if (held >= valFraction * total) break;
    isVal[i] = 1;
    held += docs[i]!.text.length;
  }
  const train: string[] = [],
    val: string[] = [];
  docs.forEach((d, i) => (isVal[i] ? val : train).push(d.text));
  return { train, val, mode: 'documents' };
}

/** Encode texts into one id stream, with `separator` between texts. */
function encodeTexts(
  texts: string[],
  enc: TokenEncoder,
  separator: number[],
  dtype: IdDType,
  onDoc?: () => void,
): IdArray {
  const parts: ArrayLike<number>[] = [];
  let n = 0;
  texts.forEach((t, i) => {
    if (i > 0 && separator.length) {
      parts.push(separator);
      n += separator.length;
    }
    const ids = enc.encode(t);
    parts.push(ids);
    n += ids.length;
    onDoc?.();
  });
  const out = dtype === 'uint16' ? new Uint16Array(n) : new Uint32Array(n);
  let o = 0;
  for (const p of parts) {
    if (ArrayBuffer.isView(p)) out.set(p as unknown as ArrayLike<number>, o);
    else for (let i = 0; i < p.length; i++) out[o + i] = p[i]!;
    o += p.length;
  }
  return out;
}

/** Cut an id stream into shards of at most `size` ids (views, no copies). */
function cut(ids: IdArray, size: number): IdArray[] {
  if (ids.length <= size) return [ids];
  const out: IdArray[] = [];
  for (let o = 0; o < ids.length; o += size) out.push(ids.subarray(o, Math.min(ids.length, o + size)));
  return out;
}

/** The bytes of an id array (little-endian on every platform Node runs on). */
function bytesOf(a: IdArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Read a shard file back as ids of `dtype`. */
function readShard(file: string, dtype: IdDType, expectTokens?: number): IdArray {
  const buf = fs.readFileSync(file);
  const width = dtype === 'uint16' ? 2 : 4;
  if (buf.byteLength % width !== 0 || (expectTokens !== undefined && buf.byteLength !== expectTokens * width)) {
    throw new FileFormatError(
      'E_SHARD',
      file,
      `size ${buf.byteLength} bytes does not match meta.json (${expectTokens} ids of ${dtype}); delete the folder to rebuild it`,
    );
  }
  // Copy into an aligned buffer (Buffer may share a pool with an odd offset).
  const ab = new ArrayBuffer(buf.byteLength);
  new Uint8Array(ab).set(buf);
  return dtype === 'uint16' ? new Uint16Array(ab) : new Uint32Array(ab);
}

/** The cache key of a corpus + tokenizer + split. */
function cacheKey(fp: string, o: PrepareOptions, separator: number[]): string {
  return crypto
    .createHash('sha256')
    .update(
      JSON.stringify({
        fp,
        tok: o.tokenizerHash,
        v: o.valFraction,
        sep: separator,
        p: o.positionSplitMaxDocs ?? 8,
        n: 1,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}

/** Try to read a cached tokenization; null when absent or stale. */
function tryLoad(dir: string, fp: string, tokenizerHash: string): TokenData | null {
  const metaFile = path.join(dir, 'meta.json');
  if (!fs.existsSync(metaFile)) return null;
  let meta: ShardMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as ShardMeta;
  } catch {
    return null;
  }
  if (meta.version !== 1 || meta.corpusFingerprint !== fp || meta.tokenizerHash !== tokenizerHash) return null;
  const load = (side: ShardMeta['train']): TokenSplit | null => {
    const shards: IdArray[] = [];
    let n = 0;
    for (const f of side.files) {
      const p = path.join(dir, f);
      if (!fs.existsSync(p)) return null;
      const s = readShard(p, meta.dtype);
      shards.push(s);
      n += s.length;
    }
    if (n !== side.tokens) return null;
    return { shards, tokens: side.tokens, bytes: side.bytes, documents: side.documents };
  };
  const train = load(meta.train),
    val = load(meta.val);
  if (!train || !val) return null;
  return { meta, train, val, dir, reused: true };
}

/**
 * Tokenize a corpus into train/validation shards, or read them from the cache when the corpus fingerprint and the
 * tokenizer hash match a folder there.
 */
export function prepareTokens(o: PrepareOptions): TokenData {
  const separator = o.separator ?? Array.from(o.tokenizer.encode('\n\n'));
  const fp = corpusFingerprint(o.docs);
  const dir = o.cacheDir ? path.join(o.cacheDir, cacheKey(fp, o, separator)) : '';
  if (dir) {
    const cached = tryLoad(dir, fp, o.tokenizerHash);
    if (cached) return cached;
  }
  const dtype = idDType(o.vocabSize);
  const split = splitCorpus(o.docs, o.valFraction, o.positionSplitMaxDocs);
  const total = split.train.length + split.val.length;
  let done = 0;
  const tick = () => o.onProgress?.(++done, total);
  const trainIds = encodeTexts(split.train, o.tokenizer, separator, dtype, tick);
  const valIds = encodeTexts(split.val, o.tokenizer, separator, dtype, tick);
  for (const ids of [trainIds, valIds]) {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= o.vocabSize)
        throw new ConfigError('vocabSize', `the tokenizer produced id ${ids[i]} ≥ vocabSize ${o.vocabSize}`);
    }
  }
  const size = o.shardTokens ?? 1 << 26;
  const trainShards = cut(trainIds, size),
    valShards = cut(valIds, size);
  const bytes = (texts: string[]) => texts.reduce((n, t) => n + utf8Bytes(t), 0);
  const meta: ShardMeta = {
    version: 1,
    tokenizerHash: o.tokenizerHash,
    corpusFingerprint: fp,
    vocabSize: o.vocabSize,
    dtype,
    valFraction: o.valFraction,
    splitMode: split.mode,
    train: {
      tokens: trainIds.length,
      bytes: bytes(split.train),
      documents: split.train.length,
      files: trainShards.map((_, i) => `train_${String(i).padStart(4, '0')}.bin`),
    },
    val: {
      tokens: valIds.length,
      bytes: bytes(split.val),
      documents: split.val.length,
      files: valShards.map((_, i) => `val_${String(i).padStart(4, '0')}.bin`),
    },
    createdAt: new Date().toISOString(),
  };
  if (dir) {
    trainShards.forEach((s, i) => writeFileAtomicSync(path.join(dir, meta.train.files[i]!), bytesOf(s)));
    valShards.forEach((s, i) => writeFileAtomicSync(path.join(dir, meta.val.files[i]!), bytesOf(s)));
    writeFileAtomicSync(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
  }
  return {
    meta,
    train: { shards: trainShards, tokens: meta.train.tokens, bytes: meta.train.bytes, documents: meta.train.documents },
    val: { shards: valShards, tokens: meta.val.tokens, bytes: meta.val.bytes, documents: meta.val.documents },
    dir,
    reused: false,
  };
}
