/**
 * The `sample` kernel on WebGPU (../kernels.ts). Greedy rows (temperature 0, no topN, no penalties: a decode step's
 * usual call) run in WGSL, so decoding reads back one id per token: one workgroup per row finds the argmax (the
 * largest logit, the lowest id among equals, as ref's `argmax`) and lse = max + log Σ exp(l − max) by tree reductions
 * in workgroup memory, then writes ids[n] and probs[n] = (1, l[id] − lse). Exact for the id (comparisons only); the
 * log-probability is float32 arithmetic, within the conformance tolerance of ref's float64.
 *
 * Every other setting (temperature > 0 with top-k/top-p/min-p, topN, penalties) must give ref's ids exactly, and ref
 * draws with float64 sums in id order: WGSL has no f64, so those calls run ref's `sampleKernel` on the host as a
 * queued host step of the backend (the logits are read back), counted in the backend's `counts.hostSteps`.
 */
import type { Attrs } from '../backend.js';
import { penaltiesOn, sampleAttrs } from '../sampling.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';

/** Whether a `sample` call runs in WGSL (greedy, no topN, no penalties that change a logit). */
export function sampleOnDevice(nOutputs: number, a: Attrs): boolean {
  const { o, topN, penalties } = sampleAttrs(a);
  return o.temperature === 0 && topN === 0 && nOutputs === 2 && !(penalties && penaltiesOn(penalties.settings));
}

/** logits [N, V] → ids [N] i32, probs [N, 2]. One workgroup per row. params: V */
const GREEDY = `${storage(1, 'L', 'f32', false)}${storage(2, 'IDS', 'i32', true)}${storage(3, 'PR', 'f32', true)}
var<workgroup> bv: array<f32, ${WG}>;
var<workgroup> bi: array<u32, ${WG}>;
var<workgroup> sm: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let V = pu(0u);
  let r = grp * V;
  var v = 0.0;         // set by the thread's first entry
  var id = 0xffffffffu; // no entry yet: loses every comparison below
  for (var k = lid; k < V; k += ${WG}u) {
    let x = L[r + k];
    if (id == 0xffffffffu || x > v) { v = x; id = k; }
  }
  bv[lid] = v;
  bi[lid] = id;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) {
      let v2 = bv[lid + s];
      let i2 = bi[lid + s];
      let take = bi[lid] == 0xffffffffu || v2 > bv[lid] || (v2 == bv[lid] && i2 < bi[lid]);
      if (i2 != 0xffffffffu && take) { bv[lid] = v2; bi[lid] = i2; }
    }
    workgroupBarrier();
  }
  let mx = bv[0];
  let best = bi[0];
  var acc = 0.0;
  for (var k = lid; k < V; k += ${WG}u) { acc += exp(L[r + k] - mx); }
  sm[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) { sm[lid] += sm[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let n = r / V;
    IDS[n] = i32(best);
    PR[2u * n] = 1.0;
    PR[2u * n + 1u] = L[r + best] - (mx + log(sm[0]));
  }
}`;

export function runSampleGreedy(ctx: GpuContext, ins: readonly KView[], outs: readonly KView[]): void {
  const shape = ins[0]!.shape,
    V = shape[shape.length - 1]!,
    N = outs[0]!.shape[0]!;
  if (N === 0 || V === 0) return;
  ctx.dispatch(GREEDY, new Params().u32(V), [ins[0]!.b.gpu, outs[0]!.b.gpu, outs[1]!.b.gpu], grid(N));
}
