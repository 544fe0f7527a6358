/**
 * Elementwise WGSL kernels (../kernels.ts): fill, copy (with casts), scale, the unary maps, the broadcasting binary
 * ops (add/sub/mul/div, gelu_backward, silu_backward, swiglu), swiglu_backward, swiglu_fused, and the index kernels transpose and
 * sum_to. One thread per output element on a 2-D grid of 256-thread workgroups (./core.ts `grid`); sum_to over
 * many leading rows onto the trailing axes (a bias's gradient) is ./colsum.ts's two-pass column sum.
 * Broadcasting: out's shape and each input's strides along out's axes (0 where broadcast), up to MAX_RANK axes.
 */
import type { Attrs } from '../backend.js';
import { size } from '../../util/shape.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage, wgslType } from './core.js';
import { CHUNK, columnSums } from './colsum.js';
import type { KView } from './kview.js';
import { wgsl } from './wgsl_memo.js';

export const MAX_RANK = 6;

/** WGSL bodies of the unary maps, in x. tanh's argument is clamped: tanh(u) for large |u| overflows in some drivers. */
const UNARY: Record<string, string> = {
  exp: 'exp(x)',
  log: 'log(x)',
  neg: '-x',
  sqrt: 'sqrt(x)',
  rsqrt: '1.0 / sqrt(x)',
  square: 'x * x',
  gelu: '0.5 * x * (1.0 + tanh(clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0)))',
  silu: 'x / (1.0 + exp(-x))',
};

/** WGSL helpers the binary bodies use. */
const HELPERS = `
fn sigm(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn gelu_grad(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let t = tanh(clamp(u, -15.0, 15.0));
  let du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}
fn silu_grad(x: f32) -> f32 { let s = sigm(x); return s * (1.0 + x * (1.0 - s)); }
`;

/** Broadcasting binary bodies, in a and b. */
const BINARY: Record<string, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  gelu_backward: 'b * gelu_grad(a)',
  silu_backward: 'b * silu_grad(a)',
  swiglu: 'a * sigm(a) * b',
};

export const ELEMENTWISE_KERNELS = [
  'fill',
  'copy',
  'scale',
  ...Object.keys(UNARY),
  ...Object.keys(BINARY),
  'swiglu_backward',
  'swiglu_fused',
  'geglu_fused',
  'transpose',
  'sum_to',
  'dropout',
] as const;

function elementGroups(n: number): number[] {
  return grid(Math.ceil(n / WG));
}

const INDEX = `${FLAT_GROUP}\n  let i = grp * ${WG}u + lid;`;

