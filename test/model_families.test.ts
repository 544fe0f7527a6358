/**
 * Qwen3 (RMSNorm on each query and key head before RoPE) and Llama 3's scaled RoPE (rope_type llama3; linear) through
 * the whole model: the config.json files of Qwen3-0.6B and Llama-3.2-1B as published map to the right ModelConfig
 * and are written back; the llama3 frequencies (transformers' form, llama.cpp's divisors, and the parameters read back
 * from those divisors); a model folder round trip; cached, fused and q8 decoding equal the full forward on every
 * backend; training reaches the norms. The same for Gemma 3's text models (gemma-3-270m's config.json as published;
 * sliding-window and full layers, sandwich norms, GeGLU, gains stored minus 1) and Mistral's sliding window, with the
 * window's meaning checked against attention written out by hand. That the function itself is right is llama.cpp's
 * check (test/gguf_llamacpp.test.ts: its qwen3, gemma3 and rope_freqs give our probabilities within 4e-4).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { fromHfConfig, toHfConfig } from '../src/model/hf/config.js';
import { hparamsToGguf } from '../src/model/gguf/hparams.js';
import { loadModel, saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import { CausalLM, shiftTargets } from '../src/model/model.js';
import { fuseModel, quantizeModel } from '../src/model/quantize.js';
import { defaultInvFreq, llama3FromFactors, ropeFactors, scaledInvFreq } from '../src/model/rope.js';
import type { ModelConfig } from '../src/model/config.js';
import { backward } from '../src/tensor/autograd.js';
import { noGrad, tensor, tidy } from '../src/tensor/tensor.js';
import { ConfigError, UnsupportedError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { relErr, testBackends } from './helpers.js';

const BACKENDS = (await testBackends()).map((b) => [b.name, b] as const);
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-families-'));
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** Qwen3-0.6B's config.json as published on the Hugging Face Hub (Qwen/Qwen3-0.6B). */
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.51.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** Llama-3.2-1B's config.json as published (meta-llama/Llama-3.2-1B). */
const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

const LLAMA3_SCALING = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };

const withoutHf = (c: ModelConfig) => {
  const { hf: _hf, ...rest } = c;
  return rest;
};

