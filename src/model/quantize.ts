/**
 * Weight quantisation for inference: `quantizeModel(model, 'q8' | 'bf16')` stores every 2-D linear weight of a
 * CausalLM (attention and MLP projections, and the output head — tied or not) in a compact form that batch-1
 * decoding streams through memory 3.6× (q8) or 2× (bf16) faster than float32. The float32 embeddings stay for the
 * token lookup (and the float32 parameters stay in `model.params`, so the model can still be saved; pass
 * `{ dropFloat: true }` to free the float32 linear weights that nothing else uses).
 *
 * Formats (exact kernel semantics in src/backend/kernels.ts):
 * - q8:   llama.cpp's Q8_0: blocks of 32 weights along the input axis, one float32 scale d = max|w|/127 per block,
 *         q = round(w/d) ∈ [−127, 127] (halves away from zero, as llama.cpp). 1.125 bytes per weight.
 *         A linear whose input width is not a multiple of 32 stays float32 (listed in the report).
 * - bf16: the upper 16 bits of each float32, rounded to nearest even. 2 bytes per weight.
 * Activations stay float32 in both. After quantisation the model's forward uses `matmul_q8` / `matmul_bf16` for
 * those linears (CausalLM.quantized); training it throws QuantizedModelError.
 */
import { ConfigError } from '../util/errors.js';
import { keep, tensor, type Tensor } from '../tensor/tensor.js';
import type { CausalLM } from './model.js';
import { embeddingName } from './params.js';
import type { FusedLinear, QuantKind, QuantWeight } from './quant_linear.js';

export type { QuantKind, QuantWeight } from './quant_linear.js';

export const Q8_BLOCK = 32;

export interface QuantizeOptions {
  /** Dispose the float32 linear weights the model no longer needs (not the embedding, even when tied). */
  dropFloat?: boolean;
  /**
   * Store the linears of a Llama block that read the same input as one matrix each (q/k/v, gate/up; see FusedLinear
   * in ./quant_linear.ts): the same outputs bit for bit, in fewer kernels. Default true.
   */
  fuse?: boolean;
}

export interface QuantizeReport {
  kind: QuantKind;
  /** Parameter names now quantised. */
  quantized: string[];
  /** 2-D linear weights left in float32, with why. */
  skipped: { name: string; reason: string }[];
  /** Bytes of the quantised linear weights (data + scales) and of the same weights in float32. */
  bytes: number;
  floatBytes: number;
  /** Fused groups (model.fused keys), e.g. model.layers.0.self_attn.qkv. */
  fused: string[];
}

/** Q8_0: w [N, K] row-major (K % 32 = 0) → packed int8 (as i32 [N, K/4]) and scales [N, K/32]. */
export function quantizeQ8(w: Float32Array, N: number, K: number): { data: Int32Array; scales: Float32Array } {
  if (K % Q8_BLOCK !== 0) throw new ConfigError('inFeatures', `q8 needs the input width to be a multiple of ${Q8_BLOCK}, got ${K}`);
  const data = new Int32Array((N * K) / 4);
  const q = new Int8Array(data.buffer); // little-endian bytes: q[n·K + k] is byte k mod 4 of data[n, k/4]
  const nb = K / Q8_BLOCK;
  const scales = new Float32Array(N * nb);
  for (let b = 0; b < N * nb; b++) {
    const o = b * Q8_BLOCK;
    let amax = 0;
    for (let k = 0; k < Q8_BLOCK; k++) amax = Math.max(amax, Math.abs(w[o + k]!));
    const d = Math.fround(amax / 127);
    scales[b] = d;
    const id = d === 0 ? 0 : 1 / d;
    for (let k = 0; k < Q8_BLOCK; k++) {
      const v = w[o + k]! * id;
      q[o + k] = Math.max(-127, Math.min(127, Math.sign(v) * Math.round(Math.abs(v))));
    }
  }
  return { data, scales };
}

