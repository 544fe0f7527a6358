/**
 * Attention on WebGPU (../kernels.ts `attention`, `attention_qkv` and their backward passes), grouped-query heads,
 * causal masking from qOffset, a sliding window, left padding (rowStart, forward), kept probabilities P when asked or given. q, k, v
 * are read through a layout (row stride and base column, ./attention_params.ts), so the fused projection
 * qkv [B, T, (Hq + 2·Hkv)·D] is the same kernel on one buffer. The head size D is built into each shader (a row's q
 * and its accumulator live in registers). No T×S matrix unless P is asked for.
 *
 * Two families: with T ≥ `flashAttention.minT` query rows and no kept P, the tiled kernels of ./attention_flash.ts
 * (K/V and Q/dO tiles in workgroup memory, online softmax; prefill and training); otherwise (decode, a few tokens
 * against a cache, kept P) the row kernels here:
 * - forward: a thread per query row (b, h, t); two passes over the visible keys: the running max and sum give lse,
 *   then o = Σ exp(score − lse)·v (and P).
 * - backward: dq a thread per query row (Σ_s ds·k·scale); dk and dv a thread per key row (b, s, kv head), summing
 *   over the group's query heads and the query rows that see the key, in ref's order. p from P, or exp(score − lse);
 *   ds = p·(do·v − do·o).
 */
import type { Attrs } from '../backend.js';
import { runFlashBackward, runFlashForward } from './attention_flash.js';
import { HEAD, dimsOf, params } from './attention_params.js';
import { type GpuContext, grid, storage } from './core.js';
import type { KView } from './kview.js';
import type { GpuBufferLike } from './types.js';
import { wgsl } from './wgsl_memo.js';

/**
 * Query rows from which a call without kept P takes the tiled kernels (./attention_flash.ts); tests and the lab
 * (bench/lab/webgpu-attention.mjs) set it to Infinity to time or check the row kernels on the same shapes.
 */
export const flashAttention = {
  minT: 16,
  /**
   * dK and dV in two passes (a thread holding k, v, dk, then k, dv) instead of one (k, v, dk, dv: 4·D floats, more
   * than a GPU thread's registers from D = 64): off until a GPU says which is faster (bench/lab/webgpu-attention.mjs
   * times both); both are tested.
   */
  splitKV: false,
};

const WGA = 64;

function rowId(): string {
  return `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32`;
}

function forward(D: number, keepP: boolean): string {
  return `${storage(1, 'Q', 'f32', false)}${storage(2, 'K', 'f32', false)}${storage(3, 'V', 'f32', false)}${storage(4, 'O', 'f32', true)}${storage(5, 'LSE', 'f32', true)}${keepP ? storage(6, 'PR', 'f32', true) : ''}
@compute @workgroup_size(${WGA}) fn main(${rowId()}) {
  let r = (wid.y * nwg.x + wid.x) * ${WGA}u + lid;
  if (r >= pu(9u)) { return; }${HEAD}
  // r = (b·Hq + h)·T + t: the lse layout [B, Hq, T]
  let t = r % T;
  let h = (r / T) % Hq;
  let b = r / (T * Hq);
  let kvh = h / group;
  var s0 = pu(17u + b); // keys before s0: left padding, or past the row's sliding window
  if (window > 0) { s0 = max(s0, u32(max(0, qOffset + i32(t) - window + 1))); }
  var n = i32(S);
  if (causal) { n = min(i32(S), qOffset + i32(t) + 1); }
  let qo = (b * T + t) * qStride + qBase + h * ${D}u;
  var q: array<f32, ${D}>;
  for (var i = 0u; i < ${D}u; i++) { q[i] = Q[qo + i]; }
  var mx = -3.0e38; // finite: WGSL may assume no infinities in arithmetic
  var sum = 0.0;
  for (var s = i32(s0); s < n; s++) {
    let ko = (b * S + u32(s)) * kvStride + kBase + kvh * ${D}u;
    var dot = 0.0;
    for (var i = 0u; i < ${D}u; i++) { dot += q[i] * K[ko + i]; }
    let sc = dot * scale;
    if (sc > mx) { sum = sum * exp(mx - sc) + 1.0; mx = sc; } else { sum += exp(sc - mx); }
  }
  let lse = select(pf(15u), mx + log(sum), n > i32(s0));
  LSE[r] = lse;
  var acc: array<f32, ${D}>;
  ${keepP ? 'let po = r * S;\n  for (var s = 0u; s < S; s++) { PR[po + s] = 0.0; }' : ''}
  for (var s = i32(s0); s < n; s++) {
    let ko = (b * S + u32(s)) * kvStride + kBase + kvh * ${D}u;
    let vo = (b * S + u32(s)) * kvStride + vBase + kvh * ${D}u;
    var dot = 0.0;
    for (var i = 0u; i < ${D}u; i++) { dot += q[i] * K[ko + i]; }
    let p = exp(dot * scale - lse);
    for (var i = 0u; i < ${D}u; i++) { acc[i] += p * V[vo + i]; }
    ${keepP ? 'PR[po + u32(s)] = p;' : ''}
  }
  let oo = ((b * T + t) * Hq + h) * ${D}u;
  for (var i = 0u; i < ${D}u; i++) { O[oo + i] = acc[i]; }
}`;
}