describe('config.json of the new families', () => {
  it('Qwen3-0.6B: q/k norms, head_dim 128 ≠ hidden/heads, GQA, tied head; written back as it was', () => {
    const c = fromHfConfig(QWEN3_06B, 'Qwen3-0.6B/config.json');
    expect(c).toMatchObject({
      family: 'llama',
      qkNorm: true,
      hiddenSize: 1024,
      numHeads: 16,
      numKvHeads: 8,
      headDim: 128,
      numLayers: 28,
      ropeTheta: 1e6,
      tieWordEmbeddings: true,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      eosTokenId: 151645,
    });
    expect(c.ropeScaling).toBeUndefined();
    const back = toHfConfig(c);
    for (const [k, v] of Object.entries(QWEN3_06B)) expect(back[k], k).toEqual(v);
    expect(back['mlp_bias']).toBeUndefined(); // transformers' Qwen3Config has none
    expect(withoutHf(fromHfConfig(back, 'again'))).toEqual(withoutHf(c));
    // head_dim absent: transformers' Qwen3 default is 128, not hidden_size / heads
    const { head_dim: _d, ...noHeadDim } = QWEN3_06B;
    expect(fromHfConfig(noHeadDim, 'x').headDim).toBe(128);
  });

  it('Llama-3.2-1B: rope_scaling llama3 read, and written back in the spelling it came in (transformers 4 and 5)', () => {
    const c = fromHfConfig(LLAMA32_1B, 'Llama-3.2-1B/config.json');
    expect(c.ropeScaling).toEqual(LLAMA3_SCALING);
    expect(c.qkNorm).toBeUndefined();
    const back = toHfConfig(c);
    expect(back['rope_scaling']).toEqual(LLAMA32_1B.rope_scaling);
    expect(back['rope_theta']).toBe(500000);
    expect(withoutHf(fromHfConfig(back, 'again'))).toEqual(withoutHf(c));
    // transformers 5: one rope_parameters dict
    const { rope_scaling, rope_theta: _t, ...rest } = LLAMA32_1B;
    const v5 = { ...rest, rope_parameters: { ...rope_scaling, rope_theta: 500000 } };
    const c5 = fromHfConfig(v5, 'v5/config.json');
    expect(c5.ropeScaling).toEqual(LLAMA3_SCALING);
    expect(toHfConfig(c5)['rope_parameters']).toEqual(v5.rope_parameters);
    // the scaling dropped: rope_parameters loses its llama3 keys
    expect(toHfConfig({ ...c5, ropeScaling: undefined })['rope_parameters']).toEqual({
      rope_theta: 500000,
      rope_type: 'default',
    });
    // linear, in the old spelling ('type')
    const lin = fromHfConfig({ ...LLAMA32_1B, rope_scaling: { type: 'linear', factor: 2 } }, 'x');
    expect(lin.ropeScaling).toEqual({ type: 'linear', factor: 2 });
    expect(toHfConfig(lin)['rope_scaling']).toEqual({ rope_type: 'linear', factor: 2 });
  });

  it('refuses what it cannot run or write, naming the field', () => {
    const bad = (rs: unknown) => () => fromHfConfig({ ...LLAMA32_1B, rope_scaling: rs }, 'c.json');
    expect(bad({ rope_type: 'llama3', factor: 8 })).toThrow(ConfigError);
    expect(bad({ rope_type: 'llama3', factor: 8 })).toThrow(/rope_scaling\.low_freq_factor.*missing/);
    expect(bad({ ...LLAMA32_1B.rope_scaling, low_freq_factor: 4 })).toThrow(/low_freq_factor < high_freq_factor/);
    expect(bad({ ...LLAMA32_1B.rope_scaling, factor: 'big' })).toThrow(/rope_scaling\.factor/);
    for (const t of ['yarn', 'dynamic', 'longrope']) {
      expect(bad({ rope_type: t, factor: 4 })).toThrow(UnsupportedError);
      expect(bad({ rope_type: t, factor: 4 })).toThrow(/rope_scaling\.rope_type.*default, llama3, linear/);
    }
    const c = fromHfConfig(LLAMA32_1B, 'x');
    // a GGUF's divisors have no transformers spelling
    expect(() => toHfConfig({ ...c, ropeScaling: { type: 'factors', factors: new Array(32).fill(2) } })).toThrow(
      /rope_freqs.*has no transformers form/,
    );
    expect(() => toHfConfig({ ...c, ropeScaling: { type: 'linear', factor: -1 } })).toThrow(ConfigError);
    // q/k norms exist in Qwen3 only, and with Llama's biases (q/k/v and o together) or none
    expect(() => toHfConfig({ ...c, qkNorm: true, attentionBias: true })).toThrow(/qkNorm=true/);
    expect(toHfConfig({ ...c, qkNorm: true })['model_type']).toBe('qwen3');
  });
});