export function runElementwise(
  ctx: GpuContext,
  name: string,
  ins: readonly KView[],
  outs: readonly KView[],
  a: Attrs,
): void {
  const out = outs[0]!,
    n = size(out.shape);
  if (n === 0) return;
  if (name === 'fill') {
    const t = wgslType(out.b.dtype);
    const p = new Params().u32(n);
    if (t === 'i32') p.i32(a['value'] as number);
    else p.f32(a['value'] as number);
    const code = wgsl(
      `fill:${t}`,
      () => `${storage(1, 'y', t, true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  y[i] = ${t === 'i32' ? 'pi(1u)' : 'pf(1u)'};
}`,
    );
    ctx.dispatch(code, p, [out.b.gpu], elementGroups(n));
    return;
  }
  if (name === 'copy') {
    const ti = wgslType(ins[0]!.b.dtype),
      to = wgslType(out.b.dtype);
    const code = wgsl(
      `copy:${ti}:${to}`,
      () => `${storage(1, 'x', ti, false)}${storage(2, 'y', to, true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  y[i] = ${ti === to ? 'x[i]' : `${to}(x[i])`};
}`,
    );
    ctx.dispatch(code, new Params().u32(n), [ins[0]!.b.gpu, out.b.gpu], elementGroups(n));
    return;
  }
  if (name === 'scale' || UNARY[name]) {
    const body = name === 'scale' ? 'pf(1u) * x + pf(2u)' : UNARY[name]!;
    const p = new Params().u32(n);
    if (name === 'scale') p.f32(a['alpha'] as number, (a['beta'] as number | undefined) ?? 0);
    const code = wgsl(
      `unary:${name}`,
      () => `${storage(1, 'X', 'f32', false)}${storage(2, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  let x = X[i];
  Y[i] = ${body};
}`,
    );
    ctx.dispatch(code, p, [ins[0]!.b.gpu, out.b.gpu], elementGroups(n));
    return;
  }
  if (BINARY[name]) {
    binary(ctx, BINARY[name]!, ins[0]!, ins[1]!, out, n);
    return;
  }
  if (name === 'swiglu_backward') {
    const code = wgsl(
      'swiglu_backward',
      () => `${HELPERS}${storage(1, 'G', 'f32', false)}${storage(2, 'U', 'f32', false)}${storage(3, 'D', 'f32', false)}${storage(4, 'DG', 'f32', true)}${storage(5, 'DU', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  let g = G[i];
  let d = D[i];
  DG[i] = d * U[i] * silu_grad(g);
  DU[i] = d * g * sigm(g);
}`,
    );
    const bufs = [...ins.map((v) => v.b.gpu), outs[0]!.b.gpu, outs[1]!.b.gpu];
    ctx.dispatch(code, new Params().u32(n), bufs, elementGroups(n));
    return;
  }
  if (name === 'swiglu_fused' || name === 'geglu_fused') {
    // gu [R, 2F] → y [R, F]: y[r, j] = act(gu[r, j])·gu[r, F + j] (gate and up halves of one fused linear's rows)
    const F = out.shape[out.shape.length - 1]!;
    const act = name === 'swiglu_fused' ? 'x * sigm(x)' : UNARY['gelu']!;
    const code = wgsl(
      name,
      () => `${HELPERS}${storage(1, 'GU', 'f32', false)}${storage(2, 'Y', 'f32', true)}
fn act(x: f32) -> f32 { return ${act}; }
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  let F = pu(1u);
  let o = (i / F) * 2u * F + i % F;
  Y[i] = act(GU[o]) * GU[o + F];
}`,
    );
    ctx.dispatch(code, new Params().u32(n, F), [ins[0]!.b.gpu, out.b.gpu], elementGroups(n));
    return;
  }
  if (name === 'transpose') {
    const x = ins[0]!,
      perm = a['perm'] as readonly number[];
    const st = stridesOf(x.shape);
    // out index → x offset: out axis k steps x by st[perm[k]]
    indexMap(
      ctx,
      x,
      out,
      n,
      out.shape,
      perm.map((p) => st[p]!),
      'copy',
    );
    return;
  }
  if (name === 'dropout') {
    dropout(ctx, ins[0]!, out, n, a['p'] as number, a['seed'] as number);
    return;
  }
  if (name === 'sum_to') {
    sumTo(ctx, ins[0]!, out, n);
    return;
  }
  throw new Error(`webgpu elementwise: no kernel ${name}`);
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let k = shape.length - 1, acc = 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k]!;
  }
  return s;
}

/** Strides of `shape` as broadcast to `out` (0 along broadcast axes), aligned to out's rank (NumPy rules). */
function bcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = stridesOf(shape);
  const r = new Array<number>(out.length).fill(0);
  const off = out.length - shape.length;
  for (let k = 0; k < shape.length; k++) r[off + k] = shape[k] === 1 ? 0 : st[k]!;
  return r;
}

/** Pad an out-aligned shape/stride list to MAX_RANK on the left (size-1 axes, stride 0). */
function padLeft(xs: readonly number[], fill: number): number[] {
  return [...new Array<number>(MAX_RANK - xs.length).fill(fill), ...xs];
}

/** WGSL: offsets oa (and ob) of flat output index i, from out's shape (params 1..6) and strides (7.., 13..). */
function offsetCode(two: boolean): string {
  return `var rem = i;
  var oa = 0u;
  var ob = 0u;
  for (var k = ${MAX_RANK - 1}; k >= 0; k--) {
    let d = pu(1u + u32(k));
    let idx = rem % d;
    rem = rem / d;
    oa += idx * pu(${1 + MAX_RANK}u + u32(k));
    ${two ? `ob += idx * pu(${1 + 2 * MAX_RANK}u + u32(k));` : ''}
  }`;
}

function binary(ctx: GpuContext, body: string, A: KView, B: KView, out: KView, n: number): void {
  if (out.shape.length > MAX_RANK) throw new Error(`webgpu: rank ${out.shape.length} > ${MAX_RANK}`);
  const p = new Params()
    .u32(n)
    .u32(...padLeft(out.shape, 1))
    .u32(...padLeft(bcastStrides(A.shape, out.shape), 0))
    .u32(...padLeft(bcastStrides(B.shape, out.shape), 0));
  const code = wgsl(
    `binary:${body}`,
    () => `${HELPERS}${storage(1, 'A', 'f32', false)}${storage(2, 'B', 'f32', false)}${storage(3, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  ${offsetCode(true)}
  let a = A[oa];
  let b = B[ob];
  Y[i] = ${body};
}`,
  );
  ctx.dispatch(code, p, [A.b.gpu, B.b.gpu, out.b.gpu], elementGroups(n));
}

