/**
 * Property / fuzz test of the file readers (issue 16): safetensors bytes, tokenizer.json and config.json, mutated by
 * a seeded Rng (random truncations, bit flips, lying lengths and offsets, wrong-typed and out-of-range fields). For
 * thousands of cases each reader must either return a result or throw one of the package's named errors
 * (LlmtsError): never a RangeError / TypeError / SyntaxError, and never an allocation larger than the file justifies
 * (a header claiming 2^40 elements is refused before anything is allocated).
 * GGUF too: its container (lying counts, lengths, offsets and types), and the model and tokenizer read from it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import os from 'node:os';
import {
  LlmtsError,
  loadConfig,
  loadTokenizer,
  Rng,
  toTokenizerJson,
  trainBpe,
  tokenizerFromJson,
} from '../src/index.js';
import { decodeSafetensors, readSafetensors, serializeSafetensors } from '../src/formats/safetensors.js';
import { fromHfConfig } from '../src/model/hf/config.js';
import { decodeGgufTensor, parseGguf } from '../src/formats/gguf.js';
import { ggufFromModel, modelFromGguf } from '../src/model/gguf/weights.js';
import { tokenizerFromGguf, tokenizerToGguf } from '../src/tokenizer/gguf.js';
import { initModel } from '../src/model/init.js';
import { getBackend } from '../src/backend/registry.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Run `f`; anything thrown must be a named LlmtsError. Returns the result or the error. */
function named<T>(what: string, f: () => T): T | LlmtsError {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof LlmtsError))
      throw new Error(`${what}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
    return e;
  }
}

function flipBits(rng: Rng, b: Uint8Array, n: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < n; i++) {
    const at = rng.int(out.length);
    out[at] = out[at]! ^ (1 << rng.int(8));
  }
  return out;
}

/** A length that lies: small, just past the end, 2^31, 2^40, 2^53, 2^64 − 1. */
function lyingLength(rng: Rng, size: number): bigint {
  const picks = [
    BigInt(rng.int(size + 16)),
    BigInt(size),
    BigInt(size + 1),
    2n ** 31n,
    2n ** 40n,
    2n ** 53n,
    2n ** 64n - 1n,
  ];
  return picks[rng.int(picks.length)]!;
}

function safetensorsSample(): Uint8Array {
  const f32 = new Float32Array(24).map((_, i) => i * 0.5 - 3);
  return serializeSafetensors(
    {
      'a.weight': { shape: [4, 6], data: f32 },
      'b.bias': { shape: [6], data: f32.slice(0, 6), dtype: 'F16' },
      'c.emb': { shape: [2, 3], data: f32.slice(0, 6), dtype: 'BF16' },
      ids: { shape: [5], data: new Int32Array([1, 2, 3, 4, 5]) },
    },
    { format: 'pt' },
  );
}

/** Rewrite the JSON header of a safetensors file (keeping the data area) and fix up the 8-byte length. */
function withHeader(bytes: Uint8Array, edit: (h: Record<string, unknown>) => void): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  edit(h);
  const json = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(8 + json.length + (bytes.length - 8 - n));
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

/** Decoded bytes must stay within what the file holds (F16/BF16 → float32 doubles, 1-byte ints → int32 ×4). */
function checkAllocation(file: Uint8Array, r: ReturnType<typeof decodeSafetensors>): void {
  let held = 0;
  for (const [name, t] of r.tensors) {
    held += t.data.byteLength;
    // what it returns is what the header says: as many elements as the shape holds
    expect(t.data.length, name).toBe(t.shape.reduce((a, b) => a * b, 1));
  }
  expect(held).toBeLessThanOrEqual(8 * file.length);
}

describe('fuzz: safetensors reader', () => {
  const good = safetensorsSample();

  it('decodes the unmutated sample (the oracle the mutations start from)', () => {
    const r = decodeSafetensors(good, 'sample');
    expect([...r.tensors.keys()].sort()).toEqual(['a.weight', 'b.bias', 'c.emb', 'ids']);
    expect(Array.from(r.tensors.get('ids')!.data)).toEqual([1, 2, 3, 4, 5]);
  });

  it('random truncations, bit flips and lying header lengths: a result or a named error, 3000 cases', () => {
    const rng = new Rng(16);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      let b: Uint8Array;
      const kind = i % 3;
      if (kind === 0) b = good.slice(0, rng.int(good.length + 1));
      else if (kind === 1) b = flipBits(rng, good, 1 + rng.int(8));
      else {
        b = good.slice();
        new DataView(b.buffer).setBigUint64(0, lyingLength(rng, b.length), true);
      }
      const r = named(`case ${i} (${['truncate', 'flip', 'length'][kind]})`, () => decodeSafetensors(b, `case-${i}`));
      if (r instanceof LlmtsError) errors++;
      else checkAllocation(b, r);
    }
    expect(errors).toBeGreaterThan(1000); // the mutations do break files: this is not a test of the happy path
  });

  it('lying shapes, dtypes and data offsets in the header: a result or a named error, 2000 cases', () => {
    const rng = new Rng(17);
    const huge = [0, 1, 7, 2 ** 20, 2 ** 31, 2 ** 40, 2 ** 53, -1, 1.5];
    for (let i = 0; i < 2000; i++) {
      const b = withHeader(good, (h) => {
        const names = Object.keys(h).filter((k) => k !== '__metadata__');
        const e = h[names[rng.int(names.length)]!] as { dtype: unknown; shape: unknown; data_offsets: unknown };
        switch (rng.int(5)) {
          case 0:
            e.shape = [huge[rng.int(huge.length)], huge[rng.int(huge.length)]];
            break;
          case 1:
            e.data_offsets = [huge[rng.int(huge.length)], huge[rng.int(huge.length)]];
            break;
          case 2:
            e.dtype = ['F32', 'F16', 'I64', 'F8_E4M3', 'Q4', 7, null][rng.int(7)];
            break;
          case 3:
            e.shape = rng.int(2) ? 'big' : [[2], 3];
            break;
          default:
            h['__metadata__'] = rng.int(2) ? { step: 3 } : [1];
        }
      });
      const r = named(`header case ${i}`, () => decodeSafetensors(b, `header-${i}`));
      if (!(r instanceof LlmtsError)) checkAllocation(b, r);
    }
  });

  it('a header claiming 2^40 elements is a named error, not a RangeError or an out-of-memory', () => {
    const b = withHeader(good, (h) => {
      (h['a.weight'] as { shape: number[]; data_offsets: number[] }).shape = [2 ** 20, 2 ** 20];
      (h['a.weight'] as { shape: number[]; data_offsets: number[] }).data_offsets = [0, 4 * 2 ** 40];
    });
    const r = named('2^40', () => decodeSafetensors(b, 'huge.safetensors'));
    expect(r).toBeInstanceOf(LlmtsError);
    expect((r as LlmtsError).message).toMatch(
      /huge\.safetensors \[a\.weight\]: data_offsets \[0, 4398046511104\] lie outside the data area/,
    );
  });
});

/** Replace a random value somewhere inside `v` (depth-first, at a random node) with `by`. */
function mutateJson(rng: Rng, v: unknown, by: () => unknown, depth = 0): unknown {
  if (v === null || typeof v !== 'object') return by();
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v as Record<string, unknown>);
  if (!entries.length || (depth > 0 && rng.int(4) === 0)) return by();
  const [k, x] = entries[rng.int(entries.length)]!;
  const copy: Record<string | number, unknown> | unknown[] = Array.isArray(v)
    ? [...v]
    : { ...(v as Record<string, unknown>) };
  if (rng.int(8) === 0) {
    if (Array.isArray(copy)) copy.splice(Number(k), 1);
    else delete copy[k];
  } else (copy as Record<string | number, unknown>)[k] = mutateJson(rng, x, by, depth + 1);
  return copy;
}

function randomValue(rng: Rng): unknown {
  const pool: unknown[] = [
    null,
    true,
    -1,
    0,
    1.5,
    2 ** 31,
    2 ** 53,
    1e308,
    -1e9,
    '',
    'x',
    '<|endoftext|>',
    [],
    [1, 2],
    {},
    { a: 1 },
    'Ġ',
    [['a', 'b']],
    ['a b'],
  ];
  return pool[rng.int(pool.length)];
}

describe('fuzz: tokenizer.json reader', () => {
  const tok = trainBpe(['hello world, hello there. the quick brown fox jumps over the lazy dog. '.repeat(20)], {
    vocabSize: 300,
    specialTokens: ['<|endoftext|>'],
  });
  const json = toTokenizerJson(tok) as unknown;

  it('reads the unmutated tokenizer.json back to the same encoding', () => {
    const back = tokenizerFromJson(json);
    expect(back.encode('hello there')).toEqual(tok.encode('hello there'));
  });

  it('random field changes and deletions: a tokenizer or a named error, 2000 cases', () => {
    const rng = new Rng(18);
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      const m = mutateJson(rng, json, () => randomValue(rng));
      const r = named(`tokenizer case ${i}`, () => {
        const t = tokenizerFromJson(m);
        t.decode(t.encode('hello world <|endoftext|> ünïcödé', { special: 'plain' })); // a loaded tokenizer must work
        return t;
      });
      if (r instanceof LlmtsError) errors++;
    }
    expect(errors).toBeGreaterThan(100);
  });
});

describe('fuzz: config.json reader', () => {
  for (const fixture of ['gpt2-tiny', 'llama-tiny']) {
    it(`${fixture}: random field changes and deletions: a config or a named error, 1500 cases`, () => {
      const json = JSON.parse(
        fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'hf', fixture, 'config.json'), 'utf8'),
      ) as unknown;
      expect(fromHfConfig(json, 'config.json').vocabSize).toBeGreaterThan(0);
      const rng = new Rng(fixture.length);
      let errors = 0;
      for (let i = 0; i < 1500; i++) {
        const m = mutateJson(rng, json, () => randomValue(rng));
        const r = named(`${fixture} case ${i}`, () => fromHfConfig(m, 'config.json'));
        if (r instanceof LlmtsError) errors++;
        else {
          // what it accepts is usable: positive whole sizes
          for (const k of ['vocabSize', 'hiddenSize', 'numLayers', 'numHeads', 'maxPositions'] as const)
            expect(Number.isSafeInteger(r[k]) && r[k] > 0, `${k} = ${r[k]}`).toBe(true);
        }
      }
      expect(errors).toBeGreaterThan(100);
    });
  }
});

/** Async `named`. */
async function namedAsync<T>(what: string, f: () => Promise<T>): Promise<T | LlmtsError> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof LlmtsError))
      throw new Error(`${what}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
    return e;
  }
}

