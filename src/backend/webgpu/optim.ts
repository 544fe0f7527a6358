/**
 * AdamW on WebGPU (../kernels.ts `adamw`, PyTorch's update), one dispatch per tensor triple (param, m, v) of a
 * multi-tensor call. The step's scalars are computed on the host in float64 and passed as float32: 1 − β1, 1 − β2,
 * the weight-decay factor 1 − lr·wd, the step size lr / (1 − β1^t) and √(1 − β2^t). (1 − β2 computed in float32 from
 * a float32 β2 is off by ~1e-7 relative to the f64 value; done on the host it is exact to float32 rounding.)
 */
import type { Attrs } from '../backend.js';
import { size } from '../../util/shape.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';

const CODE = `${storage(1, 'G', 'f32', false)}${storage(2, 'Pm', 'f32', true)}${storage(3, 'Mm', 'f32', true)}${storage(4, 'Vm', 'f32', true)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let i = grp * ${WG}u + lid;
  if (i >= pu(0u)) { return; }
  let g = G[i] * pf(1u);
  let m = pf(2u) * Mm[i] + pf(3u) * g;
  let v = pf(4u) * Vm[i] + pf(5u) * g * g;
  Mm[i] = m;
  Vm[i] = v;
  Pm[i] = Pm[i] * pf(6u) - pf(7u) * (m / (sqrt(v) / pf(8u) + pf(9u)));
}`;

export function runAdamw(ctx: GpuContext, ins: readonly KView[], outs: readonly KView[], a: Attrs): void {
  const lr = a['lr'] as number,
    b1 = a['beta1'] as number,
    b2 = a['beta2'] as number,
    eps = a['eps'] as number,
    wd = a['weightDecay'] as number,
    step = a['step'] as number,
    gs = (a['gradScale'] as number | undefined) ?? 1;
  const stepSize = lr / (1 - b1 ** step),
    bc2s = Math.sqrt(1 - b2 ** step);
  ins.forEach((g, j) => {
    const n = size(g.shape);
    if (n === 0) return;
    const p = new Params().u32(n).f32(gs, b1, 1 - b1, b2, 1 - b2, 1 - lr * wd, stepSize, bc2s, eps);
    const bufs = [g, outs[3 * j]!, outs[3 * j + 1]!, outs[3 * j + 2]!].map((v) => v.b.gpu);
    ctx.dispatch(CODE, p, bufs, grid(Math.ceil(n / WG)));
  });
}
