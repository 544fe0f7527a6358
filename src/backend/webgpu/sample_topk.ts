/**
 * The top-k candidates of each row of logits, selected in WGSL (the device half of `sample` at temperature > 0 with
 * top-k; the host half, ref's float64 sampler on them, is ../sample_candidates.ts, which says why that is exact).
 *
 * One workgroup per row. Each logit's f32 bits map to an order-preserving u32 key (sign set: all bits flipped; else
 * the sign bit set), so the k-th largest logit is found by comparisons only, exactly: a radix select, 4 passes of
 * 8 bits, each a 256-bin histogram (workgroup atomics) of the keys that match the digits chosen so far, then the bin
 * holding the remaining rank, counted from the top. The threshold key admits −0 with +0 (equal as numbers, as ref's
 * `x ≥ thr` compares), and works on bits throughout (no float compare, so no flushed subnormals). Candidates
 * (key ≥ threshold) are compacted in id order: each thread counts its contiguous chunk of ids, an exclusive scan of
 * the counts gives each its offset, each writes its own. lse = max + log Σ exp(l − max) over the whole row is a tree
 * reduction in float32, as the greedy kernel's (./sample.ts). NaN logits are not defined (as everywhere in `sample`).
 *
 * Output per row, `candidateStride(cap)` words (../sample_candidates.ts): [count, lse bits, ids[cap], logit bits[cap]],
 * count being every candidate (ties at the threshold can make it more than k), the first min(count, cap) stored.
 */
import { BackendError } from '../../util/errors.js';
import { candidateStride } from '../sample_candidates.js';
import { nucleusStride } from '../sample_nucleus.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid } from './core.js';
import type { GpuBufferLike } from './types.js';

/**
 * logits [N, V] (as u32 bits) → slots [N, H + 2·cap] (u32), H = 2 header words (count, lse), or with `tail` 4: also
 * the tail sums (../sample_nucleus.ts). params: V, k (1 ≤ k ≤ V), cap, then without `tail` the first slot's word
 * offset in the output, with `tail` invT, C0, C1 (f32).
 */