const BWD_INPUTS = (keepP: boolean) =>
  `${storage(1, 'DO', 'f32', false)}${storage(2, 'Q', 'f32', false)}${storage(3, 'K', 'f32', false)}${storage(4, 'V', 'f32', false)}${storage(5, 'O', 'f32', false)}${storage(6, 'LSE', 'f32', false)}${keepP ? storage(7, 'PR', 'f32', false) : ''}`;

/** WGSL: a static use of every backward input (layout 'auto' drops bindings a shader does not use). */
const TOUCH = (keepP: boolean) =>
  ['DO', 'Q', 'K', 'V', 'O', 'LSE', ...(keepP ? ['PR'] : [])].map((n) => `_ = arrayLength(&${n});`).join(' ');

/** WGSL: p of query row (b, h, t) at key s (qo, ko: q and k offsets; r: the row's lse index). */
function probOf(keepP: boolean): string {
  return keepP ? 'PR[r * S + s]' : `exp(dotq(qo, ko) * scale - LSE[r])`;
}

function dotq(D: number): string {
  return `fn dotq(qo: u32, ko: u32) -> f32 { var d = 0.0; for (var i = 0u; i < ${D}u; i++) { d += Q[qo + i] * K[ko + i]; } return d; }
fn dotv(go: u32, vo: u32) -> f32 { var d = 0.0; for (var i = 0u; i < ${D}u; i++) { d += DO[go + i] * V[vo + i]; } return d; }
fn doto(go: u32) -> f32 { var d = 0.0; for (var i = 0u; i < ${D}u; i++) { d += DO[go + i] * O[go + i]; } return d; }`;
}

function backwardQ(D: number, keepP: boolean): string {
  const b = keepP ? 8 : 7;
  return `${BWD_INPUTS(keepP)}${storage(b, 'DQ', 'f32', true)}
${dotq(D)}
@compute @workgroup_size(${WGA}) fn main(${rowId()}) {
  ${TOUCH(keepP)}
  let r = (wid.y * nwg.x + wid.x) * ${WGA}u + lid;
  if (r >= pu(9u)) { return; }${HEAD}
  let t = r % T;
  let h = (r / T) % Hq;
  let b = r / (T * Hq);
  let kvh = h / group;
  var n = i32(S);
  if (causal) { n = min(i32(S), qOffset + i32(t) + 1); }
  let qo = (b * T + t) * qStride + qBase + h * ${D}u;
  let go = ((b * T + t) * Hq + h) * ${D}u;
  let Di = doto(go);
  var acc: array<f32, ${D}>;
  var si0 = 0; // a sliding window: the row's first key
  if (window > 0) { si0 = max(0, qOffset + i32(t) - window + 1); }
  for (var si = si0; si < n; si++) {
    let s = u32(si);
    let ko = (b * S + s) * kvStride + kBase + kvh * ${D}u;
    let vo = (b * S + s) * kvStride + vBase + kvh * ${D}u;
    let p = ${probOf(keepP)};
    let ds = p * (dotv(go, vo) - Di) * scale;
    for (var i = 0u; i < ${D}u; i++) { acc[i] += ds * K[ko + i]; }
  }
  for (var i = 0u; i < ${D}u; i++) { DQ[qo + i] = acc[i]; }
}`;
}

