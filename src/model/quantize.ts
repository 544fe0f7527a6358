/**
 * Weight quantisation for inference: `quantizeModel(model, 'q8' | 'q4k' | 'bf16')` stores every 2-D linear weight of a
 * CausalLM (attention and MLP projections, and the output head — tied or not) in a compact form that batch-1
 * decoding streams through memory 3.6× (q8), ~6.7× (q4k) or 2× (bf16) faster than float32. The token lookup reads
 * the embedding quantised too, as llama.cpp does (tied: from the head's matrix; untied: the embedding stored in the
 * same form; `{ embeddings: false }` keeps the float32 lookup). The float32 parameters stay in `model.params`, so the
 * model can still be saved; pass `{ dropFloat: true }` to free the float32 weights that nothing reads any more (a
 * Llama 3.2 1B's 128k × 2048 embedding is 1 GB of them).
 *
 * Formats (exact kernel semantics in src/backend/kernels.ts):
 * - q8:   llama.cpp's Q8_0: blocks of 32 weights along the input axis, one float32 scale d = max|w|/127 per block,
 *         q = round(w/d) ∈ [−127, 127] (halves away from zero, as llama.cpp). 1.125 bytes per weight.
 *         A linear whose input width is not a multiple of 32 stays float32 (listed in the report).
 * - q4k:  llama.cpp's Q4_K (./q4k.ts): super-blocks of 256 weights along the input axis, eight sub-blocks of 32 with
 *         a 6-bit scale and min each; 4.75 bytes per 8 weights. The linears of a GGUF file stored as Q4_K keep their
 *         exact blocks (what llama.cpp runs); others are quantised as llama.cpp's quantize_row_q4_K_ref. As in a
 *         Q4_K_M file, more bits where 4 are too few: the output head, and a matrix a GGUF file stored with more bits
 *         (Q5_K, Q6_K, Q8_0, …: a Q4_K_M file's attn_v and ffn_down in half the layers), become q8; so does a
 *         linear whose input width is not a multiple of 256.
 * - bf16: the upper 16 bits of each float32, rounded to nearest even. 2 bytes per weight.
 * Activations stay float32. After quantisation the model's forward uses `matmul_q8` / `matmul_q4k` / `matmul_bf16` for
 * those linears (CausalLM.quantized); training it throws QuantizedModelError.
 */
import { ConfigError } from '../util/errors.js';
import { keep, tensor, type Tensor } from '../tensor/tensor.js';
import type { CausalLM } from './model.js';
import { embeddingName } from './params.js';
import type { FusedLinear, QuantKind, QuantWeight, WeightKind } from './quant_linear.js';
import { Q4K_BLOCK, Q4K_WORDS, dequantizeQ4K, q4kFromGguf, quantizeQ4K } from './q4k.js';
import { matrixValues, releaseWeightSource, releaseWeightSources, weightSource } from './weight_source.js';

export type { QuantKind, QuantWeight, WeightKind } from './quant_linear.js';

export const Q8_BLOCK = 32;
/** The forms quantizeModel stores (the `--quantize` choices). */
export const QUANT_KINDS: readonly QuantKind[] = ['q8', 'q4k', 'bf16'];

export interface QuantizeOptions {
  /** Dispose the float32 weights the model no longer reads (the embedding too when the lookup is quantised). */
  dropFloat?: boolean;
  /**
   * Look tokens up in the quantised table (the tied head's, or the untied embedding quantised as the linears are:
   * q4k keeps a GGUF file's Q4_K blocks and makes wider sources q8). Default true; false keeps the float32 lookup.
   * Not for 'f32' (fuseModel).
   */
  embeddings?: boolean;
  /**
   * Called as each matrix is taken up and once at the end: how many are stored of how many (a 1B model's q4k takes
   * minutes from float weights).
   */
  onProgress?: (done: number, total: number) => void;
  /**
   * Store the linears of a Llama block that read the same input as one matrix each (q/k/v, gate/up; see FusedLinear
   * in ./quant_linear.ts): the same outputs bit for bit, in fewer kernels. Default true.
   */
  fuse?: boolean;
}

