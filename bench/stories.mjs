// The Llama shapes of llama2.c's stories models (random weights stand in for the trained ones: decode speed does not
// depend on the values), shared by the decode bench and the decode labs.
/** @type {Record<string, { L: number, C: number, H: number, F: number, V: number }>} */
export const STORIES = {
  stories15M: { L: 6, C: 288, H: 6, F: 768, V: 32000 },
  stories110M: { L: 12, C: 768, H: 12, F: 2048, V: 32000 },
};

/**
 * A ModelConfig for shape s ({ L, C, H, F, V }); the window is 1024 (stories15M's own is 256) so long prompts fit.
 * @param {{ L: number, C: number, H: number, F: number, V: number }} s
 * @returns {import('../dist/model/config.js').ModelConfig}
 */
export function storiesConfig(s, maxPositions = 1024) {
  return {
    family: 'llama',
    vocabSize: s.V,
    hiddenSize: s.C,
    numLayers: s.L,
    numHeads: s.H,
    numKvHeads: s.H,
    headDim: s.C / s.H,
    intermediateSize: s.F,
    maxPositions,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: false,
    attentionOutBias: false,
    mlpBias: false,
    dropout: 0,
    bosTokenId: 1,
    eosTokenId: 2,
    padTokenId: null,
  };
}

/**
 * gemma-3-270m's shape as a Hugging Face config.json (fromHfConfig): Gemma 3, sliding-window layers, sandwich norms,
 * GeGLU, a 262,144-token vocabulary; the context cut to 1,024 (the KV cache stays small). `over` replaces fields.
 * @param {Record<string, unknown>} [over] @returns {Record<string, unknown>}
 */
export function gemma3_270m(over = {}) {
  return {
    model_type: 'gemma3_text',
    vocab_size: 262144,
    hidden_size: 640,
    intermediate_size: 2048,
    num_hidden_layers: 18,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 256,
    max_position_embeddings: 1024,
    sliding_window: 512,
    query_pre_attn_scalar: 256,
    ...over,
  };
}