describe('fuzz: the same readers from files on disk', () => {
  it('safetensors, tokenizer.json and config.json files cut short, flipped or lying: a named error naming the file, 600 cases', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-fuzz-'));
    try {
      const rng = new Rng(19);
      const st = safetensorsSample();
      const tokText = new TextEncoder().encode(
        JSON.stringify(toTokenizerJson(trainBpe(['abc abd abe '.repeat(30)], { vocabSize: 270 }))),
      );
      const cfgText = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'hf', 'gpt2-tiny', 'config.json'));
      for (let i = 0; i < 200; i++) {
        let b = i % 2 ? st.slice(0, rng.int(st.length)) : flipBits(rng, st, 1 + rng.int(4));
        if (i % 5 === 0) {
          b = st.slice();
          new DataView(b.buffer).setBigUint64(0, lyingLength(rng, b.length), true);
        }
        const f = path.join(dir, `m${i}.safetensors`);
        fs.writeFileSync(f, b);
        const r = await namedAsync(`file ${i}`, () => readSafetensors(f));
        if (r instanceof LlmtsError) expect(r.message).toContain(f);

        const tdir = path.join(dir, `t${i}`);
        fs.mkdirSync(tdir);
        fs.writeFileSync(
          path.join(tdir, 'tokenizer.json'),
          i % 2 ? tokText.slice(0, rng.int(tokText.length)) : flipBits(rng, tokText, 1 + rng.int(3)),
        );
        await namedAsync(`tokenizer file ${i}`, () => loadTokenizer(tdir));

        const cdir = path.join(dir, `c${i}`);
        fs.mkdirSync(cdir);
        fs.writeFileSync(
          path.join(cdir, 'config.json'),
          i % 2 ? cfgText.subarray(0, rng.int(cfgText.length)) : flipBits(rng, cfgText, 1 + rng.int(3)),
        );
        await namedAsync(`config file ${i}`, () => loadConfig(cdir));
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fuzz: GGUF reader (container, model, tokenizer)', () => {
  /** A whole GGUF file: a 1-layer Llama of 262 ids with Q8_0 matrices and F32 vectors, a BPE tokenizer with merges. */
  async function ggufSample(): Promise<Uint8Array> {
    const tok = trainBpe(['the cat sat on the mat; the cat ate'.repeat(4)], { vocabSize: 262, specialTokens: ['<s>'] });
    const cfg = fromHfConfig(
      {
        model_type: 'llama',
        vocab_size: 262,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 16,
      },
      'test config',
    );
    const model = initModel(cfg, new Rng(1), { backend: getBackend('ref') });
    const chunks = await ggufFromModel(model, { type: 'q8_0', metadata: tokenizerToGguf(tok, 262) });
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** Parse, decode every tensor, build the model and the tokenizer: a result or a named error, bounded memory. */
  function readAll(b: Uint8Array, what: string): LlmtsError | null {
    const r = named(what, () => {
      const g = parseGguf(b, what);
      let held = 0;
      for (const t of g.tensors) {
        const d = named(`${what} ${t.name}`, () => decodeGgufTensor(g, t));
        if (!(d instanceof LlmtsError)) held += d.byteLength;
      }
      expect(held).toBeLessThanOrEqual(8 * b.length);
      named(`${what} tokenizer`, () => tokenizerFromGguf(g));
      named(`${what} model`, () => modelFromGguf(g, { backend: getBackend('ref') }));
      return g;
    });
    return r instanceof LlmtsError ? r : null;
  }

  it('random truncations, bit flips and lying u64 counts: a result or a named error, 600 cases', async () => {
    const good = await ggufSample();
    expect(readAll(good, 'good')).toBeNull();
    const rng = new Rng(14);
    let errors = 0;
    for (let i = 0; i < 600; i++) {
      let b: Uint8Array;
      const kind = i % 3;
      if (kind === 0) b = good.slice(0, rng.int(good.length + 1));
      else if (kind === 1) b = flipBits(rng, good, 1 + rng.int(8));
      else {
        // a u64 somewhere in the header (counts, string lengths, dims, offsets) replaced by a lie
        b = good.slice();
        const at = rng.int(Math.min(good.length, 4096) - 8);
        new DataView(b.buffer).setBigUint64(at, lyingLength(rng, b.length), true);
      }
      if (readAll(b, `gguf case ${i} (${['truncate', 'flip', 'u64'][kind]})`)) errors++;
    }
    expect(errors).toBeGreaterThan(200);
  }, 60_000);
});
