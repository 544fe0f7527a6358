/**
 * Hugging Face `config.json` ⇄ ModelConfig.
 *
 * `fromHfConfig` accepts GPT-2 (`GPT2LMHeadModel`, model_type gpt2), the Llama family (`LlamaForCausalLM`,
 * `Qwen2ForCausalLM`, `Qwen3ForCausalLM`, `MistralForCausalLM`, sliding windows included) and Gemma 3's text models
 * (`Gemma3ForCausalLM`, model_type gemma3_text), type-checks every field it reads (ConfigError naming the file and
 * the field), fills missing fields with transformers' own defaults for that model type, and refuses features the
 * model cannot run (UnsupportedError naming the field): other activations, soft-capping, RoPE types other than
 * default, llama3 (Llama 3.1+) and linear, GPT-2's per-layer attention scaling. The model type is taken from `model_type` (what transformers' Auto classes
 * use), else from `architectures[0]`.
 *
 * `toHfConfig` writes a config.json that transformers 5 loads: it starts from `cfg.hf` (the config the model was
 * read from, so fields we do not interpret survive) and overwrites the fields we own; a config made from scratch
 * gets a complete config like `save_pretrained` writes. `fromHfConfig(toHfConfig(c))` equals `c` apart from `hf`.
 *
 * Dropout: GPT-2's `resid_pdrop` is our `dropout` (`embd_pdrop` is written equal to it; `attn_pdrop`, dropout on
 * attention probabilities, is not modelled). The Llama family has no residual dropout in transformers, so a
 * nonzero `dropout` is kept in an extra key `llmts_dropout`, which transformers stores and ignores.
 */
import type { ModelConfig } from '../config.js';
import { ConfigError, UnsupportedError } from '../../util/errors.js';
import { ropeScalingProblem, type RopeScaling } from '../rope.js';

/** The architectures fromHfConfig accepts, by model_type. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, string>> = {
  gpt2: 'GPT2LMHeadModel',
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  mistral: 'MistralForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
  smollm3: 'SmolLM3ForCausalLM',
  phi3: 'Phi3ForCausalLM',
};

/** Model types that are known and refused with a reason (rather than "not supported"). */
const REFUSED_TYPES: Readonly<Record<string, string>> = {
  gemma3:
    "Gemma 3's multimodal checkpoints (4B and up: Gemma3ForConditionalGeneration, a vision tower beside the text model) are not supported; the text-only ones (model_type gemma3_text: 270M, 1B) are",
  gemma2: 'Gemma 2 (attention logit soft-capping) is not supported; Gemma 3 text models (gemma3_text) are',
  gemma: 'Gemma 1 is not supported; Gemma 3 text models (gemma3_text) are',
};

/**
 * The same bodies with a sequence-classification head (`score`), as reward models are saved: accepted on load (the
 * head is the loader's business: src/model/hf/folder.ts loadRewardModel), written by saveRewardModel.
 */
export const SEQUENCE_CLASSIFICATION_ARCHITECTURES: Readonly<Record<string, string>> = {
  gpt2: 'GPT2ForSequenceClassification',
  llama: 'LlamaForSequenceClassification',
  qwen2: 'Qwen2ForSequenceClassification',
  qwen3: 'Qwen3ForSequenceClassification',
  mistral: 'MistralForSequenceClassification',
  gemma3_text: 'Gemma3ForSequenceClassification',
};

/** transformers version written into configs made from scratch (the version the reference fixtures come from). */
export const TRANSFORMERS_VERSION = '5.17.0';

type Json = Record<string, unknown>;

/** Typed access to a config object; every error names the file and the field. */
class Fields {
  constructor(
    readonly obj: Json,
    readonly file: string,
  ) {}

  private has(key: string): boolean {
    return Object.hasOwn(this.obj, key) && this.obj[key] !== undefined;
  }

  private bad(key: string, expected: string): ConfigError {
    return new ConfigError(key, `expected ${expected}, got ${JSON.stringify(this.obj[key])}`, this.file);
  }

  /** A positive integer (or ≥ min). */
  int(key: string, def: number, min = 1): number {
    if (!this.has(key)) return def;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw this.bad(key, `an integer ≥ ${min}`);
    return v;
  }

  /** Like int, but null means "use `ifNull`". */
  intOrNull(key: string, ifNull: number, min = 1): number {
    if (this.has(key) && this.obj[key] === null) return ifNull;
    return this.int(key, ifNull, min);
  }

  /** A finite number in [lo, hi] (hiOpen: [lo, hi)). */
  num(key: string, def: number, lo = -Infinity, hi = Infinity, hiOpen = false): number {
    if (!this.has(key)) return def;
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || (hiOpen ? v >= hi : v > hi)) {
      throw this.bad(key, `a number in [${lo}, ${hi}${hiOpen ? ')' : ']'}`);
    }
    return v;
  }

  bool(key: string, def: boolean): boolean {
    if (!this.has(key)) return def;
    const v = this.obj[key];
    if (typeof v !== 'boolean') throw this.bad(key, 'true or false');
    return v;
  }

  str(key: string, def: string): string {
    if (!this.has(key)) return def;
    const v = this.obj[key];
    if (typeof v !== 'string') throw this.bad(key, 'a string');
    return v;
  }

  /** A token id: a non-negative integer or null. */
  tokenId(key: string, def: number | null): number | null {
    if (!this.has(key)) return def;
    const v = this.obj[key];
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw this.bad(key, 'a token id (integer ≥ 0) or null');
    return v;
  }

  /** eos_token_id: a token id, a list of token ids, or null. */
  tokenIds(key: string, def: number | number[] | null): number | number[] | null {
    if (!this.has(key)) return def;
    const v = this.obj[key];
    if (Array.isArray(v)) {
      if (!v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
        throw this.bad(key, 'a token id, a list of token ids, or null');
      }
      return v.slice() as number[];
    }
    return this.tokenId(key, def as number | null);
  }

  /** An object or null (absent → null). */
  objOrNull(key: string): Json | null {
    if (!this.has(key) || this.obj[key] === null) return null;
    const v = this.obj[key];
    if (typeof v !== 'object' || Array.isArray(v)) throw this.bad(key, 'an object or null');
    return v as Json;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  present(key: string): boolean {
    return this.has(key) && this.obj[key] !== null;
  }
}