/** dk (which = 'k') or dv ('v'): a thread per key row (b, s, kv head). */
function backwardKV(D: number, keepP: boolean, which: 'k' | 'v'): string {
  const b = keepP ? 8 : 7;
  return `${BWD_INPUTS(keepP)}${storage(b, 'DX', 'f32', true)}
${dotq(D)}
@compute @workgroup_size(${WGA}) fn main(${rowId()}) {
  ${TOUCH(keepP)}
  let kr = (wid.y * nwg.x + wid.x) * ${WGA}u + lid;${HEAD}
  if (kr >= B * S * Hkv) { return; }
  let kvh = kr % Hkv;
  let s = (kr / Hkv) % S;
  let b = kr / (Hkv * S);
  let ko = (b * S + s) * kvStride + kBase + kvh * ${D}u;
  let vo = (b * S + s) * kvStride + vBase + kvh * ${D}u;
  var acc: array<f32, ${D}>;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var t = 0u; t < T; t++) {
      if (causal && i32(s) >= qOffset + i32(t) + 1) { continue; }
      if (window > 0 && i32(s) < qOffset + i32(t) - window + 1) { continue; }
      let r = (b * Hq + h) * T + t;
      let qo = (b * T + t) * qStride + qBase + h * ${D}u;
      let go = ((b * T + t) * Hq + h) * ${D}u;
      let p = ${probOf(keepP)};
      ${
        which === 'v'
          ? `for (var i = 0u; i < ${D}u; i++) { acc[i] += p * DO[go + i]; }`
          : `let ds = p * (dotv(go, vo) - doto(go)) * scale;
      for (var i = 0u; i < ${D}u; i++) { acc[i] += ds * Q[qo + i]; }`
      }
    }
  }
  let xo = (b * S + s) * kvStride + ${which === 'k' ? 'kBase' : 'vBase'} + kvh * ${D}u;
  for (var i = 0u; i < ${D}u; i++) { DX[xo + i] = acc[i]; }
}`;
}

export const ATTENTION_KERNELS = [
  'attention',
  'attention_qkv',
  'attention_backward',
  'attention_qkv_backward',
] as const;

export function runAttention(
  ctx: GpuContext,
  name: string,
  ins: readonly KView[],
  outs: readonly KView[],
  a: Attrs,
): void {
  const d = dimsOf(name, ins, a);
  if (d.B * d.Hq * d.T === 0 || d.D === 0) return;
  const qkv = name.startsWith('attention_qkv');
  const defaultOffset = qkv ? 0 : d.S - d.T;
  const rows = grid(Math.ceil((d.B * d.Hq * d.T) / WGA));
  if (!name.endsWith('_backward')) {
    const p = params(d, a, defaultOffset, a['rowStart'] as readonly number[] | undefined);
    const src = qkv ? [ins[0]!, ins[0]!, ins[0]!] : ins.slice(0, 3);
    const bufs = [...src, ...outs].map((v) => v.b.gpu);
    if (outs.length === 2 && d.T >= flashAttention.minT)
      runFlashForward(ctx, d, p, bufs[0]!, bufs[1]!, bufs[2]!, bufs[3]!, bufs[4]!);
    else
      ctx.dispatch(
        wgsl(`attention:${d.D}:${outs.length > 2}`, () => forward(d.D, outs.length > 2)),
        p,
        bufs,
        rows,
      );
    return;
  }
  // attention_backward: (do, q, k, v, o, lse[, p]) → (dq, dk, dv); attention_qkv_backward: (do, qkv, o, lse[, p]) → (dqkv)
  const p = params(d, a, defaultOffset);
  const keepP = qkv ? ins.length > 4 : ins.length > 6;
  const inputs = qkv ? [ins[0]!, ins[1]!, ins[1]!, ins[1]!, ...ins.slice(2)] : [...ins];
  const ib = inputs.map((v) => v.b.gpu);
  const [dq, dk, dv] = qkv ? [outs[0]!, outs[0]!, outs[0]!] : [outs[0]!, outs[1]!, outs[2]!];
  if (!keepP && d.T >= flashAttention.minT) {
    const [dO, q, k, v, o, lse] = ib as [
      GpuBufferLike,
      GpuBufferLike,
      GpuBufferLike,
      GpuBufferLike,
      GpuBufferLike,
      GpuBufferLike,
    ];
    runFlashBackward(ctx, d, p, { dO, q, k, v, o, lse }, dq.b.gpu, dk.b.gpu, dv.b.gpu, flashAttention.splitKV);
    return;
  }
  ctx.dispatch(
    wgsl(`attention-dq:${d.D}:${keepP}`, () => backwardQ(d.D, keepP)),
    p,
    [...ib, dq.b.gpu],
    rows,
  );
  const keyRows = grid(Math.ceil((d.B * d.S * d.Hkv) / WGA));
  ctx.dispatch(
    wgsl(`attention-dk:${d.D}:${keepP}`, () => backwardKV(d.D, keepP, 'k')),
    p,
    [...ib, dk.b.gpu],
    keyRows,
  );
  ctx.dispatch(
    wgsl(`attention-dv:${d.D}:${keepP}`, () => backwardKV(d.D, keepP, 'v')),
    p,
    [...ib, dv.b.gpu],
    keyRows,
  );
}
