/**
 * Parameter names and shapes of each family, exactly as Hugging Face transformers names them in
 * `model.safetensors`, so a checkpoint loads and saves with no renaming. GPT-2 keeps its Conv1D `[in, out]`
 * weight layout; Llama uses nn.Linear's `[out, in]`.
 */
import type { ModelConfig } from './config.js';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Initialisation: 'normal' N(0, std), 'zeros', 'ones'. */
  init: 'normal' | 'zeros' | 'ones';
  /** Residual output projections get std / √(2·layers) (GPT-2 paper). */
  residual?: boolean;
  /** Weight decay applies (matrices and embeddings yes; biases and norm gains no) — nanoGPT's rule. */
  decay: boolean;
}

/**
 * Which output head a model carries: 'lm' the language-model head (`lm_head.weight`, or the tied embedding), 'none'
 * only the body — a reward model's backbone (./reward.ts adds its own `score` head).
 */
export type HeadKind = 'lm' | 'none';

/** Every trainable parameter of a config, in checkpoint order. */
export function paramSpecs(c: ModelConfig, head: HeadKind = 'lm'): ParamSpec[] {
  const C = c.hiddenSize,
    V = c.vocabSize,
    F = c.intermediateSize;
  const qd = c.numHeads * c.headDim,
    kvd = c.numKvHeads * c.headDim;
  const out: ParamSpec[] = [];
  const w = (name: string, shape: number[], residual = false) =>
    out.push({ name, shape, init: 'normal', decay: true, residual });
  const b = (name: string, n: number) => out.push({ name, shape: [n], init: 'zeros', decay: false });
  const g = (name: string, n: number) => out.push({ name, shape: [n], init: 'ones', decay: false });
  if (c.family === 'gpt2') {
    w('transformer.wte.weight', [V, C]);
    w('transformer.wpe.weight', [c.maxPositions, C]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}.`;
      g(p + 'ln_1.weight', C);
      b(p + 'ln_1.bias', C);
      w(p + 'attn.c_attn.weight', [C, qd + 2 * kvd]);
      b(p + 'attn.c_attn.bias', qd + 2 * kvd);
      w(p + 'attn.c_proj.weight', [qd, C], true);
      b(p + 'attn.c_proj.bias', C);
      g(p + 'ln_2.weight', C);
      b(p + 'ln_2.bias', C);
      w(p + 'mlp.c_fc.weight', [C, F]);
      b(p + 'mlp.c_fc.bias', F);
      w(p + 'mlp.c_proj.weight', [F, C], true);
      b(p + 'mlp.c_proj.bias', C);
    }
    g('transformer.ln_f.weight', C);
    b('transformer.ln_f.bias', C);
    if (!c.tieWordEmbeddings && head === 'lm') w('lm_head.weight', [V, C]);
  } else {
    w('model.embed_tokens.weight', [V, C]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`;
      g(p + 'input_layernorm.weight', C);
      w(p + 'self_attn.q_proj.weight', [qd, C]);
      if (c.attentionBias) b(p + 'self_attn.q_proj.bias', qd);
      w(p + 'self_attn.k_proj.weight', [kvd, C]);
      if (c.attentionBias) b(p + 'self_attn.k_proj.bias', kvd);
      w(p + 'self_attn.v_proj.weight', [kvd, C]);
      if (c.attentionBias) b(p + 'self_attn.v_proj.bias', kvd);
      w(p + 'self_attn.o_proj.weight', [C, qd], true);
      if (c.attentionOutBias) b(p + 'self_attn.o_proj.bias', C);
      if (c.qkNorm) {
        g(p + 'self_attn.q_norm.weight', c.headDim);
        g(p + 'self_attn.k_norm.weight', c.headDim);
      }
      g(p + 'post_attention_layernorm.weight', C);
      if (c.sandwichNorms) {
        g(p + 'pre_feedforward_layernorm.weight', C);
        g(p + 'post_feedforward_layernorm.weight', C);
      }
      w(p + 'mlp.gate_proj.weight', [F, C]);
      if (c.mlpBias) b(p + 'mlp.gate_proj.bias', F);
      w(p + 'mlp.up_proj.weight', [F, C]);
      if (c.mlpBias) b(p + 'mlp.up_proj.bias', F);
      w(p + 'mlp.down_proj.weight', [C, F], true);
      if (c.mlpBias) b(p + 'mlp.down_proj.bias', C);
    }
    g('model.norm.weight', C);
    if (!c.tieWordEmbeddings && head === 'lm') w('lm_head.weight', [V, C]);
  }
  return out;
}

/** Name of the token-embedding matrix (also the output head when tied). */
export function embeddingName(c: ModelConfig): string {
  return c.family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
}

/**
 * Names of the RMSNorm / LayerNorm gains (the parameters initialised to ones): what a config's `normOffset` applies to
 * at the checkpoint boundary (Gemma stores gain − 1).
 */
export function normGainNames(c: ModelConfig): Set<string> {
  return new Set(
    paramSpecs(c, 'none')
      .filter((s) => s.init === 'ones')
      .map((s) => s.name),
  );
}
