/**
 * The forward half of the differentiable operations on tensors. Each op checks shapes, allocates its outputs and runs
 * one kernel through `apply`; its gradient rule sits in grad_rules.ts (one table for all ops), which builds gradients
 * from these same ops. Fused ops (layernorm, attention, cross-entropy) have their own kernels and small rules instead
 * of being composed from primitives. Import ./ops.ts, not this file: it registers the rules, so no op runs without them.
 */
import { ShapeError, UnsupportedError } from '../util/errors.js';
import { broadcastShapes, fmtShape, normAxis, shapesEqual, size } from '../util/shape.js';
import { apply, attach } from './record.js';
import { isGradEnabled, noGrad, Tensor, tensor, zeros } from './tensor.js';
import type { Node } from './tensor.js';

// ---------------------------------------------------------------- elementwise

function binary(op: 'add' | 'sub' | 'mul' | 'div', a: Tensor, b: Tensor): Tensor {
  return apply(op, op, [a, b], [broadcastShapes(a.shape, b.shape)])[0]!;
}
/** a + b with broadcasting. */
export function add(a: Tensor, b: Tensor): Tensor {
  return binary('add', a, b);
}
/** a − b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binary('sub', a, b);
}
/** a · b with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binary('mul', a, b);
}
/** a / b with broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  return binary('div', a, b);
}
/** alpha·a + beta. */
export function scale(a: Tensor, alpha: number, beta = 0): Tensor {
  return apply('scale', 'scale', [a], [a.shape], { alpha, beta })[0]!;
}

type UnaryName = 'exp' | 'log' | 'neg' | 'sqrt' | 'rsqrt' | 'square' | 'gelu' | 'silu';
function unary(op: UnaryName, a: Tensor): Tensor {
  return apply(op, op, [a], [a.shape])[0]!;
}
export const exp = (a: Tensor): Tensor => unary('exp', a);
export const log = (a: Tensor): Tensor => unary('log', a);
export const neg = (a: Tensor): Tensor => unary('neg', a);
export const sqrt = (a: Tensor): Tensor => unary('sqrt', a);
export const rsqrt = (a: Tensor): Tensor => unary('rsqrt', a);
export const square = (a: Tensor): Tensor => unary('square', a);
/** GELU, tanh approximation (GPT-2's gelu_new). */
export const gelu = (a: Tensor): Tensor => unary('gelu', a);
/** SiLU (swish): x·σ(x). */
export const silu = (a: Tensor): Tensor => unary('silu', a);

/** silu(gate)·up, the Llama MLP's gated activation, fused. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (!shapesEqual(gate.shape, up.shape))
    throw new ShapeError(`swiglu: gate ${fmtShape(gate.shape)} vs up ${fmtShape(up.shape)}`);
  return apply('swiglu', 'swiglu', [gate, up], [gate.shape])[0]!;
}

/** swiglu over a fused gate/up output: gu (…, 2F) → silu(gu[…, :F])·gu[…, F:] (…, F), with no split. */
export function swigluFused(gu: Tensor): Tensor {
  return gatedFused('swiglu_fused', 'swigluFused', gu);
}

/** GeGLU over a fused gate/up output (Gemma): gu (…, 2F) → gelu(gu[…, :F])·gu[…, F:] (…, F), with no split. */
export function gegluFused(gu: Tensor): Tensor {
  return gatedFused('geglu_fused', 'gegluFused', gu);
}

function gatedFused(op: 'swiglu_fused' | 'geglu_fused', fn: string, gu: Tensor): Tensor {
  const W = gu.shape[gu.rank - 1];
  if (W === undefined || W % 2 !== 0)
    throw new ShapeError(`${fn}: expected gate and up side by side [..., 2·F], got ${fmtShape(gu.shape)}`);
  return apply(op, op, [gu], [[...gu.shape.slice(0, -1), W / 2]])[0]!;
}

