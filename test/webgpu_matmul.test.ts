/**
 * The register-blocked matmul of src/backend/webgpu/matmul_tiled.ts (4×4 outputs a thread in 64×64 blocks, and 8×8
 * in 128×128) against ref in float64, at the conformance tolerance (./conformance_cases.ts): every layout (NN, NT,
 * TN, TT), sides that end inside a block and inside a k step (M, N, K not multiples of the block or the step), K
 * smaller than one step, several blocks each way, bias, accumulate, alpha, batches with both operands batched and with
 * a shared one. Each case also runs on the 32×32 kernel (tiledMatmul.min = Infinity), which must pass the same check.
 *
 * Skipped where Node finds no WebGPU adapter (as ./webgpu_node.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Attrs } from '../src/backend/backend.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { createWebGpuBackend } from '../src/backend/webgpu/backend.js';
import { tiledMatmul } from '../src/backend/webgpu/matmul.js';
import { Rng } from '../src/util/rng.js';
import { type Case, f, generate, ref64, runOn, worst } from './conformance_cases.js';

let be: WebGpuBackend | null = null;
let why = '';
try {
  be = await createWebGpuBackend();
} catch (e) {
  why = (e as Error).message;
}
afterAll(() => be?.dispose());

// [batch of a (0: none), batch of b (0: none), M, N, K, transA, transB, bias, accumulate, alpha]
type Shape = [number, number, number, number, number, boolean, boolean, boolean, boolean, number];
const shapes: Shape[] = [
  [0, 0, 65, 97, 33, false, false, false, false, 1], // one past a block each way, K 2 steps + 1
  [0, 0, 130, 70, 200, false, true, false, false, 1], // NT (x·Wᵀ, a linear layer's forward)
  [0, 0, 100, 129, 47, true, false, false, false, 1], // TN (Xᵀ·dY, a weight's gradient)
  [0, 0, 64, 64, 16, true, true, false, false, 1], // exactly one block, one k step
  [0, 0, 40, 50, 5, false, false, false, false, 1], // K under one step
  [0, 0, 96, 80, 64, false, true, true, false, 1], // bias
  [0, 0, 70, 33, 31, false, false, false, true, 0.5], // accumulate onto out, alpha
  [3, 3, 45, 66, 20, false, false, false, false, 1], // batched a and b
  [2, 0, 77, 40, 24, false, true, true, false, 1], // a batched against one b (attention-like, and a shared weight)
  [0, 4, 36, 90, 18, true, false, false, true, 2], // one a against batched b, accumulate
  [0, 0, 260, 300, 21, false, true, false, false, 1], // past two 128-blocks each way
];

function caseOf([ba, bb, M, N, K, tA, tB, bias, acc, alpha]: Shape): Case {
  const batch = Math.max(ba, bb, 1);
  const lead = (b: number) => (b ? [b] : []);
  const outLead = ba || bb ? [batch] : [];
  const attrs: Attrs = { transA: tA, transB: tB, accumulate: acc, alpha };
  return {
    name: `matmul ${ba ? `${ba}×` : ''}${tA ? 'Aᵀ' : 'A'} ${bb ? `${bb}×` : ''}${tB ? 'Bᵀ' : 'B'} M${M} N${N} K${K}${bias ? ' bias' : ''}${acc ? ' accumulate' : ''}${alpha !== 1 ? ` alpha ${alpha}` : ''}`,
    kernel: 'matmul',
    inputs: [
      f([...lead(ba), ...(tA ? [K, M] : [M, K])]),
      f([...lead(bb), ...(tB ? [N, K] : [K, N])]),
      ...(bias ? [f([N])] : []),
    ],
    outputs: [acc ? f([...outLead, M, N], 'normal') : f([...outLead, M, N])],
    attrs,
  };
}

// x·Wᵀ for a few rows (decode): the matrix-vector kernel (src/backend/webgpu/matmul_gemv.ts), K not a multiple of
// its 32 lanes, N not of its 8 columns a workgroup
const gemvShapes: Shape[] = [
  [0, 0, 1, 77, 100, false, true, false, false, 1],
  [0, 0, 2, 9, 31, false, true, true, false, 1], // bias, K under one lane sweep
  [0, 0, 4, 300, 65, false, true, false, true, 0.5], // accumulate, alpha
  [0, 0, 3, 1000, 288, false, true, true, true, 1],
  [2, 2, 1, 40, 48, false, true, false, false, 1], // batched x and W
  [2, 0, 4, 33, 16, false, true, false, false, 1], // batched x, one W
];

const cases = shapes.map(caseOf);
const gemvCases = gemvShapes.map(caseOf);

describe('webgpu register-blocked matmul', () => {
  it('every shape here takes the register-blocked kernel', () => {
    for (const [, , M, N] of shapes) expect(Math.min(M, N)).toBeGreaterThan(tiledMatmul.min);
  });

  it.for(cases.map((c, i) => [c.name, i] as const))(
    '%s: ref within tolerance (4×4 and 8×8 a thread, and the 32×32 kernel)',
    async ([, i], ctx) => {
      if (!be) return ctx.skip(why);
      const c = cases[i]!;
      const rng = new Rng(7000 + i);
      const ins = c.inputs.map((s) => generate(s, rng));
      const inits = c.outputs.map((s) => (s.gen ? generate(s, rng) : null));
      const want = await runOn(ref64, c, ins, inits, true);
      const before = { ...tiledMatmul };
      const kernels = [
        { min: before.min, big: Number.POSITIVE_INFINITY }, // 4×4 a thread
        { min: before.min, big: 0 }, // 8×8 a thread
        { min: Number.POSITIVE_INFINITY, big: 0 }, // the 32×32 kernel
      ];
      for (const k of kernels) {
        Object.assign(tiledMatmul, k);
        try {
          const got = await runOn(be, c, ins, inits, false);
          const w = worst(got[0]!, want[0]!, false);
          expect(
            w.ratio,
            `${JSON.stringify(k)}, at ${w.at}: ${got[0]![w.at]} vs ${want[0]![w.at]}`,
          ).toBeLessThanOrEqual(1);
        } finally {
          Object.assign(tiledMatmul, before);
        }
      }
    },
  );
});

describe('webgpu matrix-vector x·Wᵀ', () => {
  it.for(gemvCases.map((c, i) => [c.name, i] as const))(
    '%s: ref within tolerance (matrix-vector and 32×32 kernels)',
    async ([, i], ctx) => {
      if (!be) return ctx.skip(why);
      const c = gemvCases[i]!;
      const rng = new Rng(8000 + i);
      const ins = c.inputs.map((s) => generate(s, rng));
      const inits = c.outputs.map((s) => (s.gen ? generate(s, rng) : null));
      const want = await runOn(ref64, c, ins, inits, true);
      const before = { ...tiledMatmul };
      for (const gemvRows of [before.gemvRows, 0]) {
        tiledMatmul.gemvRows = gemvRows;
        try {
          const got = await runOn(be, c, ins, inits, false);
          const w = worst(got[0]!, want[0]!, false);
          expect(
            w.ratio,
            `gemvRows ${gemvRows}, at ${w.at}: ${got[0]![w.at]} vs ${want[0]![w.at]}`,
          ).toBeLessThanOrEqual(1);
        } finally {
          Object.assign(tiledMatmul, before);
        }
      }
    },
  );
});
