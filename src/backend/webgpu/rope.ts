/**
 * Rotary embedding on WebGPU (../kernels.ts `rope`, the "rotate half" layout), and the fused decode forms `rope_qkv`
 * / `rope_qkv_cache` (a fused q/k/v projection's rows split into q, k, v with q and k rotated; the cache form writes
 * k and v at rows offset … offset + T − 1 of [B, L, Hkv, D] caches and leaves the rest untouched). The angles'
 * cosines and sines are computed on the host in float64 and rounded to float32, exactly as ref does (inv_freq in
 * float32 as transformers, angle = fround(p·inv_freq)): WGSL's sin/cos are only good to ~2⁻¹¹ absolute over [−π, π],
 * far outside the conformance tolerance at positions in the hundreds. A table [B·T, D/2] of (cos, sin) goes up with
 * the dispatch.
 */
import type { Attrs } from '../backend.js';
import { BUILTINS, FLAT_ELEMENT, type GpuContext, Params, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';
import { ropeInvFreq } from '../rope_freqs.js';

const CODE = `${storage(1, 'X', 'f32', false)}${storage(2, 'CS', 'f32', false)}${storage(3, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  let D = pu(1u);
  let H = pu(2u);
  let half = D / 2u;
  let d = e % D;
  let row = e / (D * H); // b·T + t
  let i = d % half;
  let c = CS[(row * half + i) * 2u];
  let s = CS[(row * half + i) * 2u + 1u];
  let base = e - d;
  let x1 = X[base + i];
  let x2 = X[base + i + half];
  Y[e] = select(x2 * c + x1 * s, x1 * c - x2 * s, d < half);
}`;

/**
 * One part of a fused qkv [B, T, W] (W = (Hq + 2·Hkv)·D): the H heads at column `col` of each row, rotated if
 * `rotate`, into Y viewed [B, R, H, D] at rows `at` … `at` + T − 1 of each batch row (R = T, at = 0 for a fresh
 * output; R = L, at = offset for a cache). One thread per element of the part.
 * params: n = B·T·H·D, D, H, W, col, rotate, T, R, at
 */
const QKV_CODE = `${storage(1, 'X', 'f32', false)}${storage(2, 'CS', 'f32', false)}${storage(3, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_ELEMENT}
  let D = pu(1u);
  let H = pu(2u);
  let W = pu(3u);
  let T = pu(6u);
  let half = D / 2u;
  let d = e % D;
  let hd = e % (D * H);   // h·D + d
  let row = e / (D * H);  // b·T + t
  let src = row * W + pu(4u) + hd - d; // the head's first column in X
  let dst = ((row / T) * pu(7u) + pu(8u) + row % T) * D * H + hd;
  if (pu(5u) == 0u) { Y[dst] = X[src + d]; return; }
  let i = d % half;
  let c = CS[(row * half + i) * 2u];
  let s = CS[(row * half + i) * 2u + 1u];
  let x1 = X[src + i];
  let x2 = X[src + i + half];
  Y[dst] = select(x2 * c + x1 * s, x1 * c - x2 * s, d < half);
}`;

/** (cos, sin) per (b·T + t, i < D/2), float32, as ref computes them; sin negated when `inverse`. */
function angleTable(B: number, T: number, D: number, a: Attrs): Float32Array {
  const half = D / 2,
    offset = (a['offset'] as number | undefined) ?? 0,
    sign = a['inverse'] === true ? -1 : 1,
    rowStart = a['rowStart'] as readonly number[] | undefined;
  const inv = ropeInvFreq(a, D);
  const cs = new Float32Array(B * T * half * 2);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const p = rowStart ? Math.max(0, offset + t - rowStart[b]!) : offset + t;
      for (let i = 0; i < half; i++) {
        const ang = Math.fround(p * inv[i]!),
          o = ((b * T + t) * half + i) * 2;
        cs[o] = Math.cos(ang);
        cs[o + 1] = sign * Math.fround(Math.sin(ang));
      }
    }
  return cs;
}

export function runRope(ctx: GpuContext, ins: readonly KView[], outs: readonly KView[], a: Attrs): void {
  const [B, T, H, D] = ins[0]!.shape as [number, number, number, number];
  const n = B * T * H * D;
  if (n === 0) return;
  const table = ctx.constBuffer(angleTable(B, T, D, a));
  ctx.dispatch(CODE, new Params().u32(n, D, H), [ins[0]!.b.gpu, table, outs[0]!.b.gpu], grid(Math.ceil(n / WG)));
}

/** rope_qkv (cache = false) and rope_qkv_cache: three dispatches (q, k rotated; v copied) over one angle table. */
export function runRopeQkv(
  ctx: GpuContext,
  ins: readonly KView[],
  outs: readonly KView[],
  a: Attrs,
  cache: boolean,
): void {
  const [B, T, W] = ins[0]!.shape as [number, number, number];
  const [, , Hq, D] = outs[0]!.shape as [number, number, number, number];
  const [, L, Hkv] = outs[1]!.shape as [number, number, number];
  if (B * T * D === 0) return;
  const offset = (a['offset'] as number | undefined) ?? 0;
  const table = ctx.constBuffer(angleTable(B, T, D, a));
  const parts: [H: number, col: number, rotate: number, out: KView][] = [
    [Hq, 0, 1, outs[0]!],
    [Hkv, Hq * D, 1, outs[1]!],
    [Hkv, (Hq + Hkv) * D, 0, outs[2]!],
  ];
  for (const [H, col, rotate, out] of parts) {
    const n = B * T * H * D,
      toCache = cache && out !== outs[0];
    if (n === 0) continue;
    const p = new Params().u32(n, D, H, W, col, rotate, T, toCache ? L : T, toCache ? offset : 0);
    ctx.dispatch(QKV_CODE, p, [ins[0]!.b.gpu, table, out.b.gpu], grid(Math.ceil(n / WG)));
  }
}
