/**
 * Files: tokenizer.json / tokenizer_config.json we write load back identically, and Hugging Face's own
 * tokenizers.js (@huggingface/tokenizers) loads them and gives our ids on the same texts (trained with each
 * pattern, and GPT-2); both merge formats; GPT-2 vocab.json + merges.txt import; malformed files → named errors.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import {
  CharTokenizer,
  Tokenizer,
  loadTokenizer,
  saveTokenizer,
  trainBpe,
  toTokenizerJson,
  fromTokenizerJson,
  importVocabAndMerges,
  importTiktokenFile,
  type TextTokenizer,
} from '../src/tokenizer/index.js';
import { FileFormatError, LlmtsError } from '../src/util/errors.js';
import { EDGE_STRINGS, shakespeare, sotu } from './tokenizer_fixtures.js';

let dir: string;
let gpt2: Tokenizer;
const SAMPLE = () => shakespeare().slice(300_000, 360_000) + sotu(60_000, 50) + EDGE_STRINGS.join('\n');

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-tokfiles-'));
  gpt2 = (await loadTokenizer('gpt2')) as Tokenizer;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function readJson(p: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
}

async function hfFor(d: string): Promise<HfTokenizer> {
  return new HfTokenizer(readJson(path.join(d, 'tokenizer.json')), readJson(path.join(d, 'tokenizer_config.json')));
}

function sameIds(a: TextTokenizer, b: TextTokenizer, texts: string[]): void {
  for (const t of texts)
    expect(b.encode(t, { special: 'plain' }), JSON.stringify(t.slice(0, 40))).toEqual(
      a.encode(t, { special: 'plain' }),
    );
}

describe('save and load', () => {
  it('a trained tokenizer round-trips through tokenizer.json + tokenizer_config.json, both merge formats', async () => {
    const t = trainBpe(shakespeare().slice(0, 200_000), {
      vocabSize: 700,
      pattern: 'cl100k',
      specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    });
    t.config = {
      eosToken: '<|endoftext|>',
      bosToken: '<|endoftext|>',
      padToken: '<|endoftext|>',
      chatTemplate: '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}',
      modelMaxLength: 256,
    };
    for (const mergesFormat of ['pairs', 'strings'] as const) {
      const d = path.join(dir, `trained-${mergesFormat}`);
      await saveTokenizer(t, d, { mergesFormat });
      const merges = (readJson(path.join(d, 'tokenizer.json')).model as { merges: unknown[] }).merges;
      expect(typeof merges[0]).toBe(mergesFormat === 'pairs' ? 'object' : 'string');
      const back = (await loadTokenizer(d)) as Tokenizer;
      expect(back).toBeInstanceOf(Tokenizer);
      expect(back.vocabSize).toBe(700);
      expect(back.patternName).toBe('cl100k');
      expect(back.config.chatTemplate).toBe(t.config.chatTemplate);
      expect(back.eosId).toBe(t.specialId('<|endoftext|>'));
      expect(back.config.modelMaxLength).toBe(256);
      sameIds(t, back, [SAMPLE()]);
      expect(back.encode('<|im_start|>hi', { allowed: 'all' })[0]).toBe(t.specialId('<|im_start|>'));
    }
    // no temp files are left behind (writes are temp + rename)
    expect(fs.readdirSync(path.join(dir, 'trained-pairs')).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
  });

  it('GPT-2 saved as tokenizer.json loads back identical; unknown config fields pass through', async () => {
    const d = path.join(dir, 'gpt2');
    gpt2.config = { ...gpt2.config, extra: { add_prefix_space: false, custom_field: [1, 2] } };
    await saveTokenizer(gpt2, d);
    const back = (await loadTokenizer(d)) as Tokenizer;
    expect(back.vocabSize).toBe(50257);
    expect(back.config.extra).toMatchObject({ add_prefix_space: false, custom_field: [1, 2] });
    sameIds(gpt2, back, [SAMPLE()]);
  });

  it("keeps a BOS-adding post_processor (Llama 3 style); our encode never adds BOS, Hugging Face's does", async () => {
    const t = trainBpe(sotu(100_000, 9), {
      vocabSize: 500,
      pattern: 'llama3',
      specialTokens: ['<|begin_of_text|>', '<|end_of_text|>'],
    });
    const bos = t.specialId('<|begin_of_text|>');
    const json = toTokenizerJson(t) as Record<string, unknown>;
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [bos], tokens: ['<|begin_of_text|>'] } },
    };
    const d = path.join(dir, 'bos-pp');
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(json));
    const loaded = (await loadTokenizer(d)) as Tokenizer;
    const d2 = path.join(dir, 'bos-pp-resaved');
    await saveTokenizer(loaded, d2);
    expect(readJson(path.join(d2, 'tokenizer.json')).post_processor).toEqual(json.post_processor);
    const hf = await hfFor(d2);
    const s = 'Fellow citizens of the Senate';
    expect(hf.encode(s).ids).toEqual([bos, ...loaded.encode(s)]);
  });

  it('tokens named like Object.prototype members (toString, __proto__) survive save/load and agree with tokenizers.js', async () => {
    const words = ['toString', 'constructor', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];
    const corpus = Array.from(
      { length: 300 },
      (_, i) => `${words[i % words.length]} x${words[(i * 7) % words.length]}`,
    ).join('\n');
    const t = trainBpe(corpus, { vocabSize: 400, minFrequency: 2, specialTokens: ['__proto__'] }); // a special token named __proto__
    for (const w of words) expect(t.encode(w), w).toHaveLength(1);
    words.push('__proto__');
    const d = path.join(dir, 'proto-names');
    await saveTokenizer(t, d);
    const json = readJson(path.join(d, 'tokenizer.json')) as { model: { vocab: Record<string, number> } };
    for (const w of words) expect(Object.hasOwn(json.model.vocab, w), w).toBe(true);
    const back = (await loadTokenizer(d)) as Tokenizer;
    const hf = await hfFor(d);
    for (const w of [...words, corpus.slice(0, 500)]) {
      expect(back.encode(w, { allowed: 'all' })).toEqual(t.encode(w, { allowed: 'all' }));
      expect(hf.encode(w).ids).toEqual(t.encode(w, { allowed: 'all' }));
    }
    expect(back.specialId('__proto__')).toBe(t.specialId('__proto__'));
  });

  it('the character-level tokenizer saves and loads', async () => {
    const ct = CharTokenizer.fromText(shakespeare() + '東京😀', { specialTokens: ['<|endoftext|>'] });
    const d = path.join(dir, 'char');
    await saveTokenizer(ct, d);
    const back = await loadTokenizer(d);
    expect(back).toBeInstanceOf(CharTokenizer);
    expect(back.vocabSize).toBe(ct.vocabSize);
    const s = 'First Citizen:\n東京😀';
    expect(back.encode(s)).toEqual(ct.encode(s));
    expect(back.encode('<|endoftext|>', { allowed: 'all' })).toEqual([ct.vocabSize - 1]);
  });

  it('imports GPT-2 vocab.json + merges.txt written from our GPT-2', async () => {
    const d = path.join(dir, 'gpt2-files');
    fs.mkdirSync(d, { recursive: true });
    const json = toTokenizerJson(gpt2, { mergesFormat: 'strings' }) as { model: { vocab: object; merges: string[] } };
    fs.writeFileSync(path.join(d, 'vocab.json'), JSON.stringify(json.model.vocab));
    fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\n' + json.model.merges.join('\n') + '\n');
    const t = await loadTokenizer(d); // folder without tokenizer.json: vocab.json + merges.txt
    expect(t.vocabSize).toBe(50257);
    expect(t.specialId('<|endoftext|>')).toBe(50256);
    sameIds(gpt2, t, [SAMPLE()]);
  });
});

describe('Hugging Face tokenizers.js reads what we write and agrees', () => {
  const texts = (): string[] => [SAMPLE(), ...EDGE_STRINGS.filter((s) => !s.includes('<|'))];

  for (const pattern of ['gpt2', 'cl100k', 'llama3'] as const) {
    it(`trained tokenizer, pattern ${pattern}`, async () => {
      const t = trainBpe(sotu(400_000, 3) + EDGE_STRINGS.join('\n'), {
        vocabSize: 2000,
        pattern,
        specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
      });
      const d = path.join(dir, `hf-${pattern}`);
      await saveTokenizer(t, d);
      const hf = await hfFor(d);
      for (const s of texts()) {
        const ours = t.encode(s, { allowed: 'all' }); // HF honours added tokens found in text
        expect(hf.encode(s).ids, JSON.stringify(s.slice(0, 40))).toEqual(ours);
        if (ours.length) expect(hf.decode(ours)).toBe(t.decode(ours));
      }
      // special tokens: HF honours added tokens in text, like our { allowed: 'all' }
      const chat = '<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n';
      expect(hf.encode(chat).ids).toEqual(t.encode(chat, { allowed: 'all' }));
    });
  }

  it('an NFC normalizer (as Qwen-style files have) is honoured the same way', async () => {
    const t = trainBpe(sotu(200_000, 7), { vocabSize: 600, pattern: 'cl100k' });
    const json = toTokenizerJson(t) as Record<string, unknown>;
    json.normalizer = { type: 'NFC' };
    const d = path.join(dir, 'hf-nfc');
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(json));
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), '{}');
    const ours = (await loadTokenizer(d)) as Tokenizer;
    expect(ours.normalizer).toBe('NFC');
    const hf = await hfFor(d);
    const s = 'Cafe\u0301 vs Café, A\u030a and \u212b, ﬁ ligature';
    expect(ours.encode(s)).toEqual(hf.encode(s).ids);
    expect(ours.decode(ours.encode(s))).toBe(s.normalize('NFC'));
  });

  it('ignore_merges (Llama 3) and add_prefix_space are honoured the same way', async () => {
    const t = trainBpe(sotu(200_000, 5), { vocabSize: 700, pattern: 'llama3' });
    for (const variant of ['ignore_merges', 'add_prefix_space'] as const) {
      const json = toTokenizerJson(t) as { model: Record<string, unknown>; pre_tokenizer: unknown };
      if (variant === 'ignore_merges') {
        json.model.ignore_merges = true;
        // a token reachable only as a whole word: merges would split "zqzq", ignore_merges emits it whole
        (json.model.vocab as Record<string, number>)['zqzq'] = 700;
      } else {
        json.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
      }
      const d = path.join(dir, `hf-${variant}`);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(json));
      fs.writeFileSync(path.join(d, 'tokenizer_config.json'), '{}');
      const ours = (await loadTokenizer(d)) as Tokenizer;
      const hf = await hfFor(d);
      for (const s of ['zqzq and zqzqz', 'Hello there', ' leading space', ...EDGE_STRINGS.slice(0, 20)]) {
        expect(ours.encode(s, { special: 'plain' }), `${variant} ${JSON.stringify(s)}`).toEqual(hf.encode(s).ids);
      }
      if (variant === 'ignore_merges') expect(ours.encode('zqzq')).toEqual([700]);
      else expect(ours.decode(ours.encode('Hello'))).toBe(' Hello');
    }
  });

  it('GPT-2', async () => {
    const d = path.join(dir, 'hf-gpt2');
    await saveTokenizer(gpt2, d, { mergesFormat: 'strings' });
    const hf = await hfFor(d);
    for (const s of texts())
      expect(hf.encode(s).ids, JSON.stringify(s.slice(0, 40))).toEqual(gpt2.encode(s, { allowed: 'all' }));
  });
});

describe('malformed files are named errors naming file and field', () => {
  async function expectError(
    files: Record<string, string>,
    field: RegExp,
    code = 'E_TOKENIZER_FILE',
  ): Promise<FileFormatError> {
    const d = fs.mkdtempSync(path.join(dir, 'bad-'));
    for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(d, n), c);
    try {
      await loadTokenizer(d);
    } catch (e) {
      expect(e).toBeInstanceOf(FileFormatError);
      const fe = e as FileFormatError;
      expect(fe.code).toBe(code);
      expect(fe.file).toContain(d);
      expect(fe.message).toMatch(field);
      return fe;
    }
    throw new Error('expected an error');
  }
  let good: Record<string, unknown>;
  beforeAll(() => {
    const t = trainBpe('hello world, hello there, world of hello', {
      vocabSize: 270,
      specialTokens: ['<|endoftext|>'],
      minFrequency: 1,
    });
    good = toTokenizerJson(t) as Record<string, unknown>;
  });
  // biome-ignore lint/suspicious/noExplicitAny: each case breaks a different path of a parsed tokenizer.json
  const mutate = (f: (j: any) => void): string => {
    const j = structuredClone(good);
    f(j);
    return JSON.stringify(j);
  };

  it('tokenizer.json', async () => {
    await expectError({ 'tokenizer.json': '{ not json' }, /JSON/, 'E_JSON');
    await expectError({ 'tokenizer.json': '[]' }, /root/);
    await expectError({ 'tokenizer.json': mutate((j) => delete j.model) }, /\[model\]/);
    await expectError({ 'tokenizer.json': mutate((j) => (j.model.merges = 'a b')) }, /\[model\.merges\]/);
    await expectError(
      { 'tokenizer.json': mutate((j) => j.model.merges.push(['h', 'zzz'])) },
      /model\.merges\[\d+\].*zzz/,
    );
    await expectError({ 'tokenizer.json': mutate((j) => j.model.merges.push('a b c')) }, /model\.merges\[\d+\]/);
    await expectError({ 'tokenizer.json': mutate((j) => (j.model.vocab.h = 'seven')) }, /model\.vocab\["h"\]/);
    await expectError({ 'tokenizer.json': mutate((j) => (j.model.vocab['x y'] = 999)) }, /model\.vocab\["x y"\]/);
    await expectError({ 'tokenizer.json': mutate((j) => delete j.model.vocab['\u0100']) }, /model\.vocab.*0x00/);
    await expectError({ 'tokenizer.json': mutate((j) => (j.added_tokens[0].id = -3)) }, /added_tokens\[0\]\.id/);
    await expectError({ 'tokenizer.json': mutate((j) => (j.added_tokens = {})) }, /\[added_tokens\]/);
    await expectError(
      { 'tokenizer.json': mutate((j) => (j.model.type = 'Unigram')) },
      /model\.type/,
      'E_TOKENIZER_UNSUPPORTED',
    );
    await expectError(
      { 'tokenizer.json': mutate((j) => (j.normalizer = { type: 'Lowercase' })) },
      /normalizer/,
      'E_TOKENIZER_UNSUPPORTED',
    );
    await expectError(
      { 'tokenizer.json': mutate((j) => (j.pre_tokenizer = { type: 'Whitespace' })) },
      /pre_tokenizer\.type/,
      'E_TOKENIZER_UNSUPPORTED',
    );
    await expectError(
      {
        'tokenizer.json': mutate(
          (j) =>
            (j.pre_tokenizer = {
              type: 'Sequence',
              pretokenizers: [
                { type: 'Split', pattern: { Regex: '(' }, behavior: 'Isolated' },
                { type: 'ByteLevel', use_regex: false },
              ],
            }),
        ),
      },
      /pre_tokenizer\.pattern\[0\].*cannot use split pattern/,
    );
  });

  it('tokenizer_config.json', async () => {
    const tj = JSON.stringify(good);
    await expectError({ 'tokenizer.json': tj, 'tokenizer_config.json': '{"eos_token": 5}' }, /\[eos_token\]/);
    await expectError(
      { 'tokenizer.json': tj, 'tokenizer_config.json': '{"chat_template": {"a": 1}}' },
      /\[chat_template\]/,
    );
    await expectError(
      { 'tokenizer.json': tj, 'tokenizer_config.json': '{"model_max_length": "big"}' },
      /\[model_max_length\]/,
    );
    await expectError({ 'tokenizer.json': tj, 'tokenizer_config.json': '{"bos_token": ' }, /JSON/, 'E_JSON');
  });

  it('vocab.json + merges.txt, tiktoken rank files, missing files', async () => {
    await expectError({ 'vocab.json': '{"a": 0, "b": "x"}', 'merges.txt': '' }, /vocab\["b"\]/);
    const vocab: Record<string, number> = {};
    const j = good as { model: { vocab: Record<string, number> } };
    Object.assign(vocab, j.model.vocab);
    await expectError(
      { 'vocab.json': JSON.stringify(vocab), 'merges.txt': '#version: 0.2\nh e\nnot-a-pair\n' },
      /\[line 3\]/,
    );
    await expectError({ 'vocab.json': JSON.stringify(vocab), 'merges.txt': '#version: 0.2\nq zz\n' }, /\[line 2\].*zz/);
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
    await expect(loadTokenizer(empty)).rejects.toMatchObject({ code: 'E_FILE_MISSING' });
    const tk = path.join(dir, 'bad.tiktoken');
    fs.writeFileSync(tk, 'IQ== 0\nnot base64!! 1\n');
    await expect(importTiktokenFile(tk)).rejects.toThrow(/bad\.tiktoken \[line 2\]/);
    fs.writeFileSync(tk, 'IQ== 0\n');
    await expect(importTiktokenFile(tk)).rejects.toThrow(/single byte/);
    await expect(importVocabAndMerges(path.join(dir, 'nope.json'), path.join(dir, 'nope.txt'))).rejects.toBeInstanceOf(
      LlmtsError,
    );
  });

  it('fromTokenizerJson on an object names the file it is given', () => {
    expect(() => fromTokenizerJson({ model: 3 }, 'x/tokenizer.json')).toThrow(/x\/tokenizer\.json \[model\]/);
  });
});
