/**
 * A model (llama.cpp architectures llama, qwen2, gpt2) from a parsed GGUF file, and the tensors and hyper-parameters of a GGUF file from a model. No file access
 * (./file.ts reads and writes files), so this runs in a browser too.
 *
 *   modelFromGguf(parseGguf(bytes))                    → CausalLM (tensors decoded to float32, layouts undone)
 *   ggufFromModel(model, { type: 'q8_0', metadata })  → the chunks of a GGUF file llama.cpp loads
 *
 * Types written, as convert_hf_to_gguf.py's --outtype: vectors (norms, biases) always F32; matrices in the chosen type
 * ('f32', 'f16', 'q8_0'; a Q8_0 matrix whose rows are not a multiple of 32 falls back to F16). A model read from
 * GGUF remembers each tensor's type, and `type: 'source'` writes each back as it was read, so GGUF → llm.ts → GGUF
 * gives back the same tensor bytes (F32, F16, BF16 and Q8_0: Q8_0 re-quantises to the same blocks).
 */
import type { Backend } from '../../backend/backend.js';
import { FileFormatError, UnsupportedError } from '../../util/errors.js';
import {
  decodeGgufTensor,
  ggufTensorBytes,
  serializeGguf,
  type GgufFile,
  type GgufTensorInfo,
  type GgufTensorToWrite,
  type GgufValue,
} from '../../formats/gguf.js';
import {
  decodeGgml,
  encodeGgml,
  ggmlBlockSize,
  ggmlByteLength,
  type GgmlType,
  type GgmlWriteType,
} from '../../formats/gguf_types.js';
import type { SafetensorsDtype, StoredTensor } from '../../formats/safetensors_bytes.js';
import type { CausalLM } from '../model.js';
import { modelFromHf } from '../hf/weights.js';
import { FILE_TYPE, hparamsFromGguf, hparamsToGguf } from './hparams.js';
import { ggufArchitecture, ggufShape, type Layout, missingTensor, relayout, tensorMappings } from './tensors.js';
import { llama3FromFactors, ropeFactors, ropeScalingProblem } from '../rope.js';
import {
  matrixValues,
  finiteSource,
  releaseWeightSource,
  sourceFormat,
  undecodedMatrix,
  type WeightSource,
  weightSource,
  setWeightSources,
} from '../weight_source.js';

/** The matrix type of an export: `--type` of `llmts export`. 'source': each tensor as the GGUF it came from. */
export type GgufExportType = 'f32' | 'f16' | 'q8_0' | 'q4_k' | 'source';
export const GGUF_EXPORT_TYPES: readonly GgufExportType[] = ['f32', 'f16', 'q8_0', 'q4_k', 'source'];

/**
 * A Q4_K matrix's blocks in the model's row order: rows are whole blocks (256 | in), so Llama's RoPE row permutation
 * moves rows of bytes; a transposed layout (GPT-2's Conv1D) cannot keep them (undefined).
 */
function q4kRows(g: GgufFile, t: GgufTensorInfo, layout: Layout): (() => Uint8Array) | undefined {
  if (t.type !== 'Q4_K' || t.shape.length !== 2 || t.shape[1]! % 256 !== 0) return undefined;
  if (layout.kind !== 'same' && layout.kind !== 'rope') return undefined;
  return () => permuteQ4KRows(ggufTensorBytes(g, t), t.shape as [number, number], layout);
}

/** Rows [lo, hi) of a matrix the model keeps in the file's layout, decoded alone (rows of whole blocks). */
function rowDecoder(g: GgufFile, t: GgufTensorInfo, layout: Layout): WeightSource['rows'] {
  const type = t.type;
  if (!type || layout.kind !== 'same' || t.shape.length !== 2 || t.shape[1]! % ggmlBlockSize(type) !== 0)
    return undefined;
  const K = t.shape[1]!,
    rowBytes = ggmlByteLength(type, K);
  return (lo, hi) =>
    decodeGgml(type, ggufTensorBytes(g, t).subarray(lo * rowBytes, hi * rowBytes), (hi - lo) * K, g.file, t.name);
}

function permuteQ4KRows(raw: Uint8Array, [N, K]: [number, number], layout: Layout): Uint8Array {
  if (layout.kind === 'same') return raw;
  const rowBytes = (K / 256) * 144;
  const order = relayout(
    Float32Array.from({ length: N }, (_, i) => i),
    [N, 1],
    layout,
    false,
  ); // ours ← theirs
  const out = new Uint8Array(raw.length);
  for (let r = 0; r < N; r++) out.set(raw.subarray(order[r]! * rowBytes, (order[r]! + 1) * rowBytes), r * rowBytes);
  return out;
}

/** llama.cpp's per-frequency RoPE divisors (LLM_TENSOR_ROPE_FREQS). */
const ROPE_FREQS = 'rope_freqs.weight';

