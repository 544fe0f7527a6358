/**
 * Rotary embedding on WebGPU (../kernels.ts `rope`, the "rotate half" layout). The angles' cosines and sines are
 * computed on the host in float64 and rounded to float32, exactly as ref does (inv_freq in float32 as transformers,
 * angle = fround(p·inv_freq)): WGSL's sin/cos are only good to ~2⁻¹¹ absolute over [−π, π], far outside the
 * conformance tolerance at positions in the hundreds. A table [B·T, D/2] of (cos, sin) goes up with the dispatch.
 */
import type { Attrs } from '../backend.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';

const CODE = `${storage(1, 'X', 'f32', false)}${storage(2, 'CS', 'f32', false)}${storage(3, 'Y', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let e = grp * ${WG}u + lid;
  if (e >= pu(0u)) { return; }
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

export function runRope(ctx: GpuContext, ins: readonly KView[], outs: readonly KView[], a: Attrs): void {
  const [B, T, H, D] = ins[0]!.shape as [number, number, number, number];
  const n = B * T * H * D;
  if (n === 0) return;
  const half = D / 2,
    theta = a['theta'] as number,
    offset = (a['offset'] as number | undefined) ?? 0,
    sign = a['inverse'] === true ? -1 : 1,
    rowStart = a['rowStart'] as readonly number[] | undefined;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** Math.fround((2 * i) / D);
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
  const table = ctx.constBuffer(cs);
  ctx.dispatch(CODE, new Params().u32(n, D, H), [ins[0]!.b.gpu, table, outs[0]!.b.gpu], grid(Math.ceil(n / WG)));
}