const select = (tail: boolean): string => {
  const H = tail ? 4 : 2;
  return `@group(0) @binding(1) var<storage, read> L: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<u32>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> top: atomic<u32>;
var<workgroup> sel: vec2<u32>;
var<workgroup> cnt: array<u32, ${WG}>;
var<workgroup> sm: array<f32, ${WG}>;
${tail ? `var<workgroup> st: array<f32, ${WG}>;\nvar<workgroup> sa: array<f32, ${WG}>;\n` : ''}fn key(b: u32) -> u32 { return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u); }
fn unkey(k: u32) -> u32 { return select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u); }
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let V = pu(0u);
  let K = pu(1u);
  let C = pu(2u);
  let r = grp * V;
  let o = ${tail ? '' : 'pu(3u) + '}grp * (${H}u + 2u * C);
  var prefix = 0u;
  var mask = 0u;
  var rank = K;
  if (lid == 0u) { atomicStore(&top, 0u); }
  for (var d = 0u; d < 4u; d++) {
    let shift = 24u - 8u * d;
    for (var b = lid; b < 256u; b += ${WG}u) { atomicStore(&hist[b], 0u); }
    workgroupBarrier();
    var mk = 0u; // the thread's largest key (the row's max, from the first pass)
    for (var i = lid; i < V; i += ${WG}u) {
      let k = key(L[r + i]);
      mk = max(mk, k);
      if ((k & mask) == prefix) { atomicAdd(&hist[(k >> shift) & 255u], 1u); }
    }
    if (d == 0u) { atomicMax(&top, mk); }
    workgroupBarrier();
    if (lid == 0u) {
      var acc = 0u;
      var b = 255u;
      loop {
        let c = atomicLoad(&hist[b]);
        if (acc + c >= rank || b == 0u) { break; }
        acc += c;
        b -= 1u;
      }
      sel = vec2<u32>(b, rank - acc);
    }
    workgroupBarrier();
    let s = sel;
    prefix |= s.x << shift;
    mask |= 255u << shift;
    rank = s.y;
  }
  // the k-th largest key; a zero threshold admits both zeros (key(−0) = 0x7fffffff, key(+0) = 0x80000000)
  let thr = select(prefix, 0x7fffffffu, prefix == 0x80000000u);
  let mx = bitcast<f32>(unkey(atomicLoad(&top)));
  var acc = 0.0;
  ${
    tail
      ? `let invT = pf(3u);
  let C0 = pf(4u);
  let C1 = pf(5u);
  var ts = 0.0; // Σ exp(y) over the tail (key < thr), y = (l − mx)·invT ≥ −80
  var ta = 0.0; // Σ (C0 + C1·|y|)·exp(y): the bound terms
  for (var i = lid; i < V; i += ${WG}u) {
    let b = L[r + i];
    let x = bitcast<f32>(b);
    acc += exp(x - mx);
    let y = (x - mx) * invT;
    if (key(b) < thr && y >= -80.0) {
      let w = exp(y);
      ts += w;
      ta += (C0 + C1 * abs(y)) * w;
    }
  }
  st[lid] = ts;
  sa[lid] = ta;`
      : `for (var i = lid; i < V; i += ${WG}u) { acc += exp(bitcast<f32>(L[r + i]) - mx); }`
  }
  sm[lid] = acc;
  // candidates in id order: thread lid takes ids [lo, hi)
  let chunk = (V + ${WG - 1}u) / ${WG}u;
  let lo = min(V, lid * chunk);
  let hi = min(V, lo + chunk);
  var c = 0u;
  for (var i = lo; i < hi; i++) { if (key(L[r + i]) >= thr) { c++; } }
  cnt[lid] = c;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s /= 2u) {
    if (lid < s) { sm[lid] += sm[lid + s];${tail ? ' st[lid] += st[lid + s]; sa[lid] += sa[lid + s];' : ''} }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var t = 0u;
    for (var j = 0u; j < ${WG}u; j++) { let x = cnt[j]; cnt[j] = t; t += x; }
    O[o] = t;
    O[o + 1u] = bitcast<u32>(mx + log(sm[0]));${tail ? '\n    O[o + 2u] = bitcast<u32>(st[0]);\n    O[o + 3u] = bitcast<u32>(sa[0]);' : ''}
  }
  workgroupBarrier();
  var p = cnt[lid];
  for (var i = lo; i < hi; i++) {
    let b = L[r + i];
    if (key(b) >= thr) {
      if (p < C) { O[o + ${H}u + p] = i; O[o + ${H}u + C + p] = b; }
      p++;
    }
  }
}`;
};
const SELECT = select(false);
const SELECT_TAIL = select(true);

/**
 * Record the selection: `logits` rows of V (N = rows), top-k `k` (clamped to V), `cap` candidates a slot; `out` holds
 * N · candidateStride(cap) words from word `offset` on (0; the top alternatives at plain temperature put them after
 * the certified draw's words, ./sample.ts).
 */
export function runSampleTopK(
  ctx: GpuContext,
  logits: GpuBufferLike,
  out: GpuBufferLike,
  N: number,
  V: number,
  k: number,
  cap: number,
  offset = 0,
): void {
  if (N === 0 || V === 0) return;
  if (!(out.size >= (offset + N * candidateStride(cap)) * 4))
    throw new BackendError('E_SAMPLE', `webgpu sample: ${out.size} bytes for ${N} rows of ${cap} candidates`);
  ctx.dispatch(SELECT, new Params().u32(V, Math.min(k, V), cap, offset), [logits, out], grid(N));
}

/**
 * The selection with the tail sums (../sample_nucleus.ts): as runSampleTopK with k = cap, `out` holding
 * N · nucleusStride(cap) words; `c`: the bound's constants (../sample_certified.ts `certConstants`).
 */
export function runSampleTopKTail(
  ctx: GpuContext,
  logits: GpuBufferLike,
  out: GpuBufferLike,
  N: number,
  V: number,
  cap: number,
  c: { invT: number; c0: number; c1: number },
): void {
  if (N === 0 || V === 0) return;
  if (!(out.size >= N * nucleusStride(cap) * 4))
    throw new BackendError('E_SAMPLE', `webgpu sample: ${out.size} bytes for ${N} rows of ${cap} candidates`);
  ctx.dispatch(SELECT_TAIL, new Params().u32(V, Math.min(cap, V), cap).f32(c.invT, c.c0, c.c1), [logits, out], grid(N));
}
