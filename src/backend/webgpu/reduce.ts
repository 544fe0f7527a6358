/**
 * Global sums on WebGPU (../kernels.ts `sumsq`, `sum_all`): Σ a² or Σ a over every input, into out [1] — the gradient
 * norm of a training step, over every parameter's gradient. Two passes, in a fixed order (the same floats every run):
 *
 *   pass 1: up to 7 inputs a dispatch (7 + the partials: WebGPU's 8 storage bindings); a 256-thread workgroup per
 *           chunk of CHUNK elements of one input, each thread a strided slice, then a tree reduction → part[w]
 *   pass 2: one workgroup sums the partials (thread t: part[t], part[t + 256], …, then a tree) → out
 *
 * so a step's gradients are a handful of dispatches with every chunk in parallel, where one workgroup per input left
 * all but one of a GPU's multiprocessors idle and cost a dispatch per tensor. (ref sums in float64; these float32
 * partial sums of CHUNK/256 terms, then trees, stay inside the conformance tolerance.)
 */
import { size } from '../../util/shape.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, USAGE, WG, grid, storage } from './core.js';
import { runElementwise } from './elementwise.js';
import type { KView } from './kview.js';
import { wgsl } from './wgsl_memo.js';

export const REDUCE_KERNELS = ['sumsq', 'sum_all'] as const;

/** Elements a first-pass workgroup sums (8 a thread). */
const CHUNK = 2048;
/** Inputs a first-pass dispatch reads. */
const PER_DISPATCH = 7;

const TREE = `red[lid] = s;
  workgroupBarrier();
  for (var w = ${WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) { red[lid] += red[lid + w]; }
    workgroupBarrier();
  }`;

/**
 * Pass 1 for k inputs. params: the partials' offset of this dispatch, then per input j: its size and its first
 * workgroup (the workgroups before it), then the dispatch's workgroup count.
 */
function first(k: number, square: boolean): string {
  const decls = Array.from({ length: k }, (_, j) => storage(1 + j, `X${j}`, 'f32', false)).join('');
  const branch = (j: number) => `{
    let n = pu(${1 + 2 * j}u);
    let c = wg - pu(${2 + 2 * j}u);
    for (var e = c * ${CHUNK}u + lid; e < min(n, (c + 1u) * ${CHUNK}u); e += ${WG}u) { let x = X${j}[e]; s += ${square ? 'x * x' : 'x'}; }
  }`;
  let chain = branch(k - 1);
  for (let j = k - 2; j >= 0; j--) chain = `if (wg < pu(${2 + 2 * (j + 1)}u)) ${branch(j)} else ${chain}`;
  return `${decls}${storage(k + 1, 'PART', 'f32', true)}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let wg = grp;
  if (wg >= pu(${1 + 2 * k}u)) { return; }
  var s = 0.0;
  ${chain}
  ${TREE}
  if (lid == 0u) { PART[pu(0u) + wg] = red[0]; }
}`;
}

/** Pass 2: params: the number of partials. */
const SECOND = `${storage(1, 'PART', 'f32', false)}${storage(2, 'OUT', 'f32', true)}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < pu(0u); i += ${WG}u) { s += PART[i]; }
  ${TREE}
  if (lid == 0u) { OUT[0] = red[0]; }
}`;

export function runReduce(ctx: GpuContext, name: string, ins: readonly KView[], outs: readonly KView[]): void {
  const square = name === 'sumsq';
  const xs = ins.map((x) => ({ n: size(x.shape), buf: x.b.gpu })).filter((x) => x.n > 0);
  if (xs.length === 0) {
    runElementwise(ctx, 'fill', [], outs, { value: 0 });
    return;
  }
  const total = xs.reduce((t, x) => t + Math.ceil(x.n / CHUNK), 0);
  const part = ctx.createBuffer(total * 4, USAGE.STORAGE);
  let base = 0;
  for (let d = 0; d < xs.length; d += PER_DISPATCH) {
    const group = xs.slice(d, d + PER_DISPATCH);
    const p = new Params().u32(base);
    let wgs = 0;
    for (const x of group) {
      p.u32(x.n, wgs);
      wgs += Math.ceil(x.n / CHUNK);
    }
    p.u32(wgs);
    const code = wgsl(`${name}:first:${group.length}`, () => first(group.length, square));
    ctx.dispatch(code, p, [...group.map((x) => x.buf), part], grid(wgs));
    base += wgs;
  }
  ctx.dispatch(
    wgsl('reduce:second', () => SECOND),
    new Params().u32(total),
    [part, outs[0]!.b.gpu],
    [1],
  );
  ctx.release(part);
}
