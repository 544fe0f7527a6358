/**
 * A float64 forward pass written from the papers and transformers' modelling code (GPT2LMHeadModel,
 * LlamaForCausalLM), straight from a Hugging Face folder's config.json and tensors, with nothing of src/model in it:
 * the oracle of the inspection tests. It returns every layer's attention probabilities, the residual stream after the
 * embeddings and after each block, and the logits, for one row of ids.
 *
 *   GPT-2: x = wte[id] + wpe[t];  x += c_proj(attn(LN₁ x));  x += mlp(LN₂ x);  logits = LN_f(x)·wteᵀ
 *   Llama: x = embed[id];  x += o(attn(rope(q), rope(k), v) of RMS x);  x += down(silu(gate)·up of RMS x);  lm_head
 */
import fs from 'node:fs';
import path from 'node:path';
import { readSafetensors } from '../src/formats/safetensors.js';

export interface Reference64 {
  /** Per layer (H, T, T): row = query, column = key, 0 above the diagonal. */
  attention: Float64Array[];
  /** L + 1 arrays (T, C): the embedding output, then x after each block. */
  residual: Float64Array[];
  /** (T, V). */
  logits: Float64Array;
}

type W = Map<string, { shape: number[]; data: Float64Array }>;

/** The folder's weights widened to float64. */
export async function weights64(dir: string): Promise<W> {
  const f = await readSafetensors(path.join(dir, 'model.safetensors'));
  const w: W = new Map();
  for (const [name, t] of f.tensors)
    w.set(name, { shape: [...t.shape], data: Float64Array.from(t.data as Float32Array) });
  return w;
}

/** y (T, out) = x (T, in) · W, W stored [in, out] ('in_out', GPT-2's Conv1D) or [out, in] ('out_in', nn.Linear). */
function linear(
  x: Float64Array,
  T: number,
  w: { shape: number[]; data: Float64Array },
  layout: 'in_out' | 'out_in',
  b?: Float64Array,
): Float64Array {
  const [a0, a1] = w.shape as [number, number];
  const nIn = layout === 'in_out' ? a0 : a1,
    nOut = layout === 'in_out' ? a1 : a0;
  const y = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < nOut; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < nIn; i++)
        s += x[t * nIn + i]! * (layout === 'in_out' ? w.data[i * nOut + o]! : w.data[o * nIn + i]!);
      y[t * nOut + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, T: number, C: number, g: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let i = 0; i < C; i++) m += x[t * C + i]!;
    m /= C;
    let v = 0;
    for (let i = 0; i < C; i++) v += (x[t * C + i]! - m) ** 2;
    const r = 1 / Math.sqrt(v / C + eps);
    for (let i = 0; i < C; i++) y[t * C + i] = (x[t * C + i]! - m) * r * g[i]! + b[i]!;
  }
  return y;
}

function rmsNorm(x: Float64Array, T: number, C: number, g: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let i = 0; i < C; i++) s += x[t * C + i]! ** 2;
    const r = 1 / Math.sqrt(s / C + eps);
    for (let i = 0; i < C; i++) y[t * C + i] = x[t * C + i]! * r * g[i]!;
  }
  return y;
}

/** Rotate-half RoPE in place on (T, heads, D), inv_freq in float32 as transformers computes it. */
function rope(x: Float64Array, T: number, heads: number, D: number, theta: number): void {
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * D;
      for (let i = 0; i < D / 2; i++) {
        const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / D)));
        const a = t * invFreq;
        const c = Math.cos(a),
          s = Math.sin(a);
        const x1 = x[o + i]!,
          x2 = x[o + i + D / 2]!;
        x[o + i] = x1 * c - x2 * s;
        x[o + i + D / 2] = x2 * c + x1 * s;
      }
    }
  }
}

/**
 * Causal attention: q (T, H, D), k and v (T, Hkv, D); query head h reads key/value head ⌊h / (H/Hkv)⌋ (transformers'
 * repeat_kv). Returns the output (T, H·D) and the probabilities (H, T, T).
 */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, H: number, Hkv: number, D: number) {
  const P = new Float64Array(H * T * T);
  const out = new Float64Array(T * H * D);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / Hkv));
    for (let t = 0; t < T; t++) {
      const row = new Float64Array(t + 1);
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(t * H + h) * D + d]! * k[(s * Hkv + g) * D + d]!;
        row[s] = dot / Math.sqrt(D);
        max = Math.max(max, row[s]!);
      }
      let z = 0;
      for (let s = 0; s <= t; s++) z += Math.exp(row[s]! - max);
      for (let s = 0; s <= t; s++) {
        const p = Math.exp(row[s]! - max) / z;
        P[(h * T + t) * T + s] = p;
        for (let d = 0; d < D; d++) out[(t * H + h) * D + d] += p * v[(s * Hkv + g) * D + d]!;
      }
    }
  }
  return { out, P };
}

const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));

