/**
 * Our parameters (Hugging Face names and layouts, src/model/params.ts) ⇄ llama.cpp's tensors, for its `llama`,
 * `qwen2` (the llama names, q/k/v biases, and rotate-half RoPE, so no permutation), `qwen3` (qwen2's layout without
 * biases, plus self_attn.q_norm / k_norm → blk.N.attn_q_norm / attn_k_norm), `gemma3` (qwen3's, plus
 * post_attention_layernorm → blk.N.post_attention_norm, pre_feedforward_layernorm → ffn_norm,
 * post_feedforward_layernorm → post_ffw_norm; norm gains as the model holds them, 1 + Gemma's stored w, as
 * llama.cpp's converter writes them) and `gpt2` architectures, as
 * convert_hf_to_gguf.py writes them (gguf-py/gguf/tensor_mapping.py for the names). A scaled RoPE's divisors go in
 * one more tensor, `rope_freqs.weight` [D/2] (weights.ts).
 *
 *   llama                                        gpt2
 *   model.embed_tokens          token_embd       transformer.wte                token_embd
 *                                                transformer.wpe                position_embd
 *   layers.N.input_layernorm    blk.N.attn_norm  h.N.ln_1 (weight, bias)        blk.N.attn_norm
 *   self_attn.q_proj            blk.N.attn_q *   h.N.attn.c_attn (Conv1D ᵀ)     blk.N.attn_qkv
 *   self_attn.k_proj            blk.N.attn_k *   h.N.attn.c_proj (Conv1D ᵀ)     blk.N.attn_output
 *   self_attn.v_proj            blk.N.attn_v     h.N.ln_2                       blk.N.ffn_norm
 *   self_attn.o_proj            blk.N.attn_output h.N.mlp.c_fc (Conv1D ᵀ)       blk.N.ffn_up
 *   post_attention_layernorm    blk.N.ffn_norm   h.N.mlp.c_proj (Conv1D ᵀ)      blk.N.ffn_down
 *   mlp.gate_proj / up / down   blk.N.ffn_gate / ffn_up / ffn_down
 *   model.norm                  output_norm      transformer.ln_f               output_norm
 *   lm_head                     output (absent when tied: llama.cpp then uses token_embd)
 *
 * (*) llama.cpp's `llama` rotates adjacent pairs (x0, x1), transformers' Llama rotates halves (x_i, x_{i+d/2}); so
 * the rows of q and k (and their biases) are permuted within each head: new row 2j+s = old row s·d/2 + j
 * (convert_hf_to_gguf.py LlamaModel.permute; k uses the key/value head count). GPT-2's Conv1D weights are stored
 * [in, out]; llama.cpp wants nn.Linear's [out, in], so they are transposed.
 */
import { FileFormatError, UnsupportedError } from '../../util/errors.js';
import type { ModelConfig } from '../config.js';

/** How a parameter's values are rearranged on the way into GGUF (undone on the way back). */
export type Layout =
  | { kind: 'same' }
  | { kind: 'transpose' }
  /** Rows permuted within `heads` heads (q: numHeads, k: numKvHeads). */
  | { kind: 'rope'; heads: number }
  /** Values multiplied by `factor` (Gemma 3's q_norm carrying the attention scale llama.cpp does not read). */
  | { kind: 'scale'; factor: number };

export interface TensorMapping {
  /** Our (Hugging Face) parameter name. */
  hf: string;
  /** llama.cpp's tensor name. */
  gguf: string;
  layout: Layout;
}

const SAME: Layout = { kind: 'same' };
const T: Layout = { kind: 'transpose' };

export type GgufArchitecture = 'llama' | 'qwen2' | 'qwen3' | 'gemma3' | 'smollm3' | 'gpt2';

/**
 * The llama.cpp architecture of a config: Gemma 3's layout (sandwich norms) is its `gemma3`, SmolLM3's (NoPE layers)
 * its `smollm3` (llama's tensors); other Llama-family models
 * with per-head q/k norms are its `qwen3`; with q/k/v
 * biases and no o_proj bias (Qwen2) its `qwen2`; the rest of the family (Llama, Mistral without a sliding window,
 * biases or not) its `llama`.
 */