// ---------------------------------------------------------------- reductions

/** Sum onto `shape` (same rank; each axis equal or 1). The gradient of broadcasting. */
export function sumTo(a: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(a.shape, shape)) return a;
  // align ranks: reduce leading axes, then reshape
  const r = a.rank;
  const padded = [...new Array<number>(r - shape.length).fill(1), ...shape];
  padded.forEach((d, k) => {
    if (d !== 1 && d !== a.shape[k])
      throw new ShapeError(`sumTo: cannot reduce ${fmtShape(a.shape)} to ${fmtShape(shape)}`);
  });
  const s = apply('sum_to', 'sum_to', [a], [padded])[0]!;
  return padded.length === shape.length ? s : reshape(s, shape);
}

/** Sum over axes (all by default). */
export function sum(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax =
    axes === undefined
      ? a.shape.map((_, i) => i)
      : (typeof axes === 'number' ? [axes] : axes).map((x) => normAxis(x, a.rank));
  const kept = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const s = sumTo(a, kept);
  return keepDims
    ? s
    : reshape(
        s,
        a.shape.filter((_, i) => !ax.includes(i)),
      );
}

/** Mean over axes (all by default). */
export function mean(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const s = sum(a, axes, keepDims);
  return scale(s, s.size / a.size);
}

/**
 * Σ a² over every element of every given tensor, as a one-element tensor, in one kernel (not differentiable: used
 * for the global gradient norm).
 */
export function sumSquares(a: Tensor | readonly Tensor[]): Tensor {
  const xs = a instanceof Tensor ? [a] : a;
  if (xs.length === 0) throw new ShapeError('sumSquares: no tensors given');
  return apply('sumsq', 'sumsq', xs, [[1]])[0]!;
}

// ---------------------------------------------------------------- shape and data movement

/** Same data, new shape (no copy; one axis may be -1). */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const n = a.size;
  const known = shape.filter((d) => d !== -1).reduce((x, y) => x * y, 1);
  const s = shape.map((d) => (d === -1 ? n / known : d));
  if (size(s) !== n || s.some((d) => !Number.isInteger(d) || d < 0))
    throw new ShapeError(`reshape: cannot view ${fmtShape(a.shape)} as ${fmtShape(shape)}`);
  const out = new Tensor(a.storage, s);
  return attach(out, 'reshape', [a], (dy) => [reshape(dy, a.shape)]);
}

/** Permute axes: out.shape[k] = a.shape[perm[k]]. */
export function transpose(a: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== a.rank || [...perm].sort().some((p, i) => p !== i))
    throw new ShapeError(`transpose: bad permutation [${perm}] for rank ${a.rank}`);
  return apply('transpose', 'transpose', [a], [perm.map((p) => a.shape[p]!)], { perm })[0]!;
}

/** a[begin : begin + sizes] along every axis. */
export function slice(a: Tensor, begin: readonly number[], sizes: readonly number[]): Tensor {
  if (begin.length !== a.rank || sizes.length !== a.rank || begin.some((b, k) => b < 0 || b + sizes[k]! > a.shape[k]!))
    throw new ShapeError(`slice: begin [${begin}] size [${sizes}] outside ${fmtShape(a.shape)}`);
  return apply('slice', 'slice', [a], [sizes], { begin })[0]!;
}

/**
 * Split along an axis into pieces of the given sizes. One autograd node serves all pieces, so the backward pass is
 * a single concatenation of their gradients (zeros for a piece that got none), not a zero-padded copy per piece.
 */
