/**
 * Attention forward on WebGPU (../kernels.ts `attention`): one thread per query row (b, h, t), grouped-query heads,
 * causal masking from qOffset, left padding (rowStart), and the kept probabilities P when asked. Two passes over the
 * visible keys: the running max and sum give lse, then o = Σ exp(score − lse)·v (and P). The head size D is built
 * into the shader (the row's q and its o accumulator live in registers). No T×S matrix unless P is asked for.
 * The backward pass runs on ref.
 */
import type { Attrs } from '../backend.js';
import { type GpuContext, Params, grid, storage } from './core.js';
import type { KView } from './kview.js';

const WGA = 64;

function shader(D: number, keepP: boolean): string {
  // params: 0 B, 1 T, 2 S, 3 Hq, 4 Hkv, 5 group, 6 scale, 7 causal, 8 qOffset (i32), 9 rows, 10 -inf, 11 -, 12.. rowStart
  return `${storage(1, 'Q', 'f32', false)}${storage(2, 'K', 'f32', false)}${storage(3, 'V', 'f32', false)}${storage(4, 'O', 'f32', true)}${storage(5, 'LSE', 'f32', true)}${keepP ? storage(6, 'PR', 'f32', true) : ''}
@compute @workgroup_size(${WGA}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.y * nwg.x + wid.x) * ${WGA}u + lid;
  if (r >= pu(9u)) { return; }
  let T = pu(1u);
  let S = pu(2u);
  let Hq = pu(3u);
  let Hkv = pu(4u);
  // r = (b·Hq + h)·T + t: the lse layout [B, Hq, T]
  let t = r % T;
  let h = (r / T) % Hq;
  let b = r / (T * Hq);
  let kvh = h / pu(5u);
  let scale = pf(6u);
  let s0 = pu(12u + b);
  var n = i32(S);
  if (pu(7u) != 0u) { n = min(i32(S), pi(8u) + i32(t) + 1); }
  let qo = ((b * T + t) * Hq + h) * ${D}u;
  var q: array<f32, ${D}>;
  for (var i = 0u; i < ${D}u; i++) { q[i] = Q[qo + i]; }
  var mx = -3.0e38; // finite: WGSL may assume no infinities in arithmetic
  var sum = 0.0;
  for (var s = i32(s0); s < n; s++) {
    let ko = ((b * S + u32(s)) * Hkv + kvh) * ${D}u;
    var dot = 0.0;
    for (var i = 0u; i < ${D}u; i++) { dot += q[i] * K[ko + i]; }
    let sc = dot * scale;
    if (sc > mx) { sum = sum * exp(mx - sc) + 1.0; mx = sc; } else { sum += exp(sc - mx); }
  }
  let seen = n > i32(s0);
  let lse = select(pf(10u), mx + log(sum), seen);
  LSE[r] = lse;
  var acc: array<f32, ${D}>;
  ${keepP ? 'let po = r * S;\n  for (var s = 0u; s < S; s++) { PR[po + s] = 0.0; }' : ''}
  for (var s = i32(s0); s < n; s++) {
    let ko = ((b * S + u32(s)) * Hkv + kvh) * ${D}u;
    var dot = 0.0;
    for (var i = 0u; i < ${D}u; i++) { dot += q[i] * K[ko + i]; }
    let p = exp(dot * scale - lse);
    for (var i = 0u; i < ${D}u; i++) { acc[i] += p * V[ko + i]; }
    ${keepP ? 'PR[po + u32(s)] = p;' : ''}
  }
  for (var i = 0u; i < ${D}u; i++) { O[qo + i] = acc[i]; }
}`;
}

export function runAttention(ctx: GpuContext, ins: readonly KView[], outs: readonly KView[], a: Attrs): void {
  const [B, T, Hq, D] = ins[0]!.shape as [number, number, number, number];
  const S = ins[1]!.shape[1]!,
    Hkv = ins[1]!.shape[2]!;
  const rows = B * Hq * T;
  if (rows === 0 || D === 0) return;
  const causal = a['causal'] !== false,
    qOffset = (a['qOffset'] as number | undefined) ?? S - T,
    rowStart = (a['rowStart'] as readonly number[] | undefined) ?? new Array<number>(B).fill(0);
  const p = new Params()
    .u32(B, T, S, Hq, Hkv, Hq / Hkv)
    .f32(a['scale'] as number)
    .u32(causal ? 1 : 0)
    .i32(qOffset)
    .u32(rows)
    .f32(Number.NEGATIVE_INFINITY, 0)
    .u32(...rowStart);
  const keepP = outs.length > 2;
  const bufs = [...ins.slice(0, 3), ...outs].map((v) => v.b.gpu);
  ctx.dispatch(shader(D, keepP), p, bufs, grid(Math.ceil(rows / WGA)));
}
