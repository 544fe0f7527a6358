// Safetensors checkpoints read for quantised inference (src/model/hf/sources.ts): the matrices stay the file's bytes,
// their parameters vacant, and quantizeModel stores each from the bytes a slice of rows at a time. The quantised
// tables must be the ones quantising the float32 model gives, byte for byte, in one file or shards, tied or not; the
// commands run a bfloat16 checkpoint as bf16 (its own weights, no float32 copy) and refuse, before reading anything,
// a float32 model that WebAssembly's 4 GiB cannot hold, naming --quantize.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/registry.js';
import { loadForGeneration } from '../src/cli/generate.js';
import { saveCheckpointTensors } from '../src/formats/checkpoint.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { fromHfConfig, toHfConfig } from '../src/model/hf/config.js';
import { ggufFromModel } from '../src/model/gguf/weights.js';
import { loadModel, saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { quantizeModel } from '../src/model/quantize.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { ConfigError, FileFormatError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { relErr } from './helpers.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-vacant-'));
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

function config(tied: boolean) {
  return fromHfConfig(
    {
      model_type: 'llama',
      vocab_size: 300,
      hidden_size: 256, // q4k's super-block
      intermediate_size: 512,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
      tie_word_embeddings: tied,
    },
    'test config',
  );
}

/** A random model saved as a Hugging Face folder, every tensor re-written as `dtype` (sharded when asked). */
async function folder(
  name: string,
  tied: boolean,
  dtype: 'F32' | 'BF16',
  shards = false,
  poison?: { tensor: string; index: number; value: number },
): Promise<string> {
  const dir = path.join(TMP, name);
  await saveModel(initModel(config(tied), new Rng(4), { std: 0.05 }), dir);
  const st = await readSafetensors(path.join(dir, 'model.safetensors'));
  const tensors = new Map([...st.tensors].map(([n, t]) => [n, { dtype, shape: t.shape, data: t.data }] as const));
  if (poison) (tensors.get(poison.tensor)!.data as Float32Array)[poison.index] = poison.value;
  fs.rmSync(path.join(dir, 'model.safetensors'));
  await saveCheckpointTensors(dir, tensors, shards ? { maxShardBytes: 400_000 } : {});
  return dir;
}

function logits(m: CausalLM, ids: number[]): Float32Array {
  return noGrad(() => tidy(() => m.forward(Int32Array.from(ids), 1, ids.length).dataSync())) as Float32Array;
}

describe('a safetensors checkpoint loaded vacant', () => {
  const ids = [1, 299, 17, 200, 3, 45];
  for (const [tied, shards] of [
    [true, false],
    [false, true],
  ] as const)
    it(`${tied ? 'tied' : 'untied'}, ${shards ? 'sharded' : 'one file'}: no float32 matrices, the same quantised tables as from the float32 model`, async () => {
      await initBackend('wasm');
      const dir = await folder(`st-${tied}-${shards}`, tied, 'BF16', shards);
      if (shards) expect(fs.existsSync(path.join(dir, 'model.safetensors.index.json'))).toBe(true);
      for (const kind of ['q8', 'q4k', 'bf16'] as const) {
        const full = await loadModel(dir),
          vacant = await loadModel(dir, { vacantLinears: true });
        const q = vacant.params.get('model.layers.1.self_attn.q_proj.weight')!;
        expect(q.storage.gone).toBe('vacant');
        await expect(q.data()).rejects.toThrow(/is vacant/);
        expect(vacant.params.get('model.embed_tokens.weight')!.storage.gone).toBe('vacant');
        expect(vacant.params.get('model.norm.weight')!.storage.gone).toBeFalsy(); // vectors are read as ever
        const a = await quantizeModel(full, kind),
          b = await quantizeModel(vacant, kind, { dropFloat: true });
        expect(b.forms).toEqual(a.forms);
        for (const [name, w] of full.quantized) {
          const v = vacant.quantized.get(name)!;
          expect(Buffer.from((await v.data.data()).buffer).equals(Buffer.from((await w.data.data()).buffer))).toBe(
            true,
          );
        }
        for (const [key, f] of full.fused) {
          const v = vacant.fused.get(key)!;
          expect(
            Buffer.from((await v.weight.data.data()).buffer).equals(Buffer.from((await f.weight.data.data()).buffer)),
          ).toBe(true);
        }
        expect(Array.from(logits(vacant, ids))).toEqual(Array.from(logits(full, ids)));
        // the bytes were let go once stored
        await expect(quantizeModel(vacant, 'q8')).rejects.toThrow(/are gone/);
      }
    });

  it('exports to GGUF from the file bytes (as `llmts export` reads it): the same file as from the float32 model', async () => {
    await initBackend('ref');
    for (const tied of [true, false]) {
      const dir = await folder(`st-export-${tied}`, tied, 'BF16');
      for (const type of ['f16', 'q8_0', 'q4_k'] as const) {
        const vacant = await loadModel(dir, { vacantLinears: true });
        const a = Buffer.concat(await ggufFromModel(await loadModel(dir), { type })),
          b = Buffer.concat(await ggufFromModel(vacant, { type }));
        expect(b.equals(a)).toBe(true);
        // each matrix's bytes were let go once written
        await expect(ggufFromModel(vacant, { type })).rejects.toThrow(/bytes are gone/);
      }
    }
  });

  it('an embedding whose lookup stays float32 gets its values back from the file', async () => {
    await initBackend('wasm');
    const dir = await folder('st-float-lookup', false, 'BF16');
    const full = await loadModel(dir),
      vacant = await loadModel(dir, { vacantLinears: true });
    await quantizeModel(vacant, 'q8', { embeddings: false });
    expect(Array.from(await vacant.params.get('model.embed_tokens.weight')!.data())).toEqual(
      Array.from(await full.params.get('model.embed_tokens.weight')!.data()),
    );
  });
});

describe('the commands on safetensors checkpoints', () => {
  const ids = [5, 6, 7, 8];
  it('a bfloat16 checkpoint runs as bf16 (its own weights, read vacant); a float32 one as float32', async () => {
    const bf = await folder('cli-bf16', true, 'BF16');
    const L = await loadForGeneration(bf, { backend: 'wasm' });
    expect(L.weights.kind).toBe('bf16');
    expect(L.model.params.get('model.layers.0.mlp.up_proj.weight')!.storage.gone).toBe('vacant');
    const float = await loadModel(bf); // the same bfloat16 weights widened to float32
    const e = relErr(logits(L.model, ids), logits(float, ids));
    console.log(`bf16 checkpoint as bf16 against its float32 widening: relative error ${e.toExponential(2)}`);
    expect(e).toBeLessThan(1e-5); // the same weights: summation order only
    const F = await loadForGeneration(bf, { backend: 'wasm', quantize: 'f32' });
    expect(F.weights.kind).toBe('f32');
    const f32 = await folder('cli-f32', true, 'F32');
    expect((await loadForGeneration(f32, { backend: 'wasm' })).weights.kind).toBe('f32');
    expect((await loadForGeneration(f32, { backend: 'wasm', quantize: 'q8' })).weights.kind).toBe('q8');
  });

  it('NaN or Infinity in a matrix read vacant is a named error (file, tensor, element) whatever it is stored as', async () => {
    const cases = [
      ['BF16', Number.NaN, undefined, 'NaN'], // run as bf16: the bytes checked as they are
      ['BF16', Number.NEGATIVE_INFINITY, 'q8', '-Infinity'], // decoded a slice at a time to quantise
      ['F32', Number.POSITIVE_INFINITY, 'q4k', 'Infinity'],
    ] as const;
    for (const [i, [dtype, value, quantize, shown]] of cases.entries()) {
      const tensor = i === 2 ? 'model.embed_tokens.weight' : 'model.layers.1.mlp.down_proj.weight';
      const dir = await folder(`poison-${i}`, i !== 2, dtype, false, { tensor, index: 300 + i, value });
      const e = await loadForGeneration(dir, { backend: 'wasm', ...(quantize ? { quantize } : {}) }).catch((x) => x);
      expect(e).toBeInstanceOf(FileFormatError);
      expect((e as FileFormatError).code).toBe('E_WEIGHTS_NOT_FINITE');
      expect((e as FileFormatError).part).toBe(tensor);
      expect((e as Error).message).toContain(`holds ${shown} at element ${300 + i}`);
      expect((e as FileFormatError).file).toContain(dir);
    }
    // a healthy bfloat16 checkpoint holds no such bytes: it loads (the check reads every exponent)
    expect((await loadForGeneration(await folder('healthy', true, 'BF16'), { backend: 'wasm' })).weights.kind).toBe(
      'bf16',
    );
  });

  it('a float32 model past WebAssembly memory is refused before reading, naming --quantize', async () => {
    const dir = path.join(TMP, 'big');
    fs.mkdirSync(dir, { recursive: true });
    // Llama 3.2 1B's shape: 1.24 B parameters, 4.9 GB of float32 (no weights needed: the check reads config.json)
    const cfg = fromHfConfig(
      {
        model_type: 'llama',
        vocab_size: 128256,
        hidden_size: 2048,
        intermediate_size: 8192,
        num_hidden_layers: 16,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        max_position_embeddings: 2048,
        tie_word_embeddings: true,
      },
      'big',
    );
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(cfg)));
    const e = await loadForGeneration(dir, { backend: 'wasm' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(String((e as Error).message)).toMatch(
      /1\.24 B parameters are 4\.9 GB as float32.*--quantize bf16 \(2\.5 GB\)/,
    );
  });
});
