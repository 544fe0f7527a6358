import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { loadCorpus, defaultCorpus, expandGlob, globToRegExp } from '../src/data/corpus.js';
import { prepareTokens, splitCorpus, corpusFingerprint, idDType } from '../src/data/shards.js';
import { Batcher, fixedBatches, checkSplitSize } from '../src/data/batcher.js';
import { Rng } from '../src/util/rng.js';
import { ConfigError, FileFormatError } from '../src/util/errors.js';

/** A tiny character-level encoder for these tests (ids = char codes below 128). */
const asciiEnc = { encode: (s: string) => Array.from(s, (c) => Math.min(c.charCodeAt(0), 127)) };

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-data-'));
  fs.mkdirSync(path.join(dir, 'corpus/sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'corpus/a.txt'), 'alpha text\n');
  fs.writeFileSync(path.join(dir, 'corpus/sub/b.md'), 'beta text\n');
  fs.writeFileSync(path.join(dir, 'corpus/sub/blob.bin'), Buffer.from([0, 1, 2, 0, 255, 0]));
  fs.mkdirSync(path.join(dir, 'corpus/.git'));
  fs.writeFileSync(path.join(dir, 'corpus/.git/x.txt'), 'hidden');
  fs.writeFileSync(path.join(dir, 'ok.jsonl'), '{"text":"one"}\n\n{"text":"two","meta":1}\n');
  fs.writeFileSync(path.join(dir, 'bad.jsonl'), '{"text":"one"}\n{"content":"two"}\n');
  fs.writeFileSync(path.join(dir, 'binary.dat'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0x0d, 0xff, 0xfe]));
  fs.writeFileSync(path.join(dir, 'empty.txt'), '   \n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('corpus input', () => {
  it('reads folders recursively, text files only, skipping hidden folders', () => {
    const docs = loadCorpus([path.join(dir, 'corpus')]);
    expect(docs.map((d) => d.text)).toEqual(['alpha text\n', 'beta text\n']);
  });
  it('expands globs', () => {
    expect(globToRegExp('**/*.txt').test('a/b/c.txt')).toBe(true);
    expect(globToRegExp('*.txt').test('a/c.txt')).toBe(false);
    const files = expandGlob(path.join(dir, 'corpus/**/*.{txt,md}'));
    expect(files.map((f) => path.basename(f))).toEqual(['a.txt', 'b.md']);
    expect(loadCorpus([path.join(dir, 'corpus/*.txt')]).map((d) => d.text)).toEqual(['alpha text\n']);
  });
  it('reads JSONL text fields and names the line without one', () => {
    expect(loadCorpus([path.join(dir, 'ok.jsonl')]).map((d) => d.text)).toEqual(['one', 'two']);
    try {
      loadCorpus([path.join(dir, 'bad.jsonl')]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FileFormatError);
      expect((e as FileFormatError).code).toBe('E_JSONL_FIELD');
      expect((e as Error).message).toContain('bad.jsonl');
      expect((e as Error).message).toContain('line 2');
    }
  });
  it('refuses binary and empty corpora with named errors', () => {
    expect(() => loadCorpus([path.join(dir, 'binary.dat')])).toThrow(/binary/);
    try {
      loadCorpus([path.join(dir, 'binary.dat')]);
    } catch (e) {
      expect((e as FileFormatError).code).toBe('E_CORPUS_BINARY');
    }
    try {
      loadCorpus([path.join(dir, 'empty.txt')]);
      expect.unreachable();
    } catch (e) {
      expect((e as FileFormatError).code).toBe('E_CORPUS_EMPTY');
    }
    expect(() => loadCorpus([path.join(dir, 'nope.txt')])).toThrow(ConfigError);
    expect(() => loadCorpus([path.join(dir, 'nothing/*.txt')])).toThrow(/matches no files/);
  });
  it('embeds the State of the Union corpus', () => {
    const docs = defaultCorpus();
    expect(docs.length).toBeGreaterThan(200);
    expect(docs[0]!.text).toMatch(/^Fellow-Citizens of the Senate and House of Representatives/);
    expect(loadCorpus([], { maxBytes: 5000 }).reduce((n, d) => n + d.text.length, 0)).toBe(5000);
  });
});

