/**
 * Back-of-the-envelope numbers for a model shape, from its ModelConfig alone: parameter count, training FLOPs per
 * token (≈ 6·N + 12·L·C·T: forward 2 FLOPs per weight per token, backward twice that, plus attention scores and
 * their weighted sum; the PaLM / nanoGPT `estimate_mfu` formula, N excluding the position table), and training
 * memory (parameters, gradients, two AdamW moments, and the activations backprop keeps).
 */
import type { ModelConfig } from '../model/config.js';

export interface ParamCount {
  total: number;
  /** Token embedding (and untied head). */
  embedding: number;
  /** Learned position table (gpt2). */
  positions: number;
  /** Everything in the blocks and the final norm. */
  blocks: number;
}

/** Parameters of a decoder with this config (exact for both families as this package builds them). */
export function countParams(c: ModelConfig): ParamCount {
  const C = c.hiddenSize,
    I = c.intermediateSize,
    L = c.numLayers,
    V = c.vocabSize;
  const kvC = c.numKvHeads * c.headDim,
    qC = c.numHeads * c.headDim;
  let block: number,
    finalNorm: number,
    positions = 0;
  if (c.family === 'gpt2') {
    // ln_1 (2C) + c_attn (C·3C + 3C) + c_proj (C·C + C) + ln_2 (2C) + c_fc (C·I + I) + mlp c_proj (I·C + C)
    block = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + (C * I + I) + (I * C + C);
    finalNorm = 2 * C;
    positions = c.maxPositions * C;
  } else {
    const qkvBias = c.attentionBias ? qC + 2 * kvC : 0;
    const oBias = c.attentionOutBias ? C : 0;
    const mlpBias = c.mlpBias ? 2 * I + C : 0;
    const qkNorms = c.qkNorm ? 2 * c.headDim : 0;
    const sandwich = c.sandwichNorms ? 2 * C : 0; // Gemma: post-attention and post-feed-forward norms
    // input_layernorm + q, k, v, o (+ q/k norms) + post_attention_layernorm + gate, up, down
    block = C + C * qC + 2 * C * kvC + qkvBias + qC * C + oBias + qkNorms + C + sandwich + 3 * C * I + mlpBias;
    finalNorm = C;
  }
  const embedding = V * C * (c.tieWordEmbeddings ? 1 : 2);
  const blocks = L * block + finalNorm;
  return { total: embedding + positions + blocks, embedding, positions, blocks };
}

/** Training FLOPs per token at context T: 6·N + 12·L·C·T (N without the position table). */
export function flopsPerToken(c: ModelConfig, T: number): number {
  const p = countParams(c);
  const N = p.total - p.positions;
  return 6 * N + 12 * c.numLayers * c.numHeads * c.headDim * T;
}

export interface MemoryEstimate {
  params: number;
  grads: number;
  /** AdamW first and second moments. */
  adam: number;
  /** Activations kept for backprop, for one micro-batch. */
  activations: number;
  total: number;
}

/**
 * Bytes of float32 training memory for micro-batch B × T. Activations per layer per token ≈ 9·C floats (norm inputs
 * and outputs, q/k/v, attention output, residuals) plus the MLP's input to its activation (GPT-2: F = 4·C; Llama:
 * gate and up, 2·F) — not the activation's output (recomputed in the backward) nor the two projections' outputs (given
 * back once the residual add has them) — plus 2·heads·T (attention scores and probabilities); the logits add V per
 * token (the loss's backward writes their gradient over them).
 */
export function trainingMemory(c: ModelConfig, B: number, T: number): MemoryEstimate {
  const n = countParams(c).total;
  const C = c.hiddenSize;
  const mlpKept = c.family === 'llama' ? 2 * c.intermediateSize : c.intermediateSize;
  const perLayerTok = 9 * C + mlpKept + 2 * c.numHeads * T;
  const actFloats = B * T * (c.numLayers * perLayerTok + c.vocabSize + 4 * C);
  const params = 4 * n,
    grads = 4 * n,
    adam = 8 * n,
    activations = 4 * actFloats;
  return { params, grads, adam, activations, total: params + grads + adam + activations };
}

/** "12.3 M", "124.4 M", "880 K". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/** "1.2 GiB", "340 MiB". */
export function formatBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}

/** "7.1 MFLOP", "7.29 GFLOP", "2.1 PFLOP". */
export function formatFlops(f: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  while (f >= 1000 && i < units.length - 1) {
    f /= 1000;
    i++;
  }
  return `${f.toFixed(f >= 100 ? 0 : f >= 10 ? 1 : 2)} ${units[i]}FLOP`;
}