export interface FromGgufOptions {
  backend?: Backend;
  /**
   * Leave the linear weights and the token embedding (every matrix but GPT-2's position table) undecoded: their
   * parameters are vacant (they hold no memory and refuse reads) and the file's bytes stay in the model's GGUF
   * sources (../weight_source.ts), for quantizeModel to store them quantised one matrix at a time (an embedding whose lookup
   * it leaves float32 gets its values back). A model that would not fit in memory as float32 (a 1B+ Q4_K_M file
   * is 4+ GB of float32, past WebAssembly's 4 GiB) then loads; it must be quantised before it runs.
   */
  vacantLinears?: boolean;
}

/** A CausalLM from a parsed GGUF file (llama or gpt2 architecture). */
export function modelFromGguf(g: GgufFile, opts: FromGgufOptions = {}): CausalLM {
  const byName = new Map(g.tensors.map((t) => [t.name, t]));
  const embd = byName.get('token_embd.weight');
  if (!embd) throw missingTensor(g.file, 'token_embd.weight', String(g.metadata.get('general.architecture')?.value));
  const cfg = hparamsFromGguf(g.metadata, g.file, new Set(byName.keys()), embd.shape[0]!);
  const stored = new Map<string, StoredTensor>();
  const sources = new Map<string, WeightSource>();
  const vacant = new Set<string>();
  const used = new Set<string>();
  const freqs = byName.get(ROPE_FREQS);
  if (freqs) {
    // llama.cpp's divisors of each RoPE frequency (a llama3-scaled model): the llama3 parameters when they fit
    used.add(ROPE_FREQS);
    const factors = Array.from(decodeGgufTensor(g, freqs));
    if (cfg.family !== 'llama' || factors.length !== cfg.headDim / 2)
      throw new FileFormatError(
        'E_TENSOR_SHAPE',
        g.file,
        `expected ${cfg.headDim / 2} RoPE divisors, got [${freqs.shape}]`,
        ROPE_FREQS,
      );
    if (cfg.ropeScaling)
      throw new UnsupportedError(`${g.file}: both ${ROPE_FREQS} and rope.scaling.type (two scalings)`);
    const problem = ropeScalingProblem({ type: 'factors', factors }, cfg.headDim);
    if (problem) throw new FileFormatError('E_TENSOR_VALUES', g.file, problem, ROPE_FREQS);
    cfg.ropeScaling = llama3FromFactors(factors, cfg.ropeTheta, cfg.headDim) ?? { type: 'factors', factors };
  }
  for (const m of tensorMappings(cfg)) {
    const t = byName.get(m.gguf);
    if (!t) throw missingTensor(g.file, m.gguf, cfg.family);
    used.add(m.gguf);
    // the parameter's shape is checked by modelFromHf; here only that the GGUF shape is the one it implies
    const shape = m.layout.kind === 'transpose' ? [t.shape[1]!, t.shape[0]!] : t.shape;
    if (m.layout.kind === 'rope' && t.shape[0]! % (m.layout.heads * 2) !== 0)
      throw new FileFormatError('E_TENSOR_SHAPE', g.file, `${t.shape[0]} rows for ${m.layout.heads} heads`, m.gguf);
    if (m.layout.kind === 'transpose' && t.shape.length !== 2)
      throw new FileFormatError('E_TENSOR_SHAPE', g.file, `expected a matrix, got [${t.shape}]`, m.gguf);
    const decode = () => relayout(decodeGgufTensor(g, t), shape, m.layout, false);
    const q4k = q4kRows(g, t, m.layout);
    if (!t.type) decodeGgufTensor(g, t); // an unsupported type: its named error now, not at quantisation
    const rows = rowDecoder(g, t, m.layout);
    sources.set(
      m.hf,
      finiteSource(
        { type: t.type!, raw: () => ggufTensorBytes(g, t), decode, ...(q4k ? { q4k } : {}), ...(rows ? { rows } : {}) },
        g.file,
        m.gguf,
      ),
    );
    const dtype: SafetensorsDtype = t.type === 'F16' ? 'F16' : t.type === 'BF16' ? 'BF16' : 'F32';
    if (opts.vacantLinears && undecodedMatrix(m.hf, shape)) {
      vacant.add(m.hf);
      stored.set(m.hf, { dtype, shape, data: EMPTY, raw: new Uint8Array(0) });
      continue;
    }
    const values = decode();
    stored.set(m.hf, { dtype, shape, data: values, raw: new Uint8Array(values.buffer) });
  }
  const extra = g.tensors.filter((t) => !used.has(t.name)).map((t) => t.name);
  if (extra.length)
    throw new FileFormatError(
      'E_UNKNOWN_TENSOR',
      g.file,
      `tensors a ${cfg.family} model of these hyper-parameters does not use: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`,
    );
  const model = modelFromHf(cfg, stored, {
    source: g.file,
    gainsHeld: true, // llama.cpp's converter stored Gemma's gains with the 1 added
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(vacant.size ? { vacant } : {}),
  });
  setWeightSources(model, sources, 'gguf');
  return model;
}

