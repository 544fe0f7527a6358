/**
 * `llmts tokenizer train|info` and `llmts tokenize`: exit codes, files written, printed counts and JSON.
 */
import { describe, it, expect, vi, afterAll, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main as tokenizerMain } from '../src/cli/tokenizer.js';
import { main as tokenizeMain } from '../src/cli/tokenize.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizer/index.js';
import { LlmtsError } from '../src/util/errors.js';
import { shakespeare } from './tokenizer_fixtures.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-tokcli-'));
  fs.mkdirSync(path.join(dir, 'corpus'));
  fs.writeFileSync(path.join(dir, 'corpus', 'a.txt'), shakespeare().slice(0, 150_000));
  fs.writeFileSync(
    path.join(dir, 'corpus', 'b.jsonl'),
    ['{"text": "東京は晴れ。 hello there"}', '{"text": "second doc 😀"}'].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'corpus', 'skip.bin'), 'ignored');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    const code = await fn();
    return { code, out: lines.join('\n') };
  } finally {
    spy.mockRestore();
  }
}

describe('llmts tokenizer', () => {
  it('train writes a loadable tokenizer and reports it as JSON', async () => {
    const out = path.join(dir, 'tok');
    const r = await capture(() =>
      tokenizerMain([
        'train',
        path.join(dir, 'corpus'),
        '--vocab-size',
        '800',
        '--out',
        out,
        '--pattern',
        'llama3',
        '--special',
        '<|endoftext|>',
        '<|im_start|>',
        '<|im_end|>',
        '--json',
      ]),
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, number | string>;
    expect(j.vocab_size).toBe(800);
    expect(j.files).toBe(2);
    expect(j.documents).toBe(3);
    expect(j.pattern).toBe('llama3');
    expect(Number(j.bytes_per_token)).toBeGreaterThan(2);
    const tok = (await loadTokenizer(out)) as Tokenizer;
    expect(tok.vocabSize).toBe(800);
    expect(tok.specialId('<|im_end|>')).toBe(799);
    expect(tok.eosId).toBe(797);
    const info = await capture(() => tokenizerMain(['info', out, '--json']));
    expect(JSON.parse(info.out)).toMatchObject({
      type: 'bpe',
      vocab_size: 800,
      pattern: 'cl100k',
      eos_token: '<|endoftext|>',
    });
  });

  it('train --type char makes a character-level tokenizer', async () => {
    const out = path.join(dir, 'char');
    const r = await capture(() =>
      tokenizerMain(['train', path.join(dir, 'corpus', 'a.txt'), '--type', 'char', '--no-special', '--out', out]),
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/character-level tokenizer: \d+ ids/);
    const tok = await loadTokenizer(out);
    expect(tok.kind).toBe('char');
  });

  it('bad input is a named error or a usage exit code', async () => {
    await expect(
      tokenizerMain(['train', path.join(dir, 'nope.txt'), '--vocab-size', '300', '--out', path.join(dir, 'x')]),
    ).rejects.toBeInstanceOf(LlmtsError);
    await expect(
      tokenizerMain(['train', path.join(dir, 'corpus'), '--vocab-size', 'lots', '--out', path.join(dir, 'x')]),
    ).rejects.toThrow(/--vocab-size/);
    await expect(tokenizerMain(['train', path.join(dir, 'corpus'), '--out', path.join(dir, 'x')])).rejects.toThrow(
      /--vocab-size/,
    );
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(
        await tokenizerMain([
          'train',
          path.join(dir, 'corpus'),
          '--vocab-size',
          '300',
          '--out',
          'x',
          '--pattern',
          'bogus',
        ]),
      ).not.toBe(0);
      expect(await tokenizerMain(['frobnicate'])).not.toBe(0);
    } finally {
      err.mockRestore();
    }
  });
});

describe('llmts tokenize', () => {
  it('prints ids, pieces and counts with GPT-2', async () => {
    const r = await capture(() => tokenizeMain(['Hello world', '--tokenizer', 'gpt2']));
    expect(r.code).toBe(0);
    expect(r.out).toContain('15496  "Hello"');
    expect(r.out).toContain('ids: [15496,995]');
    expect(r.out).toContain('2 tokens, 11 bytes, 5.50 bytes/token');
  });

  it('--json gives ids, pieces (partial characters as bytes) and bytes/token', async () => {
    const r = await capture(() => tokenizeMain(['東京 hi', '--tokenizer', 'gpt2', '--json']));
    const j = JSON.parse(r.out) as {
      ids: number[];
      pieces: string[];
      tokens: number;
      bytes: number;
      bytes_per_token: number;
    };
    expect(j.tokens).toBe(j.ids.length);
    expect(j.bytes).toBe(9);
    expect(j.pieces.join('')).toContain(' hi');
    expect(j.pieces.some((p) => /^<[0-9a-f]{2}( [0-9a-f]{2})*>$/.test(p))).toBe(true);
    expect(j.bytes_per_token).toBeCloseTo(9 / j.tokens, 3);
  });

  it('refuses special tokens unless asked, and reads a tokenizer folder and a file', async () => {
    await expect(tokenizeMain(['a<|endoftext|>', '--tokenizer', 'gpt2'])).rejects.toThrow(/--special/);
    const allow = await capture(() =>
      tokenizeMain(['a<|endoftext|>', '--tokenizer', 'gpt2', '--special', 'allow', '--json']),
    );
    expect((JSON.parse(allow.out) as { ids: number[] }).ids).toEqual([64, 50256]);
    const f = path.join(dir, 'in.txt');
    fs.writeFileSync(f, 'To be, or not to be');
    const r = await capture(() => tokenizeMain(['--file', f, '--tokenizer', path.join(dir, 'tok'), '--count']));
    expect(r.out).toMatch(/^\d+ tokens, 19 bytes/);
  });
});
