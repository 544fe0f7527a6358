/**
 * SentencePiece-style BPE (Llama 2, Mistral, TinyLlama, Gemma) read from tokenizer.json: on Llama 2's real vocabulary
 * (32,000 pieces, 61,249 merges, from llama-tokenizer-js) our ids equal tokenizers.js's (@huggingface/tokenizers,
 * the JS port of Hugging Face's tokenizers) and llama-tokenizer-js's (which matches Meta's sentencepiece model) on
 * Shakespeare, State of the Union speeches and edge strings; decoding gives the text back and equals tokenizers.js's.
 * The other layouts Hugging Face writes (Metaspace "first", Gemma's), special tokens between stretches, the stream
 * decoder's leading space, unknown characters, files written back unchanged, and named errors for what is refused.
 * llama.cpp's own tokenizer on the same vocabulary through a GGUF file: test/gguf_llamacpp.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import llamaTokenizer from 'llama-tokenizer-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromTokenizerJson, toTokenizerJson } from '../src/tokenizer/hf_json.js';
import { loadTokenizer, saveTokenizer } from '../src/tokenizer/io.js';
import { SpmTokenizer } from '../src/tokenizer/spm_tokenizer.js';
import { StreamDecoder } from '../src/tokenizer/stream_decoder.js';
import { leadingBos } from '../src/tokenizer/leading_bos.js';
import { tokenizerCodec } from '../src/chat/codec.js';
import { EDGE_STRINGS, llama2TokenizerJson, shakespeare, sotu } from './tokenizer_fixtures.js';

type Json = Record<string, unknown>;
const lt = llamaTokenizer as unknown as { encode(t: string, bos: boolean, space: boolean): number[] };
const hfIds = (hf: HfTokenizer, text: string): number[] => hf.encode(text, { add_special_tokens: false }).ids;
const hfText = (hf: HfTokenizer, ids: number[]): string =>
  ids.length ? hf.decode(ids, { clean_up_tokenization_spaces: false }) : '';

let legacyJson: Json;
let legacy: SpmTokenizer;
let legacyHf: HfTokenizer;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-spm-'));

beforeAll(async () => {
  legacyJson = await llama2TokenizerJson(true);
  legacy = fromTokenizerJson(legacyJson) as SpmTokenizer;
  legacyHf = new HfTokenizer(legacyJson, {});
});
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** A copy of Llama 2's tokenizer.json with some top-level fields replaced. */
const variant = (over: Json): Json => ({ ...structuredClone(legacyJson), ...over });

