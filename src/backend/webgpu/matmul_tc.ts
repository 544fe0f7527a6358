/**
 * The tensor-core matmul's dispatches (./matmul_tc_wgsl.ts has the kernels and the plan): op(a) and op(b) cast to
 * zero-padded binary16 scratch buffers, then the subgroup-matrix product with the f32 epilogue into out. ./matmul.ts
 * sends a call here when the backend's f16 path has tensor cores on (./tensor_cores.ts: the self-check passed) and
 * `tcPlan` accepts the shape; the scratch goes back to the pool once recorded (a captured call keeps it).
 */
import { grid, Params, type GpuContext, USAGE } from './core.js';
import type { KView } from './kview.js';
import {
  CAST_WORKGROUP,
  castShader,
  TC_WORKGROUP,
  type TcPlan,
  type TcSpelling,
  tensorCoreShader,
} from './matmul_tc_wgsl.js';
import { wgsl } from './wgsl_memo.js';

/** The product kernel's WGSL (memoised) for a spelling, tiling, bias, accumulate and workgroup size. */
export function tcProductCode(
  s: TcSpelling,
  rm: number,
  rn: number,
  bias: boolean,
  accumulate: boolean,
  wg = TC_WORKGROUP,
): string {
  return wgsl(`matmul-tc:${s}:${rm}:${rn}:${bias}:${accumulate}:${wg}`, () =>
    tensorCoreShader(s, rm, rn, bias, accumulate, wg),
  );
}

/** The cast kernel's WGSL (memoised) for a layout. */
export function tcCastCode(trans: boolean): string {
  return wgsl(`matmul-tc-cast:${trans}`, () => castShader(trans));
}

/** Record the cast of one operand into a new scratch buffer of its padded binary16 batches; returns the buffer. */
function cast(ctx: GpuContext, x: KView, c: TcPlan['castA']) {
  const words = (c.Rp * c.Cp) / 2;
  const h = ctx.createBuffer(words * 4 * c.batches, USAGE.STORAGE);
  const p = new Params().u32(c.R, c.C, c.Cp, words, c.batches > 1 ? c.R * c.C : 0);
  const [gx, gy] = grid(Math.ceil(words / CAST_WORKGROUP));
  ctx.dispatch(tcCastCode(c.trans), p, [x.b.gpu, h], [gx, gy, c.batches]);
  return h;
}

/** Record one matmul call on the tensor-core path (`plan` from tcPlan for this call's shape). */
export function runTensorCoreMatmul(
  ctx: GpuContext,
  plan: TcPlan,
  spelling: TcSpelling,
  A: KView,
  B: KView,
  bias: KView | undefined,
  O: KView,
  accumulate: boolean,
  alpha: number,
): void {
  const ah = cast(ctx, A, plan.castA),
    bh = cast(ctx, B, plan.castB);
  const p = new Params()
    .u32(
      plan.M,
      plan.N,
      plan.K,
      plan.castA.batches > 1 ? plan.Mp * plan.Kp : 0,
      plan.castB.batches > 1 ? plan.Kp * plan.Np : 0,
      plan.M * plan.N,
    )
    .f32(alpha)
    .u32(plan.Kp, plan.Np);
  const code = tcProductCode(spelling, plan.rm, plan.rn, !!bias, accumulate, plan.wg);
  ctx.dispatch(code, p, [ah, bh, ...(bias ? [bias.b.gpu] : []), O.b.gpu], plan.grid);
  ctx.release(ah);
  ctx.release(bh);
}
