/**
 * ModelConfig ⇄ the hyper-parameters of a GGUF file (llama.cpp's LLM_KV names, `{arch}.` prefixed):
 *
 *   general.architecture              "llama" | "qwen2" | "qwen3" | "gpt2"
 *   {arch}.context_length             maxPositions          {arch}.embedding_length      hiddenSize
 *   {arch}.block_count                numLayers             {arch}.feed_forward_length   intermediateSize
 *   {arch}.attention.head_count       numHeads              {arch}.attention.head_count_kv  numKvHeads (llama)
 *   {arch}.attention.layer_norm_rms_epsilon (llama) / layer_norm_epsilon (gpt2)   normEps
 *   {arch}.rope.freq_base, rope.dimension_count, attention.key_length / value_length   ropeTheta, headDim (llama)
 *   {arch}.vocab_size                 vocabSize
 *   {arch}.rope.scaling.type = "linear", rope.scaling.factor   ropeScaling {type: 'linear'}
 *
 * Reading builds the Hugging Face config.json these describe and goes through `fromHfConfig`, so a GGUF model gets
 * the same checks and defaults as a folder. GGUF keeps epsilons and θ as float32: they are read back to 7
 * significant digits (1e-5 stays 1e-5, not 9.99999974e-6).
 */
import { ConfigError, UnsupportedError } from '../../util/errors.js';
import type { GgufValue } from '../../formats/gguf.js';
import type { ModelConfig } from '../config.js';
import { fromHfConfig } from '../hf/config.js';
import { gemma3CppScale, ggufArchitecture } from './tensors.js';

/** general.file_type (llama_ftype) of a file whose matrices are all of one type. */
export const FILE_TYPE = { F32: 0, F16: 1, Q8_0: 7, Q4_K: 15, BF16: 32 } as const; // Q4_K: LLAMA_FTYPE_MOSTLY_Q4_K_M

const u32 = (value: number): GgufValue => ({ type: 'u32', value });
const f32 = (value: number): GgufValue => ({ type: 'f32', value });

/** The hyper-parameter keys of a config (general.architecture included). */
export function hparamsToGguf(c: ModelConfig): Map<string, GgufValue> {
  const a = ggufArchitecture(c);
  const m = new Map<string, GgufValue>([['general.architecture', { type: 'string', value: a }]]);
  m.set(`${a}.vocab_size`, u32(c.vocabSize));
  let context = c.maxPositions;
  if (a === 'smollm3' && c.noRopeLayers!.some((n, i) => n !== ((i + 1) % 4 === 0)))
    throw new UnsupportedError(
      "llama.cpp's smollm3 fixes its NoPE layers at every fourth (it reads none from the file); this model's differ",
    );
  if (a === 'gemma3') gemma3Checks(c);
  else if (c.slidingWindow !== undefined) {
    // llama.cpp's llama/qwen architectures read no window: within a context no longer than it, none is needed
    if (c.layerTypes)
      throw new UnsupportedError(
        'sliding-window attention on some layers only (layer_types) has no llama.cpp form outside gemma3',
      );
    context = Math.min(context, c.slidingWindow);
  }
  m.set(`${a}.context_length`, u32(context));
  m.set(`${a}.embedding_length`, u32(c.hiddenSize));
  m.set(`${a}.block_count`, u32(c.numLayers));
  m.set(`${a}.feed_forward_length`, u32(c.intermediateSize));
  m.set(`${a}.attention.head_count`, u32(c.numHeads));
  if (a === 'gpt2') {
    m.set('gpt2.attention.layer_norm_epsilon', f32(c.normEps));
    return m;
  }
  m.set(`${a}.attention.head_count_kv`, u32(c.numKvHeads));
  m.set(`${a}.rope.freq_base`, f32(c.ropeTheta));
  m.set(`${a}.rope.dimension_count`, u32(c.headDim));
  m.set(`${a}.attention.layer_norm_rms_epsilon`, f32(c.normEps));
  if (a === 'gemma3') m.set('gemma3.attention.sliding_window', u32(c.slidingWindow!));
  if (c.ropeScaling?.type === 'linear') {
    // llama.cpp's own keys for position interpolation (llama3 scaling travels as the rope_freqs tensor instead)
    m.set(`${a}.rope.scaling.type`, { type: 'string', value: 'linear' });
    m.set(`${a}.rope.scaling.factor`, f32(c.ropeScaling.factor));
  }
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    m.set(`${a}.attention.key_length`, u32(c.headDim));
    m.set(`${a}.attention.value_length`, u32(c.headDim));
  }
  return m;
}

