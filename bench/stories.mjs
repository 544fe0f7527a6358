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