export function split(a: Tensor, sizes: readonly number[], axis = -1): Tensor[] {
  const ax = normAxis(axis, a.rank);
  if (sizes.reduce((x, y) => x + y, 0) !== a.shape[ax])
    throw new ShapeError(`split: sizes [${sizes}] do not add up to axis ${ax} of ${fmtShape(a.shape)}`);
  let pos = 0;
  const parts = noGrad(() =>
    sizes.map((n) => {
      const begin = a.shape.map((_, k) => (k === ax ? pos : 0));
      const sz = a.shape.map((d, k) => (k === ax ? n : d));
      pos += n;
      return slice(a, begin, sz);
    }),
  );
  if (isGradEnabled() && a.requiresGrad) {
    const node: Node = {
      op: 'split',
      inputs: [a],
      outputs: parts,
      backward: () => {
        throw new Error('split: backwardMulti is used');
      },
      backwardMulti: (dys) => [
        concat(
          dys.map((d, i) => d ?? zeros(parts[i]!.shape, { backend: a.backend, dtype: a.dtype })),
          ax,
        ),
      ],
    };
    for (const p of parts) {
      p.node = node;
      p.requiresGrad = true;
    }
  }
  return parts;
}

/** Concatenate along an axis. */
export function concat(xs: readonly Tensor[], axis = -1): Tensor {
  const a = xs[0]!;
  const ax = normAxis(axis, a.rank);
  for (const x of xs) {
    if (x.rank !== a.rank || x.shape.some((d, k) => k !== ax && d !== a.shape[k]))
      throw new ShapeError(`concat: ${fmtShape(x.shape)} does not fit ${fmtShape(a.shape)} along axis ${ax}`);
  }
  const shape = a.shape.map((d, k) => (k === ax ? xs.reduce((s, x) => s + x.shape[ax]!, 0) : d));
  return apply('concat', 'concat', xs, [shape], { axis: ax })[0]!;
}

// ---------------------------------------------------------------- linear algebra

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Added to every row of the product ([N]): fused into the kernel (a linear layer's bias). */
  bias?: Tensor | null;
}

/**
 * Batched matrix product. a: [..., M, K] ([..., K, M] if transA); b: [..., K, N] ([..., N, K] if transB) or a
 * 2-D matrix shared across the batch. Returns [..., M, N].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false,
    transB = opts.transB ?? false;
  if (a.rank < 2 || b.rank < 2)
    throw new ShapeError(`matmul: needs rank ≥ 2, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const M = transA ? ac : ar,
    K = transA ? ar : ac;
  const Kb = transB ? bc : br,
    N = transB ? br : bc;
  if (K !== Kb)
    throw new ShapeError(
      `matmul: inner sizes differ: ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} · ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`,
    );
  const batchA = a.shape.slice(0, -2),
    batchB = b.shape.slice(0, -2);
  const nA = size(batchA),
    nB = size(batchB);
  let batch: readonly number[];
  if (nB === 1) batch = batchA;
  else if (nA === 1) batch = batchB;
  else if (shapesEqual(batchA, batchB)) batch = batchA;
  else throw new ShapeError(`matmul: batch axes ${fmtShape(batchA)} and ${fmtShape(batchB)} differ`);
  const bias = opts.bias ?? null;
  if (bias && bias.size !== N) throw new ShapeError(`matmul: bias ${fmtShape(bias.shape)} for ${N} output columns`);
  return apply('matmul', 'matmul', bias ? [a, b, bias] : [a, b], [[...batch, M, N]], { transA, transB })[0]!;
}

/**
 * A linear layer y = x·Wᵀ + b over the last axis. `layout` says how W is stored: 'out_in' ([out, in], PyTorch
 * nn.Linear) or 'in_out' ([in, out], GPT-2's Conv1D), so checkpoints keep their own layout with no copies.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null, layout: 'out_in' | 'in_out' = 'out_in'): Tensor {
  const inF = x.shape[x.rank - 1]!;
  const [w0, w1] = w.shape as [number, number];
  const outF = layout === 'out_in' ? w0 : w1;
  if ((layout === 'out_in' ? w1 : w0) !== inF)
    throw new ShapeError(`linear: input width ${inF} does not match weight ${fmtShape(w.shape)} (${layout})`);
  const x2 = reshape(x, [-1, inF]); // (N, in)
  const y = matmul(x2, w, { transB: layout === 'out_in', bias: b }); // (N, out), bias added in the kernel
  return reshape(y, [...x.shape.slice(0, -1), outF]);
}

// ---------------------------------------------------------------- Transformer layers

/** Rows of `weight` [V, C] for integer ids of any shape → [...ids.shape, C]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new ShapeError('embedding: ids must be an i32 tensor');
  return apply('embedding', 'embedding', [weight, ids], [[...ids.shape, weight.shape[1]!]])[0]!;
}

/** LayerNorm over the last axis. */
export function layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const C = x.shape[x.rank - 1]!;
  if (w.size !== C || b.size !== C)
    throw new ShapeError(`layerNorm: weight/bias of ${w.size}/${b.size} for width ${C}`);
  // x keeps its shape (the kernel treats the leading axes as rows), so x's gradient lands on x itself and a
  // residual stream's two gradients can be summed in place (layernorm_backward accumulate)
  const rows = x.shape.slice(0, -1);
  return apply('layernorm', 'layernorm', [x, w, b], [x.shape, rows, rows], { eps })[0]!;
}

