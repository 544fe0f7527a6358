/**
 * Row kernels on WebGPU (../kernels.ts): layernorm, rmsnorm and their backward passes, softmax and its backward,
 * cross-entropy and its backward. One 256-thread workgroup per row of the last axis: threads stride over the row,
 * then a tree reduction in workgroup memory (sums in float32, like the wasm backend's lanes). The weight gradients
 * (dw, db) are column sums over rows (./colsum.ts: one thread per column, or past 256 rows two passes over chunks).
 */
import type { Attrs } from '../backend.js';
import { BUILTINS, FLAT_GROUP, type GpuContext, Params, WG, grid, storage } from './core.js';
import { columnSums } from './colsum.js';
import type { KView } from './kview.js';
import { wgsl } from './wgsl_memo.js';

export const NORM_KERNELS = [
  'layernorm',
  'layernorm_backward',
  'rmsnorm',
  'rmsnorm_backward',
  'softmax',
  'softmax_backward',
  'cross_entropy',
  'cross_entropy_backward',
  'cross_entropy_backward_inplace',
] as const;

/** WGSL: workgroup sum and max of one value per thread (call in uniform control flow). */
const REDUCE = `
var<workgroup> red: array<f32, ${WG}>;
fn wsum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wmax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

/** A row kernel: params N, C (+ extra), body with `row`, `o` (row offset), `C`, `lid` in scope. */
function rowKernel(decls: string, body: string): string {
  return `${REDUCE}${decls}