const EMPTY = new Float32Array(0);

export interface ToGgufOptions {
  type: GgufExportType;
  /** More metadata (general.name, the tokenizer's keys from tokenizerToGguf, …), written after the hyper-parameters. */
  metadata?: ReadonlyMap<string, GgufValue>;
}

/** The chunks of a GGUF file holding `model` (its hyper-parameters, tensors, and `opts.metadata`). */
export async function ggufFromModel(model: CausalLM, opts: ToGgufOptions): Promise<Uint8Array[]> {
  const c = model.config;
  if (c.family === 'llama' && !c.attentionBias && c.attentionOutBias)
    throw new UnsupportedError('a Llama-family model with an o_proj bias and no q/k/v biases has no llama.cpp layout');
  if (ggufArchitecture(c) === 'qwen3' && (c.attentionBias || c.mlpBias))
    throw new UnsupportedError('a Qwen3 model with attention biases has no llama.cpp layout (its qwen3 reads none)');
  if (ggufArchitecture(c) === 'qwen2' && c.mlpBias)
    throw new UnsupportedError('a Qwen2 model with MLP biases has no llama.cpp layout (its qwen2 reads none)');
  const src = sourceFormat(model) === 'gguf';
  if (opts.type === 'source' && !src)
    throw new UnsupportedError("type 'source' needs a model read from a GGUF file (use f32, f16 or q8_0)");
  const tensors: GgufTensorToWrite[] = [];
  const matrixTypes = new Set<GgmlType>();
  const head = c.tieWordEmbeddings ? 'token_embd.weight' : 'output.weight';
  for (const m of tensorMappings(c)) {
    const p = model.params.get(m.hf);
    if (!p) throw new UnsupportedError(`the model has no parameter '${m.hf}' (quantised? export before --quantize)`);
    const shape = ggufShape(p.shape, m.layout);
    const values = async () => relayout(await matrixValues(model, m.hf, p), p.shape, m.layout, true);
    let type: GgmlWriteType;
    if (opts.type === 'source') {
      const source = weightSource(model, m.hf)!;
      const t = source.type;
      if (t === 'Q4_K' && source.raw) {
        // the file's own blocks, as they were
        matrixTypes.add('Q4_K');
        tensors.push({ name: m.gguf, shape, type: 'Q4_K', raw: source.raw() });
        continue;
      }
      if (t !== 'F32' && t !== 'F16' && t !== 'BF16' && t !== 'Q8_0')
        throw new UnsupportedError(`'${m.hf}' was read as ${t}, which is not written (F32, F16, BF16, Q8_0, Q4_K are)`);
      type = t;
    } else if (shape.length === 1) type = 'F32';
    else if (opts.type === 'q4_k')
      // as llama.cpp's Q4_K_M: the output head with more bits (Q8_0 here: Q6_K is not written)
      type = m.gguf === head ? 'Q8_0' : 'Q4_K';
    else type = opts.type === 'f32' ? 'F32' : opts.type === 'f16' ? 'F16' : 'Q8_0';
    if (type === 'Q4_K' && shape[shape.length - 1]! % ggmlBlockSize('Q4_K') !== 0) type = 'Q8_0';
    if (type === 'Q8_0' && shape[shape.length - 1]! % ggmlBlockSize('Q8_0') !== 0) type = 'F16';
    if (shape.length > 1) matrixTypes.add(type);
    tensors.push({ name: m.gguf, shape, type, raw: encodeGgml(type, await values()) });
    if (p.storage.gone === 'vacant') releaseWeightSource(model, m.hf); // written: its file bytes can go
  }
  const factors = ropeFactors(c);
  if (factors) {
    if (ggufArchitecture(c) !== 'llama')
      throw new UnsupportedError(
        `a ${c.ropeScaling!.type}-scaled RoPE is written as ${ROPE_FREQS}, which only llama.cpp's llama architecture reads (this model is its ${ggufArchitecture(c)})`,
      );
    tensors.push({ name: ROPE_FREQS, shape: [factors.length], type: 'F32', raw: encodeGgml('F32', factors) });
  }
  const meta = hparamsToGguf(c);
  const only = matrixTypes.has('Q4_K')
    ? 'Q4_K'
    : matrixTypes.size === 1
      ? [...matrixTypes][0]!
      : matrixTypes.has('Q8_0')
        ? 'Q8_0'
        : 'F16';
  meta.set('general.file_type', { type: 'u32', value: FILE_TYPE[only as keyof typeof FILE_TYPE] ?? 1 });
  if (only === 'Q8_0' || only === 'Q4_K') meta.set('general.quantization_version', { type: 'u32', value: 2 });
  for (const [k, v] of opts.metadata ?? []) meta.set(k, v);
  return serializeGguf(meta, tensors);
}
