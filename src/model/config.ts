/**
 * The one decoder-only Transformer config. It covers the GPT-2 family (learned positions, LayerNorm, GELU, fused
 * qkv with Conv1D [in, out] weights, tied head) and the Llama family (RoPE, RMSNorm, SwiGLU, grouped-query
 * attention, tied or untied head), including Qwen2-style q/k/v biases, Qwen3's per-head q/k norms, Llama 3's scaled RoPE,
 * sliding-window attention (Mistral) and Gemma 3's layout (sandwich norms, GeGLU, scaled embeddings, local and global
 * layers with their own RoPE θ). `fromHfConfig` (src/model/hf/config.ts) maps a
 * Hugging Face `config.json` onto it and refuses what it cannot represent.
 */
import type { RopeScaling } from './rope.js';

export type ModelFamily = 'gpt2' | 'llama';

export interface ModelConfig {
  /** Which layout of weights and blocks: 'gpt2' (GPT2LMHeadModel) or 'llama' (LlamaForCausalLM, Qwen2, Mistral-like). */
  family: ModelFamily;
  /** Number of token ids the model embeds and predicts. */
  vocabSize: number;
  /** Width of the residual stream (d_model, n_embd, hidden_size). */
  hiddenSize: number;
  /** Number of Transformer blocks. */
  numLayers: number;
  /** Number of query heads. */
  numHeads: number;
  /** Number of key/value heads (= numHeads for multi-head attention; fewer for grouped-query attention). */
  numKvHeads: number;
  /** Width of one head (hiddenSize / numHeads unless the config says otherwise). */
  headDim: number;
  /** Hidden width of the feed-forward block (4·hiddenSize for GPT-2). */
  intermediateSize: number;
  /** Longest sequence the model accepts (learned positions for GPT-2, RoPE range for Llama). */
  maxPositions: number;
  /** Epsilon of LayerNorm / RMSNorm. */
  normEps: number;
  /** RoPE base θ (Llama family). */
  ropeTheta: number;
  /** A scaled RoPE (Llama 3's `llama3`, linear, a GGUF's rope_freqs factors); absent: plain RoPE. src/model/rope.ts. */
  ropeScaling?: RopeScaling;
  /**
   * RMSNorm on each query and key head (over headDim, weights `self_attn.q_norm` / `k_norm`) before RoPE: Qwen3.
   * Absent: false.
   */
  qkNorm?: boolean;
  /**
   * Sliding-window attention: a query sees at most this many keys, ending at its own position, on the layers
   * `layerTypes` marks 'sliding' (every layer when there is no layerTypes: Mistral). Absent: every earlier key.
   */
  slidingWindow?: number;
  /** Per layer, 'full' or 'sliding' attention (Gemma 3: five sliding layers, then a full one). */
  layerTypes?: ('full' | 'sliding')[];
  /**
   * Checkpoints stack q/k/v as one `self_attn.qkv_proj` and gate/up as one `mlp.gate_up_proj` (Phi-3); the model holds
   * them apart (src/model/hf/fused_projections.ts). Absent: false.
   */
  fusedProjections?: boolean;
  /** Per layer, true where the layer rotates nothing (SmolLM3's NoPE layers: every fourth). Absent: RoPE everywhere. */
  noRopeLayers?: boolean[];
  /** RoPE θ of the sliding layers (Gemma 3's rope_local_base_freq), unscaled. Absent: ropeTheta (and its scaling). */
  ropeLocalTheta?: number;
  /** Token embeddings multiplied by √hiddenSize before the first block (Gemma). */
  embedScale?: boolean;
  /**
   * Gemma 2/3's sandwich norms: an RMSNorm on each block's attention output (`post_attention_layernorm`) and MLP
   * output (`post_feedforward_layernorm`) before they join the residual stream; the MLP's input norm is then
   * `pre_feedforward_layernorm`. Absent: false (Llama: `post_attention_layernorm` is the MLP's input norm).
   */
  sandwichNorms?: boolean;
  /** The gated MLP's activation: 'silu' (SwiGLU: Llama, Qwen, Mistral) or 'gelu_tanh' (GeGLU: Gemma). Absent: silu. */
  mlpActivation?: 'silu' | 'gelu_tanh';
  /** Attention score scale. Absent: 1/√headDim (Gemma 3: query_pre_attn_scalar^−½). */
  attnScale?: number;
  /**
   * Checkpoints store every RMSNorm gain minus this (Gemma's norms compute x̂·(1 + w)); the model holds the gains
   * themselves (so its norms are plain RMSNorms, as llama.cpp's converter stores them). Absent: 0.
   */
  normOffset?: number;
  /** Output head shares the token-embedding matrix. */
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (GPT-2: always; Qwen2: true; Llama: false). */
  attentionBias: boolean;
  /** Bias on the attention output projection (GPT-2 true; Llama false). */
  attentionOutBias: boolean;
  /** Biases on the MLP projections (GPT-2 true; Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Dropout probability on embeddings, attention output and MLP output while training (0 disables). */
  dropout: number;
  /** Token ids (informational; written back to config.json). */
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /**
   * The Hugging Face config.json this was read from, kept so that `toHfConfig` writes back every field it did not
   * interpret (so a round trip through this package loses nothing transformers needs).
   */
  hf?: Record<string, unknown>;
}