function unsupported(file: string, field: string, value: unknown, what: string): UnsupportedError {
  return new UnsupportedError(`${file}: ${field}: ${JSON.stringify(value)} is not supported (${what})`);
}

/** Which model type a config describes: model_type if present, else architectures[0]. */
function modelTypeOf(f: Fields): string {
  const archRaw = f.raw('architectures');
  let arch: string | null = null;
  if (archRaw !== undefined && archRaw !== null) {
    if (!Array.isArray(archRaw) || !archRaw.every((a) => typeof a === 'string')) {
      throw new ConfigError('architectures', `expected a list of class names, got ${JSON.stringify(archRaw)}`, f.file);
    }
    arch = (archRaw[0] as string | undefined) ?? null;
  }
  const supportedList = Object.values(SUPPORTED_ARCHITECTURES).join(', ');
  let type: string | null = null;
  if (f.present('model_type')) {
    type = f.str('model_type', '');
    const refused = REFUSED_TYPES[type];
    if (refused) throw unsupported(f.file, 'model_type', type, refused);
    if (!(type in SUPPORTED_ARCHITECTURES)) {
      throw unsupported(
        f.file,
        'model_type',
        type,
        `supported: ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')} (${supportedList})`,
      );
    }
  }
  if (arch !== null) {
    const archType = Object.keys(SUPPORTED_ARCHITECTURES).find(
      (t) => SUPPORTED_ARCHITECTURES[t] === arch || SEQUENCE_CLASSIFICATION_ARCHITECTURES[t] === arch,
    );
    if (archType === undefined || (type !== null && archType !== type)) {
      throw unsupported(
        f.file,
        'architectures',
        archRaw,
        `supported: ${supportedList}${type !== null ? `; model_type ${JSON.stringify(type)} needs ${SUPPORTED_ARCHITECTURES[type]}` : ''}`,
      );
    }
    type ??= archType;
  }
  if (type === null) {
    throw new ConfigError('model_type', `missing (and no architectures): expected one of ${supportedList}`, f.file);
  }
  return type;
}

function fromGpt2(f: Fields): ModelConfig {
  // Defaults: transformers GPT2Config.
  const act = f.str('activation_function', 'gelu_new');
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw unsupported(f.file, 'activation_function', act, 'supported: gelu_new, gelu_pytorch_tanh (GELU, tanh form)');
  }
  if (f.bool('scale_attn_by_inverse_layer_idx', false)) {
    throw unsupported(f.file, 'scale_attn_by_inverse_layer_idx', true, 'attention is scaled by 1/sqrt(head_dim) only');
  }
  if (f.bool('reorder_and_upcast_attn', false)) {
    throw unsupported(f.file, 'reorder_and_upcast_attn', true, 'only the standard attention order is implemented');
  }
  if (!f.bool('scale_attn_weights', true)) {
    throw unsupported(f.file, 'scale_attn_weights', false, 'attention scores are always scaled by 1/sqrt(head_dim)');
  }
  if (f.bool('add_cross_attention', false)) {
    throw unsupported(f.file, 'add_cross_attention', true, 'decoder-only models have no cross-attention');
  }
  const hidden = f.int('n_embd', 768);
  const heads = f.int('n_head', 12);
  if (hidden % heads !== 0) {
    throw new ConfigError('n_head', `n_embd ${hidden} is not divisible by n_head ${heads}`, f.file);
  }
  const resid = f.num('resid_pdrop', 0.1, 0, 1, true);
  f.num('embd_pdrop', 0.1, 0, 1, true);
  f.num('attn_pdrop', 0.1, 0, 1, true);
  return {
    family: 'gpt2',
    vocabSize: f.int('vocab_size', 50257),
    hiddenSize: hidden,
    numLayers: f.int('n_layer', 12),
    numHeads: heads,
    numKvHeads: heads,
    headDim: hidden / heads,
    intermediateSize: f.intOrNull('n_inner', 4 * hidden),
    maxPositions: f.int('n_positions', 1024),
    normEps: f.num('layer_norm_epsilon', 1e-5, Number.MIN_VALUE),
    ropeTheta: 10000,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    attentionBias: true,
    attentionOutBias: true,
    mlpBias: true,
    dropout: resid,
    bosTokenId: f.tokenId('bos_token_id', 50256),
    eosTokenId: f.tokenIds('eos_token_id', 50256),
    padTokenId: f.tokenId('pad_token_id', null),
  };
}

/** transformers defaults per Llama-family model type. */
const LLAMA_DEFAULTS: Record<
  string,
  {
    vocab: number;
    hidden: number;
    inter: number;
    layers: number;
    heads: number;
    kv: number | null;
    maxPos: number;
    eps: number;
    bos: number | null;
    eos: number | null;
    sliding: number | null;
    /** head_dim when absent (else hidden_size / num_attention_heads). */
    headDim?: number;
  }
