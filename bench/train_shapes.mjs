// The training shapes of ../shared/design/ANCHORS.md that bench/train.bench.mjs runs: the CPU ones (the llm.c and
// TensorFlow.js wasm comparisons) and the GPU ones, named as bench/peers/torch-gpt.py's SHAPES (the PyTorch peer is
// asked for a shape by that name, so the two tables must agree: test/gpu_kit.test.ts checks it). `peerSteps`: how
// many steps the TensorFlow.js peer times. `micro` is a smoke shape for software adapters (no peer has it).

/** @typedef {{ L: number, C: number, H: number, V: number, T: number, B: number, peerSteps: number }} Shape */

/** @type {Readonly<Record<string, Shape>>} */
export const CPU_SHAPES = {
  tiny: { L: 4, C: 128, H: 4, V: 512, T: 128, B: 8, peerSteps: 3 },
  small: { L: 6, C: 384, H: 6, V: 4096, T: 256, B: 4, peerSteps: 1 },
  gpt2: { L: 12, C: 768, H: 12, V: 50304, T: 64, B: 4, peerSteps: 1 },
  micro: { L: 1, C: 32, H: 2, V: 64, T: 16, B: 2, peerSteps: 1 },
};

/** @type {Readonly<Record<string, Shape>>} */
export const GPU_SHAPES = {
  tiny: { L: 4, C: 128, H: 4, V: 512, T: 128, B: 8, peerSteps: 10 },
  'tiny-b64': { L: 4, C: 128, H: 4, V: 512, T: 128, B: 64, peerSteps: 10 },
  small: { L: 6, C: 384, H: 6, V: 4096, T: 256, B: 64, peerSteps: 5 },
  gpt2: { L: 12, C: 768, H: 12, V: 50304, T: 1024, B: 16, peerSteps: 3 },
  micro: CPU_SHAPES.micro,
};

/**
 * The GPT-2-style model of a shape (as llm.c's and the peers': LayerNorm, fused qkv with biases, GELU MLP ×4, tied
 * head, no dropout).
 * @param {Pick<Shape, 'L' | 'C' | 'H' | 'V' | 'T'>} s
 * @returns {import('../dist/model/config.js').ModelConfig}
 */
export function gptConfig(s) {
  return {
    family: 'gpt2',
    vocabSize: s.V,
    hiddenSize: s.C,
    numLayers: s.L,
    numHeads: s.H,
    numKvHeads: s.H,
    headDim: s.C / s.H,
    intermediateSize: 4 * s.C,
    maxPositions: s.T,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: true,
    attentionOutBias: true,
    mlpBias: true,
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
}