/** bf16: w [N, K] (K even) → two bfloat16 per i32 [N, K/2], low half first, rounded to nearest even. */
export function quantizeBf16(w: Float32Array, N: number, K: number): Int32Array {
  if (K % 2 !== 0) throw new ConfigError('inFeatures', `bf16 packing needs an even input width, got ${K}`);
  const u = new Uint32Array(w.buffer, w.byteOffset, N * K);
  const data = new Int32Array((N * K) / 2);
  const h = new Uint16Array(data.buffer);
  for (let i = 0; i < N * K; i++) {
    const b = u[i]!;
    h[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16; // NaN stays NaN
  }
  return data;
}

/** The float32 matrix each quantised form stands for (for error measurements and tests). [N, K] */
export function dequantize(kind: QuantKind, data: Int32Array, scales: Float32Array | null, N: number, K: number): Float32Array {
  const out = new Float32Array(N * K);
  if (kind === 'q8') {
    const q = new Int8Array(data.buffer, data.byteOffset, N * K);
    for (let i = 0; i < N * K; i++) out[i] = q[i]! * scales![Math.floor(i / Q8_BLOCK)]!;
  } else {
    const h = new Uint16Array(data.buffer, data.byteOffset, N * K), u = new Uint32Array(out.buffer);
    for (let i = 0; i < N * K; i++) u[i] = h[i]! << 16;
  }
  return out;
}

/** The names of a model's 2-D linear weights (output head included, embeddings excluded) and their layout. */
export function linearWeights(model: CausalLM): { name: string; layout: 'out_in' | 'in_out' }[] {
  const c = model.config;
  const emb = embeddingName(c);
  const out: { name: string; layout: 'out_in' | 'in_out' }[] = [];
  for (const [name, t] of model.params) {
    if (t.rank !== 2 || name === emb || name === 'transformer.wpe.weight') continue;
    // GPT-2's blocks use Conv1D ([in, out]); every other linear is [out, in]
    out.push({ name, layout: c.family === 'gpt2' && name.startsWith('transformer.h.') ? 'in_out' : 'out_in' });
  }
  if (c.tieWordEmbeddings) out.push({ name: emb, layout: 'out_in' }); // the head reads the embedding matrix
  return out;
}

/**
 * Quantise a model's linear weights in place (model.quantized); its forward then uses the quantised kernels.
 * Quantising twice, or with another kind, first drops the previous quantised weights.
 */
export async function quantizeModel(model: CausalLM, kind: QuantKind, opts: QuantizeOptions = {}): Promise<QuantizeReport> {
  if (kind !== 'q8' && kind !== 'bf16') throw new ConfigError('quantize', `expected 'q8' or 'bf16', got ${JSON.stringify(kind)}`);
  dequantizeModel(model);
  const report: QuantizeReport = { kind, quantized: [], skipped: [], bytes: 0, floatBytes: 0, fused: [] };
  const backend = model.backend;
  const emb = embeddingName(model.config);
  for (const { name, layout } of linearWeights(model)) {
    const t = model.params.get(name)!;
    const [r, c] = t.shape as [number, number];
    const [N, K] = layout === 'out_in' ? [r, c] : [c, r];
    const need = kind === 'q8' ? Q8_BLOCK : 2;
    if (K % need !== 0) {
      report.skipped.push({ name, reason: `input width ${K} is not a multiple of ${need}` });
      continue;
    }
    let w: Float32Array = Float32Array.from(await t.data());
    if (layout === 'in_out') w = transpose(w, r, c); // [in, out] → [out, in]
    let q: QuantWeight;
    if (kind === 'q8') {
      const { data, scales } = quantizeQ8(w, N, K);
      q = { kind, outFeatures: N, inFeatures: K, data: keep(tensor(data, [N, K / 4], { backend })), scales: keep(tensor(scales, [N, K / Q8_BLOCK], { backend })) };
      report.bytes += data.byteLength + scales.byteLength;
    } else {
      const data = quantizeBf16(w, N, K);
      q = { kind, outFeatures: N, inFeatures: K, data: keep(tensor(data, [N, K / 2], { backend })), scales: null };
      report.bytes += data.byteLength;
    }
    report.floatBytes += N * K * 4;
    model.quantized.set(name, q);
    report.quantized.push(name);
    if (opts.dropFloat && name !== emb) {
      // nothing reads this float32 weight any more: free its memory (the Map entry stays for numParams/config checks)
      t.dispose();
    }
  }
  if (opts.fuse !== false && model.config.family === 'llama') {
    for (let l = 0; l < model.config.numLayers; l++) {
      const pre = `model.layers.${l}.`;
      for (const [key, parts] of [
        ['self_attn.qkv', ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj']],
        ['mlp.gate_up', ['mlp.gate_proj', 'mlp.up_proj']],
      ] as const) {
        const f = await fuse(model, parts.map((p) => `${pre}${p}.weight`));
        if (!f) continue;
        model.fused.set(pre + key, f);
        report.fused.push(pre + key);
      }
    }
  }
  return report;
}

/**
 * The quantised linears `names` (same input width) as one FusedLinear, their separate forms freed; null (nothing
 * changed) unless every one of them is quantised.
 */
async function fuse(model: CausalLM, names: readonly string[]): Promise<FusedLinear | null> {
  const parts = names.map((n) => model.quantized.get(n));
  if (parts.some((q) => !q)) return null;
  const qs = parts as QuantWeight[];
  const { kind, inFeatures: K } = qs[0]!;
  if (qs.some((q) => q.kind !== kind || q.inFeatures !== K)) return null;
  const backend = model.backend;
  const cat = async (ts: Tensor[], Ctor: Int32ArrayConstructor | Float32ArrayConstructor) => {
    const arrays = await Promise.all(ts.map((t) => t.data()));
    const out = new Ctor(arrays.reduce((n, a) => n + a.length, 0));
    let o = 0;
    for (const a of arrays) (out.set(a as ArrayLike<number>, o), (o += a.length));
    return out;
  };
  const N = qs.reduce((n, q) => n + q.outFeatures, 0);
  const data = keep(tensor(await cat(qs.map((q) => q.data), Int32Array), [N, qs[0]!.data.shape[1]!], { backend }));
  const scales = kind === 'q8' ? keep(tensor(await cat(qs.map((q) => q.scales!), Float32Array), [N, K / Q8_BLOCK], { backend })) : null;
  // biases (Qwen-style q/k/v biases): concatenated, zeros for a part without one
  const biases = names.map((n) => model.params.get(n.replace(/\.weight$/, '.bias')) ?? null);
  let bias: Tensor | null = null;
  if (biases.some((b) => b)) {
    const host = new Float32Array(N);
    let o = 0;
    for (let i = 0; i < qs.length; i++) {
      if (biases[i]) host.set(await biases[i]!.data() as Float32Array, o);
      o += qs[i]!.outFeatures;
    }
    bias = keep(tensor(host, [N], { backend }));
  }
  for (let i = 0; i < names.length; i++) {
    qs[i]!.data.dispose();
    qs[i]!.scales?.dispose();
    model.quantized.delete(names[i]!);
  }
  return { weight: { kind, outFeatures: N, inFeatures: K, data, scales }, bias, names: [...names], sizes: qs.map((q) => q.outFeatures) };
}

/** Back to float32 linears (frees the quantised weights; needs the float32 parameters, i.e. no dropFloat). */
export function dequantizeModel(model: CausalLM): void {
  for (const q of model.quantized.values()) {
    q.data.dispose();
    q.scales?.dispose();
  }
  model.quantized.clear();
  for (const f of model.fused.values()) {
    f.weight.data.dispose();
    f.weight.scales?.dispose();
    f.bias?.dispose();
  }
  model.fused.clear();
}

function transpose(w: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = w[i * c + j]!;
  return out;
}