export function ggufArchitecture(c: ModelConfig): GgufArchitecture {
  if (c.family === 'gpt2') return 'gpt2';
  if (c.sandwichNorms) return 'gemma3';
  if (c.noRopeLayers?.some(Boolean)) return 'smollm3';
  if (c.qkNorm) return 'qwen3';
  return c.attentionBias && !c.attentionOutBias ? 'qwen2' : 'llama';
}

/**
 * The attention scale llama.cpp's gemma3 uses (it reads none from the file): 1/√(hidden/heads) for its 27B (62
 * layers), else 1/√headDim (gemma_pytorch's rule). A model whose scale differs carries the ratio in q_norm.
 */
export function gemma3CppScale(c: Pick<ModelConfig, 'numLayers' | 'hiddenSize' | 'numHeads' | 'headDim'>): number {
  return c.numLayers === 62 ? 1 / Math.sqrt(c.hiddenSize / c.numHeads) : 1 / Math.sqrt(c.headDim);
}

/** Every parameter of `c` with its llama.cpp name and layout, in our checkpoint order. */
export function tensorMappings(c: ModelConfig): TensorMapping[] {
  const out: TensorMapping[] = [];
  const m = (hf: string, gguf: string, layout: Layout = SAME) => out.push({ hf, gguf, layout });
  if (c.family === 'gpt2') {
    m('transformer.wte.weight', 'token_embd.weight');
    m('transformer.wpe.weight', 'position_embd.weight');
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}.`,
        b = `blk.${i}.`;
      m(`${p}ln_1.weight`, `${b}attn_norm.weight`);
      m(`${p}ln_1.bias`, `${b}attn_norm.bias`);
      m(`${p}attn.c_attn.weight`, `${b}attn_qkv.weight`, T);
      m(`${p}attn.c_attn.bias`, `${b}attn_qkv.bias`);
      m(`${p}attn.c_proj.weight`, `${b}attn_output.weight`, T);
      m(`${p}attn.c_proj.bias`, `${b}attn_output.bias`);
      m(`${p}ln_2.weight`, `${b}ffn_norm.weight`);
      m(`${p}ln_2.bias`, `${b}ffn_norm.bias`);
      m(`${p}mlp.c_fc.weight`, `${b}ffn_up.weight`, T);
      m(`${p}mlp.c_fc.bias`, `${b}ffn_up.bias`);
      m(`${p}mlp.c_proj.weight`, `${b}ffn_down.weight`, T);
      m(`${p}mlp.c_proj.bias`, `${b}ffn_down.bias`);
    }
    m('transformer.ln_f.weight', 'output_norm.weight');
    m('transformer.ln_f.bias', 'output_norm.bias');
  } else {
    if (c.headDim % 2 !== 0) throw new UnsupportedError(`llama.cpp's RoPE needs an even head size, got ${c.headDim}`);
    // qwen2, qwen3, gemma3: llama.cpp rotates halves too, rows stay as they are; smollm3 rotates pairs as llama
    const neox = !['llama', 'smollm3'].includes(ggufArchitecture(c));
    const q: Layout = neox ? SAME : { kind: 'rope', heads: c.numHeads },
      k: Layout = neox ? SAME : { kind: 'rope', heads: c.numKvHeads };
    m('model.embed_tokens.weight', 'token_embd.weight');
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}.`,
        b = `blk.${i}.`;
      m(`${p}input_layernorm.weight`, `${b}attn_norm.weight`);
      m(`${p}self_attn.q_proj.weight`, `${b}attn_q.weight`, q);
      m(`${p}self_attn.k_proj.weight`, `${b}attn_k.weight`, k);
      m(`${p}self_attn.v_proj.weight`, `${b}attn_v.weight`);
      if (c.attentionBias) {
        m(`${p}self_attn.q_proj.bias`, `${b}attn_q.bias`, q);
        m(`${p}self_attn.k_proj.bias`, `${b}attn_k.bias`, k);
        m(`${p}self_attn.v_proj.bias`, `${b}attn_v.bias`);
      }
      m(`${p}self_attn.o_proj.weight`, `${b}attn_output.weight`);
      if (c.attentionOutBias) m(`${p}self_attn.o_proj.bias`, `${b}attn_output.bias`);
      if (c.qkNorm) {
        // Gemma 3: q·k scaled by attnScale here, by gemma3CppScale in llama.cpp; q_norm's gains carry the ratio
        const f = c.sandwichNorms && c.attnScale !== undefined ? c.attnScale / gemma3CppScale(c) : 1;
        m(`${p}self_attn.q_norm.weight`, `${b}attn_q_norm.weight`, f === 1 ? SAME : { kind: 'scale', factor: f });
        m(`${p}self_attn.k_norm.weight`, `${b}attn_k_norm.weight`);
      }
      if (c.sandwichNorms) {
        m(`${p}post_attention_layernorm.weight`, `${b}post_attention_norm.weight`);
        m(`${p}pre_feedforward_layernorm.weight`, `${b}ffn_norm.weight`);
        m(`${p}post_feedforward_layernorm.weight`, `${b}post_ffw_norm.weight`);
      } else m(`${p}post_attention_layernorm.weight`, `${b}ffn_norm.weight`);
      m(`${p}mlp.gate_proj.weight`, `${b}ffn_gate.weight`);
      m(`${p}mlp.up_proj.weight`, `${b}ffn_up.weight`);
      m(`${p}mlp.down_proj.weight`, `${b}ffn_down.weight`);
      if (c.mlpBias) {
        m(`${p}mlp.gate_proj.bias`, `${b}ffn_gate.bias`);
        m(`${p}mlp.up_proj.bias`, `${b}ffn_up.bias`);
        m(`${p}mlp.down_proj.bias`, `${b}ffn_down.bias`);
      }
    }
    m('model.norm.weight', 'output_norm.weight');
  }
  if (!c.tieWordEmbeddings) m('lm_head.weight', 'output.weight');
  return out;
}

/** Our shape [rows, …] → the GGUF tensor's row-major shape. */
export function ggufShape(shape: readonly number[], layout: Layout): number[] {
  return layout.kind === 'transpose' ? [shape[1]!, shape[0]!] : [...shape];
}

/**
 * Rearrange a parameter's values into llama.cpp's layout (`toGguf`) or back. `shape` is our shape. Rows of `rope`
 * tensors are [heads · d] long blocks of `cols` values (cols = 1 for a bias).
 */
export function relayout(x: Float32Array, shape: readonly number[], layout: Layout, toGguf: boolean): Float32Array {
  if (layout.kind === 'same') return x;
  if (layout.kind === 'scale') return x.map((v) => (toGguf ? v * layout.factor : v / layout.factor));
  const out = new Float32Array(x.length);
  if (layout.kind === 'transpose') {
    // ours [R, C] ⇄ theirs [C, R]
    const [R, C] = toGguf ? [shape[0]!, shape[1]!] : [shape[1]!, shape[0]!];
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = x[r * C + c]!;
    return out;
  }
  const rows = shape[0]!,
    cols = shape.length > 1 ? shape[1]! : 1;
  const d = rows / layout.heads,
    half = d / 2;
  for (let h = 0; h < layout.heads; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++) {
        const hfRow = h * d + s * half + j,
          ggRow = h * d + 2 * j + s;
        const [from, to] = toGguf ? [hfRow, ggRow] : [ggRow, hfRow];
        out.set(x.subarray(from * cols, (from + 1) * cols), to * cols);
      }
  return out;
}

/** A GGUF tensor that is not where the mapping expects it: named error. */
export function missingTensor(file: string, name: string, arch: string): FileFormatError {
  return new FileFormatError('E_MISSING_TENSOR', file, `tensor '${name}' is missing (a ${arch} model needs it)`, name);
}