> = {
  llama: {
    vocab: 32000,
    hidden: 4096,
    inter: 11008,
    layers: 32,
    heads: 32,
    kv: null,
    maxPos: 2048,
    eps: 1e-6,
    bos: 1,
    eos: 2,
    sliding: null,
  },
  qwen2: {
    vocab: 151936,
    hidden: 4096,
    inter: 22016,
    layers: 32,
    heads: 32,
    kv: 32,
    maxPos: 32768,
    eps: 1e-6,
    bos: null,
    eos: null,
    sliding: 4096,
  },
  mistral: {
    vocab: 32000,
    hidden: 4096,
    inter: 14336,
    layers: 32,
    heads: 32,
    kv: 8,
    maxPos: 4096 * 32,
    eps: 1e-6,
    bos: 1,
    eos: 2,
    sliding: 4096,
  },
};

// transformers' Phi3Config (Phi-3-mini-4k's shape)
LLAMA_DEFAULTS['phi3'] = {
  vocab: 32064,
  hidden: 3072,
  inter: 8192,
  layers: 32,
  heads: 32,
  kv: null,
  maxPos: 4096,
  eps: 1e-5,
  bos: 1,
  eos: 32000,
  sliding: null,
};

// transformers' SmolLM3Config
LLAMA_DEFAULTS['smollm3'] = {
  vocab: 128256,
  hidden: 2048,
  inter: 11008,
  layers: 36,
  heads: 16,
  kv: 4,
  maxPos: 32768,
  eps: 1e-6,
  bos: null,
  eos: 128001,
  sliding: null,
};

// transformers' Qwen3Config: Qwen2's defaults, but head_dim 128 when absent (not hidden_size / heads)
LLAMA_DEFAULTS['qwen3'] = { ...LLAMA_DEFAULTS['qwen2']!, headDim: 128 };

/** The RoPE types we run (transformers' rope_type). */
const ROPE_TYPES = ['default', 'llama3', 'linear'] as const;

/** A scaling from one RoPE dict (`where` is its key, for errors); null for rope_type 'default'. */
function ropeScalingOf(p: Fields, where: string, file: string): RopeScaling | null {
  const type = p.str('rope_type', p.str('type', 'default'));
  if (!(ROPE_TYPES as readonly string[]).includes(type))
    throw unsupported(file, `${where}.rope_type`, type, `implemented: ${ROPE_TYPES.join(', ')}`);
  if (type === 'default') return null;
  const need = (key: string, lo: number): number => {
    if (!p.present(key)) throw new ConfigError(`${where}.${key}`, `missing (rope_type '${type}' needs it)`, file);
    const v = p.raw(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo)
      throw new ConfigError(`${where}.${key}`, `expected a number ≥ ${lo}, got ${JSON.stringify(v)}`, file);
    return v;
  };
  if (type === 'linear') return { type, factor: need('factor', 1) };
  const scaling: RopeScaling = {
    type: 'llama3',
    factor: need('factor', 1),
    lowFreqFactor: need('low_freq_factor', Number.MIN_VALUE),
    highFreqFactor: need('high_freq_factor', Number.MIN_VALUE),
    originalMaxPositions: need('original_max_position_embeddings', 1),
  };
  const problem = ropeScalingProblem(scaling, 2);
  if (problem) throw new ConfigError(where, problem, file);
  return scaling;
}

/**
 * RoPE θ and scaling from `rope_parameters` (transformers 5) or `rope_theta` / `rope_scaling` (transformers 4):
 * plain RoPE, Llama 3's `llama3` and `linear` scaling; other types (yarn, dynamic, longrope, …) are refused.
 */
function ropeOf(f: Fields): { theta: number; scaling: RopeScaling | null } {
  let theta = f.num('rope_theta', 10000, Number.MIN_VALUE);
  let scaling: RopeScaling | null = null;
  const params = f.objOrNull('rope_parameters');
  if (params) {
    const p = new Fields(params, f.file);
    scaling = ropeScalingOf(p, 'rope_parameters', f.file);
    if (p.present('rope_theta')) {
      const v = params['rope_theta'];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
        throw new ConfigError(
          'rope_parameters.rope_theta',
          `expected a positive number, got ${JSON.stringify(v)}`,
          f.file,
        );
      }
      theta = v;
    }
    if (p.present('partial_rotary_factor') && params['partial_rotary_factor'] !== 1) {
      throw unsupported(
        f.file,
        'rope_parameters.partial_rotary_factor',
        params['partial_rotary_factor'],
        'RoPE rotates the whole head',
      );
    }
  }
  const old = f.objOrNull('rope_scaling');
  if (old) {
    const s = new Fields(old, f.file);
    scaling = ropeScalingOf(s, 'rope_scaling', f.file) ?? scaling;
    if (s.present('rope_theta')) theta = s.num('rope_theta', theta, Number.MIN_VALUE);
  }
  if (f.present('partial_rotary_factor') && f.raw('partial_rotary_factor') !== 1) {
    throw unsupported(f.file, 'partial_rotary_factor', f.raw('partial_rotary_factor'), 'RoPE rotates the whole head');
  }
  return { theta, scaling };
}