@compute @workgroup_size(${WG}) fn main(${BUILTINS}) {
  ${FLAT_GROUP}
  let row = grp;
  let C = pu(1u);
  if (row >= pu(0u)) { return; }
  let o = row * C;
  ${body}
}`;
}

/** Loop over this thread's columns of the row. */
const EACH = `for (var c = lid; c < C; c += ${WG}u)`;

function rowsCols(v: KView): [number, number] {
  const C = v.shape[v.shape.length - 1] ?? 1;
  let n = 1;
  for (const d of v.shape) n *= d;
  return [C === 0 ? 0 : n / C, C];
}

export function runNorm(ctx: GpuContext, name: string, ins: readonly KView[], outs: readonly KView[], a: Attrs): void {
  // the in-place backward's [N, V] is its read-modify-write output (the logits); every other kernel's, its first input
  const [N, C] = rowsCols(name === 'cross_entropy_backward_inplace' ? outs[0]! : ins[0]!);
  if (N === 0 || C === 0) return;
  const rows = grid(N);
  const f = (b: number, n: string, w = false) => storage(b, n, 'f32', w);
  const run = (code: string, p: Params, bufs: readonly KView[]) =>
    ctx.dispatch(
      code,
      p,
      bufs.map((v) => v.b.gpu),
      rows,
    );
  const acc = a['accumulate'] === true;
  switch (name) {
    case 'layernorm': {
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'X') + f(2, 'W') + f(3, 'Bb') + f(4, 'Y', true) + f(5, 'MEAN', true) + f(6, 'RSTD', true),
          `var s = 0.0;
  ${EACH} { s += X[o + c]; }
  let mean = wsum(s, lid) / f32(C);
  var v = 0.0;
  ${EACH} { let d = X[o + c] - mean; v += d * d; }
  let vr = wsum(v, lid) / f32(C);
  let r = 1.0 / sqrt(vr + pf(2u));
  ${EACH} { Y[o + c] = (X[o + c] - mean) * r * W[c] + Bb[c]; }
  if (lid == 0u) { MEAN[row] = mean; RSTD[row] = r; }`,
        ),
      );
      run(code, new Params().u32(N, C).f32(a['eps'] as number), [...ins, ...outs]);
      return;
    }
    case 'layernorm_backward': {
      // ins: dy, x, w, mean, rstd; outs: dx, dw, db
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'DY') + f(2, 'X') + f(3, 'W') + f(4, 'MEAN') + f(5, 'RSTD') + f(6, 'DX', true),
          `let m = MEAN[row];
  let r = RSTD[row];
  var s1 = 0.0;
  var s2 = 0.0;
  ${EACH} { let g = DY[o + c] * W[c]; s1 += g; s2 += g * (X[o + c] - m) * r; }
  let m1 = wsum(s1, lid) / f32(C);
  let m2 = wsum(s2, lid) / f32(C);
  ${EACH} {
    let xh = (X[o + c] - m) * r;
    let d = r * (DY[o + c] * W[c] - m1 - xh * m2);
    DX[o + c] = ${acc ? 'DX[o + c] + d' : 'd'};
  }`,
        ),
      );
      run(code, new Params().u32(N, C), [...ins, outs[0]!]);
      columnSums(
        ctx,
        'layernorm_backward:columns',
        f(1, 'DY') + f(2, 'X') + f(3, 'MEAN') + f(4, 'RSTD'),
        4,
        ['DY[o] * (X[o] - MEAN[n]) * RSTD[n]', 'DY[o]'],
        [ins[0]!, ins[1]!, ins[3]!, ins[4]!].map((v) => v.b.gpu),
        [outs[1]!, outs[2]!].map((v) => v.b.gpu),
        N,
        C,
      );
      return;
    }
    case 'rmsnorm': {
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'X') + f(2, 'W') + f(3, 'Y', true) + f(4, 'RSTD', true),
          `var s = 0.0;
  ${EACH} { let x = X[o + c]; s += x * x; }
  let r = 1.0 / sqrt(wsum(s, lid) / f32(C) + pf(2u));
  ${EACH} { Y[o + c] = W[c] * (X[o + c] * r); }
  if (lid == 0u) { RSTD[row] = r; }`,
        ),
      );
      run(code, new Params().u32(N, C).f32(a['eps'] as number), [...ins, ...outs]);
      return;
    }
    case 'rmsnorm_backward': {
      // ins: dy, x, w, rstd; outs: dx, dw
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'DY') + f(2, 'X') + f(3, 'W') + f(4, 'RSTD') + f(5, 'DX', true),
          `let r = RSTD[row];
  var s = 0.0;
  ${EACH} { s += DY[o + c] * W[c] * X[o + c]; }
  let m = wsum(s, lid) / f32(C);
  ${EACH} {
    let d = r * (DY[o + c] * W[c] - X[o + c] * r * r * m);
    DX[o + c] = ${acc ? 'DX[o + c] + d' : 'd'};
  }`,
        ),
      );
      run(code, new Params().u32(N, C), [...ins, outs[0]!]);
      columnSums(
        ctx,
        'rmsnorm_backward:columns',
        f(1, 'DY') + f(2, 'X') + f(3, 'RSTD'),
        3,
        ['DY[o] * X[o] * RSTD[n]'],
        [ins[0]!, ins[1]!, ins[3]!].map((v) => v.b.gpu),
        [outs[1]!.b.gpu],
        N,
        C,
      );
      return;
    }
    case 'softmax': {
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'X') + f(2, 'Y', true),
          `var mx = -3.0e38;
  ${EACH} { mx = max(mx, X[o + c]); }
  let m = wmax(mx, lid);
  var s = 0.0;
  ${EACH} { s += exp(X[o + c] - m); }
  let t = wsum(s, lid);
  ${EACH} { Y[o + c] = exp(X[o + c] - m) / t; }`,
        ),
      );
      run(code, new Params().u32(N, C), [...ins, ...outs]);
      return;
    }
    case 'softmax_backward': {
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'Yv') + f(2, 'DY') + f(3, 'DX', true),
          `var s = 0.0;
  ${EACH} { s += Yv[o + c] * DY[o + c]; }
  let t = wsum(s, lid);
  ${EACH} { DX[o + c] = Yv[o + c] * (DY[o + c] - t); }`,
        ),
      );
      run(code, new Params().u32(N, C), [...ins, ...outs]);
      return;
    }
    case 'cross_entropy': {
      // a target outside [0, V) that is not ignoreIndex gives loss NaN (ref throws; a GPU kernel cannot)
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          f(1, 'X') + storage(2, 'TG', 'i32', false) + f(3, 'LOSS', true) + f(4, 'LSE', true),
          `var mx = -3.0e38;
  ${EACH} { mx = max(mx, X[o + c]); }
  let m = wmax(mx, lid);
  var s = 0.0;
  ${EACH} { s += exp(X[o + c] - m); }
  let l = m + log(wsum(s, lid));
  if (lid == 0u) {
    LSE[row] = l;
    let t = TG[row];
    if (t == pi(2u)) { LOSS[row] = 0.0; }
    else if (t < 0 || u32(t) >= C) { LOSS[row] = pf(3u); }
    else { LOSS[row] = l - X[o + u32(t)]; }
  }`,
        ),
      );
      const p = new Params()
        .u32(N, C)
        .i32((a['ignoreIndex'] as number | undefined) ?? -100)
        .f32(Number.NaN);
      run(code, p, [...ins, ...outs]);
      return;
    }
    case 'cross_entropy_backward':
    case 'cross_entropy_backward_inplace': {
      // out of place — ins: logits X, targets, lse, dloss; out: DX. In place — ins: targets, lse, dloss; out: the
      // logits X, overwritten by dlogits (each element read, then written, by one thread; one read_write binding, as
      // WebGPU allows no second binding of the same buffer in a dispatch)
      const inPlace = name === 'cross_entropy_backward_inplace';
      const code = wgsl(`${name}:${acc}`, () =>
        rowKernel(
          inPlace
            ? storage(1, 'TG', 'i32', false) + f(2, 'LSE') + f(3, 'DL') + f(4, 'X', true)
            : f(1, 'X') + storage(2, 'TG', 'i32', false) + f(3, 'LSE') + f(4, 'DL') + f(5, 'DX', true),
          `let t = TG[row];
  let ign = t == pi(2u);
  let g = DL[row];
  let L = LSE[row];
  ${EACH} {
    var d = g * exp(X[o + c] - L);
    if (i32(c) == t) { d -= g; }
    ${inPlace ? 'X' : 'DX'}[o + c] = select(d, 0.0, ign);
  }`,
        ),
      );
      run(code, new Params().u32(N, C).i32((a['ignoreIndex'] as number | undefined) ?? -100), [...ins, ...outs]);
      return;
    }
  }
  throw new Error(`webgpu norm: no kernel ${name}`);
}
