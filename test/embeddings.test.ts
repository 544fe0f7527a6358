// Embeddings (src/model/embed.ts, POST /v1/embeddings): the pooled final hidden states of a model equal llama.cpp's
// embeddings of the same weights (GGUF, node-llama-cpp's prebuilt CPU binary, its pooling_type set to last and to
// mean), for Llama and GPT-2-shaped models; the server answers OpenAI's client (float and base64, `dimensions`),
// reads sentence-transformers' pooling from the folder, and names bad input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getLlama, type Llama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { loadServedModel } from '../src/cli/serve.js';
import { embed, pool } from '../src/model/embed.js';
import type { ModelConfig } from '../src/model/config.js';
import { saveGguf } from '../src/model/gguf/file.js';
import { readPooling } from '../src/model/hf/pooling.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { tokenizerToGguf } from '../src/tokenizer/gguf.js';
import { trailingEos } from '../src/tokenizer/leading_bos.js';
import type { TextTokenizer } from '../src/tokenizer/types.js';
import { FileFormatError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { makeTinyModel } from './sft_helpers.js';
import { byteTokenizer, captureOutput, relErr, smallModelConfig, testBackends } from './helpers.js';
import { main as embedMain } from '../src/cli/embed.js';

const backends = await testBackends();
let tmp: string;
let llama: Llama;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-embed-'));
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
}, 120_000);