/** out[i] = x[offset of i] for a strided view of x along out's axes (transpose). */
function indexMap(
  ctx: GpuContext,
  x: KView,
  out: KView,
  n: number,
  shape: readonly number[],
  xStrides: readonly number[],
  _kind: 'copy',
): void {
  if (shape.length > MAX_RANK) throw new Error(`webgpu: rank ${shape.length} > ${MAX_RANK}`);
  const t = wgslType(x.b.dtype);
  const p = new Params()
    .u32(n)
    .u32(...padLeft(shape, 1))
    .u32(...padLeft(xStrides, 0));
  const code = wgsl(
    `index:${t}`,
    () => `${storage(1, 'X', t, false)}${storage(2, 'Y', t, true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  ${offsetCode(false)}
  Y[i] = X[oa];
}`,
  );
  ctx.dispatch(code, p, [x.b.gpu, out.b.gpu], elementGroups(n));
}

/**
 * sum_to: each output element sums, in order, the input elements that reduce onto it. Params: the out-aligned
 * offset of output i in a (kept axes: a's strides), then the reduced axes' extents and a-strides (an odometer).
 */
function sumTo(ctx: GpuContext, x: KView, out: KView, n: number): void {
  const r = x.shape.length;
  // the leading axes summed away, the trailing ones kept (a bias's gradient): column sums, in two passes when long
  let lead = 0;
  while (lead < r && out.shape[lead] === 1) lead++;
  if (x.shape.slice(lead).every((d, k) => d === out.shape[lead + k])) {
    const rows = x.shape.slice(0, lead).reduce((a, d) => a * d, 1);
    if (rows > 2 * CHUNK) {
      columnSums(ctx, 'sum_to:columns', storage(1, 'X', 'f32', false), 1, ['X[o]'], [x.b.gpu], [out.b.gpu], rows, n);
      return;
    }
  }
  if (r > MAX_RANK) throw new Error(`webgpu: rank ${r} > ${MAX_RANK}`);
  const st = stridesOf(x.shape);
  const keptStrides = x.shape.map((d, k) => (out.shape[k] === 1 && d !== 1 ? 0 : st[k]!));
  const red = x.shape.map((d, k) => (out.shape[k] === 1 ? d : 1));
  const redStrides = x.shape.map((d, k) => (out.shape[k] === 1 && d !== 1 ? st[k]! : 0));
  const count = red.reduce((s, d) => s * d, 1);
  const p = new Params()
    .u32(n)
    .u32(...padLeft(out.shape, 1))
    .u32(...padLeft(keptStrides, 0))
    .u32(...padLeft(red, 1))
    .u32(...padLeft(redStrides, 0))
    .u32(count);
  const R = 1 + 2 * MAX_RANK;
  const code = wgsl(
    'sum_to',
    () => `${storage(1, 'X', 'f32', false)}${storage(2, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  ${offsetCode(false)}
  var s = 0.0;
  for (var j = 0u; j < pu(${1 + 4 * MAX_RANK}u); j++) {
    var rem2 = j;
    var off = oa;
    for (var k = ${MAX_RANK - 1}; k >= 0; k--) {
      let d = pu(${R}u + u32(k));
      off += (rem2 % d) * pu(${R + MAX_RANK}u + u32(k));
      rem2 = rem2 / d;
    }
    s += X[off];
  }
  Y[i] = s;
}`,
  );
  ctx.dispatch(code, p, [x.b.gpu, out.b.gpu], elementGroups(n));
}

/**
 * dropout: keep = hashUniform(seed, i) ≥ p (src/util/rng.ts, ported in u32 arithmetic), i.e. the hash's integer
 * x ≥ ⌈p·2³²⌉, decided exactly as ref (the threshold computed on the host in float64); kept values × 1/(1 − p).
 */
function dropout(ctx: GpuContext, x: KView, out: KView, n: number, p: number, seed: number): void {
  const thr = Math.ceil(p * 4294967296);
  const never = thr > 0xffffffff;
  const params = new Params()
    .u32(n, never ? 0 : thr, never ? 1 : 0)
    .i32(seed)
    .f32(1 / (1 - p));
  const code = wgsl(
    'dropout',
    () => `${storage(1, 'X', 'f32', false)}${storage(2, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${INDEX}
  if (i >= pu(0u)) { return; }
  var h = ((i ^ 0x9e3779b9u) * 0x85ebca6bu) ^ pu(3u);
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  let keep = pu(2u) == 0u && h >= pu(1u);
  Y[i] = select(0.0, X[i] * pf(4u), keep);
}`,
  );
  ctx.dispatch(code, params, [x.b.gpu, out.b.gpu], elementGroups(n));
}