function fromLlamaFamily(f: Fields, type: string): ModelConfig {
  const d = LLAMA_DEFAULTS[type]!;
  const act = f.str('hidden_act', 'silu');
  if (act !== 'silu' && act !== 'swish') throw unsupported(f.file, 'hidden_act', act, 'supported: silu (SwiGLU MLP)');
  const hidden = f.int('hidden_size', d.hidden);
  const heads = f.int('num_attention_heads', d.heads);
  const kvHeads = f.intOrNull('num_key_value_heads', d.kv ?? heads);
  if (heads % kvHeads !== 0) {
    throw new ConfigError(
      'num_key_value_heads',
      `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
      f.file,
    );
  }
  let headDim: number;
  if (f.present('head_dim')) headDim = f.int('head_dim', 0);
  else if (d.headDim !== undefined) headDim = d.headDim;
  else {
    if (hidden % heads !== 0) {
      throw new ConfigError(
        'num_attention_heads',
        `hidden_size ${hidden} is not divisible by num_attention_heads ${heads} (and no head_dim)`,
        f.file,
      );
    }
    headDim = hidden / heads;
  }
  if (headDim % 2 !== 0) throw new ConfigError('head_dim', `RoPE needs an even head_dim, got ${headDim}`, f.file);
  const maxPositions = f.int('max_position_embeddings', d.maxPos);
  const rope = ropeOf(f);

  // Sliding-window attention: Mistral's on every layer; Qwen2/3's (use_sliding_window) on the layers from
  // max_window_layers on, as transformers computes layer_types; an explicit layer_types wins
  const numLayers = f.int('num_hidden_layers', d.layers);
  // Mistral's and Phi-3's window is on every layer
  const uniform = type === 'mistral' || type === 'phi3';
  const useSliding = uniform || ((type === 'qwen2' || type === 'qwen3') && f.bool('use_sliding_window', false));
  let window: number | null = null;
  if (useSliding) {
    const given = f.raw('sliding_window') !== undefined;
    const w = given ? f.intOrNull('sliding_window', Infinity) : (d.sliding ?? Infinity);
    if (w < maxPositions) window = w;
  }
  let layerTypes = readLayerTypes(f, numLayers);
  if (window !== null && !layerTypes && !uniform) {
    const from = f.int('max_window_layers', 28, 0);
    layerTypes = Array.from({ length: numLayers }, (_, i) => (i >= from ? 'sliding' : 'full'));
  }
  if (layerTypes && window === null && layerTypes.includes('sliding'))
    throw new ConfigError('sliding_window', 'layer_types has sliding_attention layers but no sliding_window', f.file);
  const sliding =
    window !== null && (!layerTypes || layerTypes.includes('sliding'))
      ? { slidingWindow: window, ...(layerTypes && !uniform ? { layerTypes } : {}) }
      : {};

  let attentionBias = false;
  let attentionOutBias = false;
  let mlpBias = false;
  // SmolLM3: no_rope_layers[i] = 1 where layer i uses RoPE, 0 where it does not (default: every no_rope_layer_interval-th)
  let noRope: boolean[] | null = null;
  if (type === 'smollm3') {
    const every = f.int('no_rope_layer_interval', 4);
    const raw = f.raw('no_rope_layers');
    if (raw !== undefined && raw !== null) {
      if (!Array.isArray(raw) || raw.length !== numLayers || raw.some((x) => x !== 0 && x !== 1))
        throw new ConfigError(
          'no_rope_layers',
          `expected ${numLayers} entries of 0 or 1, got ${JSON.stringify(raw)}`,
          f.file,
        );
      noRope = raw.map((x) => x === 0);
    } else noRope = Array.from({ length: numLayers }, (_, i) => (i + 1) % every === 0);
    attentionBias = attentionOutBias = f.bool('attention_bias', false);
    mlpBias = f.bool('mlp_bias', false);
  }
  if (type === 'llama') {
    attentionBias = attentionOutBias = f.bool('attention_bias', false);
    mlpBias = f.bool('mlp_bias', false);
  } else if (type === 'qwen3') {
    attentionBias = attentionOutBias = f.bool('attention_bias', false); // q, k, v and o together, as Llama
  } else if (type === 'qwen2') {
    attentionBias = true; // Qwen2 hard-codes q/k/v biases and no o_proj / MLP bias
  }
  return {
    family: 'llama',
    vocabSize: f.int('vocab_size', d.vocab),
    hiddenSize: hidden,
    numLayers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: f.int('intermediate_size', d.inter),
    maxPositions,
    normEps: f.num('rms_norm_eps', d.eps, Number.MIN_VALUE),
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...(type === 'qwen3' ? { qkNorm: true } : {}),
    ...(noRope?.some(Boolean) ? { noRopeLayers: noRope } : {}),
    ...(type === 'phi3' ? { fusedProjections: true } : {}),
    ...sliding,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    attentionBias,
    attentionOutBias,
    mlpBias,
    dropout: f.num('llmts_dropout', 0, 0, 1, true),
    bosTokenId: f.tokenId('bos_token_id', d.bos),
    eosTokenId: f.tokenIds('eos_token_id', d.eos),
    padTokenId: f.tokenId('pad_token_id', null),
  };
}

/** config.json's layer_types ('sliding_attention' / 'full_attention', one per layer), or null when absent. */
function readLayerTypes(f: Fields, numLayers: number): ('full' | 'sliding')[] | null {
  const raw = f.raw('layer_types');
  if (raw === undefined || raw === null) return null;
  if (!Array.isArray(raw) || raw.length !== numLayers)
    throw new ConfigError(
      'layer_types',
      `expected a list of ${numLayers} layer types, got ${JSON.stringify(raw)}`,
      f.file,
    );
  return raw.map((t, i) => {
    if (t === 'sliding_attention') return 'sliding';
    if (t === 'full_attention') return 'full';
    throw unsupported(f.file, `layer_types[${i}]`, t, "expected 'sliding_attention' or 'full_attention'");
  });
}

/**
 * Gemma 3's text model (transformers' Gemma3TextConfig defaults): Llama's blocks plus sandwich norms, GeGLU
 * (gelu_pytorch_tanh), q/k norms, embeddings scaled by √hidden_size, scores by query_pre_attn_scalar^−½, and sliding
 * layers (window `sliding_window`, θ `rope_local_base_freq`) between full ones (θ `rope_theta`, its scaling). Norm
 * gains are stored minus 1 (normOffset). Soft-capping and bidirectional attention are refused.
 */
function fromGemma3(f: Fields): ModelConfig {
  const act = f.str('hidden_activation', f.str('hidden_act', 'gelu_pytorch_tanh'));
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_tanh')
    throw unsupported(f.file, 'hidden_activation', act, 'supported: gelu_pytorch_tanh (GeGLU, tanh form)');
  for (const k of ['attn_logit_softcapping', 'final_logit_softcapping'])
    if (f.raw(k) !== undefined && f.raw(k) !== null)
      throw unsupported(f.file, k, f.raw(k), 'soft-capping is not implemented');
  if (f.bool('use_bidirectional_attention', false))
    throw unsupported(f.file, 'use_bidirectional_attention', true, 'only causal attention is implemented');
  const hidden = f.int('hidden_size', 2304);
  const heads = f.int('num_attention_heads', 8);
  const kvHeads = f.intOrNull('num_key_value_heads', 4);
  if (heads % kvHeads !== 0)
    throw new ConfigError(
      'num_key_value_heads',
      `num_attention_heads ${heads} is not a multiple of ${kvHeads}`,
      f.file,
    );
  const headDim = f.int('head_dim', 256);
  if (headDim % 2 !== 0) throw new ConfigError('head_dim', `RoPE needs an even head_dim, got ${headDim}`, f.file);
  const numLayers = f.int('num_hidden_layers', 26);
  const pattern = f.int('sliding_window_pattern', f.int('_sliding_window_pattern', 6));
  const layerTypes =
    readLayerTypes(f, numLayers) ??
    Array.from({ length: numLayers }, (_, i) => ((i + 1) % pattern ? 'sliding' : 'full') as 'sliding' | 'full');
  // transformers 5 may give rope_parameters per layer type: { full_attention: {…}, sliding_attention: {…} }
  const params = f.objOrNull('rope_parameters');
  let rope: { theta: number; scaling: RopeScaling | null };
  let localTheta = f.num('rope_local_base_freq', 10000, Number.MIN_VALUE);
  if (params && (params['full_attention'] !== undefined || params['sliding_attention'] !== undefined)) {
    const sub = (k: string): Fields => new Fields((params[k] ?? {}) as Json, f.file);
    const full = sub('full_attention');
    rope = {
      theta: full.num('rope_theta', 1e6, Number.MIN_VALUE),
      scaling: ropeScalingOf(full, 'rope_parameters.full_attention', f.file),
    };
    const local = sub('sliding_attention');
    if (ropeScalingOf(local, 'rope_parameters.sliding_attention', f.file))
      throw unsupported(
        f.file,
        'rope_parameters.sliding_attention.rope_type',
        local.raw('rope_type'),
        'the local layers run plain RoPE',
      );
    localTheta = local.num('rope_theta', localTheta, Number.MIN_VALUE);
  } else {
    rope = ropeOf(new Fields({ rope_theta: 1e6, ...f.obj }, f.file));
  }
  const qpas = f.num('query_pre_attn_scalar', 256, Number.MIN_VALUE);
  const attentionBias = f.bool('attention_bias', false);
  return {
    family: 'llama',
    vocabSize: f.int('vocab_size', 262208),
    hiddenSize: hidden,
    numLayers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: f.int('intermediate_size', 9216),
    maxPositions: f.int('max_position_embeddings', 131072),
    normEps: f.num('rms_norm_eps', 1e-6, Number.MIN_VALUE),
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    qkNorm: true,
    slidingWindow: f.int('sliding_window', 4096),
    layerTypes,
    ropeLocalTheta: localTheta,
    embedScale: true,
    sandwichNorms: true,
    mlpActivation: 'gelu_tanh',
    attnScale: 1 / Math.sqrt(qpas),
    normOffset: 1,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    attentionBias,
    attentionOutBias: attentionBias,
    mlpBias: false,
    dropout: f.num('llmts_dropout', 0, 0, 1, true),
    bosTokenId: f.tokenId('bos_token_id', 2),
    eosTokenId: f.tokenIds('eos_token_id', 1),
    padTokenId: f.tokenId('pad_token_id', 0),
  };
}

function deepCopy<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

/**
 * Map a Hugging Face config.json (already parsed) onto a ModelConfig. `file` names the source in errors.
 * The result keeps a copy of the input in `hf`.
 */
export function fromHfConfig(json: unknown, file: string): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(
      'config',
      `expected a JSON object, got ${json === null ? 'null' : Array.isArray(json) ? 'a list' : typeof json}`,
      file,
    );
  }
  const f = new Fields(json as Json, file);
  const type = modelTypeOf(f);
  const cfg = type === 'gpt2' ? fromGpt2(f) : type === 'gemma3_text' ? fromGemma3(f) : fromLlamaFamily(f, type);
  cfg.hf = deepCopy(json as Json);
  return cfg;
}

function checkInt(cfg: ModelConfig, key: keyof ModelConfig, min = 1): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new ConfigError(key, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function sortKeys(o: Json): Json {
  const out: Json = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}

/** Complete GPT-2 config as save_pretrained writes it (values not ours: transformers' defaults). */
function gpt2Base(): Json {
  return {
    activation_function: 'gelu_new',
    add_cross_attention: false,
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: 0.0,
    dtype: 'float32',
    initializer_range: 0.02,
    model_type: 'gpt2',
    reorder_and_upcast_attn: false,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
  };
}

/** Complete Llama-family config as save_pretrained writes it. */
function llamaBase(type: string): Json {
  const base: Json = {
    architectures: [SUPPORTED_ARCHITECTURES[type]],
    attention_dropout: 0.0,
    dtype: 'float32',
    hidden_act: 'silu',
    initializer_range: 0.02,
    model_type: type,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
  };
  if (type === 'llama') base['pretraining_tp'] = 1;
  if (type === 'qwen2' || type === 'qwen3') {
    base['use_sliding_window'] = false;
    base['sliding_window'] = null;
    base['max_window_layers'] = 0;
  }
  return base;
}

/** Which Llama-family model_type can express these biases (preferring `preferred`). */
function llamaTypeFor(cfg: ModelConfig, preferred: string | null): string {
  const qk = cfg.qkNorm === true;
  const gemmaOnly = (['embedScale', 'sandwichNorms', 'attnScale', 'normOffset', 'ropeLocalTheta'] as const).filter(
    (k) => cfg[k] !== undefined && cfg[k] !== false && cfg[k] !== 0,
  );
  if (gemmaOnly.length || (cfg.mlpActivation ?? 'silu') !== 'silu')
    throw new UnsupportedError(
      `toHfConfig: ${[...gemmaOnly, ...(cfg.mlpActivation === 'gelu_tanh' ? ['mlpActivation'] : [])].join(', ')} belong to Gemma 3's layout, which needs all of it (sandwichNorms, embedScale, qkNorm, mlpActivation gelu_tanh, normOffset 1)`,
    );
  // a sliding window on every layer is Mistral's; per layer (layer_types), Qwen2's or Qwen3's
  const uniformSliding = cfg.slidingWindow !== undefined && !cfg.layerTypes;
  const layeredSliding = cfg.slidingWindow !== undefined && !!cfg.layerTypes;
  const noRope = cfg.noRopeLayers?.some(Boolean) ?? false;
  const fits = (t: string): boolean => {
    if (noRope !== (t === 'smollm3')) return false; // NoPE layers are SmolLM3's
    if ((cfg.fusedProjections ?? false) !== (t === 'phi3')) return false; // stacked projections are Phi-3's
    if (t === 'phi3') return !qk && !layeredSliding && !cfg.attentionBias && !cfg.attentionOutBias && !cfg.mlpBias;
    if (t === 'smollm3') return !qk && !uniformSliding && !layeredSliding && cfg.attentionBias === cfg.attentionOutBias;
    if (uniformSliding && t !== 'mistral' && t !== 'phi3') return false;
    if (layeredSliding && t !== 'qwen2' && t !== 'qwen3') return false;
    if (t === 'llama') return !qk && cfg.attentionBias === cfg.attentionOutBias;
    if (t === 'qwen2') return !qk && cfg.attentionBias && !cfg.attentionOutBias && !cfg.mlpBias;
    if (t === 'qwen3') return qk && cfg.attentionBias === cfg.attentionOutBias && !cfg.mlpBias;
    if (t === 'mistral') return !qk && !cfg.attentionBias && !cfg.attentionOutBias && !cfg.mlpBias;
    return false;
  };
  if (preferred !== null && fits(preferred)) return preferred;
  for (const t of ['llama', 'qwen2', 'qwen3', 'mistral', 'smollm3', 'phi3']) if (fits(t)) return t;
  throw new UnsupportedError(
    `toHfConfig: attentionBias=${cfg.attentionBias}, attentionOutBias=${cfg.attentionOutBias}, mlpBias=${cfg.mlpBias}, ` +
      `qkNorm=${qk} cannot be written as a transformers config (Llama: q/k/v and o biases together; Qwen2: q/k/v ` +
      'biases only; Qwen3: q/k norms, q/k/v and o biases together, no MLP bias; Mistral: no biases, one sliding ' +
      'window on every layer)',
  );
}

/** The keys a scaled RoPE adds to its dict (dropped when the scaling changes). */
const ROPE_SCALING_KEYS = ['type', 'factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'];

/** cfg.ropeScaling as transformers' rope dict (without rope_theta), or null; a GGUF's factors → UnsupportedError. */
function hfRopeScaling(cfg: ModelConfig): Json | null {
  const s = cfg.ropeScaling;
  if (!s) return null;
  const problem = ropeScalingProblem(s, cfg.headDim);
  if (problem) throw new ConfigError('ropeScaling', problem);
  if (s.type === 'linear') return { rope_type: 'linear', factor: s.factor };
  if (s.type === 'llama3')
    return {
      rope_type: 'llama3',
      factor: s.factor,
      low_freq_factor: s.lowFreqFactor,
      high_freq_factor: s.highFreqFactor,
      original_max_position_embeddings: s.originalMaxPositions,
    };
  throw new UnsupportedError(
    "toHfConfig: ropeScaling 'factors' (a GGUF file's rope_freqs) has no transformers form: transformers computes " +
      'the frequencies from a rope_type (llama3, linear), not from a list',
  );
}

/** layer_types as transformers spells them. */
function hfLayerTypes(t: readonly ('full' | 'sliding')[]): string[] {
  return t.map((x) => (x === 'sliding' ? 'sliding_attention' : 'full_attention'));
}

/** Gemma 3's text config (Gemma3ForCausalLM), from a config whose every Gemma flag is set as Gemma 3 has it. */
function gemma3Config(cfg: ModelConfig, hf: Json | null, hfType: string | null): Json {
  const wrong: string[] = [];
  if (!cfg.embedScale) wrong.push('embedScale');
  if (!cfg.qkNorm) wrong.push('qkNorm');
  if (cfg.mlpActivation !== 'gelu_tanh') wrong.push('mlpActivation gelu_tanh');
  if (cfg.normOffset !== 1) wrong.push('normOffset 1');
  if (cfg.mlpBias || cfg.attentionBias !== cfg.attentionOutBias) wrong.push('no MLP bias, q/k/v/o biases together');
  if (cfg.slidingWindow === undefined || !cfg.layerTypes) wrong.push('slidingWindow and layerTypes');
  if (cfg.noRopeLayers?.some(Boolean)) wrong.push('RoPE on every layer');
  if (wrong.length)
    throw new UnsupportedError(`toHfConfig: a Gemma 3 config (sandwichNorms) also needs ${wrong.join(', ')}`);
  const base: Json = {
    architectures: ['Gemma3ForCausalLM'],
    attention_dropout: 0.0,
    attn_logit_softcapping: null,
    dtype: 'float32',
    final_logit_softcapping: null,
    initializer_range: 0.02,
    model_type: 'gemma3_text',
    transformers_version: TRANSFORMERS_VERSION,
    use_bidirectional_attention: false,
    use_cache: true,
  };
  const out: Json = hf && hfType === 'gemma3_text' ? hf : { ...(hf ?? {}), ...base };
  Object.assign(out, {
    architectures: ['Gemma3ForCausalLM'],
    model_type: 'gemma3_text',
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    intermediate_size: cfg.intermediateSize,
    max_position_embeddings: cfg.maxPositions,
    rms_norm_eps: cfg.normEps,
    hidden_activation: 'gelu_pytorch_tanh',
    // 1/scale² back to the number it came from (256, not 255.99999999999997)
    query_pre_attn_scalar: cfg.attnScale !== undefined ? Number((1 / cfg.attnScale ** 2).toPrecision(12)) : cfg.headDim,
    sliding_window: cfg.slidingWindow,
    layer_types: hfLayerTypes(cfg.layerTypes!),
    attention_bias: cfg.attentionBias,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenId,
    pad_token_id: cfg.padTokenId,
  });
  // tied is Gemma 3's default: written only when it differs or was there
  if (!cfg.tieWordEmbeddings || 'tie_word_embeddings' in out) out['tie_word_embeddings'] = cfg.tieWordEmbeddings;
  const scaling = hfRopeScaling(cfg);
  const local = cfg.ropeLocalTheta ?? cfg.ropeTheta;
  const params = out['rope_parameters'];
  if (typeof params === 'object' && params !== null && !Array.isArray(params) && 'full_attention' in params) {
    out['rope_parameters'] = {
      full_attention: { rope_type: 'default', rope_theta: cfg.ropeTheta, ...scaling },
      sliding_attention: { rope_type: 'default', rope_theta: local },
    };
  } else {
    out['rope_theta'] = cfg.ropeTheta;
    out['rope_local_base_freq'] = local;
    out['rope_scaling'] = scaling;
    delete out['rope_parameters'];
  }
  if (cfg.dropout > 0) out['llmts_dropout'] = cfg.dropout;
  else delete out['llmts_dropout'];
  return out;
}

export interface ToHfConfigOptions {
  /** `dtype` to record (the dtype of the weights saved next to it). Default: cfg.hf's dtype, else 'float32'. */
  dtype?: 'float32' | 'float16' | 'bfloat16';
}

/**
 * Write a ModelConfig as a transformers 5 config.json object (keys sorted, as save_pretrained writes them).
 * Fields of `cfg.hf` that we do not own are kept; a ModelConfig that no transformers class can express (e.g. a
 * GPT-2 without biases) → UnsupportedError.
 */
export function toHfConfig(cfg: ModelConfig, options: ToHfConfigOptions = {}): Record<string, unknown> {
  const vocab = checkInt(cfg, 'vocabSize');
  const hidden = checkInt(cfg, 'hiddenSize');
  const layers = checkInt(cfg, 'numLayers');
  const heads = checkInt(cfg, 'numHeads');
  const kvHeads = checkInt(cfg, 'numKvHeads');
  const headDim = checkInt(cfg, 'headDim');
  const inter = checkInt(cfg, 'intermediateSize');
  const maxPos = checkInt(cfg, 'maxPositions');
  if (!(cfg.normEps > 0)) throw new ConfigError('normEps', `expected a positive number, got ${cfg.normEps}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1))
    throw new ConfigError('dropout', `expected a number in [0, 1), got ${cfg.dropout}`);
  const hf = cfg.hf ? deepCopy(cfg.hf) : null;
  const hfType = hf && typeof hf['model_type'] === 'string' ? (hf['model_type'] as string) : null;
  let out: Json;

  if (cfg.family === 'gpt2') {
    const fixed: [keyof ModelConfig, unknown][] = [
      ['numKvHeads', heads],
      ['headDim', hidden / heads],
      ['attentionBias', true],
      ['attentionOutBias', true],
      ['mlpBias', true],
      ['ropeTheta', 10000],
    ];
    for (const [k, want] of fixed) {
      if (cfg[k] !== want) {
        throw new UnsupportedError(
          `toHfConfig: GPT-2 needs ${k} = ${JSON.stringify(want)}, got ${JSON.stringify(cfg[k])}`,
        );
      }
    }
    if (cfg.ropeScaling || cfg.qkNorm)
      throw new UnsupportedError('toHfConfig: GPT-2 has learned positions and no q/k norms (ropeScaling, qkNorm)');
    out = hf && hfType === 'gpt2' ? hf : { ...(hf ?? {}), ...gpt2Base() };
    Object.assign(out, {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: vocab,
      n_embd: hidden,
      n_layer: layers,
      n_head: heads,
      n_inner: inter === 4 * hidden && (!hf || hf['n_inner'] === null || hf['n_inner'] === undefined) ? null : inter,
      n_positions: maxPos,
      layer_norm_epsilon: cfg.normEps,
      tie_word_embeddings: cfg.tieWordEmbeddings,
      resid_pdrop: cfg.dropout,
      embd_pdrop: cfg.dropout,
      bos_token_id: cfg.bosTokenId,
      eos_token_id: cfg.eosTokenId,
      pad_token_id: cfg.padTokenId,
    });
    if (!(hf && hfType === 'gpt2')) out['attn_pdrop'] = 0.0;
  } else if (cfg.family === 'llama' && cfg.sandwichNorms) {
    out = gemma3Config(cfg, hf, hfType);
  } else if (cfg.family === 'llama') {
    if (heads % kvHeads !== 0)
      throw new ConfigError('numKvHeads', `numHeads ${heads} is not a multiple of numKvHeads ${kvHeads}`);
    if (headDim % 2 !== 0) throw new ConfigError('headDim', `RoPE needs an even headDim, got ${headDim}`);
    if (!(cfg.ropeTheta > 0)) throw new ConfigError('ropeTheta', `expected a positive number, got ${cfg.ropeTheta}`);
    const type = llamaTypeFor(cfg, hfType);
    out = hf && hfType === type ? hf : { ...(hf ?? {}), ...llamaBase(type) };
    Object.assign(out, {
      architectures: [SUPPORTED_ARCHITECTURES[type]],
      model_type: type,
      vocab_size: vocab,
      hidden_size: hidden,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: headDim,
      intermediate_size: inter,
      max_position_embeddings: maxPos,
      rms_norm_eps: cfg.normEps,
      tie_word_embeddings: cfg.tieWordEmbeddings,
      bos_token_id: cfg.bosTokenId,
      eos_token_id: cfg.eosTokenId,
      pad_token_id: cfg.padTokenId,
    });
    // RoPE: keep the spelling of the source config. A transformers-4 config (top-level rope_theta, no
    // rope_parameters) stays loadable by transformers 4 and 5; everything else gets transformers 5's rope_parameters.
    const scaling = hfRopeScaling(cfg);
    const oldStyle = hf !== null && hf['rope_theta'] !== undefined && hf['rope_parameters'] === undefined;
    if (oldStyle) {
      out['rope_theta'] = cfg.ropeTheta;
      if (scaling) out['rope_scaling'] = scaling;
      else if (out['rope_scaling'] !== undefined) out['rope_scaling'] = null;
    } else {
      const oldParams = out['rope_parameters'];
      const keepParams =
        typeof oldParams === 'object' && oldParams !== null && !Array.isArray(oldParams)
          ? { ...(oldParams as Json) }
          : {};
      for (const k of ROPE_SCALING_KEYS) delete keepParams[k];
      out['rope_parameters'] = { ...keepParams, rope_theta: cfg.ropeTheta, rope_type: 'default', ...scaling };
      delete out['rope_theta'];
      delete out['rope_scaling'];
    }
    if (type === 'llama' || type === 'smollm3') {
      out['attention_bias'] = cfg.attentionBias;
      out['mlp_bias'] = cfg.mlpBias;
      if (type === 'smollm3') out['no_rope_layers'] = cfg.noRopeLayers!.map((n) => (n ? 0 : 1));
    } else if (type === 'qwen3') {
      out['attention_bias'] = cfg.attentionBias;
      delete out['mlp_bias'];
    } else {
      delete out['attention_bias'];
      delete out['mlp_bias'];
    }
    if (type === 'mistral' || type === 'phi3') out['sliding_window'] = cfg.slidingWindow ?? null;
    else if (type === 'qwen2' || type === 'qwen3') {
      out['use_sliding_window'] = cfg.slidingWindow !== undefined;
      out['sliding_window'] = cfg.slidingWindow ?? null;
      if (cfg.layerTypes) out['layer_types'] = hfLayerTypes(cfg.layerTypes);
      else delete out['layer_types'];
    }
    if (cfg.dropout > 0) out['llmts_dropout'] = cfg.dropout;
    else delete out['llmts_dropout'];
  } else {
    throw new ConfigError(
      'family',
      `expected 'gpt2' or 'llama', got ${JSON.stringify((cfg as { family: unknown }).family)}`,
    );
  }

  if (options.dtype) {
    out['dtype'] = options.dtype;
    delete out['torch_dtype'];
  } else if (out['dtype'] === undefined && out['torch_dtype'] === undefined) {
    out['dtype'] = 'float32';
  }
  if (out['transformers_version'] === undefined) out['transformers_version'] = TRANSFORMERS_VERSION;
  return sortKeys(out);
}

/**
 * Read `dir/config.json` and map it with `fromHfConfig` (FileFormatError if missing or not JSON). Node only: file
 * access is imported on call, so this module stays importable in a browser (src/browser.ts).
 */
export async function loadHfConfig(dir: string): Promise<ModelConfig> {
  const path = await import('node:path');
  const { readJsonFile } = await import(/* node-only */ '../../util/fs.js');
  const file = path.join(dir, 'config.json');
  return fromHfConfig(await readJsonFile(file, 'a Hugging Face config.json'), file);
}