describe('split and shards', () => {
  const text = 'abcdefghij'.repeat(100); // 1000 chars
  it('splits one text by position, 90/10 like nanoGPT', () => {
    const s = splitCorpus([{ source: 'x', text }], 0.1);
    expect(s.mode).toBe('position');
    expect(s.train[0]).toBe(text.slice(0, 900));
    expect(s.val[0]).toBe(text.slice(900));
  });
  it('splits many documents deterministically by whole documents', () => {
    const docs = Array.from({ length: 50 }, (_, i) => ({ source: `d${i}`, text: `doc ${i} `.repeat(10 + i) }));
    const a = splitCorpus(docs, 0.1),
      b = splitCorpus(docs, 0.1);
    expect(a).toEqual(b);
    expect(a.mode).toBe('documents');
    const total = docs.reduce((n, d) => n + d.text.length, 0);
    const held = a.val.reduce((n, t) => n + t.length, 0);
    expect(held / total).toBeGreaterThanOrEqual(0.1);
    expect(held / total).toBeLessThan(0.2);
    expect(a.train.length + a.val.length).toBe(50);
  });
  it('writes uint16 shards + meta.json once and reuses them when the fingerprint matches', () => {
    const cacheDir = path.join(dir, 'cache');
    const docs = [{ source: 'x', text }];
    const first = prepareTokens({
      docs,
      tokenizer: asciiEnc,
      tokenizerHash: 'ascii',
      vocabSize: 128,
      valFraction: 0.1,
      cacheDir,
    });
    expect(first.reused).toBe(false);
    expect(first.meta.dtype).toBe('uint16');
    expect(first.train.tokens).toBe(900);
    expect(first.val.tokens).toBe(100);
    expect(first.train.bytes).toBe(900);
    const meta = JSON.parse(fs.readFileSync(path.join(first.dir, 'meta.json'), 'utf8'));
    expect(meta.corpusFingerprint).toBe(corpusFingerprint(docs));
    expect(meta.tokenizerHash).toBe('ascii');
    expect(fs.statSync(path.join(first.dir, meta.train.files[0])).size).toBe(900 * 2);
    let calls = 0;
    const counting = { encode: (s: string) => (s.length > 2 && calls++, asciiEnc.encode(s)) }; // counts documents, not the separator
    const again = prepareTokens({
      docs,
      tokenizer: counting,
      tokenizerHash: 'ascii',
      vocabSize: 128,
      valFraction: 0.1,
      cacheDir,
    });
    expect(again.reused).toBe(true);
    expect(calls).toBe(0);
    expect(Array.from(again.train.shards[0]!)).toEqual(Array.from(first.train.shards[0]!));
    // another corpus or tokenizer: tokenized again
    const other = prepareTokens({
      docs: [{ source: 'x', text: text + 'z' }],
      tokenizer: counting,
      tokenizerHash: 'ascii',
      vocabSize: 128,
      valFraction: 0.1,
      cacheDir,
    });
    expect(other.reused).toBe(false);
    const otherTok = prepareTokens({
      docs,
      tokenizer: counting,
      tokenizerHash: 'ascii-2',
      vocabSize: 128,
      valFraction: 0.1,
      cacheDir,
    });
    expect(otherTok.reused).toBe(false);
    expect(idDType(65535)).toBe('uint16');
    expect(idDType(65536)).toBe('uint32');
  });
  it('uses uint32 for large vocabularies and splits into several shards', () => {
    const docs = [{ source: 'x', text }];
    const big = prepareTokens({
      docs,
      tokenizer: asciiEnc,
      tokenizerHash: 'a',
      vocabSize: 70000,
      valFraction: 0.1,
      cacheDir: path.join(dir, 'c2'),
      shardTokens: 256,
    });
    expect(big.meta.dtype).toBe('uint32');
    expect(big.train.shards.length).toBe(4);
    const back = prepareTokens({
      docs,
      tokenizer: asciiEnc,
      tokenizerHash: 'a',
      vocabSize: 70000,
      valFraction: 0.1,
      cacheDir: path.join(dir, 'c2'),
      shardTokens: 256,
    });
    expect(back.reused).toBe(true);
    expect(back.train.shards[3]).toBeInstanceOf(Uint32Array);
    expect(back.train.shards.reduce((n, s) => n + s.length, 0)).toBe(900);
  });
});

describe('batcher', () => {
  const ids = Uint16Array.from({ length: 1000 }, (_, i) => i % 97);
  const split = { shards: [ids], tokens: 1000, bytes: 1000, documents: 1 };
  it('draws (B, T) windows with shifted targets, nanoGPT get_batch style', () => {
    const b = new Batcher(split, 4, 16, new Rng(1));
    const batch = b.next();
    expect(batch.ids.length).toBe(64);
    for (let r = 0; r < 4; r++) {
      for (let t = 0; t < 15; t++) expect(batch.targets[r * 16 + t]).toBe(batch.ids[r * 16 + t + 1]);
      expect(batch.targets[r * 16 + 15]).toBe((batch.ids[r * 16 + 15]! + 1) % 97);
    }
  });
  it('is deterministic for a seed and restores its state exactly', () => {
    const a = new Batcher(split, 3, 8, new Rng(42));
    const b = new Batcher(split, 3, 8, new Rng(42));
    for (let i = 0; i < 5; i++) expect(a.next()).toEqual(b.next());
    const saved = JSON.parse(JSON.stringify(a.getState()));
    const next3 = [a.next(), a.next(), a.next()];
    const c = new Batcher(split, 3, 8, new Rng(999));
    c.setState(saved);
    expect(c.drawn).toBe(5);
    expect([c.next(), c.next(), c.next()]).toEqual(next3);
    expect(new Batcher(split, 3, 8, new Rng(43)).next()).not.toEqual(new Batcher(split, 3, 8, new Rng(42)).next());
  });
  it('keeps windows inside one shard', () => {
    const s2 = {
      shards: [Uint16Array.from({ length: 20 }, () => 1), Uint16Array.from({ length: 20 }, () => 2)],
      tokens: 40,
      bytes: 40,
      documents: 1,
    };
    const b = new Batcher(s2, 8, 10, new Rng(3));
    for (let i = 0; i < 20; i++) {
      const x = b.next();
      for (let r = 0; r < 8; r++) {
        const row = [...x.ids.slice(r * 10, r * 10 + 10), x.targets[r * 10 + 9]!];
        expect(new Set(row).size).toBe(1);
      }
    }
  });
  it('fixed evaluation batches are the same every time', () => {
    expect(fixedBatches(split, 2, 8, 3, 7)).toEqual(fixedBatches(split, 2, 8, 3, 7));
  });
  it('refuses a corpus smaller than one batch or one window', () => {
    const tiny = { shards: [Uint16Array.of(1, 2, 3, 4, 5)], tokens: 5, bytes: 5, documents: 1 };
    expect(() => new Batcher(tiny, 1, 8, new Rng(0))).toThrow(/fewer than one window/);
    expect(() => checkSplitSize(split, 8, 128, 'train')).toThrow(ConfigError);
    expect(() => checkSplitSize(split, 8, 128, 'train')).toThrow(/smaller than one batch/);
    expect(() => checkSplitSize(split, 4, 16, 'train')).not.toThrow();
  });
});