/** RMSNorm over the last axis (Llama). */
export function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const C = x.shape[x.rank - 1]!;
  if (w.size !== C) throw new ShapeError(`rmsNorm: weight of ${w.size} for width ${C}`);
  return apply('rmsnorm', 'rmsnorm', [x, w], [x.shape, x.shape.slice(0, -1)], { eps })[0]!;
}

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  return apply('softmax', 'softmax', [x], [x.shape])[0]!;
}

/**
 * A rope call's frequencies: the base θ (inv_freq[i] = θ^(−2i/D)), or θ with the D/2 inverse frequencies of a scaled
 * RoPE (Llama 3's llama3 scaling, linear scaling, a GGUF's rope_freqs: src/model/rope.ts computes them).
 */
export type RopeFreqs = number | { readonly theta: number; readonly invFreq?: readonly number[] };

/** The kernel attrs of a RopeFreqs. */
export function ropeFreqAttrs(f: RopeFreqs): { theta: number; invFreq?: readonly number[] } {
  if (typeof f === 'number') return { theta: f };
  return f.invFreq ? { theta: f.theta, invFreq: f.invFreq } : { theta: f.theta };
}

/**
 * Rotary embedding of x [B, T, H, D] at positions offset + t (Hugging Face "rotate half" layout); with `rowStart`
 * (left-padded rows of a ragged batch) row b's positions count from its first real token: max(0, offset + t −
 * rowStart[b]).
 */
export function rope(x: Tensor, freqs: RopeFreqs, offset = 0, rowStart?: readonly number[]): Tensor {
  if (x.rank !== 4 || x.shape[3]! % 2 !== 0)
    throw new ShapeError(`rope: expects [B, T, H, D] with even D, got ${fmtShape(x.shape)}`);
  return apply('rope', 'rope', [x], [x.shape], {
    ...ropeFreqAttrs(freqs),
    offset,
    inverse: false,
    ...(rowStart ? { rowStart } : {}),
  })[0]!;
}

/**
 * A fused q/k/v projection (B, T, (H + 2·Hkv)·D) → q (B, T, H, D) and k (B, T, Hkv, D) rotated as `rope` does, and
 * v (B, T, Hkv, D): one `rope_qkv` kernel instead of three slices and two ropes. When gradients are being recorded it
 * takes that composed path instead (split, reshape, rope: each op with its gradient rule), with the same values.
 */
