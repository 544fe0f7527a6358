/**
 * AdamW on WebGPU (../kernels.ts `adamw`, PyTorch's update), one dispatch per two tensor triples (param, m, v) of a
 * multi-tensor call. The step's scalars are computed on the host in float64 and passed as float32: 1 − β1, 1 − β2,
 * the weight-decay factor 1 − lr·wd, the step size lr / (1 − β1^t) and √(1 − β2^t). (1 − β2 computed in float32 from
 * a float32 β2 is off by ~1e-7 relative to the f64 value; done on the host it is exact to float32 rounding.)
 */
import type { Attrs } from '../backend.js';
import { size } from '../../util/shape.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage } from './core.js';
import type { KView } from './kview.js';

/** WGSL: PyTorch's AdamW update of element `e` of the tensor triple with suffix `k` (G, P, M, V). */
const update = (k: number, e: string) => `let g${k} = G${k}[${e}] * pf(1u);
    let m${k} = pf(2u) * M${k}[${e}] + pf(3u) * g${k};
    let v${k} = pf(4u) * V${k}[${e}] + pf(5u) * g${k} * g${k};
    M${k}[${e}] = m${k};
    V${k}[${e}] = v${k};
    P${k}[${e}] = P${k}[${e}] * pf(6u) - pf(7u) * (m${k} / (sqrt(v${k}) / pf(8u) + pf(9u)));`;

const decls = (k: number) =>
  `${storage(1 + 4 * k, `G${k}`, 'f32', false)}${storage(2 + 4 * k, `P${k}`, 'f32', true)}${storage(3 + 4 * k, `M${k}`, 'f32', true)}${storage(4 + 4 * k, `V${k}`, 'f32', true)}`;

/** One tensor: a thread per element. params: n, the 9 scalars. */
const ONE = `${decls(0)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let i = grp * ${WG}u + lid;
  if (i < pu(0u)) {
    ${update(0, 'i')}
  }
}`;

/**
 * Two tensors in one dispatch (8 storage bindings: WebGPU's guaranteed per-stage limit): threads 0 … n0 − 1 update
 * the first, the next n1 the second — half the dispatches of a many-tensor step, the same arithmetic per element.
 * params: n0, the 9 scalars, n1.
 */
const TWO = `${decls(0)}${decls(1)}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let i = grp * ${WG}u + lid;
  let n0 = pu(0u);
  if (i < n0) {
    ${update(0, 'i')}
  } else if (i < n0 + pu(10u)) {
    let j = i - n0;
    ${update(1, 'j')}
  }
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
  const scalars = [gs, b1, 1 - b1, b2, 1 - b2, 1 - lr * wd, stepSize, bc2s, eps];
  // the tensors with elements, as (size, buffers) — paired up, two a dispatch
  const ts = ins
    .map((g, j) => ({
      n: size(g.shape),
      bufs: [g, outs[3 * j]!, outs[3 * j + 1]!, outs[3 * j + 2]!].map((v) => v.b.gpu),
    }))
    .filter((t) => t.n > 0);
  for (let k = 0; k < ts.length; k += 2) {
    const t0 = ts[k]!,
      t1 = ts[k + 1];
    if (!t1) {
      ctx.dispatch(ONE, new Params().u32(t0.n).f32(...scalars), t0.bufs, grid(Math.ceil(t0.n / WG)));
      continue;
    }
    const p = new Params()
      .u32(t0.n)
      .f32(...scalars)
      .u32(t1.n);
    ctx.dispatch(TWO, p, [...t0.bufs, ...t1.bufs], grid(Math.ceil((t0.n + t1.n) / WG)));
  }
}