describe('llama3 frequencies (Llama 3.2: head 64, θ 500000, factor 32, low 1, high 4, context 8192)', () => {
  const c = fromHfConfig(LLAMA32_1B, 'x');
  const plain = defaultInvFreq(c.ropeTheta, c.headDim);
  const scaled = scaledInvFreq(c.ropeTheta, c.headDim, c.ropeScaling!);
  const wavelen = (f: number) => (2 * Math.PI) / f;

  it('short wavelengths kept, long ones divided by the factor, the ones between blended monotonically', () => {
    const kinds = { kept: 0, divided: 0, blended: 0 };
    plain.forEach((f, i) => {
      const s = scaled[i]!;
      if (wavelen(f) < 8192 / 4) {
        expect(s).toBe(f);
        kinds.kept++;
      } else if (wavelen(f) > 8192) {
        expect(s).toBe(Math.fround(f / 32));
        kinds.divided++;
      } else {
        expect(s).toBeLessThan(f);
        expect(s).toBeGreaterThan(f / 32);
        // s/f = (1 − t)/32 + t with t = (8192/λ − 1)/3, in float64: transformers' float32 steps agree
        const t = (8192 / wavelen(f) - 1) / 3;
        expect(Math.abs(s / f - ((1 - t) / 32 + t)) / (s / f)).toBeLessThan(1e-6);
        kinds.blended++;
      }
      if (i > 0) expect(scaled[i]!).toBeLessThan(scaled[i - 1]!);
    });
    expect(kinds).toEqual({ kept: 15, divided: 14, blended: 3 }); // every branch in play
  });

  it("llama.cpp's divisors (its converter's formula) are the same scaling; the parameters come back from them", () => {
    const factors = ropeFactors(c)!;
    factors.forEach((d, i) => expect(Math.abs(plain[i]! / d - scaled[i]!) / scaled[i]!).toBeLessThan(1e-6));
    expect(llama3FromFactors(Array.from(factors), c.ropeTheta, c.headDim)).toEqual(LLAMA3_SCALING);
    // divisors that are no llama3 curve stay divisors
    const rng = new Rng(3);
    expect(
      llama3FromFactors(
        Array.from(factors, () => 1 + 4 * rng.random()),
        c.ropeTheta,
        c.headDim,
      ),
    ).toBeNull();
    expect(ropeFactors({ ...c, ropeScaling: { type: 'linear', factor: 2 } })).toBeNull(); // its own GGUF keys
    expect(ropeFactors({ ...c, ropeScaling: undefined })).toBeNull();
  });
});

/** Tiny configs of each new shape. */
const TINY = {
  vocab_size: 97,
  hidden_size: 48,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 256,
};
const tinyConfigs: [string, ModelConfig][] = [
  ['Qwen3', fromHfConfig({ ...TINY, model_type: 'qwen3', tie_word_embeddings: true }, 'qwen3 tiny')],
  [
    'Llama with llama3 RoPE',
    fromHfConfig(
      {
        ...TINY,
        model_type: 'llama',
        rope_theta: 100,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 4,
          low_freq_factor: 1,
          high_freq_factor: 8,
          original_max_position_embeddings: 64,
        },
      },
      'llama3 tiny',
    ),
  ],
  [
    'Gemma 3 (window 8, sandwich norms, GeGLU, scaled embeddings, query_pre_attn_scalar 24)',
    fromHfConfig(
      {
        ...TINY,
        model_type: 'gemma3_text',
        num_hidden_layers: 3,
        sliding_window: 8,
        query_pre_attn_scalar: 24,
        layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'],
      },
      'gemma3 tiny',
    ),
  ],
  ['Mistral (sliding window 8)', fromHfConfig({ ...TINY, model_type: 'mistral', sliding_window: 8 }, 'mistral tiny')],
  [
    'Phi-3 (q/k/v and gate/up stacked in the checkpoint, window 8)',
    fromHfConfig({ ...TINY, model_type: 'phi3', sliding_window: 8 }, 'phi3 tiny'),
  ],
  [
    'SmolLM3 (NoPE every fourth layer)',
    fromHfConfig({ ...TINY, model_type: 'smollm3', num_hidden_layers: 4, tie_word_embeddings: true }, 'smollm3 tiny'),
  ],
];

/** A random model of `cfg` on `backend` (std 0.1) whose norm gains are away from 1. */
function randomModel(cfg: ModelConfig, backend = getBackend('ref')): CausalLM {
  const init = initModel(cfg, new Rng(11), { std: 0.1, backend });
  for (const [name, p] of init.params)
    if (/norm/.test(name))
      backend.write(
        p.buf,
        Float32Array.from({ length: p.size }, (_, i) => 1 + 0.4 * Math.sin(3 * i + name.length)),
      );
  return init;
}

async function logits(model: CausalLM, ids: number[]): Promise<Float32Array> {
  const t = tidy(() => noGrad(() => model.forward(Int32Array.from(ids), 1, ids.length)));
  const d = Float32Array.from((await t.data()) as Float32Array);
  t.dispose();
  return d;
}