export function ropeQKV(
  qkv: Tensor,
  H: number,
  Hkv: number,
  freqs: RopeFreqs,
  offset = 0,
  rowStart?: readonly number[],
): [Tensor, Tensor, Tensor] {
  const [B, T, W] = qkv.shape as [number, number, number];
  const D = W / (H + 2 * Hkv);
  if (qkv.rank !== 3 || !Number.isInteger(D) || D % 2 !== 0)
    throw new ShapeError(`ropeQKV: expects [B, T, (${H} + 2·${Hkv})·D] with an even D, got ${fmtShape(qkv.shape)}`);
  if (isGradEnabled() && qkv.requiresGrad) {
    const [q, k, v] = split(qkv, [H * D, Hkv * D, Hkv * D], -1);
    return [
      rope(reshape(q!, [B, T, H, D]), freqs, offset, rowStart),
      rope(reshape(k!, [B, T, Hkv, D]), freqs, offset, rowStart),
      reshape(v!, [B, T, Hkv, D]),
    ];
  }
  const attrs = { heads: H, kvHeads: Hkv, ...ropeFreqAttrs(freqs), offset, ...(rowStart ? { rowStart } : {}) };
  const shapes = [H, Hkv, Hkv].map((h) => [B, T, h, D]);
  return apply('rope_qkv', 'rope_qkv', [qkv], shapes, attrs) as [Tensor, Tensor, Tensor];
}

/**
 * Attention probabilities up to this many (B·H·T·S, float32: 16 MiB) are kept from the forward pass for the backward
 * (which then skips recomputing q·kᵀ and its exp); longer sequences recompute them, never holding a T×S matrix.
 */
export const KEEP_PROBS_MAX = 1 << 22;

/** Whether an attention forward keeps its probabilities: only when a gradient will be taken, and short enough. */
function keepProbs(inputs: readonly Tensor[], n: number): boolean {
  return isGradEnabled() && inputs.some((t) => t.requiresGrad) && n <= KEEP_PROBS_MAX;
}

export interface AttentionOptions {
  /** Score scale, default 1/√D. */
  scale?: number;
  causal?: boolean;
  /** Position of query row 0 among the keys (default S − T: queries are the last T positions). */
  qOffset?: number;
  /**
   * Sliding-window attention (Mistral's, Gemma's local layers): a query sees no key more than window − 1 positions
   * before its own. Absent or 0: every earlier key.
   */
  window?: number;
  /**
   * Left-padded rows of a ragged batch: row b ignores the keys before rowStart[b] (its padding). Inference only
   * (no gradient through it, and no captured probabilities).
   */
  rowStart?: readonly number[];
  /**
   * Receives the attention probabilities p [B, Hq, T, S] (softmax(scale·q·kᵀ), 0 at masked keys): the kernel's optional
   * output, written only when asked (model inspection), so the ordinary forward never materialises a T×S matrix.
   */
  probs?: (p: Tensor) => void;
}

/**
 * Fused multi-head causal self-attention with grouped-query heads.
 * q [B, T, Hq, D], k/v [B, S, Hkv, D] → [B, T, Hq, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const [B, T, Hq, D] = q.shape as [number, number, number, number];
  const [Bk, S, Hkv, Dk] = k.shape as [number, number, number, number];
  if (q.rank !== 4 || k.rank !== 4 || !shapesEqual(k.shape, v.shape) || B !== Bk || D !== Dk || Hq % Hkv !== 0)
    throw new ShapeError(
      `attention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} do not fit`,
    );
  const attrs = {
    scale: opts.scale ?? 1 / Math.sqrt(D),
    causal: opts.causal ?? true,
    qOffset: opts.qOffset ?? S - T,
    ...(opts.window ? { window: opts.window } : {}),
    ...(opts.rowStart ? { rowStart: opts.rowStart } : {}),
  };
  if (opts.rowStart) {
    if (isGradEnabled() && [q, k, v].some((t) => t.requiresGrad))
      throw new UnsupportedError('attention: padded rows (rowStart) are inference only; wrap the forward in noGrad');
    if (opts.probs) throw new UnsupportedError('attention: padded rows (rowStart) cannot capture probabilities');
    return apply('attention', 'attention', [q, k, v], [q.shape, [B, Hq, T]], attrs)[0]!;
  }
  const keep = opts.probs !== undefined || keepProbs([q, k, v], B * Hq * T * S);
  const out = apply(
    'attention',
    'attention',
    [q, k, v],
    [q.shape, [B, Hq, T], ...(keep ? [[B, Hq, T, S]] : [])],
    attrs,
  );
  opts.probs?.(out[2]!);
  return out[0]!;
}

/**
 * Causal self-attention straight from a fused projection qkv [B, T, (H + 2·Hkv)·D] (GPT-2's c_attn output: q, k, v
 * side by side on the last axis) → [B, T, H, D]. Same as splitting qkv and calling `attention`, without the copies:
 * the kernel reads q, k, v in place and its backward writes dq, dk, dv into one dqkv of qkv's shape.
 */
