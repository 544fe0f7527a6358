/**
 * A linear layer over inference-only weights: y = x·Wᵀ + b with W stored as Q8_0 int8 blocks, Q4_K super-blocks or
 * bfloat16, through the `matmul_q8` / `matmul_q4k` / `matmul_bf16` kernels (src/backend/kernels.ts), or as a float32 copy [out, in] (the float32
 * fused linears of `fuseModel`, src/model/quantize.ts). No gradient: a model that holds such weights refuses
 * training (CausalLM.forward throws QuantizedModelError).
 */
import { ShapeError } from '../util/errors.js';
import { apply } from '../tensor/record.js';
import * as O from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';

export type QuantKind = 'q8' | 'q4k' | 'bf16';
/** How a stored inference weight holds its numbers: quantised, or float32 (a fused copy, not quantised). */
export type WeightKind = QuantKind | 'f32';

/** One stored weight matrix, always [out, in] (GPT-2's Conv1D [in, out] weights are transposed when stored). */
export interface QuantWeight {
  kind: WeightKind;
  /** N: rows of W (output features). */
  outFeatures: number;
  /** K: columns of W (input features). */
  inFeatures: number;
  /** i32 [N, K/4] (q8: four int8 each), [N, K/256·38] (q4k: src/model/q4k.ts) or [N, K/2] (bf16: two each); f32 [N, K] for 'f32'. */
  data: Tensor;
  /** q8: f32 [N, K/32], one scale per block of 32 weights; bf16: null. */
  scales: Tensor | null;
}

/**
 * Linears that read the same input, quantised as one matrix: their weights' rows one after another (Llama's q, k, v
 * projections; its gate and up projections). One kernel then does the work of two or three, reading the input once
 * (decoding runs ~40 small kernels per token, and a bigger one splits across threads). Each output row is computed
 * exactly as in its own matrix, so the parts are bit-identical to the separate linears.
 */
export interface FusedLinear {
  /** The rows of every part, in `names` order. */
  weight: QuantWeight;
  /** The parts' biases concatenated, or null when none has one. */
  bias: Tensor | null;
  /** Parameter names of the parts, e.g. [q_proj.weight, k_proj.weight, v_proj.weight]. */
  names: string[];
  /** Output features of each part. */
  sizes: number[];
}

/**
 * A fused linear's output: x (…, K) → (…, ΣN_i), the parts side by side, read in place by the kernel that takes it
 * (O.ropeQKV for q/k/v, O.swigluFused for gate/up) rather than split.
 */
export function fusedOutput(x: Tensor, f: FusedLinear): Tensor {
  return quantLinear(x, f.weight, f.bias);
}

/** y = x·Wᵀ (+ b) over the last axis of x, W quantised. (…, K) → (…, N) */
export function quantLinear(x: Tensor, w: QuantWeight, b: Tensor | null): Tensor {
  const K = x.shape[x.rank - 1]!,
    N = w.outFeatures;
  if (K !== w.inFeatures)
    throw new ShapeError(`quantLinear: input width ${K} does not match a quantised weight [${N}, ${w.inFeatures}]`);
  if (w.kind === 'f32') return O.linear(x, w.data, b); // [out, in] float32: the ordinary matmul, bias fused
  const x2 = O.reshape(x, [-1, K]); // (M, K)
  const M = x2.shape[0]!;
  let y =
    w.kind === 'q8'
      ? apply('matmul_q8', 'matmul_q8', [x2, w.data, w.scales!], [[M, N]])[0]! // (M, N)
      : w.kind === 'q4k'
        ? apply('matmul_q4k', 'matmul_q4k', [x2, w.data], [[M, N]])[0]!
        : apply('matmul_bf16', 'matmul_bf16', [x2, w.data], [[M, N]])[0]!;
  if (b) y = O.add(y, b);
  return O.reshape(y, [...x.shape.slice(0, -1), N]);
}

/**
 * Rows of a stored table: the token embedding looked up in a quantised matrix W [V, C] (the tied head's, or the
 * embedding's own) through `embedding_q8` / `embedding_q4k` / `embedding_bf16`. ids (…) → (…, C)
 */
export function quantEmbedding(w: QuantWeight, ids: Tensor): Tensor {
  if (w.kind === 'f32') return O.embedding(w.data, ids);
  const out = [...ids.shape, w.inFeatures];
  const f32: ['f32'] = ['f32']; // the tables are i32 words
  if (w.kind === 'q8') return apply('embedding_q8', 'embedding_q8', [w.data, w.scales!, ids], [out], {}, f32)[0]!;
  return w.kind === 'q4k'
    ? apply('embedding_q4k', 'embedding_q4k', [w.data, ids], [out], {}, f32)[0]!
    : apply('embedding_bf16', 'embedding_bf16', [w.data, ids], [out], {}, f32)[0]!;
}