describe.each(tinyConfigs)('%s', (name, cfg) => {
  it('a model folder round trip gives the same logits (and the q/k norms by their transformers names)', async () => {
    const model = randomModel(cfg);
    const dir = path.join(TMP, name.replace(/\W+/g, '-'));
    await saveModel(model, dir);
    const back = await loadModel(dir, { backend: getBackend('ref') });
    expect(withoutHf(back.config)).toEqual(withoutHf(cfg));
    const ids = [5, 17, 3, 96, 40, 40, 2, 71, 12, 9];
    expect(await logits(back, ids)).toEqual(await logits(model, ids));
    if (cfg.qkNorm) expect(back.params.has('model.layers.1.self_attn.k_norm.weight')).toBe(true);
  });

  it.each(BACKENDS)(
    'on %s: cached, fused and q8 decoding equal the full forward, past the original context',
    async (_name, backend) => {
      const ref = randomModel(cfg);
      const model = new CausalLM(
        cfg,
        new Map([...ref.params].map(([n, p]) => [n, tensor(p.dataSync() as Float32Array, p.shape, { backend })])),
      );
      const seq = Array.from({ length: 80 }, (_, i) => (i * 29 + 7) % cfg.vocabSize);
      const full = await logits(ref, seq); // the ref backend, no cache
      const V = cfg.vocabSize;
      const cachedRun = async (m: CausalLM) => {
        const cache = m.newCache(1);
        const out: Float32Array[] = [];
        for (const [i, id] of seq.entries()) {
          const t = tidy(() => noGrad(() => m.forward(Int32Array.of(id), 1, 1, { cache })));
          out.push(Float32Array.from((await t.data()) as Float32Array));
          t.dispose();
          expect(cache.length).toBe(i + 1);
        }
        return out;
      };
      const check = (steps: Float32Array[], tol: number, what: string) =>
        steps.forEach((row, t) =>
          expect(relErr(row, full.subarray(t * V, (t + 1) * V)), `${what} step ${t}`).toBeLessThan(tol),
        );
      check(await cachedRun(model), 1e-5, 'cached');
      await fuseModel(model); // Llama: q/k/v fused, one rope_qkv_cache call; Qwen3: q, k, v apart (norms between)
      check(await cachedRun(model), 1e-5, 'fused');
      const q8 = new CausalLM(
        cfg,
        new Map([...ref.params].map(([n, p]) => [n, tensor(p.dataSync(), p.shape, { backend })])),
      );
      await quantizeModel(q8, 'q8');
      check(await cachedRun(q8), 0.05, 'q8');
    },
    60_000,
  );

  it('training reaches every parameter, the q/k norms included, and lowers the loss', async () => {
    const model = randomModel(cfg);
    const B = 2,
      T = 24;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i % 12) * 7 + 1);
    const targets = shiftTargets(ids, B, T);
    const step = async (lr: number) => {
      for (const p of model.params.values()) p.grad = null;
      const l = tidy(() => {
        const x = model.loss(ids, targets, B, T);
        backward(x);
        return x;
      });
      const v = await l.item();
      l.dispose();
      for (const [n, p] of model.params) {
        const g = p.grad!.dataSync();
        expect(
          g.some((x) => x !== 0),
          n,
        ).toBe(true);
        const w = p.dataSync() as Float32Array;
        p.backend.write(
          p.buf,
          w.map((x, i) => x - lr * g[i]!),
        );
      }
      return v;
    };
    const first = await step(0.5);
    let last = first;
    for (let i = 0; i < 10; i++) last = await step(0.5);
    expect(last).toBeLessThan(first - 0.3);
  });
});

/** google/gemma-3-270m's config.json as published on the Hugging Face Hub. */
const GEMMA3_270M = {
  _sliding_window_pattern: 6,
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 640,
  initializer_range: 0.02,
  intermediate_size: 2048,
  layer_types: Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 ? 'sliding_attention' : 'full_attention')),
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  torch_dtype: 'bfloat16',
  transformers_version: '4.55.0.dev0',
  use_bidirectional_attention: false,
  use_cache: true,
  vocab_size: 262144,
};