export function attentionQKV(
  qkv: Tensor,
  heads: number,
  kvHeads = heads,
  opts: Omit<AttentionOptions, 'qOffset' | 'window'> = {},
): Tensor {
  const [B, T, W] = qkv.shape as [number, number, number];
  const D = W / (heads + 2 * kvHeads);
  if (
    qkv.rank !== 3 ||
    !Number.isInteger(heads) ||
    !Number.isInteger(kvHeads) ||
    heads < 1 ||
    kvHeads < 1 ||
    heads % kvHeads !== 0 ||
    !Number.isInteger(D) ||
    D < 1
  )
    throw new ShapeError(
      `attentionQKV: qkv ${fmtShape(qkv.shape)} is not [B, T, (heads + 2·kvHeads)·D] for heads ${heads}, kvHeads ${kvHeads}`,
    );
  const attrs = { heads, kvHeads, scale: opts.scale ?? 1 / Math.sqrt(D), causal: opts.causal ?? true, qOffset: 0 };
  const keep = opts.probs !== undefined || keepProbs([qkv], B * heads * T * T);
  const out = apply(
    'attention_qkv',
    'attention_qkv',
    [qkv],
    [[B, T, heads, D], [B, heads, T], ...(keep ? [[B, heads, T, T]] : [])],
    attrs,
  );
  opts.probs?.(out[2]!);
  return out[0]!;
}

/**
 * Per-row softmax cross-entropy: logits [N, V], targets i32 [N] → loss [N] (0 where target = ignoreIndex).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  ignoreIndex = -100,
  opts: { gradInPlace?: boolean } = {},
): Tensor {
  const V = logits.shape[logits.rank - 1]!;
  const N = logits.size / V;
  if (targets.size !== N || targets.dtype !== 'i32')
    throw new ShapeError(`crossEntropy: ${N} rows of logits but targets ${fmtShape(targets.shape)} (${targets.dtype})`);
  // gradInPlace: the backward writes dlogits over the logits (their memory handed over, takeData): for a caller
  // whose logits nothing else reads once the loss has them (the causal LM's loss), one B·T·V buffer fewer
  const op = opts.gradInPlace ? 'cross_entropy_over_logits' : 'cross_entropy';
  return apply(op, 'cross_entropy', [reshape(logits, [N, V]), reshape(targets, [N])], [[N], [N]], {
    ignoreIndex,
  })[0]!;
}

/** Inverted dropout with a counter-based mask: the same (seed, p) drops the same elements on every backend. */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new ShapeError(`dropout: p must be < 1, got ${p}`);
  return apply('dropout', 'dropout', [x], [x.shape], { p, seed: seed >>> 0 })[0]!;
}

/** An i32 tensor of ids on the backend of `like`. */
export function ids(data: Int32Array | readonly number[], shape: readonly number[], like?: Tensor): Tensor {
  return tensor(data instanceof Int32Array ? data : Int32Array.from(data), shape, {
    dtype: 'i32',
    ...(like ? { backend: like.backend } : {}),
  });
}