/**
 * What llama.cpp's gemma3 fixes rather than reads: five sliding layers then a full one, the sliding layers' θ 10000
 * unscaled (its attention scale is carried by q_norm, ./tensors.ts).
 */
function gemma3Checks(c: ModelConfig): void {
  const types = c.layerTypes ?? [];
  const pattern = Array.from({ length: c.numLayers }, (_, i) => ((i + 1) % 6 ? 'sliding' : 'full'));
  if (c.slidingWindow === undefined || types.join() !== pattern.join())
    throw new UnsupportedError(
      "llama.cpp's gemma3 fixes its layers as five sliding-window layers then a full one; this model's layer types differ",
    );
  if ((c.ropeLocalTheta ?? c.ropeTheta) !== 10000)
    throw new UnsupportedError(
      `llama.cpp's gemma3 fixes the sliding layers' RoPE θ at 10000; this model's is ${c.ropeLocalTheta ?? c.ropeTheta}`,
    );
  if (!c.embedScale || c.mlpActivation !== 'gelu_tanh' || !c.qkNorm)
    throw new UnsupportedError("llama.cpp's gemma3 needs Gemma 3's whole layout (scaled embeddings, GeGLU, q/k norms)");
}

/** A float32 field read back as the decimal it was written from (7 significant digits). */
const dec = (x: number) => Number(x.toPrecision(7));

/**
 * The ModelConfig of a GGUF file's metadata and tensor names (`output.weight` absent: the head is tied to
 * token_embd; `blk.0.attn_q.bias`, `blk.0.ffn_gate.bias`: Llama biases). The tokenizer's special ids become
 * config.json's bos/eos/pad; `vocabRows` is token_embd's row count.
 */
