/**
 * WGSL the webgpu matmul kernels share (./matmul.ts's 32×32, ./matmul_tiled.ts, ./matmul_gemv.ts): the bindings
 * (A, B, an optional BIAS, O), the parameter block's reading (M, N, K, then the batch strides of A, B and O times the
 * grid's z, then alpha) and the write of one output, out = alpha·sum (+ out) (+ bias).
 */
import { storage } from './core.js';

/** Bindings 1… : A, B, BIAS when `bias`, O. */
export const matmulBindings = (bias: boolean): string =>
  `${storage(1, 'A', 'f32', false)}${storage(2, 'B', 'f32', false)}${bias ? storage(3, 'BIAS', 'f32', false) : ''}${storage(bias ? 4 : 3, 'O', 'f32', true)}`;

/** WGSL: M, N, K and this batch's element offsets (expects `wid`, the workgroup id). */
export const MATMUL_PARAMS = `let M = pu(0u);
  let N = pu(1u);
  let K = pu(2u);
  let aOff = wid.z * pu(3u);
  let bOff = wid.z * pu(4u);
  let oOff = wid.z * pu(5u);`;

/** WGSL: O[oOff + i·N + j] = alpha·`sum` (+ what O held, with `accumulate`) (+ BIAS[j], with `bias`). */
export const storeOutput = (sum: string, bias: boolean, accumulate: boolean): string => `let o = oOff + i * N + j;
        var v = pf(6u) * ${sum};
        ${accumulate ? 'v += O[o];' : ''}
        ${bias ? 'v += BIAS[j];' : ''}
        O[o] = v;`;
