/**
 * GGUF without llama.cpp: the container (every metadata type, tensor types, alignment) against @huggingface/gguf, an
 * independent reader; Q8_0 / Q4_0 / Q4_K decoding against the block formulas of ggml-quants.c written here in
 * float64; llama.cpp's q/k row permutation against convert_hf_to_gguf.py's reshape/swapaxes; models and tokenizers
 * through GGUF and back; hostile files. test/gguf_llamacpp.test.ts runs what we write in llama.cpp itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CharTokenizer,
  FileFormatError,
  initBackend,
  loadModel,
  loadTokenizer,
  LlmtsError,
  Rng,
  tidy,
  trainBpe,
  UnsupportedError,
} from '../src/index.js';
import { decodeGgufTensor, ggufTensorBytes, parseGguf, serializeGguf, type GgufValue } from '../src/formats/gguf.js';
import { decodeGgml, encodeGgml } from '../src/formats/gguf_types.js';
import { readGgufFile, readGgufHeader } from '../src/formats/gguf_file.js';
import { fromBf16Bits, fromF16Bits, toBf16Bits, toF16Bits } from '../src/formats/half.js';
import { ggufFromModel, modelFromGguf } from '../src/model/gguf/weights.js';
import { relayout, tensorMappings } from '../src/model/gguf/tensors.js';
import { saveGguf } from '../src/model/gguf/file.js';
import { tokenizerFromGguf, tokenizerToGguf } from '../src/tokenizer/gguf.js';
import { leadingBos } from '../src/tokenizer/leading_bos.js';
import { llama3StyleTokenizer } from './tokenizer_fixtures.js';
import { byteTokenizer, HF_FIXTURES, SHAKESPEARE } from './helpers.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-gguf-'));
const concat = (chunks: Uint8Array[]) => new Uint8Array(Buffer.concat(chunks));

const META: [string, GgufValue][] = [
  ['general.architecture', { type: 'string', value: 'llama' }],
  ['t.u8', { type: 'u8', value: 200 }],
  ['t.i8', { type: 'i8', value: -100 }],
  ['t.u16', { type: 'u16', value: 60000 }],
  ['t.i16', { type: 'i16', value: -30000 }],
  ['t.u32', { type: 'u32', value: 4_000_000_000 }],
  ['t.i32', { type: 'i32', value: -2_000_000_000 }],
  ['t.f32', { type: 'f32', value: 0.5 }],
  ['t.bool', { type: 'bool', value: true }],
  ['t.string', { type: 'string', value: 'héllo ✓' }],
  ['t.u64', { type: 'u64', value: 2n ** 60n }],
  ['t.i64', { type: 'i64', value: -5 }],
  ['t.f64', { type: 'f64', value: Math.PI }],
  ['t.arr_s', { type: 'array', itemType: 'string', value: ['a', '', 'ü'] }],
  ['t.arr_i', { type: 'array', itemType: 'i32', value: [1, -2, 3] }],
  ['t.arr_empty', { type: 'array', itemType: 'f32', value: [] }],
];

function sampleFile(): Uint8Array {
  const x = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i) * (i % 7));
  return concat(
    serializeGguf(META, [
      { name: 'a', shape: [3, 64], type: 'F32', raw: encodeGgml('F32', x) },
      { name: 'b', shape: [3, 64], type: 'F16', raw: encodeGgml('F16', x) },
      { name: 'c', shape: [3, 64], type: 'BF16', raw: encodeGgml('BF16', x) },
      { name: 'd', shape: [3, 64], type: 'Q8_0', raw: encodeGgml('Q8_0', x) },
      { name: 'e', shape: [5], type: 'F32', raw: encodeGgml('F32', x.slice(0, 5)) },
    ]),
  );
}

describe('GGUF container', () => {
  it('writes every metadata type and reads it back; @huggingface/gguf reads the same values and tensor infos', async () => {
    const bytes = sampleFile();
    const g = parseGguf(bytes, 'sample.gguf');
    expect(g.version).toBe(3);
    expect([...g.metadata]).toEqual(META);
    expect(g.tensors.map((t) => [t.name, t.shape, t.type])).toEqual([
      ['a', [3, 64], 'F32'],
      ['b', [3, 64], 'F16'],
      ['c', [3, 64], 'BF16'],
      ['d', [3, 64], 'Q8_0'],
      ['e', [5], 'F32'],
    ]);
    for (const t of g.tensors) expect(t.offset % 32).toBe(0);
    const file = path.join(TMP, 'sample.gguf');
    fs.writeFileSync(file, bytes);
    const hf = await hfGguf(file, { allowLocalFile: true });
    expect(hf.metadata.version).toBe(3);
    for (const [k, v] of META) {
      const theirs = (hf.metadata as Record<string, unknown>)[k];
      const big = typeof theirs === 'bigint' || typeof v.value === 'bigint';
      expect(big ? BigInt(theirs as number) : theirs, k).toEqual(big ? BigInt(v.value as number) : v.value);
    }
    expect(hf.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual(
      g.tensors.map((t) => [t.name, [...t.shape].reverse(), t.typeId, t.offset]),
    );
    expect(hf.tensorDataOffset).toBe(BigInt(g.dataOffset));
  });

  it('general.alignment other than 32 is honoured both ways (and read so by @huggingface/gguf)', async () => {
    const x = new Float32Array(5).fill(1.5);
    const bytes = concat(
      serializeGguf(
        [['general.alignment', { type: 'u32', value: 256 }]],
        [
          { name: 'a', shape: [5], type: 'F32', raw: encodeGgml('F32', x) },
          { name: 'b', shape: [5], type: 'F32', raw: encodeGgml('F32', x) },
        ],
      ),
    );
    const g = parseGguf(bytes);
    expect([g.alignment, g.dataOffset % 256, g.tensors[1]!.offset]).toEqual([256, 0, 256]);
    expect(decodeGgufTensor(g, g.tensors[1]!)).toEqual(x);
    const file = path.join(TMP, 'align.gguf');
    fs.writeFileSync(file, bytes);
    const hf = await hfGguf(file, { allowLocalFile: true });
    expect(hf.tensorInfos.map((t) => Number(t.offset))).toEqual([0, 256]);
    expect(Number(hf.tensorDataOffset)).toBe(g.dataOffset);
    const odd = bytes.slice();
    new DataView(odd.buffer).setUint32(24 + 8 + 17 + 4, 48, true); // after the key and its type: the value
    expect(() => parseGguf(odd, 'odd.gguf')).toThrow(/odd\.gguf \[general\.alignment\]: expected a u32 power of two/);
  });

  it('F32/F16/BF16 decode to the stored values; Q8_0 within half a step of each block, and re-encodes to the same bytes', () => {
    const g = parseGguf(sampleFile());
    const a = decodeGgufTensor(g, g.tensors[0]!);
    const b = decodeGgufTensor(g, g.tensors[1]!);
    const c = decodeGgufTensor(g, g.tensors[2]!);
    const d = decodeGgufTensor(g, g.tensors[3]!);
    for (let i = 0; i < a.length; i++) {
      expect(b[i]).toBe(fromF16Bits(toF16Bits(a[i]!)));
      expect(c[i]).toBe(fromBf16Bits(toBf16Bits(a[i]!)));
      // ggml-quants.c quantize_row_q8_0_ref: d = amax/127 stored as f16; |x − q·d| ≤ d/2 (+ f16 rounding of d)
      const blk = a.subarray(i - (i % 32), i - (i % 32) + 32);
      const amax = Math.max(...Array.from(blk, Math.abs));
      expect(Math.abs(d[i]! - a[i]!)).toBeLessThanOrEqual((amax / 127) * 0.5 + amax * 2 ** -10);
    }
    const raw = ggufTensorBytes(g, g.tensors[3]!);
    expect(encodeGgml('Q8_0', d)).toEqual(raw);
  });

  it('Q4_0 and Q4_K blocks decode as ggml-quants.c dequantize_row_q4_0 / _q4_K (written out here in float64)', () => {
    const rng = new Rng(3);
    const f16 = (x: number) => fromF16Bits(toF16Bits(x));
    // Q4_0: f16 d, then 16 bytes: element j is the low nibble of byte j, element j+16 the high nibble
    const q40 = new Uint8Array(18);
    const dv = new DataView(q40.buffer);
    dv.setUint16(0, toF16Bits(0.37), true);
    for (let j = 0; j < 16; j++) q40[2 + j] = rng.int(256);
    const got0 = decodeGgml('Q4_0', q40, 32, 'x', 'q4_0');
    for (let j = 0; j < 16; j++) {
      expect(got0[j]).toBeCloseTo(((q40[2 + j]! & 15) - 8) * f16(0.37), 6);
      expect(got0[j + 16]).toBeCloseTo(((q40[2 + j]! >> 4) - 8) * f16(0.37), 6);
    }
    // Q4_K: d, dmin, 12 bytes packing eight 6-bit scales and mins, 128 bytes of nibbles
    const q4k = new Uint8Array(144);
    const kv = new DataView(q4k.buffer);
    kv.setUint16(0, toF16Bits(0.02), true);
    kv.setUint16(2, toF16Bits(0.01), true);
    const sc = Array.from({ length: 8 }, () => rng.int(64)),
      mn = Array.from({ length: 8 }, () => rng.int(64));
    for (let j = 0; j < 4; j++) {
      q4k[4 + j] = (sc[j]! & 63) | ((sc[j + 4]! >> 4) << 6);
      q4k[4 + j + 4] = (mn[j]! & 63) | ((mn[j + 4]! >> 4) << 6);
      q4k[4 + j + 8] = (sc[j + 4]! & 15) | ((mn[j + 4]! & 15) << 4);
    }
    for (let i = 0; i < 128; i++) q4k[16 + i] = rng.int(256);
    const got = decodeGgml('Q4_K', q4k, 256, 'x', 'q4_k');
    for (let i = 0; i < 256; i++) {
      const sub = Math.floor(i / 32); // sub-block: 64 elements share 32 bytes, low nibbles first
      const byte = q4k[16 + Math.floor(i / 64) * 32 + (i % 32)]!;
      const q = sub % 2 === 0 ? byte & 15 : byte >> 4;
      expect(got[i]).toBeCloseTo(f16(0.02) * sc[sub]! * q - f16(0.01) * mn[sub]!, 5);
    }
  });

  it('readGgufHeader reads a header past its first MiB piece by piece, and only the header', async () => {
    const tokens = Array.from({ length: 100_000 }, (_, i) => `tok${i}`); // ~1.7 MB of metadata
    const x = new Float32Array(1 << 18).fill(0.25); // 1 MiB of data after it
    const bytes = concat(
      serializeGguf(
        [['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }]],
        [{ name: 'w', shape: [512, 512], type: 'F32', raw: encodeGgml('F32', x) }],
      ),
    );
    const file = path.join(TMP, 'big-header.gguf');
    fs.writeFileSync(file, bytes);
    const h = await readGgufHeader(file);
    expect(h.metadata.get('tokenizer.ggml.tokens')!.value).toEqual(tokens);
    expect(h.tensors).toEqual(parseGguf(bytes).tensors);
    expect(h.bytes.length).toBeLessThan(bytes.length);
    expect(decodeGgufTensor(await readGgufFile(file), h.tensors[0]!)).toEqual(x);
    fs.writeFileSync(file, bytes.subarray(0, 1_500_000));
    await expect(readGgufHeader(file)).rejects.toThrow(/big-header\.gguf.*truncated/);
  });

  it('hostile files are named errors before any allocation', () => {
    const good = sampleFile();
    const u64At = (b: Uint8Array, at: number, v: bigint) => {
      const c = b.slice();
      new DataView(c.buffer).setBigUint64(at, v, true);
      return c;
    };
    const err = (b: Uint8Array) => {
      try {
        parseGguf(b, 'bad.gguf');
      } catch (e) {
        expect(e).toBeInstanceOf(LlmtsError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err(new Uint8Array([1, 2]))).toMatch(/not a GGUF file/);
    expect(err(good.slice(0, 100))).toMatch(/tensor_count is 5, more than 2 \(the file cannot hold it\)/);
    expect(err(good.slice(0, 400))).toMatch(/truncated: .* needs \d+ bytes at offset/);
    expect(err(good.slice(0, good.length - 13))).toMatch(
      /\[e\]: its data run to byte 1780 of the data section, which has 1779 \(truncated file\?\)/,
    ); // 12 bytes are padding
    expect(err(u64At(good, 8, 2n ** 60n))).toMatch(/tensor_count is 1152921504606846976, more than/);
    expect(err(u64At(good, 16, 2n ** 40n))).toMatch(/metadata_kv_count .* more than/);
    expect(err(u64At(good, 24, 2n ** 40n))).toMatch(/metadata key #0 length is 1099511627776/);
    const v1 = good.slice();
    new DataView(v1.buffer).setUint32(4, 1, true);
    expect(err(v1)).toMatch(/version 1/);
    // a tensor info: find tensor 'a' and lie about its type, n_dims and offset
    const infos = Buffer.from(good).indexOf(Buffer.from('t.arr_empty', 'latin1')); // the last key: tensor infos follow
    const at = Buffer.from(good).indexOf(Buffer.from('\x01\x00\x00\x00\x00\x00\x00\x00a', 'latin1'), infos) + 9;
    const withU32 = (off: number, v: number) => {
      const c = good.slice();
      new DataView(c.buffer).setUint32(at + off, v, true);
      return c;
    };
    expect(err(withU32(0, 5))).toMatch(/\[a\]: n_dims 5/);
    expect(err(withU32(20, 99))).toMatch(/\[a\]: unknown tensor type 99/);
    expect(err(u64At(good, at + 24, 33n))).toMatch(/\[a\]: offset 33 is not a multiple of the alignment 32/);
    expect(err(u64At(good, at + 24, 2n ** 50n))).toMatch(/\[a\]: its data run to byte \d+ .*truncated/);
    expect(err(u64At(good, at + 24, 768n))).toMatch(/overlaps the tensor before it/); // onto tensor 'b'
    expect(err(u64At(good, at + 4, 2n ** 52n))).toMatch(/element count overflows|its data run to/);
    // unknown value type, nested arrays
    const keyAt = Buffer.from(good).indexOf(Buffer.from('t.u8', 'latin1')) + 4;
    const c = good.slice();
    new DataView(c.buffer).setUint32(keyAt, 42, true);
    expect(err(c)).toMatch(/\[t\.u8\]: unknown value type 42/);
    const arrAt = Buffer.from(good).indexOf(Buffer.from('t.arr_i', 'latin1')) + 7 + 4;
    const n = good.slice();
    new DataView(n.buffer).setUint32(arrAt, 9, true);
    expect(err(n)).toMatch(/arrays of arrays/);
    const big = u64At(good, arrAt + 4, 2n ** 40n);
    expect(err(big)).toMatch(/t\.arr_i array length is 1099511627776, more than/);
    // a type we know but do not decode: laid out, then refused with its name when decoded
    const one = concat(serializeGguf([], [{ name: 'x', shape: [256], type: 'F32', raw: new Uint8Array(1024) }]));
    new DataView(one.buffer).setUint32(24 + 9 + 4 + 8, 15, true); // header, name 'x', n_dims, ne[0] → type: Q8_K
    const q8k = parseGguf(one);
    expect(() => decodeGgufTensor(q8k, q8k.tensors[0]!)).toThrow(/Q8_K is not read/);
  });
});

describe('model and tokenizer through GGUF', () => {
  beforeAll(async () => {
    await initBackend('ref');
  });
  const byteTok = byteTokenizer;

  it("llama.cpp's q/k permutation is convert_hf_to_gguf.py's reshape(n_head, 2, d/2, C).swapaxes(1, 2), and is undone", () => {
    const H = 3,
      d = 8,
      C = 5;
    const w = Float32Array.from({ length: H * d * C }, (_, i) => i);
    const p = relayout(w, [H * d, C], { kind: 'rope', heads: H }, true);
    // numpy: out[h, j, s, c] = w[h, s, j, c]
    for (let h = 0; h < H; h++)
      for (let j = 0; j < d / 2; j++)
        for (let s = 0; s < 2; s++)
          for (let c = 0; c < C; c++)
            expect(p[((h * (d / 2) + j) * 2 + s) * C + c]).toBe(w[((h * 2 + s) * (d / 2) + j) * C + c]);
    expect(relayout(p, [H * d, C], { kind: 'rope', heads: H }, false)).toEqual(w);
  });

  for (const name of ['llama-tiny', 'gpt2-tiny']) {
    it(`${name}: the same parameters and logits after GGUF f32; f16 and q8_0 files round-trip bit for bit`, async () => {
      const model = await loadModel(path.join(HF_FIXTURES, name));
      const meta = tokenizerToGguf(byteTok(), model.config.vocabSize, { eos: 2 });
      const bytes = concat(await ggufFromModel(model, { type: 'f32', metadata: meta }));
      const g = parseGguf(bytes, `${name}.gguf`);
      const arch = g.metadata.get('general.architecture')!.value;
      expect(arch).toBe(name.split('-')[0]);
      expect(g.tensors.map((t) => t.name)).toEqual(tensorMappings(model.config).map((m) => m.gguf));
      const back = modelFromGguf(g);
      expect({ ...back.config, hf: undefined }).toMatchObject({
        ...model.config,
        hf: undefined,
        bosTokenId: null,
        eosTokenId: 2,
        padTokenId: null,
      });
      for (const [k, p] of model.params) expect(await back.params.get(k)!.data(), k).toEqual(await p.data());
      const ids = new Int32Array([72, 101, 108, 108, 111, 32, 119]);
      const a = tidy(() => model.forward(ids, 1, ids.length));
      const b = tidy(() => back.forward(ids, 1, ids.length));
      expect(await b.data()).toEqual(await a.data());
      for (const type of ['f16', 'q8_0'] as const) {
        const first = concat(await ggufFromModel(model, { type, metadata: meta }));
        const again = concat(await ggufFromModel(modelFromGguf(parseGguf(first)), { type: 'source', metadata: meta }));
        expect(again.length, type).toBe(first.length);
        expect(Buffer.compare(Buffer.from(again), Buffer.from(first)), type).toBe(0);
      }
    });
  }

  it('a trained BPE tokenizer with special tokens and a chat template encodes the same ids after GGUF', async () => {
    const text = fs.readFileSync(SHAKESPEARE, 'utf8').slice(0, 60_000);
    const tok = trainBpe([text], { vocabSize: 400, specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] });
    tok.config.eosToken = '<|endoftext|>';
    tok.config.chatTemplate = '{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}';
    const meta = tokenizerToGguf(tok, 416);
    expect(meta.get('tokenizer.ggml.pre')!.value).toBe('gpt-2');
    const back = tokenizerFromGguf({ metadata: meta, file: 'x.gguf' });
    const held = 'KING HENRY: What say you, my lords? — ünïcödé 東京 🙂\n\n  spaces<|im_end|>';
    expect(back.encode(held, { allowed: 'all' })).toEqual(tok.encode(held, { allowed: 'all' }));
    expect(back.vocabSize).toBe(416);
    expect(back.eosId).toBe(tok.eosId);
    expect(back.config.chatTemplate).toBe(tok.config.chatTemplate);
    expect(back.isSpecial(tok.specialId('<|im_start|>'))).toBe(true);
  });

  it("add_bos_token: a BOS before a text (Llama 3's TemplateProcessing, or add_bos_token) is written for llama.cpp and read back", () => {
    const { tok: llama3, plain: tok, bos: id } = llama3StyleTokenizer(20_000);
    const meta = tokenizerToGguf(llama3, 300);
    expect(meta.get('tokenizer.ggml.add_bos_token')!.value).toBe(true);
    expect(meta.get('tokenizer.ggml.bos_token_id')!.value).toBe(id);
    expect(leadingBos(tokenizerFromGguf({ metadata: meta, file: 'x.gguf' }))).toBe(id);
    // a tokenizer that puts nothing first says so
    expect(tokenizerToGguf(tok, 300).get('tokenizer.ggml.add_bos_token')!.value).toBe(false);
    expect(leadingBos(tokenizerFromGguf({ metadata: tokenizerToGguf(tok, 300), file: 'y.gguf' }))).toBeUndefined();
  });

  it('a GGUF path loads with loadModel and loadTokenizer; refusals are named', async () => {
    const model = await loadModel(path.join(HF_FIXTURES, 'llama-tiny'));
    const file = path.join(TMP, 'tiny.gguf');
    await saveGguf(model, file, { type: 'f16', metadata: tokenizerToGguf(byteTok(), 256, { bos: 1, eos: 2 }) });
    // an independent reader sees llama.cpp's keys
    const hf = (await hfGguf(file, { allowLocalFile: true })).metadata as Record<string, unknown>;
    expect(hf['general.architecture']).toBe('llama');
    expect(hf['general.file_type']).toBe(1);
    expect([hf['llama.context_length'], hf['llama.embedding_length'], hf['llama.block_count']]).toEqual([128, 64, 2]);
    expect([
      hf['llama.attention.head_count'],
      hf['llama.attention.head_count_kv'],
      hf['llama.feed_forward_length'],
    ]).toEqual([4, 2, 160]);
    expect(hf['llama.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-5, 10);
    expect(hf['llama.rope.freq_base']).toBe(10000);
    expect(hf['tokenizer.ggml.model']).toBe('gpt2');
    expect((hf['tokenizer.ggml.tokens'] as string[]).slice(32, 35)).toEqual(['Ġ', '!', '"']);
    expect([hf['tokenizer.ggml.bos_token_id'], hf['tokenizer.ggml.eos_token_id']]).toEqual([1, 2]);
    const back = await loadModel(file);
    expect(back.config.numKvHeads).toBe(2);
    expect(back.config.eosTokenId).toBe(2);
    const tok = await loadTokenizer(file);
    expect(tok.encode('hi')).toEqual([104, 105]);
    // a char-level tokenizer, an unknown architecture, an unknown tokenizer model, a missing tensor
    expect(() => tokenizerToGguf(new CharTokenizer(['a', 'b']), 256)).toThrow(UnsupportedError);
    const g = parseGguf(fs.readFileSync(file), file);
    const meta = new Map(g.metadata);
    meta.set('general.architecture', { type: 'string', value: 'falcon' });
    expect(() => modelFromGguf({ ...g, metadata: meta })).toThrow(/architecture "falcon" is not supported/);
    meta.set('tokenizer.ggml.model', { type: 'string', value: 't5' });
    expect(() => tokenizerFromGguf({ metadata: meta, file })).toThrow(/tokenizer "t5" is not supported/);
    meta.set('tokenizer.ggml.model', { type: 'string', value: 'llama' }); // SentencePiece-style: needs its scores
    expect(() => tokenizerFromGguf({ metadata: meta, file })).toThrow(/\[tokenizer\.ggml\.scores\]: missing/);
    const less = { ...g, tensors: g.tensors.filter((t) => t.name !== 'blk.1.ffn_up.weight') };
    expect(() => modelFromGguf(less)).toThrow(FileFormatError);
    expect(() => modelFromGguf(less)).toThrow(/blk\.1\.ffn_up\.weight'? is missing/);
  });
});