describe("Llama 2's tokenizer.json (legacy: Prepend + Replace normalizer, Strip decoder)", () => {
  it('is read as SentencePiece-style BPE with byte fallback', () => {
    expect(legacy).toBeInstanceOf(SpmTokenizer);
    expect(legacy.vocabSize).toBe(32000);
    expect(legacy.merges.length).toBe(61249);
    expect(legacy.byteFallback).toBe(true);
    expect(legacy.unkId).toBe(0);
    expect(legacy.leadingSpaceStrip).toBe(1);
    expect(leadingBos(legacy)).toBe(1); // its TemplateProcessing puts <s> first
  });

  it('encodes Shakespeare and speeches as tokenizers.js and llama-tokenizer-js do, and decodes them back', () => {
    for (const text of [shakespeare().slice(0, 200_000), sotu(150_000, 7)]) {
      const ids = legacy.encode(text);
      expect(ids.length).toBeGreaterThan(text.length / 6);
      expect(ids).toEqual(hfIds(legacyHf, text));
      expect(ids).toEqual(lt.encode(text, false, true));
      expect(legacy.decode(ids)).toBe(text);
      expect(legacy.decode(ids)).toBe(hfText(legacyHf, ids));
    }
  });

  it('edge strings (whitespace runs, many scripts, emoji through byte fallback, control characters)', () => {
    let fellBack = 0;
    for (const s of EDGE_STRINGS) {
      const ids = legacy.encode(s, { special: 'plain' });
      expect(ids, JSON.stringify(s)).toEqual(hfIds(legacyHf, s));
      expect(legacy.decode(ids), JSON.stringify(s)).toBe(hfText(legacyHf, ids));
      if (ids.some((id) => id >= 3 && id < 259)) fellBack++;
    }
    expect(fellBack).toBeGreaterThan(3); // byte fallback was in play
    expect(legacy.encode('🦙')).toEqual([29871, 243, 162, 169, 156]); // "▁" then the four UTF-8 bytes as <0xXX>
  });

  it('special tokens cut the text; each stretch after one gets its own "▁", as Hugging Face does', () => {
    const chat = '<s>[INST] Hello there [/INST] Hi!</s><s>[INST] more [/INST]';
    const ids = legacy.encode(chat, { allowed: 'all' });
    expect(ids).toEqual(hfIds(legacyHf, chat));
    expect(ids.filter((id) => id === 1).length).toBe(2);
    expect(() => legacy.encode(chat)).toThrow(/special token/i); // untrusted text may not carry them
    expect(legacy.encode(chat, { special: 'plain' })).not.toContain(1);
  });

  it('the stream decoder emits what decode returns, leading space stripped once, emoji held until whole', () => {
    for (const text of ['Hello world', '  two spaces first', '🦙 llamas 🦙🦙 and 日本語', ' x']) {
      const ids = legacy.encode(text);
      const sd = new StreamDecoder(legacy);
      const pieces = ids.map((id) => sd.push(id));
      expect(pieces.join('') + sd.flush(), JSON.stringify(text)).toBe(legacy.decode(ids));
      expect(legacy.decode(ids)).toBe(text);
      if (text.startsWith('🦙')) expect(pieces.slice(0, 4).join('')).toBe(''); // bytes of one character held back
    }
    // a whole text's "▁Hi" decodes without the space, as transformers' decode does…
    expect(legacy.decode(legacy.encode('Hi there'))).toBe('Hi there');
    expect(new TextDecoder().decode(legacy.decodeBytes(legacy.encode('Hi')))).toBe(' Hi');
    // …but generated ids continue a text: " there" after "Hi" keeps its space (as llama.cpp and vLLM read them),
    // in the engine's codec and its stream decoder alike
    const [hi, ...there] = legacy.encode('Hi there');
    const codec = tokenizerCodec(legacy);
    expect([hi, there.length]).toEqual([legacy.tokenToId('▁Hi'), 1]);
    expect(codec.decode(there)).toBe(' there');
    const sd = codec.streamDecoder();
    expect(there.map((id) => sd.push(id)).join('') + sd.flush()).toBe(' there');
    expect(legacy.decode(there)).toBe('there');
  });

  it('is written back unchanged and reads back to the same ids (saveTokenizer / loadTokenizer)', async () => {
    const out = toTokenizerJson(legacy, { mergesFormat: 'strings' });
    for (const k of ['normalizer', 'pre_tokenizer', 'decoder', 'post_processor', 'added_tokens'])
      expect(out[k], k).toEqual(legacyJson[k]);
    const model = out.model as Json;
    const want = legacyJson.model as Json;
    expect(model.merges).toEqual(want.merges);
    expect(model.vocab).toEqual(want.vocab);
    for (const k of ['unk_token', 'byte_fallback', 'fuse_unk']) expect(model[k], k).toEqual(want[k]);
    const dir = path.join(TMP, 'llama2');
    await saveTokenizer(legacy, dir);
    const back = await loadTokenizer(dir);
    const text = shakespeare().slice(300_000, 330_000);
    expect(back.encode(text)).toEqual(legacy.encode(text));
  });

  it('special tokens added for chat get ids after the vocabulary and are honoured in templates', () => {
    const tok = fromTokenizerJson(legacyJson) as SpmTokenizer;
    const [a, b] = tok.addSpecialTokens(['<|im_start|>', '<|im_end|>']);
    expect([a, b]).toEqual([32000, 32001]);
    expect(tok.encode('<|im_start|>user\nHi<|im_end|>', { allowed: 'all' })).toEqual([
      32000,
      ...tok.encode('user\nHi'),
      32001,
    ]);
  });
});