export interface QuantizeReport {
  /** 'f32' for fuseModel (float32 fused groups, nothing quantised). */
  kind: WeightKind;
  /** Parameter names now quantised (fuseModel: now stored in a fused group). */
  quantized: string[];
  /** How many of them each form holds (q4k: some are q8, see above), e.g. { q4k: 150, q8: 5 }. */
  forms: Partial<Record<WeightKind, number>>;
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
  if (K % Q8_BLOCK !== 0)
    throw new ConfigError('inFeatures', `q8 needs the input width to be a multiple of ${Q8_BLOCK}, got ${K}`);
  const data = new Int32Array((N * K) / 4);
  const q = new Int8Array(data.buffer); // little-endian bytes: q[n·K + k] is byte k mod 4 of data[n, k/4]
  const nb = K / Q8_BLOCK;
  const scales = new Float32Array(N * nb);
  for (let b = 0; b < N * nb; b++) {
    const o = b * Q8_BLOCK;
    let amax = 0;
    for (let k = 0; k < Q8_BLOCK; k++) {
      const a = Math.abs(w[o + k]!);
      // biome-ignore lint/complexity/useMathMinMax: Math.max would make the block's scale NaN for one NaN weight
      amax = a > amax ? a : amax;
    }
    const d = Math.fround(amax / 127);
    scales[b] = d;
    const id = d === 0 ? 0 : 1 / d;
    // |v| ≤ amax·id < 127.5 (d is amax/127 rounded to float32), so no clamp; halves away from zero, as llama.cpp.
    // round(|v|) as (|v| + 0.5) | 0, less one where the addition rounded up to the next integer (r − |v| is exact
    // by Sterbenz's lemma, so the test is too), the sign put back without a branch (random signs mispredict):
    // Math.round and branches cost this loop ×2.5 (17 against 6.8 ns a weight)
    for (let k = 0; k < Q8_BLOCK; k++) {
      const v = w[o + k]! * id;
      const a = Math.abs(v);
      const r = ((a + 0.5) | 0) - +(((a + 0.5) | 0) - a > 0.5);
      const m = -(v < 0);
      q[o + k] = (r ^ m) - m;
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
export function dequantize(
  kind: QuantKind,
  data: Int32Array,
  scales: Float32Array | null,
  N: number,
  K: number,
): Float32Array {
  if (kind === 'q4k') return dequantizeQ4K(data, N, K);
  const out = new Float32Array(N * K);
  if (kind === 'q8') {
    const q = new Int8Array(data.buffer, data.byteOffset, N * K);
    for (let i = 0; i < N * K; i++) out[i] = q[i]! * scales![Math.floor(i / Q8_BLOCK)]!;
  } else {
    const h = new Uint16Array(data.buffer, data.byteOffset, N * K),
      u = new Uint32Array(out.buffer);
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
export async function quantizeModel(
  model: CausalLM,
  kind: QuantKind,
  opts: QuantizeOptions = {},
): Promise<QuantizeReport> {
  if (!QUANT_KINDS.includes(kind))
    throw new ConfigError('quantize', `expected one of ${QUANT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  return storeLinears(model, kind, opts);
}

/**
 * Float32 decoding's counterpart of quantisation's fusion: each group of a Llama block's linears that read the same
 * input (q/k/v, gate/up; see FusedLinear in ./quant_linear.ts) becomes one float32 matrix [ΣN, K], their rows one
 * after another, in model.fused. A decode step then runs one matmul per group instead of two or three, and the MLP
 * reads the gate/up output in place (swiglu_fused): fewer kernel calls per token, each output row computed as in its
 * own matrix. Other linears stay as they are. Like quantisation it is for inference: the model refuses training
 * until `dequantizeModel`. The copies cost the grouped weights' memory once more unless `dropFloat` frees the
 * originals (then the model can no longer be saved). GPT-2 (already fused: c_attn) is left unchanged.
 */
export async function fuseModel(model: CausalLM, opts: Omit<QuantizeOptions, 'fuse'> = {}): Promise<QuantizeReport> {
  return storeLinears(model, 'f32', { ...opts, fuse: true });
}

/**
 * quantizeModel and fuseModel: store the linears as `kind` (after dropping any stored before), fusing the groups
 * unless opts.fuse is false. For 'f32' only the groups' members are stored (the rest stay plain parameters).
 */
async function storeLinears(model: CausalLM, kind: WeightKind, opts: QuantizeOptions): Promise<QuantizeReport> {
  if (model.lora.size)
    throw new ConfigError(
      'lora',
      `the model has LoRA adapters: merge them into its weights first (mergeLora) to ${kind === 'f32' ? 'fuse' : 'quantise'} it`,
    );
  dequantizeModel(model);
  const report: QuantizeReport = { kind, quantized: [], forms: {}, skipped: [], bytes: 0, floatBytes: 0, fused: [] };
  const head = model.config.tieWordEmbeddings ? embeddingName(model.config) : 'lm_head.weight';
  const backend = model.backend;
  const emb = embeddingName(model.config);
  const groups = opts.fuse !== false ? fusionGroups(model.config) : new Map<string, FusionGroup>();
  const quantEmb = kind !== 'f32' && opts.embeddings !== false;
  const pending = new Map<string, HostQuant>(); // parts of a group not complete yet, still on the host
  const upload = (h: HostQuant): QuantWeight => ({
    kind: h.kind,
    outFeatures: h.N,
    inFeatures: h.K,
    data: keep(tensor(h.data, [h.N, h.data.length / h.N], { backend })),
    scales: h.scales ? keep(tensor(h.scales, [h.N, h.K / Q8_BLOCK], { backend })) : null,
  });
  const linears = linearWeights(model);
  const untiedEmb = quantEmb && !model.config.tieWordEmbeddings && model.head !== 'none';
  const total = linears.length + (untiedEmb ? 1 : 0);
  let done = 0;
  const note = (h: HostQuant, name: string) => {
    report.forms[h.kind] = (report.forms[h.kind] ?? 0) + 1;
    report.bytes += h.data.byteLength + (h.scales?.byteLength ?? 0);
    report.floatBytes += h.N * h.K * 4;
    report.quantized.push(name);
  };
  const progress = () => opts.onProgress?.(done++, total);
  for (const { name, layout } of linears) {
    progress();
    const g = groups.get(name);
    if (kind === 'f32' && !g) continue; // float32 and not fused: the parameter itself serves
    const t = model.params.get(name)!;
    const [r, c] = t.shape as [number, number];
    const [N, K] = layout === 'out_in' ? [r, c] : [c, r];
    const source = weightSource(model, name);
    const form: WeightKind = kind === 'q4k' ? q4kForm(K, name === head, source?.type) : kind;
    const need = widthUnit(form);
    if (K % need !== 0) {
      report.skipped.push({ name, reason: `input width ${K} is not a multiple of ${need}` });
      if (!isLive(t)) await restoreParam(model, name, t); // a vacant parameter it stays: give it its values
      continue;
    }
    const h = await hostQuant(model, name, t, form, N, K, layout);
    note(h, name);
    // a vacant matrix's file bytes are stored now (unless the float32 lookup will still need a tied embedding's)
    if (!isLive(t) && (name !== emb || quantEmb)) releaseWeightSource(model, name);
    if (opts.dropFloat && (name !== emb || quantEmb)) {
      // nothing reads this float32 weight any more: free its memory (the Map entry stays for numParams/config checks)
      t.dispose();
    }
    if (!g) {
      model.quantized.set(name, upload(h));
      continue;
    }
    pending.set(name, h);
    if (!g.parts.every((p) => pending.has(p))) continue;
    const hs = g.parts.map((p) => pending.get(p)!);
    for (const p of g.parts) pending.delete(p);
    if (hs.some((x) => x.K !== K || x.kind !== hs[0]!.kind)) {
      g.parts.forEach((p, i) => model.quantized.set(p, upload(hs[i]!)));
      continue;
    }
    model.fused.set(g.key, await fused(model, g.parts, hs, upload));
    report.fused.push(g.key);
  }
  // parts of a group that never completed (another part skipped): stored alone
  for (const [name, h] of pending) model.quantized.set(name, upload(h));
  if (untiedEmb) {
    progress();
    // the untied embedding, stored as the linears are (its rows looked up, never multiplied)
    const t = model.params.get(emb)!;
    const [V, C] = t.shape as [number, number];
    const source = weightSource(model, emb);
    const form: WeightKind = kind === 'q4k' ? q4kForm(C, false, source?.type) : kind;
    const need = widthUnit(form);
    if (C % need !== 0) report.skipped.push({ name: emb, reason: `width ${C} is not a multiple of ${need}` });
    else {
      const h = await hostQuant(model, emb, t, form, V, C, 'out_in');
      model.quantized.set(emb, upload(h));
      note(h, emb);
      releaseWeightSource(model, emb);
      if (opts.dropFloat) t.dispose();
    }
  }
  opts.onProgress?.(total, total);
  model.quantizedEmbedding = quantEmb && model.quantized.has(emb);
  // a vacant embedding (loaded undecoded) whose lookup stays float32: give it its values
  const e = model.params.get(emb)!;
  if (!model.quantizedEmbedding && !isLive(e) && !e.isDisposed) await restoreParam(model, emb, e);
  if (kind !== 'f32') releaseWeightSources(model); // stored now: the file's bytes would be a second copy
  return report;
}

/** One matrix [N, K] (as `layout` stores it) in `form`, on the host: a GGUF file's Q4_K blocks as they are, else quantised. */
async function hostQuant(
  model: CausalLM,
  name: string,
  t: Tensor,
  form: WeightKind,
  N: number,
  K: number,
  layout: 'out_in' | 'in_out',
): Promise<HostQuant> {
  const source = weightSource(model, name);
  if (form === 'q4k' && source?.q4k) return { kind: form, N, K, data: q4kFromGguf(source.q4k(), N, K), scales: null };
  if (form === 'bf16' && layout === 'out_in' && source?.bf16) {
    // a bfloat16 checkpoint's own bytes: two per i32, low half first, as the kernel reads them
    const b = source.bf16();
    const data =
      b.byteOffset % 4 === 0
        ? new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4)
        : new Int32Array(b.slice().buffer);
    return { kind: form, N, K, data, scales: null };
  }
  const rows = !isLive(t) && layout === 'out_in' && form !== 'f32' ? source?.rows : undefined;
  if (rows) return quantizeSlices(form as QuantKind, N, K, rows);
  let w = await matrixValues(model, name, t);
  if (layout === 'in_out') w = transpose(w, K, N); // [in, out] → [out, in]
  return form === 'q8'
    ? { kind: form, N, K, ...quantizeQ8(w, N, K) }
    : form === 'q4k'
      ? { kind: form, N, K, data: quantizeQ4K(w, N, K), scales: null }
      : form === 'bf16'
        ? { kind: form, N, K, data: quantizeBf16(w, N, K), scales: null }
        : { kind: form, N, K, data: w, scales: null };
}

/** Rows per slice in quantizeSlices: about 4M weights (16 MB of float32) at a time. */
const SLICE_WEIGHTS = 1 << 22;

/**
 * A matrix [N, K] quantised a slice of rows at a time from `rows` (a file source's decoder), so its float32 form is
 * never whole in memory; every form quantises rows independently, so the result is the same as at once.
 */
function quantizeSlices(
  form: QuantKind,
  N: number,
  K: number,
  rows: (lo: number, hi: number) => Float32Array,
): HostQuant {
  const words = form === 'q8' ? K / 4 : form === 'bf16' ? K / 2 : (K / Q4K_BLOCK) * Q4K_WORDS; // i32 per row
  const data = new Int32Array(N * words);
  const scales = form === 'q8' ? new Float32Array((N * K) / Q8_BLOCK) : null;
  const step = Math.max(1, Math.floor(SLICE_WEIGHTS / K));
  for (let lo = 0; lo < N; lo += step) {
    const hi = Math.min(N, lo + step),
      w = rows(lo, hi);
    if (form === 'q8') {
      const q = quantizeQ8(w, hi - lo, K);
      data.set(q.data, lo * words);
      scales!.set(q.scales, (lo * K) / Q8_BLOCK);
    } else data.set(form === 'q4k' ? quantizeQ4K(w, hi - lo, K) : quantizeBf16(w, hi - lo, K), lo * words);
  }
  return { kind: form, N, K, data, scales };
}

/** What a matrix's input width must be a multiple of to be stored in `form`. */
function widthUnit(form: WeightKind): number {
  return form === 'q8' ? Q8_BLOCK : form === 'bf16' ? 2 : form === 'q4k' ? Q4K_BLOCK : 1;
}

function isLive(t: Tensor): boolean {
  return !t.isDisposed && !t.storage.gone;
}

/** Give a vacant parameter (loaded undecoded) its float32 values, for a linear that stays float32. */
async function restoreParam(model: CausalLM, name: string, t: Tensor): Promise<void> {
  const p = tensor(await matrixValues(model, name, t), t.shape, { backend: model.backend, requiresGrad: true, name });
  model.params.set(name, p);
}

/** A report in words: "q4k (154 matrices, 5 of them q8), 0.64 GB", "float32" when nothing is quantised. */
export function describeWeights(r: QuantizeReport): string {
  if (r.kind === 'f32') return 'float32';
  const n = r.quantized.length;
  const others = Object.entries(r.forms)
    .filter(([k]) => k !== r.kind)
    .map(([k, v]) => `${v} of them ${k}`);
  const gb = r.bytes / 1e9;
  return `${r.kind} (${n} matri${n === 1 ? 'x' : 'ces'}${others.length ? `, ${others.join(', ')}` : ''}), ${gb >= 0.1 ? `${gb.toFixed(2)} GB` : `${(r.bytes / 1e6).toFixed(1)} MB`}`;
}

/** GGUF types of at most 4.5 bits per weight: a file holding any keeps them as q4k. */
const NARROW_SOURCES = new Set(['Q4_K', 'Q4_0', 'Q4_1', 'Q2_K', 'Q3_K', 'IQ4_NL', 'IQ4_XS']);

/**
 * The form that keeps a model's linears about as its file holds them: 'q4k' when any is of 4.5 bits or fewer
 * (Q4_K_M, Q4_0, Q3_K_M, …: q4k, with q8 for its wider matrices), 'q8' when they are Q5/Q6/Q8 types, 'bf16' when all
 * are BF16 (a GGUF file or a safetensors checkpoint read vacant), and undefined for a float32/float16 file or a model
 * that keeps no file sources.
 */
export function fileQuantization(model: CausalLM): QuantKind | undefined {
  return quantizationOfTypes(linearWeights(model).map(({ name }) => weightSource(model, name)?.type));
}

/**
 * fileQuantization from the types of a file's linear matrices (read from its header, before loading it): GGUF types,
 * or a safetensors checkpoint's dtypes by the same names. 'bf16' when every one is BF16 (a bfloat16 checkpoint runs
 * on exactly its own weights in half float32's memory); undefined for float32 or float16 ones (f16 has three
 * mantissa bits more than bf16: they run as float32).
 */
export function quantizationOfTypes(types: Iterable<string | undefined>): QuantKind | undefined {
  let wide = false,
    bf16 = true,
    any = false;
  for (const t of types) {
    if (t && NARROW_SOURCES.has(t)) return 'q4k';
    if (t && WIDE_SOURCES.has(t)) wide = true;
    if (t !== 'BF16') bf16 = false;
    any = true;
  }
  return wide ? 'q8' : any && bf16 ? 'bf16' : undefined;
}

/** GGUF types of more than 4.5 bits per weight: under q4k their matrices become q8 instead (as Q4_K_M keeps them). */
const WIDE_SOURCES = new Set(['Q5_0', 'Q5_1', 'Q5_K', 'Q6_K', 'Q8_0']);

/** The form of one linear under 'q4k': q4k, or q8 for the output head and for wider GGUF sources and widths. */
function q4kForm(K: number, isHead: boolean, source: string | undefined): WeightKind {
  if (K % Q4K_BLOCK !== 0) return 'q8';
  if (source === 'Q4_K') return 'q4k'; // the file's own blocks, the head included
  if (isHead || (source !== undefined && WIDE_SOURCES.has(source))) return 'q8';
  return 'q4k';
}

/** One linear prepared on the host: [N, K] as q8 (data + scales), q4k or bf16 (data) or f32 (data, [out, in]). */
interface HostQuant {
  kind: WeightKind;
  N: number;
  K: number;
  data: Int32Array | Float32Array;
  scales: Float32Array | null;
}

interface FusionGroup {
  /** The model.fused key. */
  key: string;
  /** Parameter names of the parts, in output order. */
  parts: string[];
}

/** Llama's linears that read the same input, by part name: q/k/v and gate/up of every block. */
function fusionGroups(c: CausalLM['config']): Map<string, FusionGroup> {
  const byPart = new Map<string, FusionGroup>();
  if (c.family !== 'llama') return byPart;
  for (let l = 0; l < c.numLayers; l++) {
    const pre = `model.layers.${l}.`;
    // gate/up fused feed swiglu_fused (SwiGLU) or geglu_fused (Gemma's GeGLU)
    const groups: [string, string[]][] = [['mlp.gate_up', ['mlp.gate_proj', 'mlp.up_proj']]];
    // Qwen3's q and k are normalised per head before RoPE: their projections stay apart (the fused kernel ropes at once)
    // (so are SmolLM3's: the fused kernel ropes every layer, and its NoPE layers rotate nothing)
    if (!c.qkNorm && !c.noRopeLayers?.some(Boolean))
      groups.unshift(['self_attn.qkv', ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj']]);
    for (const [key, parts] of groups) {
      const g = { key: pre + key, parts: parts.map((p) => `${pre}${p}.weight`) };
      for (const p of g.parts) byPart.set(p, g);
    }
  }
  return byPart;
}

/** The parts (quantised on the host, same input width) as one FusedLinear: their rows concatenated, uploaded once. */
async function fused(
  model: CausalLM,
  names: readonly string[],
  hs: readonly HostQuant[],
  upload: (h: HostQuant) => QuantWeight,
): Promise<FusedLinear> {
  const cat = <A extends Int32Array | Float32Array>(arrays: readonly A[], out: A): A => {
    let o = 0;
    for (const a of arrays) out.set(a, o), (o += a.length);
    return out;
  };
  const N = hs.reduce((n, h) => n + h.N, 0);
  const len = hs.reduce((n, h) => n + h.data.length, 0);
  const data = cat(
    hs.map((h) => h.data),
    hs[0]!.data instanceof Float32Array ? new Float32Array(len) : new Int32Array(len), // f32 rows stay float
  );
  const scales = hs[0]!.scales
    ? cat(
        hs.map((h) => h.scales!),
        new Float32Array(hs.reduce((n, h) => n + h.scales!.length, 0)),
      )
    : null;
  // biases (Qwen-style q/k/v biases): concatenated, zeros for a part without one
  const biases = names.map((n) => model.params.get(n.replace(/\.weight$/, '.bias')) ?? null);
  let bias: Tensor | null = null;
  if (biases.some((b) => b)) {
    const host = new Float32Array(N);
    let o = 0;
    for (let i = 0; i < hs.length; i++) {
      if (biases[i]) host.set((await biases[i]!.data()) as Float32Array, o);
      o += hs[i]!.N;
    }
    bias = keep(tensor(host, [N], { backend: model.backend }));
  }
  return {
    weight: upload({ kind: hs[0]!.kind, N, K: hs[0]!.K, data, scales }),
    bias,
    names: [...names],
    sizes: hs.map((h) => h.N),
  };
}

/**
 * Back to float32 linears (frees the quantised weights; needs the float32 parameters: not after dropFloat, nor on a
 * model loaded with vacant linears, whose forward then fails naming the vacant parameter).
 */
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
  model.quantizedEmbedding = false;
}

function transpose(w: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = w[i * c + j]!;
  return out;
}
