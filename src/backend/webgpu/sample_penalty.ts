/**
 * The device half of `sample` with penalties (../sample_penalized.ts says why it is exact): the logits copied, each
 * row's seen ids masked to −∞ in the copy, and their raw logits gathered into the read-back buffer; the backend then
 * selects the copy's top-k candidates (./sample_topk.ts). All on the logits' bits (no float arithmetic).
 *
 * With a plain temperature, a second phase (after the host has computed the seen ids' penalised logits from the
 * gathered ones) writes those into the copy, which then holds the penalised rows, for the certified draw
 * (./sample_certified.ts).
 *
 * COPY: C[e] = X[e] for e < count. MASK: for each seen flat index f = I[j] (n·V + id, distinct), O[at + j] = X[f]
 * and C[f] = −∞ (0xff800000). SCATTER: C[I[j]] = Y[j]. Params: COPY count; MASK M (the seen ids), at (a word offset
 * in O); SCATTER M.
 */
import { FLAT_ELEMENT, type GpuContext, Params, WG, BUILTINS, grid } from './core.js';
import type { GpuBufferLike } from './types.js';

const COPY = `@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read_write> C: array<u32>;
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  C[e] = X[e];
}`;

const MASK = `@group(0) @binding(1) var<storage, read> X: array<u32>;
@group(0) @binding(2) var<storage, read> I: array<u32>;
@group(0) @binding(3) var<storage, read_write> C: array<u32>;
@group(0) @binding(4) var<storage, read_write> O: array<u32>;
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  let f = I[e];
  O[pu(1u) + e] = X[f];
  C[f] = 0xff800000u;
}`;

const SCATTER = `@group(0) @binding(1) var<storage, read> I: array<u32>;
@group(0) @binding(2) var<storage, read> Y: array<u32>;
@group(0) @binding(3) var<storage, read_write> C: array<u32>;
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  C[I[e]] = Y[e];
}`;

/** Record the second phase's write of `values` (one per flat index of `seen`) into `copy`. */
export function runSamplePenaltyScatter(
  ctx: GpuContext,
  seen: Uint32Array,
  values: GpuBufferLike,
  copy: GpuBufferLike,
): void {
  if (seen.length === 0) return;
  const idx = ctx.constBuffer(new Float32Array(seen.buffer, seen.byteOffset, seen.length));
  ctx.dispatch(SCATTER, new Params().u32(seen.length), [idx, values, copy], grid(Math.ceil(seen.length / WG)));
}

/**
 * Record the copy of `count` logits into `copy`, the mask of the flat indices `seen` there (to −∞) and the gather of
 * their raw logits into `out` at word `at`.
 */
export function runSamplePenaltyMask(
  ctx: GpuContext,
  logits: GpuBufferLike,
  copy: GpuBufferLike,
  count: number,
  seen: Uint32Array,
  out: GpuBufferLike,
  at: number,
): void {
  if (count === 0) return;
  ctx.dispatch(COPY, new Params().u32(count), [logits, copy], grid(Math.ceil(count / WG)));
  if (seen.length === 0) return;
  const idx = ctx.constBuffer(new Float32Array(seen.buffer, seen.byteOffset, seen.length));
  ctx.dispatch(MASK, new Params().u32(seen.length, at), [logits, idx, copy, out], grid(Math.ceil(seen.length / WG)));
}