describe('Gemma 3 and sliding windows', () => {
  it("gemma-3-270m's config.json maps to Gemma 3's layout and is written back as it was", () => {
    const c = fromHfConfig(GEMMA3_270M, 'gemma-3-270m/config.json');
    expect(withoutHf(c)).toMatchObject({
      family: 'llama',
      vocabSize: 262144,
      hiddenSize: 640,
      numLayers: 18,
      numHeads: 4,
      numKvHeads: 1,
      headDim: 256,
      intermediateSize: 2048,
      maxPositions: 32768,
      ropeTheta: 1e6,
      ropeLocalTheta: 10000,
      qkNorm: true,
      slidingWindow: 512,
      embedScale: true,
      sandwichNorms: true,
      mlpActivation: 'gelu_tanh',
      attnScale: 1 / 16,
      normOffset: 1,
      tieWordEmbeddings: true,
      bosTokenId: 2,
      eosTokenId: 1,
      padTokenId: 0,
    });
    expect(c.layerTypes!.filter((t) => t === 'full').length).toBe(3); // layers 5, 11, 17
    expect(toHfConfig(c)).toEqual(Object.fromEntries(Object.entries(GEMMA3_270M).sort(([a], [b]) => (a < b ? -1 : 1))));
    // without layer_types, transformers' pattern (every 6th layer full)
    const { layer_types: _, ...noTypes } = GEMMA3_270M;
    expect(fromHfConfig(noTypes, 'x').layerTypes).toEqual(c.layerTypes);
    // transformers 5's rope_parameters per layer type read the same
    const { rope_theta: _t, rope_local_base_freq: _l, rope_scaling: _s, ...v5 } = GEMMA3_270M;
    const c5 = fromHfConfig(
      {
        ...v5,
        rope_parameters: {
          full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
          sliding_attention: { rope_type: 'default', rope_theta: 10000 },
        },
      },
      'x',
    );
    expect([c5.ropeTheta, c5.ropeLocalTheta, c5.ropeScaling]).toEqual([1e6, 10000, { type: 'linear', factor: 8 }]);
  });

  it('refused by name: soft-capping, bidirectional attention, the multimodal and older Gemmas', () => {
    expect(() => fromHfConfig({ ...GEMMA3_270M, final_logit_softcapping: 30 }, 'g.json')).toThrow(
      /final_logit_softcapping.*soft-capping/,
    );
    expect(() => fromHfConfig({ ...GEMMA3_270M, use_bidirectional_attention: true }, 'g.json')).toThrow(
      /use_bidirectional_attention/,
    );
    expect(() => fromHfConfig({ model_type: 'gemma3' }, 'g.json')).toThrow(/multimodal.*gemma3_text/);
    expect(() => fromHfConfig({ model_type: 'gemma2' }, 'g.json')).toThrow(/Gemma 2/);
    expect(() => fromHfConfig({ ...GEMMA3_270M, layer_types: ['sliding_attention'] }, 'g.json')).toThrow(ConfigError);
    const c = fromHfConfig(GEMMA3_270M, 'x');
    expect(() => toHfConfig({ ...c, embedScale: false })).toThrow(/embedScale/);
    expect(() => toHfConfig({ ...c, sandwichNorms: false })).toThrow(UnsupportedError);
  });

  it('SmolLM3: no_rope_layers (1 = RoPE) read, by default every fourth layer without; written back; NoPE matters', async () => {
    const c = fromHfConfig({ ...TINY, model_type: 'smollm3', num_hidden_layers: 8 }, 'x');
    expect(c.noRopeLayers).toEqual([false, false, false, true, false, false, false, true]);
    const out = toHfConfig(c);
    expect([out['model_type'], out['architectures'], out['no_rope_layers']]).toEqual([
      'smollm3',
      ['SmolLM3ForCausalLM'],
      [1, 1, 1, 0, 1, 1, 1, 0],
    ]);
    expect(withoutHf(fromHfConfig(out, 'x'))).toEqual(withoutHf(c));
    const given = fromHfConfig({ ...TINY, model_type: 'smollm3', no_rope_layers: [0, 1] }, 'x');
    expect(given.noRopeLayers).toEqual([true, false]);
    expect(() => fromHfConfig({ ...TINY, model_type: 'smollm3', no_rope_layers: [1] }, 'x')).toThrow(/no_rope_layers/);
    // a llama config cannot hold NoPE layers: written as smollm3
    expect(
      toHfConfig({ ...fromHfConfig({ ...TINY, model_type: 'llama' }, 'x'), noRopeLayers: [true, false] })['model_type'],
    ).toBe('smollm3');
    // and the NoPE layer changes what the model computes
    const cfg = tinyConfigs.find(([n]) => n.startsWith('SmolLM3'))![1];
    const model = randomModel(cfg);
    const roped = new CausalLM({ ...cfg, noRopeLayers: undefined }, model.params);
    const ids = [5, 17, 3, 96, 40, 40, 2, 71, 12, 9];
    expect(relErr(await logits(model, ids), await logits(roped, ids))).toBeGreaterThan(1e-3);
  });

  it("Phi-3: its checkpoint's qkv_proj and gate_up_proj are the model's q/k/v and gate/up stacked; a Llama with them apart computes the same", async () => {
    const cfg = tinyConfigs.find(([n]) => n.startsWith('Phi-3'))![1];
    expect([cfg.fusedProjections, cfg.slidingWindow, cfg.normEps]).toEqual([true, 8, 1e-5]);
    const model = randomModel(cfg);
    const dir = path.join(TMP, 'phi3-stacked');
    await saveModel(model, dir);
    const { readSafetensors } = await import('../src/formats/safetensors.js');
    const stored = (await readSafetensors(path.join(dir, 'model.safetensors'))).tensors;
    expect(stored.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
    const qkv = stored.get('model.layers.1.self_attn.qkv_proj.weight')!;
    expect(qkv.shape).toEqual([(4 + 2 * 2) * 16, 48]);
    const parts = ['q', 'k', 'v'].map((n) => model.params.get(`model.layers.1.self_attn.${n}_proj.weight`)!.dataSync());
    expect(Array.from(qkv.data)).toEqual(parts.flatMap((p) => Array.from(p)));
    const gu = stored.get('model.layers.0.mlp.gate_up_proj.weight')!;
    expect(Array.from(gu.data.subarray(0, 96 * 48))).toEqual(
      Array.from(model.params.get('model.layers.0.mlp.gate_proj.weight')!.dataSync()),
    );
    expect(toHfConfig(cfg)['model_type']).toBe('phi3');
    // the same weights as a Mistral (a window on every layer, projections apart): the same logits
    const mistral = new CausalLM({ ...cfg, fusedProjections: undefined }, model.params);
    const ids = Array.from({ length: 20 }, (_, i) => (i * 13 + 5) % cfg.vocabSize);
    expect(await logits(await loadModel(dir, { backend: getBackend('ref') }), ids)).toEqual(await logits(mistral, ids));
    expect(toHfConfig(mistral.config)['model_type']).toBe('mistral');
    // a missing or misshapen stacked tensor is named
    const { modelFromHf } = await import('../src/model/hf/weights.js');
    const less = new Map(stored);
    less.delete('model.layers.1.mlp.gate_up_proj.weight');
    expect(() => modelFromHf(toHfConfig(cfg), less)).toThrow(/gate_up_proj.*missing/);
    // LoRA adapters on the parts have no PEFT form for Phi-3: refused before any training
    const { addLora } = await import('../src/model/lora.js');
    expect(() =>
      addLora(model, { r: 4, alpha: 8, dropout: 0, targetModules: ['all-linear'] } as never, new Rng(1)),
    ).toThrow(/Phi-3.*no --usePeft/);
  });

  it('Mistral and Qwen2 windows: every layer (Mistral), the layers from max_window_layers on (Qwen2); written back', async () => {
    const m = fromHfConfig({ ...TINY, model_type: 'mistral', sliding_window: 8 }, 'x');
    expect([m.slidingWindow, m.layerTypes]).toEqual([8, undefined]);
    expect(toHfConfig(m)['sliding_window']).toBe(8);
    // llama.cpp's llama reads no window: the GGUF's context stops at it, so llama.cpp never attends past it
    expect(hparamsToGguf(m).get('llama.context_length')!.value).toBe(8);
    expect(() => hparamsToGguf({ ...m, layerTypes: ['full', 'sliding'] })).toThrow(/layer_types/);
    // a hand-made config with one layer type too few, or a window of 0, is named before it runs
    const model = randomModel(m);
    expect(() => new CausalLM({ ...m, layerTypes: ['sliding'] }, model.params)).toThrow(
      /layerTypes.*1 entries for 2 layers/,
    );
    expect(() => new CausalLM({ ...m, slidingWindow: 0 }, model.params)).toThrow(/slidingWindow/);
    expect(fromHfConfig({ ...TINY, model_type: 'mistral', sliding_window: null }, 'x').slidingWindow).toBeUndefined();
    const q = fromHfConfig(
      { ...TINY, model_type: 'qwen2', use_sliding_window: true, sliding_window: 8, max_window_layers: 1 },
      'x',
    );
    expect([q.slidingWindow, q.layerTypes]).toEqual([8, ['full', 'sliding']]);
    expect(withoutHf(fromHfConfig(toHfConfig(q), 'x'))).toEqual(withoutHf(q));
  });

  it("the stored norm gains are Gemma's w (the model's gain − 1)", async () => {
    const cfg = tinyConfigs.find(([n]) => n.startsWith('Gemma'))![1];
    const model = randomModel(cfg);
    const dir = path.join(TMP, 'gemma-gains');
    await saveModel(model, dir);
    const { readSafetensors } = await import('../src/formats/safetensors.js');
    const stored = (await readSafetensors(path.join(dir, 'model.safetensors'))).tensors;
    const name = 'model.layers.1.post_feedforward_layernorm.weight';
    const held = model.params.get(name)!.dataSync() as Float32Array;
    const w = stored.get(name)!.data as Float32Array;
    for (let i = 0; i < held.length; i++) expect(w[i]).toBeCloseTo(held[i]! - 1, 6);
  });

  it('a sliding window means what transformers means: the last `window` keys, the own one included', async () => {
    const cfg = tinyConfigs.find(([n]) => n.startsWith('Mistral'))![1];
    // attention written out by hand (float64) against the kernel, on every backend
    const [B, T, H, D, W] = [1, 20, 2, 8, 5];
    const rng = new Rng(3);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const q = rand(B * T * H * D),
      k = rand(B * T * H * D),
      v = rand(B * T * H * D);
    const want = new Float64Array(B * T * H * D);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const keys = [];
        for (let s = Math.max(0, t - W + 1); s <= t; s++) keys.push(s);
        const sc = keys.map((s) => {
          let d = 0;
          for (let i = 0; i < D; i++) d += q[(t * H + h) * D + i]! * k[(s * H + h) * D + i]!;
          return d / Math.sqrt(D);
        });
        const m = Math.max(...sc);
        const e = sc.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < D; i++)
          want[(t * H + h) * D + i] = keys.reduce((a, s, j) => a + (e[j]! / z) * v[(s * H + h) * D + i]!, 0);
      }
    const { attention } = await import('../src/tensor/ops.js');
    for (const [name, backend] of BACKENDS) {
      const mk = (x: Float32Array) => tensor(x, [B, T, H, D], { backend });
      const got = tidy(() => noGrad(() => attention(mk(q), mk(k), mk(v), { window: W })));
      const g = (await got.data()) as Float32Array;
      got.dispose();
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - want[i]!), `${name} at ${i}`).toBeLessThan(1e-5);
    }
    // and it matters to the model: past the window the logits differ from the same weights without one
    const model = randomModel(cfg);
    const plain = new CausalLM({ ...cfg, slidingWindow: undefined }, model.params);
    const ids = Array.from({ length: 20 }, (_, i) => (i * 13 + 5) % cfg.vocabSize);
    const [a, b] = [await logits(model, ids), await logits(plain, ids)];
    const V = cfg.vocabSize;
    expect(relErr(a.subarray(0, 8 * V), b.subarray(0, 8 * V))).toBeLessThan(1e-6); // within the window: the same
    expect(relErr(a.subarray(12 * V), b.subarray(12 * V))).toBeGreaterThan(1e-3);
  });
});
