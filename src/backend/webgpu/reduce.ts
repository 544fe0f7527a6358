/**
 * Global sums on WebGPU (../kernels.ts `sumsq`, `sum_all`): Σ a² or Σ a over every input, into out [1]. One
 * 256-thread workgroup per input: each thread sums a strided slice in float32, then a tree reduction; the first
 * input's dispatch writes out, the later ones add to it, in order. (ref sums in float64; float32 partial sums of at
 * most n/256 terms stay inside the conformance tolerance.)
 */
import { size } from '../../util/shape.js';
import { type GpuContext, Params, WG, storage } from './core.js';
import { runElementwise } from './elementwise.js';
import type { KView } from './kview.js';
import { wgsl } from './wgsl_memo.js';

export const REDUCE_KERNELS = ['sumsq', 'sum_all'] as const;

function shader(square: boolean): string {
  return `${storage(1, 'X', 'f32', false)}${storage(2, 'OUT', 'f32', true)}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_index) lid: u32) {
  let n = pu(0u);
  var s = 0.0;
  for (var i = lid; i < n; i += ${WG}u) { let x = X[i]; s += ${square ? 'x * x' : 'x'}; }
  red[lid] = s;
  workgroupBarrier();
  for (var w = ${WG / 2}u; w > 0u; w >>= 1u) {
    if (lid < w) { red[lid] += red[lid + w]; }
    workgroupBarrier();
  }
  if (lid == 0u) { OUT[0] = select(red[0], OUT[0] + red[0], pu(1u) != 0u); }
}`;
}

export function runReduce(ctx: GpuContext, name: string, ins: readonly KView[], outs: readonly KView[]): void {
  const code = wgsl(name, () => shader(name === 'sumsq'));
  ins.forEach((x, k) => {
    ctx.dispatch(code, new Params().u32(size(x.shape), k > 0 ? 1 : 0), [x.b.gpu, outs[0]!.b.gpu], [1]);
  });
  if (ins.length === 0) runElementwise(ctx, 'fill', [], outs, { value: 0 });
}
