/**
 * Hugging Face config.json ⇄ ModelConfig: every fixture folder's config, synthetic Qwen2 / Mistral / Llama
 * variants, RoPE spellings, refused features (UnsupportedError naming the field), wrong types (ConfigError naming
 * the file and field), and round trips in both directions.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromHfConfig, toHfConfig, loadHfConfig, SUPPORTED_ARCHITECTURES } from '../src/model/hf/index.js';
import type { ModelConfig } from '../src/model/config.js';
import { ConfigError, UnsupportedError } from '../src/util/errors.js';
import { readJsonFileSync } from '../src/util/fs.js';
import { HF_FIXTURES as FIXTURES, itFindsFixtures, needFixtures } from './helpers.js';

const fixtureDirs = fs.existsSync(FIXTURES)
  ? fs
      .readdirSync(FIXTURES)
      .sort()
      .map((d) => path.join(FIXTURES, d))
      .filter((d) => fs.existsSync(path.join(d, 'config.json')))
  : [];

type Json = Record<string, unknown>;

function withoutHf(c: ModelConfig): Omit<ModelConfig, 'hf'> {
  const { hf: _hf, ...rest } = c;
  return rest;
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

function expectUnsupported(json: Json, ...patterns: (string | RegExp)[]): void {
  const e = errorOf(() => fromHfConfig(json, 'cfg/config.json'));
  expect(e).toBeInstanceOf(UnsupportedError);
  expect((e as Error).message).toContain('cfg/config.json');
  for (const p of patterns) expect((e as Error).message).toMatch(p);
}

function expectConfigError(json: Json, field: string, pattern?: RegExp): void {
  const e = errorOf(() => fromHfConfig(json, 'cfg/config.json'));
  expect(e).toBeInstanceOf(ConfigError);
  expect((e as ConfigError).field).toBe(field);
  expect((e as ConfigError).file).toBe('cfg/config.json');
  expect((e as Error).message).toContain('cfg/config.json');
  if (pattern) expect((e as Error).message).toMatch(pattern);
}

const gpt2Json = (): Json => ({
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  vocab_size: 100,
  n_embd: 48,
  n_layer: 3,
  n_head: 6,
  n_inner: null,
  n_positions: 32,
  layer_norm_epsilon: 1e-5,
  activation_function: 'gelu_new',
  resid_pdrop: 0.1,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
});

const llamaJson = (): Json => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 300,
  hidden_size: 96,
  intermediate_size: 200,
  num_hidden_layers: 2,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  hidden_act: 'silu',
  rope_theta: 500000,
  tie_word_embeddings: true,
});

describe('fixture configs', () => {
  itFindsFixtures(fixtureDirs.length);

  for (const dir of fixtureDirs) {
    const name = path.basename(dir);
    const file = path.join(dir, 'config.json');
    const json = readJsonFileSync(file, 'a Hugging Face config.json') as Json;

    it(`${name}: maps the fields of config.json`, () => {
      const c = fromHfConfig(json, file);
      expect(c.hf).toEqual(json);
      expect(c.vocabSize).toBe(json['vocab_size']);
      if (json['model_type'] === 'gpt2') {
        expect(c.family).toBe('gpt2');
        expect(c.hiddenSize).toBe(json['n_embd']);
        expect(c.numLayers).toBe(json['n_layer']);
        expect(c.numHeads).toBe(json['n_head']);
        expect(c.numKvHeads).toBe(c.numHeads);
        expect(c.headDim * c.numHeads).toBe(c.hiddenSize);
        expect(c.intermediateSize).toBe((json['n_inner'] as number | null) ?? 4 * c.hiddenSize);
        expect(c.maxPositions).toBe(json['n_positions']);
        expect(c.normEps).toBe(json['layer_norm_epsilon']);
        expect(c.tieWordEmbeddings).toBe(json['tie_word_embeddings'] ?? true);
        expect([c.attentionBias, c.attentionOutBias, c.mlpBias]).toEqual([true, true, true]);
        expect(c.dropout).toBe(json['resid_pdrop']);
      } else {
        expect(c.family).toBe('llama');
        expect(c.hiddenSize).toBe(json['hidden_size']);
        expect(c.numLayers).toBe(json['num_hidden_layers']);
        expect(c.numHeads).toBe(json['num_attention_heads']);
        expect(c.numKvHeads).toBe(json['num_key_value_heads'] ?? json['num_attention_heads']);
        expect(c.headDim).toBe(json['head_dim'] ?? c.hiddenSize / c.numHeads);
        expect(c.intermediateSize).toBe(json['intermediate_size']);
        expect(c.maxPositions).toBe(json['max_position_embeddings']);
        expect(c.normEps).toBe(json['rms_norm_eps']);
        const rp = json['rope_parameters'] as Json | undefined;
        expect(c.ropeTheta).toBe(rp?.['rope_theta'] ?? json['rope_theta'] ?? 10000);
        expect(c.tieWordEmbeddings).toBe(json['tie_word_embeddings'] ?? false);
        expect(c.dropout).toBe(0);
      }
      expect(c.bosTokenId).toBe(json['bos_token_id']);
      expect(c.eosTokenId).toEqual(json['eos_token_id']);
      expect(c.padTokenId).toBe(json['pad_token_id']);
    });

    it(`${name}: toHfConfig writes config.json back unchanged; round trips`, () => {
      const c = fromHfConfig(json, file);
      expect(toHfConfig(c)).toEqual(json);
      expect(Object.keys(toHfConfig(c))).toEqual(Object.keys(json).sort());
      expect(withoutHf(fromHfConfig(toHfConfig(c), 'again.json'))).toEqual(withoutHf(c));
    });

    it(`${name}: a config made from scratch has the same keys as save_pretrained's`, () => {
      const c = withoutHf(fromHfConfig(json, file));
      const scratch = toHfConfig(c);
      expect(Object.keys(scratch).sort()).toEqual(Object.keys(json).sort());
      expect(withoutHf(fromHfConfig(scratch, 'scratch.json'))).toEqual(c);
      for (const k of Object.keys(json)) {
        if (k === 'transformers_version') continue;
        expect(scratch[k], k).toEqual(json[k]);
      }
    });
  }
});

describe('GPT-2', () => {
  it('defaults come from transformers GPT2Config', () => {
    const c = fromHfConfig({ model_type: 'gpt2' }, 'cfg/config.json');
    expect(c).toMatchObject({
      vocabSize: 50257,
      hiddenSize: 768,
      numLayers: 12,
      numHeads: 12,
      headDim: 64,
      intermediateSize: 3072,
      maxPositions: 1024,
      tieWordEmbeddings: true,
      dropout: 0.1,
      bosTokenId: 50256,
      eosTokenId: 50256,
      padTokenId: null,
    });
  });

  it('reads an explicit n_inner and gelu_pytorch_tanh; architectures alone is enough', () => {
    const j: Json = { ...gpt2Json(), n_inner: 100, activation_function: 'gelu_pytorch_tanh' };
    delete j['model_type'];
    const c = fromHfConfig(j, 'cfg/config.json');
    expect(c.intermediateSize).toBe(100);
    expect(c.family).toBe('gpt2');
    expect(withoutHf(fromHfConfig(toHfConfig(c), 'x'))).toEqual(withoutHf(c));
    expect(toHfConfig(c)['n_inner']).toBe(100);
  });

  it('refuses what the model does not implement, naming the field', () => {
    expectUnsupported({ ...gpt2Json(), activation_function: 'relu' }, /activation_function/, /relu/);
    expectUnsupported({ ...gpt2Json(), activation_function: 'gelu' }, /activation_function/);
    expectUnsupported({ ...gpt2Json(), scale_attn_by_inverse_layer_idx: true }, /scale_attn_by_inverse_layer_idx/);
    expectUnsupported({ ...gpt2Json(), reorder_and_upcast_attn: true }, /reorder_and_upcast_attn/);
    expectUnsupported({ ...gpt2Json(), scale_attn_weights: false }, /scale_attn_weights/);
  });

  it('type checks its fields', () => {
    expectConfigError({ ...gpt2Json(), n_embd: '48' }, 'n_embd', /integer/);
    expectConfigError({ ...gpt2Json(), n_layer: 2.5 }, 'n_layer');
    expectConfigError({ ...gpt2Json(), n_head: 0 }, 'n_head');
    expectConfigError({ ...gpt2Json(), n_head: 5 }, 'n_head', /divisible/);
    expectConfigError({ ...gpt2Json(), tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /true or false/);
    expectConfigError({ ...gpt2Json(), layer_norm_epsilon: null }, 'layer_norm_epsilon');
    expectConfigError({ ...gpt2Json(), resid_pdrop: 1.5 }, 'resid_pdrop');
    expectConfigError({ ...gpt2Json(), activation_function: 3 }, 'activation_function', /string/);
    expectConfigError({ ...gpt2Json(), eos_token_id: [1, 'x'] }, 'eos_token_id');
    expectConfigError({ ...gpt2Json(), bos_token_id: -1 }, 'bos_token_id');
  });

  it('toHfConfig refuses a GPT-2 config that transformers cannot express', () => {
    const c = fromHfConfig(gpt2Json(), 'x');
    expect(() => toHfConfig({ ...c, attentionBias: false })).toThrow(UnsupportedError);
    expect(() => toHfConfig({ ...c, numKvHeads: 2 })).toThrow(/numKvHeads/);
    expect(() => toHfConfig({ ...c, hiddenSize: 0 })).toThrow(ConfigError);
  });
});

describe('Llama family', () => {
  it('Llama: top-level rope_theta, GQA, tied head, eos list', () => {
    const c = fromHfConfig({ ...llamaJson(), eos_token_id: [2, 7] }, 'cfg/config.json');
    expect(c).toMatchObject({
      family: 'llama',
      numHeads: 6,
      numKvHeads: 2,
      headDim: 16,
      ropeTheta: 500000,
      tieWordEmbeddings: true,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      eosTokenId: [2, 7],
      bosTokenId: 1, // LlamaConfig default
    });
    // a transformers-4 style config keeps its top-level rope_theta (loadable by transformers 4 and 5)
    const out = toHfConfig({ ...c, ropeTheta: 250000 });
    expect(out['rope_theta']).toBe(250000);
    expect(out['rope_parameters']).toBeUndefined();
    expect(withoutHf(fromHfConfig(out, 'x'))).toEqual({ ...withoutHf(c), ropeTheta: 250000 });
    // from scratch: transformers 5's rope_parameters
    const scratch = toHfConfig(withoutHf(c) as ModelConfig);
    expect(scratch['rope_parameters']).toEqual({ rope_theta: 500000, rope_type: 'default' });
    expect(scratch['rope_theta']).toBeUndefined();
    expect(withoutHf(fromHfConfig(scratch, 'x'))).toEqual(withoutHf(c));
  });

  it('Llama: transformers-5 rope_parameters, head_dim ≠ hidden/heads, biases', () => {
    const j: Json = { ...llamaJson(), head_dim: 32, attention_bias: true, mlp_bias: true, num_key_value_heads: null };
    delete j['rope_theta'];
    j['rope_parameters'] = { rope_theta: 1234.5, rope_type: 'default' };
    const c = fromHfConfig(j, 'cfg/config.json');
    expect(c).toMatchObject({
      headDim: 32,
      numKvHeads: 6,
      ropeTheta: 1234.5,
      attentionBias: true,
      attentionOutBias: true,
      mlpBias: true,
    });
    expect(withoutHf(fromHfConfig(toHfConfig(c), 'x'))).toEqual(withoutHf(c));
  });

  it('missing rope theta defaults to 10000; rope_scaling of type default is fine', () => {
    const j = llamaJson();
    delete j['rope_theta'];
    expect(fromHfConfig(j, 'x').ropeTheta).toBe(10000);
    expect(fromHfConfig({ ...llamaJson(), rope_scaling: { rope_type: 'default' } }, 'x').ropeTheta).toBe(500000);
    expect(fromHfConfig({ ...llamaJson(), rope_scaling: null }, 'x').ropeTheta).toBe(500000);
  });

  it('refuses RoPE types it does not run (llama3 and linear it does: test/model_families.test.ts), other activations, sliding layers without a window', () => {
    expectUnsupported({ ...llamaJson(), rope_scaling: { type: 'dynamic', factor: 2 } }, /rope_scaling/, /dynamic/);
    expectUnsupported(
      { ...llamaJson(), rope_parameters: { rope_theta: 1e4, rope_type: 'yarn' } },
      /rope_parameters\.rope_type/,
      /yarn/,
    );
    expectUnsupported({ ...llamaJson(), hidden_act: 'gelu' }, /hidden_act/, /gelu/);
    expectConfigError({ ...llamaJson(), layer_types: ['full_attention', 'sliding_attention'] }, 'sliding_window');
    expectUnsupported({ ...llamaJson(), layer_types: ['full_attention', 'chunked_attention'] }, /layer_types\[1\]/);
    expectUnsupported(
      { ...llamaJson(), rope_parameters: { rope_theta: 1e4, rope_type: 'default', partial_rotary_factor: 0.5 } },
      /partial_rotary_factor/,
    );
  });

  it('type checks its fields', () => {
    expectConfigError({ ...llamaJson(), num_key_value_heads: 4 }, 'num_key_value_heads', /multiple/);
    expectConfigError({ ...llamaJson(), hidden_size: 100 }, 'num_attention_heads', /divisible/);
    expectConfigError({ ...llamaJson(), head_dim: 15, hidden_size: 90 }, 'head_dim', /even/);
    expectConfigError({ ...llamaJson(), rope_theta: 'big' }, 'rope_theta');
    expectConfigError({ ...llamaJson(), rope_parameters: { rope_theta: -1 } }, 'rope_parameters.rope_theta');
    expectConfigError({ ...llamaJson(), rope_parameters: [1] }, 'rope_parameters');
    expectConfigError({ ...llamaJson(), attention_bias: 1 }, 'attention_bias');
    expectConfigError({ ...llamaJson(), max_position_embeddings: -5 }, 'max_position_embeddings');
    expectConfigError({ ...llamaJson(), architectures: 'LlamaForCausalLM' }, 'architectures');
  });

  it('Qwen2: q/k/v biases, no o_proj / MLP bias; a sliding window only when used, from max_window_layers on', () => {
    const j: Json = {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      vocab_size: 500,
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 256,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      use_sliding_window: false,
      sliding_window: 128,
      max_window_layers: 2,
      bos_token_id: 151643,
      eos_token_id: 151645,
    };
    const c = fromHfConfig(j, 'cfg/config.json');
    expect(c).toMatchObject({
      family: 'llama',
      attentionBias: true,
      attentionOutBias: false,
      mlpBias: false,
      ropeTheta: 1e6,
      headDim: 16,
    });
    const out = toHfConfig(c);
    expect(out['model_type']).toBe('qwen2');
    expect(out['architectures']).toEqual(['Qwen2ForCausalLM']);
    expect(out['attention_bias']).toBeUndefined();
    expect(withoutHf(fromHfConfig(out, 'x'))).toEqual(withoutHf(c));
    expect(c.slidingWindow).toBeUndefined(); // use_sliding_window false
    const w = fromHfConfig({ ...j, use_sliding_window: true, max_window_layers: 1 }, 'x');
    expect([w.slidingWindow, w.layerTypes]).toEqual([128, ['full', 'sliding']]);
    expect(fromHfConfig({ ...j, use_sliding_window: true, sliding_window: 256 }, 'x').slidingWindow).toBeUndefined();
  });

  it('Mistral: without a sliding window, with one (the default 4096), or one no shorter than the context (none)', () => {
    const j: Json = {
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      vocab_size: 500,
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      max_position_embeddings: 8192,
      sliding_window: null,
    };
    const c = fromHfConfig(j, 'cfg/config.json');
    expect(c).toMatchObject({
      numKvHeads: 1,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      tieWordEmbeddings: false,
      bosTokenId: 1,
      eosTokenId: 2,
    });
    expect(toHfConfig(c)['model_type']).toBe('mistral');
    expect(withoutHf(fromHfConfig(toHfConfig(c), 'x'))).toEqual(withoutHf(c));
    expect(fromHfConfig({ ...j, sliding_window: 4096 }, 'x').slidingWindow).toBe(4096);
    const noWindow = { ...j };
    delete noWindow['sliding_window'];
    expect(fromHfConfig(noWindow, 'x').slidingWindow).toBe(4096); // transformers' Mistral default
    expect(fromHfConfig({ ...j, sliding_window: 8192 }, 'x').slidingWindow).toBeUndefined();
  });

  it('changing biases switches the written model type to one that can express them', () => {
    const c = fromHfConfig(llamaJson(), 'x');
    const qwenLike = { ...c, attentionBias: true };
    expect(toHfConfig(qwenLike)['model_type']).toBe('qwen2');
    expect(withoutHf(fromHfConfig(toHfConfig(qwenLike), 'x'))).toEqual(withoutHf(qwenLike));
    expect(() => toHfConfig({ ...c, attentionOutBias: true, mlpBias: true })).toThrow(UnsupportedError);
  });
});

describe('architecture selection', () => {
  it('unknown architectures and model types are refused with the supported list', () => {
    expectUnsupported({ model_type: 'bert' }, /model_type/, /bert/, /GPT2LMHeadModel/, /LlamaForCausalLM/);
    expectUnsupported({ architectures: ['GPT2Model'], model_type: 'gpt2' }, /architectures/, /GPT2Model/);
    expectUnsupported(
      { architectures: ['LlamaForCausalLM'], model_type: 'qwen2' },
      /architectures/,
      /Qwen2ForCausalLM/,
    );
    expectUnsupported({ architectures: ['FalconForCausalLM'] }, /FalconForCausalLM/, /MistralForCausalLM/);
  });

  it('needs model_type or architectures; the config must be an object', () => {
    expectConfigError({ vocab_size: 3 }, 'model_type');
    const e = errorOf(() => fromHfConfig([1, 2], 'cfg/config.json'));
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/cfg\/config\.json/);
  });

  it('loadHfConfig reads a folder', async (ctx) => {
    needFixtures(ctx, fixtureDirs.length);
    expect((await loadHfConfig(fixtureDirs[0]!)).hf).toBeDefined();
  });

  it('loadHfConfig: a missing config.json is a named error', async () => {
    await expect(loadHfConfig(path.join(FIXTURES, 'no-such-folder'))).rejects.toMatchObject({ code: 'E_FILE_MISSING' });
  });

  it('lists every supported architecture', () => {
    expect(Object.values(SUPPORTED_ARCHITECTURES).sort()).toEqual([
      'GPT2LMHeadModel',
      'Gemma3ForCausalLM',
      'LlamaForCausalLM',
      'MistralForCausalLM',
      'Phi3ForCausalLM',
      'Qwen2ForCausalLM',
      'Qwen3ForCausalLM',
      'SmolLM3ForCausalLM',
    ]);
  });
});

describe('configs made from scratch', () => {
  const base: ModelConfig = {
    family: 'llama',
    vocabSize: 128,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 8,
    intermediateSize: 64,
    maxPositions: 16,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    attentionBias: false,
    attentionOutBias: false,
    mlpBias: false,
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };

  it('round trip every family and option', () => {
    const variants: ModelConfig[] = [
      base,
      { ...base, dropout: 0.2, tieWordEmbeddings: true, eosTokenId: [3, 4], bosTokenId: 0, padTokenId: 5 },
      { ...base, attentionBias: true, attentionOutBias: true, mlpBias: true, numKvHeads: 1, headDim: 16 },
      { ...base, attentionBias: true },
      {
        ...base,
        family: 'gpt2',
        attentionBias: true,
        attentionOutBias: true,
        mlpBias: true,
        intermediateSize: 128,
        dropout: 0.1,
      },
      {
        ...base,
        family: 'gpt2',
        attentionBias: true,
        attentionOutBias: true,
        mlpBias: true,
        intermediateSize: 100,
        tieWordEmbeddings: false,
      },
    ];
    for (const v of variants) {
      const out = toHfConfig(v);
      expect(out['dtype']).toBe('float32');
      expect(typeof out['transformers_version']).toBe('string');
      expect(Object.keys(out)).toEqual(Object.keys(out).sort());
      expect(fromHfConfig(JSON.parse(JSON.stringify(out)), 'x')).toEqual({ ...v, hf: out });
    }
  });

  it('dropout on the Llama family survives in llmts_dropout; GPT-2 writes resid/embd_pdrop', () => {
    expect(toHfConfig({ ...base, dropout: 0.2 })['llmts_dropout']).toBe(0.2);
    expect(toHfConfig(base)['llmts_dropout']).toBeUndefined();
    const g = toHfConfig({
      ...base,
      family: 'gpt2',
      attentionBias: true,
      attentionOutBias: true,
      mlpBias: true,
      dropout: 0.3,
    });
    expect([g['resid_pdrop'], g['embd_pdrop'], g['attn_pdrop']]).toEqual([0.3, 0.3, 0]);
  });

  it('records the weights dtype when asked', () => {
    expect(toHfConfig(base, { dtype: 'bfloat16' })['dtype']).toBe('bfloat16');
    const withTorchDtype = { ...base, hf: { ...toHfConfig(base), torch_dtype: 'float16' } as Json };
    delete withTorchDtype.hf['dtype'];
    expect(toHfConfig(withTorchDtype)['torch_dtype']).toBe('float16');
    const set = toHfConfig(withTorchDtype, { dtype: 'float32' });
    expect(set['dtype']).toBe('float32');
    expect(set['torch_dtype']).toBeUndefined();
  });

  it('keeps fields it does not own from cfg.hf', () => {
    const c = fromHfConfig({ ...llamaJson(), initializer_range: 0.05, custom_field: [1, 2] }, 'x');
    const out = toHfConfig({ ...c, numLayers: 5 });
    expect(out['custom_field']).toEqual([1, 2]);
    expect(out['initializer_range']).toBe(0.05);
    expect(out['num_hidden_layers']).toBe(5);
  });
});