afterAll(async () => {
  await llama?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const config = (family: 'llama' | 'gpt2'): ModelConfig =>
  smallModelConfig(family, {
    vocabSize: 320,
    hiddenSize: 64,
    numLayers: 2,
    intermediateSize: family === 'llama' ? 96 : 256,
    maxPositions: 128,
    tieWordEmbeddings: true,
    bosTokenId: 1,
    eosTokenId: 2,
  });

describe('pool', () => {
  it('last, mean and cls of (T, C) states, truncated to d', () => {
    const s = [1, 2, 3, 4, 5, 6]; // T = 3, C = 2
    expect(Array.from(pool(s, 3, 2, 'last'))).toEqual([5, 6]);
    expect(Array.from(pool(s, 3, 2, 'mean'))).toEqual([3, 4]);
    expect(Array.from(pool(s, 3, 2, 'cls', 1))).toEqual([1]);
  });
});

describe.each(['llama', 'gpt2'] as const)('%s embeddings against llama.cpp on the same weights', (family) => {
  let model: CausalLM;
  const files: Record<string, string> = {};
  beforeAll(async () => {
    model = initModel(config(family), new Rng(11), { std: 0.3, backend: getBackend('ref') });
    const tok = byteTokenizer();
    for (const [name, type] of [
      ['last', 3],
      ['mean', 1],
    ] as const) {
      const meta = tokenizerToGguf(tok, model.config.vocabSize, { bos: 1, eos: 2 });
      meta.set(`${family}.pooling_type`, { type: 'u32', value: type });
      files[name] = path.join(tmp, `${family}-${name}.gguf`);
      await saveGguf(model, files[name]!, { type: 'f32', metadata: meta });
    }
  });

  it.each(['last', 'mean'] as const)(
    'pooling %s: the same vector, on every backend',
    async (pooling) => {
      // keys and values kept in float32 (llama.cpp's default is f16: ~1e-3 off), attention without flash
      const theirs = await llama.loadModel({
        modelPath: files[pooling]!,
        gpuLayers: 0,
        defaultContextFlashAttention: false,
        experimentalDefaultContextKvCacheKeyType: 'F32',
        experimentalDefaultContextKvCacheValueType: 'F32',
      });
      const ctx = await theirs.createEmbeddingContext({ contextSize: 128, threads: 1 });
      try {
        const texts = [
          [5, 77, 200, 31, 9, 140],
          [42, 43, 44],
          Array.from({ length: 60 }, (_, i) => (i * 37 + 3) % 300),
        ];
        for (const ids of texts) {
          const want = (await ctx.getEmbeddingFor(ids as Token[])).vector;
          expect(want.length).toBe(64);
          for (const backend of backends) {
            const m = initModel(config(family), new Rng(11), { std: 0.3, backend });
            const [got] = await embed(m, [ids], { pooling, normalize: false });
            // GPT-2: ggml's GELU reads a float16 table, ~3e-4 off; Llama's SiLU is exact
            expect(relErr(got!, want)).toBeLessThan(family === 'gpt2' ? 1e-3 : 1e-4);
            // the other pooling is far off: the comparison tells them apart
            const [other] = await embed(m, [ids], { pooling: pooling === 'last' ? 'mean' : 'last', normalize: false });
            expect(relErr(other!, want)).toBeGreaterThan(0.05);
          }
        }
      } finally {
        await ctx.dispose();
        await theirs.dispose();
      }
    },
    60_000,
  );
});

describe('POST /v1/embeddings through the openai client', () => {
  let server: LlmServer;
  let client: OpenAI;
  let dir: string;
  beforeAll(async () => {
    dir = path.join(tmp, 'served');
    await makeTinyModel(dir, { context: 64 });
    const served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny', lookup: false });
    server = createServer({ served, port: 0 });
    client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('unit vectors, the same in float and base64, one per input; dimensions truncate and normalise again', async () => {
    const input = ['color red', 'count 3', 'color red'];
    const f = await client.embeddings.create({ model: 'tiny', input, encoding_format: 'float' });
    const b = await client.embeddings.create({ model: 'tiny', input }); // the client asks base64 and decodes it
    expect(f.data.map((d) => d.index)).toEqual([0, 1, 2]);
    f.data.forEach((d, i) => {
      const norm = Math.hypot(...d.embedding);
      expect(norm).toBeCloseTo(1, 5);
      expect(b.data[i]!.embedding).toEqual(d.embedding);
    });
    expect(f.data[2]!.embedding).toEqual(f.data[0]!.embedding);
    expect(f.data[1]!.embedding).not.toEqual(f.data[0]!.embedding);
    expect(f.usage.prompt_tokens).toBeGreaterThan(3);
    const d8 = await client.embeddings.create({
      model: 'tiny',
      input: 'color red',
      dimensions: 8,
      encoding_format: 'float',
    });
    const v = d8.data[0]!.embedding;
    expect(v.length).toBe(8);
    const head = f.data[0]!.embedding.slice(0, 8);
    const s = Math.hypot(...head);
    v.forEach((x, i) => expect(x).toBeCloseTo(head[i]! / s, 5));
    // token ids in, as OpenAI allows
    const ids = await client.embeddings.create({
      model: 'tiny',
      input: [
        [5, 6, 7],
        [8, 9],
      ],
      encoding_format: 'float',
    });
    expect(ids.data.length).toBe(2);
    expect(ids.usage.prompt_tokens).toBe(5);
  });

  it('llmts embed prints the same vectors as the server, and a similarity table', async () => {
    const texts = ['color red', 'count 3'];
    const r = await captureOutput(() => embedMain([dir, ...texts, '--backend', 'ref']));
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; embedding: number[] });
    const served = await client.embeddings.create({ model: 'tiny', input: texts, encoding_format: 'float' });
    expect(lines.map((l) => l.index)).toEqual([0, 1]);
    lines.forEach((l, i) => expect(relErr(l.embedding, served.data[i]!.embedding)).toBeLessThan(1e-6));
    const t = await captureOutput(() => embedMain([dir, ...texts, '--backend', 'ref', '--similarity']));
    const dot = lines[0]!.embedding.reduce((a, x, k) => a + x * lines[1]!.embedding[k]!, 0);
    expect(t.out).toContain(' 1.000 ');
    expect(t.out).toContain(dot.toFixed(3));
    await expect(embedMain([dir, 'one', '--similarity'])).rejects.toThrow(/--similarity/);
  });

  it('bad input is a 400 naming the field', async () => {
    const bad = async (body: Record<string, unknown>) => {
      const e = await client.embeddings
        .create({ model: 'tiny', input: 'x', ...body } as never)
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      return (e as InstanceType<typeof OpenAI.BadRequestError>).param;
    };
    expect(await bad({ input: '' })).toBe('input');
    expect(await bad({ input: [] })).toBe('input');
    expect(await bad({ input: 'word '.repeat(200) })).toBe('input'); // past the 64-token window
    expect(await bad({ input: [[1, 2, 1e6]] })).toBe('input');
    expect(await bad({ encoding_format: 'int8' })).toBe('encoding_format');
    expect(await bad({ dimensions: 0 })).toBe('dimensions');
  });
});

describe('trailingEos', () => {
  it("add_eos_token, else a TemplateProcessing that ends with a special token (Qwen3-Embedding's), else none", () => {
    const tok = (extra: Record<string, unknown>, postProcessor?: unknown) =>
      ({ config: { extra }, eosId: 7, vocabSize: 100, postProcessor }) as unknown as TextTokenizer;
    const tp = {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [42], tokens: ['<|endoftext|>'] } },
    };
    expect(trailingEos(tok({ add_eos_token: true }))).toBe(7);
    expect(trailingEos(tok({ add_eos_token: false }, tp))).toBeUndefined();
    expect(trailingEos(tok({}, tp))).toBe(42);
    expect(trailingEos(tok({}, { type: 'Sequence', processors: [{ type: 'ByteLevel' }, tp] }))).toBe(42);
    expect(trailingEos(tok({}, { ...tp, single: [{ Sequence: { id: 'A', type_id: 0 } }] }))).toBeUndefined();
    expect(trailingEos(tok({}))).toBeUndefined();
  });
});