export function hparamsFromGguf(
  meta: ReadonlyMap<string, GgufValue>,
  file: string,
  names: ReadonlySet<string>,
  vocabRows: number,
): ModelConfig {
  const hasOutput = names.has('output.weight');
  const arch = meta.get('general.architecture')?.value;
  if (typeof arch !== 'string') throw new ConfigError('general.architecture', 'missing or not a string', file);
  if (!['llama', 'qwen2', 'qwen3', 'gemma3', 'smollm3', 'gpt2'].includes(arch))
    throw new UnsupportedError(
      `${file}: architecture "${arch}" is not supported (llama, qwen2, qwen3, gemma3, smollm3 and gpt2 are)`,
    );
  const num = (key: string, required = true): number | undefined => {
    const v = meta.get(`${arch}.${key}`);
    if (v === undefined) {
      if (required) throw new ConfigError(`${arch}.${key}`, 'missing', file);
      return undefined;
    }
    if (v.type === 'array' || typeof v.value !== 'number')
      throw new ConfigError(`${arch}.${key}`, `expected a number, got ${v.type}`, file);
    return v.value;
  };
  const id = (key: string): number | null => {
    const v = meta.get(`tokenizer.ggml.${key}`)?.value;
    return typeof v === 'number' && v < vocabRows ? v : null;
  };
  const hf: Record<string, unknown> = {
    vocab_size: num('vocab_size', false) ?? vocabRows,
    tie_word_embeddings: !hasOutput,
    bos_token_id: id('bos_token_id'),
    eos_token_id: id('eos_token_id'),
    pad_token_id: id('padding_token_id'),
  };
  const heads = num('attention.head_count')!;
  if (arch === 'gpt2') {
    Object.assign(hf, {
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_positions: num('context_length'),
      n_embd: num('embedding_length'),
      n_layer: num('block_count'),
      n_inner: num('feed_forward_length'),
      n_head: heads,
      layer_norm_epsilon: dec(num('attention.layer_norm_epsilon')!),
      activation_function: 'gelu_new',
      resid_pdrop: 0, // GGUF is for inference: no dropout (transformers' GPT-2 default is 0.1)
      embd_pdrop: 0,
      attn_pdrop: 0,
    });
  } else {
    const hidden = num('embedding_length')!;
    const headDim = num('attention.key_length', false) ?? num('rope.dimension_count', false) ?? hidden / heads;
    const vLen = num('attention.value_length', false);
    if (vLen !== undefined && vLen !== headDim)
      throw new UnsupportedError(`${file}: key_length ${headDim} ≠ value_length ${vLen} is not supported`);
    const ropeDims = num('rope.dimension_count', false);
    if (ropeDims !== undefined && ropeDims !== headDim)
      throw new UnsupportedError(`${file}: partial RoPE (rope.dimension_count ${ropeDims} < head size ${headDim})`);
    const scalingType = meta.get(`${arch}.rope.scaling.type`)?.value ?? 'none';
    let ropeScaling: Record<string, unknown> | null = null;
    if (scalingType === 'linear') {
      const factor = num('rope.scaling.factor')!;
      if (!(factor >= 1))
        throw new ConfigError(`${arch}.rope.scaling.factor`, `expected a number ≥ 1, got ${factor}`, file);
      ropeScaling = { rope_type: 'linear', factor: dec(factor) };
    } else if (scalingType !== 'none')
      throw new UnsupportedError(
        `${file}: ${arch}.rope.scaling.type ${JSON.stringify(scalingType)} is not supported (none and linear are; ` +
          'llama3 scaling comes as the rope_freqs tensor)',
      );
    if (arch === 'gemma3') {
      const layers = num('block_count')!;
      const window = num('attention.sliding_window', false) ?? 0;
      const softcap = num('final_logit_softcapping', false) ?? 0;
      if (softcap) throw new UnsupportedError(`${file}: gemma3.final_logit_softcapping ${softcap} is not supported`);
      const shape = { numLayers: layers, hiddenSize: hidden, numHeads: heads, headDim };
      Object.assign(hf, {
        model_type: 'gemma3_text',
        architectures: ['Gemma3ForCausalLM'],
        ...(ropeScaling ? { rope_scaling: ropeScaling } : {}),
        max_position_embeddings: num('context_length'),
        hidden_size: hidden,
        num_hidden_layers: layers,
        intermediate_size: num('feed_forward_length'),
        num_attention_heads: heads,
        num_key_value_heads: num('attention.head_count_kv', false) ?? heads,
        head_dim: headDim,
        rms_norm_eps: dec(num('attention.layer_norm_rms_epsilon')!),
        rope_theta: dec(num('rope.freq_base', false) ?? 1e6),
        rope_local_base_freq: 10000,
        query_pre_attn_scalar: 1 / gemma3CppScale(shape) ** 2,
        // llama.cpp's rule: with a window, five sliding layers then a full one; without, every layer full
        sliding_window: window > 0 ? window : 4096,
        layer_types: Array.from({ length: layers }, (_, i) =>
          window > 0 && (i + 1) % 6 ? 'sliding_attention' : 'full_attention',
        ),
      });
      return fromHfConfig(hf, `${file} (GGUF hyper-parameters)`); // normOffset 1: a Hugging Face folder gets gain − 1
    }
    const qwen = arch === 'qwen2';
    if (qwen && !names.has('blk.0.attn_q.bias'))
      throw new UnsupportedError(`${file}: a qwen2 model without q/k/v biases is not supported`);
    Object.assign(hf, {
      model_type: arch,
      architectures: [
        (
          {
            llama: 'LlamaForCausalLM',
            qwen2: 'Qwen2ForCausalLM',
            qwen3: 'Qwen3ForCausalLM',
            smollm3: 'SmolLM3ForCausalLM',
          } as Record<string, string>
        )[arch],
      ],
      ...(ropeScaling ? { rope_scaling: ropeScaling } : {}),
      max_position_embeddings: num('context_length'),
      hidden_size: hidden,
      num_hidden_layers: num('block_count'),
      intermediate_size: num('feed_forward_length'),
      num_attention_heads: heads,
      num_key_value_heads: num('attention.head_count_kv', false) ?? heads,
      head_dim: headDim,
      rms_norm_eps: dec(num('attention.layer_norm_rms_epsilon')!),
      rope_theta: dec(num('rope.freq_base', false) ?? 10000),
      ...(qwen ? {} : { attention_bias: names.has('blk.0.attn_q.bias') }),
      ...(arch === 'llama' || arch === 'smollm3' ? { mlp_bias: names.has('blk.0.ffn_gate.bias') } : {}),
    });
  }
  return fromHfConfig(hf, `${file} (GGUF hyper-parameters)`);
}