/** The float64 forward of one row of ids through the model in `dir` (a GPT-2 or Llama Hugging Face folder). */
export async function reference64(dir: string, ids: readonly number[]): Promise<Reference64> {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const w = await weights64(dir);
  const get = (n: string) => {
    const t = w.get(n);
    if (!t) throw new Error(`${dir}: no tensor ${n}`);
    return t;
  };
  const T = ids.length;
  const attentionOut: Float64Array[] = [];
  const residual: Float64Array[] = [];
  const add = (x: Float64Array, y: Float64Array) => x.forEach((_, i) => (x[i] = x[i]! + y[i]!));
  if (cfg['model_type'] === 'gpt2') {
    const C = cfg['n_embd'] as number,
      H = cfg['n_head'] as number,
      L = cfg['n_layer'] as number,
      eps = cfg['layer_norm_epsilon'] as number;
    const D = C / H;
    const wte = get('transformer.wte.weight'),
      wpe = get('transformer.wpe.weight');
    const x = new Float64Array(T * C);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < C; i++) x[t * C + i] = wte.data[ids[t]! * C + i]! + wpe.data[t * C + i]!;
    residual.push(x.slice());
    for (let l = 0; l < L; l++) {
      const p = (n: string) => get(`transformer.h.${l}.${n}`);
      const h = layerNorm(x, T, C, p('ln_1.weight').data, p('ln_1.bias').data, eps);
      const qkv = linear(h, T, p('attn.c_attn.weight'), 'in_out', p('attn.c_attn.bias').data); // (T, 3C)
      const part = (j: number) => {
        const o = new Float64Array(T * C);
        for (let t = 0; t < T; t++) for (let i = 0; i < C; i++) o[t * C + i] = qkv[t * 3 * C + j * C + i]!;
        return o;
      };
      const { out, P } = attention(part(0), part(1), part(2), T, H, H, D);
      attentionOut.push(P);
      add(x, linear(out, T, p('attn.c_proj.weight'), 'in_out', p('attn.c_proj.bias').data));
      const h2 = layerNorm(x, T, C, p('ln_2.weight').data, p('ln_2.bias').data, eps);
      const f = linear(h2, T, p('mlp.c_fc.weight'), 'in_out', p('mlp.c_fc.bias').data).map(geluNew);
      add(x, linear(f, T, p('mlp.c_proj.weight'), 'in_out', p('mlp.c_proj.bias').data));
      residual.push(x.slice());
    }
    const hf = layerNorm(x, T, C, get('transformer.ln_f.weight').data, get('transformer.ln_f.bias').data, eps);
    return { attention: attentionOut, residual, logits: linear(hf, T, wte, 'out_in') };
  }
  if (cfg['model_type'] !== 'llama') throw new Error(`reference64: no reference for ${String(cfg['model_type'])}`);
  const C = cfg['hidden_size'] as number,
    H = cfg['num_attention_heads'] as number,
    Hkv = (cfg['num_key_value_heads'] as number | undefined) ?? H,
    L = cfg['num_hidden_layers'] as number,
    eps = cfg['rms_norm_eps'] as number,
    D = (cfg['head_dim'] as number | undefined) ?? C / H;
  const theta =
    ((cfg['rope_parameters'] as Record<string, number> | undefined)?.['rope_theta'] ?? (cfg['rope_theta'] as number)) ||
    10000;
  const emb = get('model.embed_tokens.weight');
  const x = new Float64Array(T * C);
  for (let t = 0; t < T; t++) for (let i = 0; i < C; i++) x[t * C + i] = emb.data[ids[t]! * C + i]!;
  residual.push(x.slice());
  for (let l = 0; l < L; l++) {
    const p = (n: string) => get(`model.layers.${l}.${n}`);
    const h = rmsNorm(x, T, C, p('input_layernorm.weight').data, eps);
    const q = linear(h, T, p('self_attn.q_proj.weight'), 'out_in'),
      k = linear(h, T, p('self_attn.k_proj.weight'), 'out_in'),
      v = linear(h, T, p('self_attn.v_proj.weight'), 'out_in');
    rope(q, T, H, D, theta);
    rope(k, T, Hkv, D, theta);
    const { out, P } = attention(q, k, v, T, H, Hkv, D);
    attentionOut.push(P);
    add(x, linear(out, T, p('self_attn.o_proj.weight'), 'out_in'));
    const h2 = rmsNorm(x, T, C, p('post_attention_layernorm.weight').data, eps);
    const g = linear(h2, T, p('mlp.gate_proj.weight'), 'out_in'),
      u = linear(h2, T, p('mlp.up_proj.weight'), 'out_in');
    add(
      x,
      linear(
        g.map((a, i) => silu(a) * u[i]!),
        T,
        p('mlp.down_proj.weight'),
        'out_in',
      ),
    );
    residual.push(x.slice());
  }
  const hf = rmsNorm(x, T, C, get('model.norm.weight').data, eps);
  const head = w.get('lm_head.weight') ?? emb;
  return { attention: attentionOut, residual, logits: linear(hf, T, head, 'out_in') };
}