describe('readPooling', () => {
  it("reads sentence-transformers' modules; a plain folder pools the last token; max pooling is refused by name", async () => {
    const d = path.join(tmp, 'st');
    fs.mkdirSync(path.join(d, '1_Pooling'), { recursive: true });
    expect(await readPooling(d)).toEqual({ pooling: 'last', normalize: true, source: 'default' });
    fs.writeFileSync(
      path.join(d, 'modules.json'),
      JSON.stringify([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
      ]),
    );
    fs.writeFileSync(
      path.join(d, '1_Pooling', 'config.json'),
      JSON.stringify({ word_embedding_dimension: 64, pooling_mode_mean_tokens: true, pooling_mode_lasttoken: false }),
    );
    expect(await readPooling(d)).toMatchObject({ pooling: 'mean', normalize: false });
    fs.writeFileSync(path.join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_max_tokens: true }));
    await expect(readPooling(d)).rejects.toThrow(FileFormatError);
    await expect(readPooling(d)).rejects.toThrow(/pooling_mode_max_tokens is not supported/);
  });

  it("reads a GGUF file's pooling_type (as llama.cpp does); rank pooling is refused by name", async () => {
    const model = initModel(config('llama'), new Rng(1), { backend: getBackend('ref') });
    const tok = byteTokenizer();
    const write = async (name: string, type?: number) => {
      const meta = tokenizerToGguf(tok, model.config.vocabSize, { bos: 1, eos: 2 });
      if (type !== undefined) meta.set('llama.pooling_type', { type: 'u32', value: type });
      const f = path.join(tmp, name);
      await saveGguf(model, f, { type: 'f32', metadata: meta });
      return f;
    };
    expect(await readPooling(await write('p-none.gguf'))).toMatchObject({ pooling: 'last', normalize: true });
    expect(await readPooling(await write('p-mean.gguf', 1))).toMatchObject({ pooling: 'mean', normalize: true });
    expect(await readPooling(await write('p-cls.gguf', 2))).toMatchObject({ pooling: 'cls' });
    await expect(readPooling(await write('p-rank.gguf', 4))).rejects.toThrow(/\[llama\.pooling_type\]: pooling_type 4/);
  });
});