describe('the other layouts Hugging Face writes', () => {
  it('Metaspace (prepend_scheme "first", split false): "▁" only at the start of the text', async () => {
    const json = await llama2TokenizerJson(false);
    const tok = fromTokenizerJson(json) as SpmTokenizer;
    const hf = new HfTokenizer(json, {});
    const text = shakespeare().slice(0, 50_000);
    expect(tok.encode(text)).toEqual(hfIds(hf, text));
    expect(tok.encode(text)).toEqual(legacy.encode(text)); // one stretch: the same as the legacy layout
    for (const s of EDGE_STRINGS) expect(tok.encode(s, { special: 'plain' }), JSON.stringify(s)).toEqual(hfIds(hf, s));
    // the difference: no "▁" after a special token, and none added to a text already starting with a space
    const chat = 'Hi</s>there';
    expect(tok.encode(chat, { allowed: 'all' })).toEqual(hfIds(hf, chat));
    expect(tok.encode(chat, { allowed: 'all' })).not.toEqual(legacy.encode(chat, { allowed: 'all' }));
    expect(tok.encode(' x')).toEqual(hfIds(hf, ' x'));
    expect(tok.encode(' x')).not.toEqual(legacy.encode(' x'));
    expect(tok.decode(tok.encode(' x'))).toBe(hfText(hf, tok.encode(' x'))); // "x": the Strip decoder is still there
  });

  it('Gemma\'s (Replace " " → "▁", a Split on " ", no Strip): no leading "▁" and nothing stripped', async () => {
    const json = await llama2TokenizerJson('gemma');
    const tok = fromTokenizerJson(json) as SpmTokenizer;
    const hf = new HfTokenizer(json, {});
    const text = shakespeare().slice(50_000, 80_000);
    expect(tok.encode(text)).toEqual(hfIds(hf, text));
    expect(tok.encode('Hello world')[0]).toBe(legacy.tokenToId('Hello'));
    for (const s of EDGE_STRINGS) {
      const ids = tok.encode(s, { special: 'plain' });
      expect(ids, JSON.stringify(s)).toEqual(hfIds(hf, s));
      expect(tok.decode(ids)).toBe(s.length ? hfText(hf, ids) : '');
    }
    expect(tok.leadingSpaceStrip).toBe(0);
  });

  it('without byte fallback, unknown characters become one <unk> per run (fuse_unk), as Hugging Face does', () => {
    const vocab: Record<string, number> = { '<unk>': 0, '▁': 1, a: 2, b: 3, '▁a': 4, ab: 5, '▁ab': 6 };
    const json: Json = {
      added_tokens: [{ id: 0, content: '<unk>', special: true }],
      normalizer: legacyJson.normalizer,
      pre_tokenizer: null,
      post_processor: null,
      decoder: legacyJson.decoder,
      model: {
        type: 'BPE',
        vocab,
        merges: ['▁ a', 'a b', '▁a b'],
        unk_token: '<unk>',
        fuse_unk: true,
        byte_fallback: false,
      },
    };
    // Metaspace-free, so isSpmStyleJson needs the Prepend/Replace normalizer to recognise it
    const tok = fromTokenizerJson(json) as SpmTokenizer;
    expect(tok).toBeInstanceOf(SpmTokenizer);
    const hf = new HfTokenizer(json, {});
    for (const s of ['ab', 'ab xyz ab', 'a日本b', 'ba ab']) expect(tok.encode(s), s).toEqual(hfIds(hf, s));
    expect(tok.encode('ab xyz ab')).toEqual([6, 1, 0, 6]); // "▁ab", "▁", <unk> for "xyz", "▁ab"
    const noUnk = fromTokenizerJson({ ...json, model: { ...(json.model as Json), unk_token: null } });
    expect(() => noUnk.encode('x')).toThrow(/"x" \(U\+0078\) has no token/);
  });
});

describe('refused by name', () => {
  const refuse = (over: Json, field: RegExp) => {
    try {
      fromTokenizerJson(variant(over), 'tok/tokenizer.json');
    } catch (e) {
      expect(String((e as Error).message)).toMatch(/tok\/tokenizer\.json/);
      expect(String((e as Error).message)).toMatch(field);
      return;
    }
    throw new Error('expected an error');
  };
  it('Metaspace with split, a Regex Replace, a Strip on the right, dropout, a merge making no token', () => {
    refuse(
      { pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true } },
      /pre_tokenizer\.split/,
    );
    refuse({ normalizer: { type: 'Replace', pattern: { Regex: ' +' }, content: '▁' } }, /normalizer\.pattern.*String/);
    refuse({ decoder: { type: 'Strip', content: ' ', start: 0, stop: 1 } }, /decoder.*leading spaces/);
    refuse({ model: { ...(legacyJson.model as Json), dropout: 0.1 } }, /model\.dropout/);
    const merges = [...((legacyJson.model as Json).merges as string[])];
    merges[5] = '▁t ▁t';
    refuse({ model: { ...(legacyJson.model as Json), merges } }, /model\.merges\[5\].*not in the vocabulary/);
    refuse({ normalizer: { type: 'Lowercase' } }, /normalizer.*Lowercase/);
  });
});
