/**
 * The register-blocked matmul of src/backend/webgpu/matmul_tiled.ts (4×4 outputs a thread in 64×64 blocks, and 8×8
 * in 128×128) against ref in float64, at the conformance tolerance (./conformance_cases.ts): every layout (NN, NT,
 * TN, TT), sides that end inside a block and inside a k step (M, N, K not multiples of the block or the step), K
 * smaller than one step, several blocks each way, bias, accumulate, alpha, batches with both operands batched and with
 * a shared one. Each case also runs on the 32×32 kernel (tiledMatmul.min = Infinity), which must pass the same check.
 *
 * Skipped where Node finds no WebGPU adapter (as ./webgpu_node.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Attrs } from '../src/backend/backend.js';
import { tiledMatmul } from '../src/backend/webgpu/matmul.js';
import { Rng } from '../src/util/rng.js';
import { type Case, f, generate, ref64, runOn, worst } from './conformance_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu matmul');
const be = await gpu.make();

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

/**
 * Case `c` (inputs from Rng(seed)) against ref in float64, once under each kernel selection in `settings` (each
 * assigned to tiledMatmul for the run, then undone): every one within the conformance tolerance.
 */
async function check(c: Case, seed: number, settings: Partial<typeof tiledMatmul>[]): Promise<void> {
  const rng = new Rng(seed);
  const ins = c.inputs.map((s) => generate(s, rng));
  const inits = c.outputs.map((s) => (s.gen ? generate(s, rng) : null));
  const want = await runOn(ref64, c, ins, inits, true);
  const before = { ...tiledMatmul };
  for (const k of settings) {
    Object.assign(tiledMatmul, k);
    try {
      const got = await runOn(be!, c, ins, inits, false);
      const w = worst(got[0]!, want[0]!, false);
      expect(w.ratio, `${JSON.stringify(k)}, at ${w.at}: ${got[0]![w.at]} vs ${want[0]![w.at]}`).toBeLessThanOrEqual(1);
    } finally {
      Object.assign(tiledMatmul, before);
    }
  }
}

describe('webgpu register-blocked matmul', () => {
  it('every shape here takes the register-blocked kernel', () => {
    for (const [, , M, N] of shapes) expect(Math.min(M, N)).toBeGreaterThan(tiledMatmul.min);
  });

  it.for(cases.map((c, i) => [c.name, i] as const))(
    '%s: ref within tolerance (4×4 and 8×8 a thread, and the 32×32 kernel)',
    async ([, i], ctx) => {
      if (!be) return ctx.skip(gpu.why);
      await check(cases[i]!, 7000 + i, [
        { big: Number.POSITIVE_INFINITY }, // 4×4 a thread
        { big: 0 }, // 8×8 a thread
        { min: Number.POSITIVE_INFINITY }, // the 32×32 kernel
      ]);
    },
  );
});

describe('webgpu matrix-vector x·Wᵀ', () => {
  it.for(gemvCases.map((c, i) => [c.name, i] as const))(
    '%s: ref within tolerance (matrix-vector and 32×32 kernels)',
    async ([, i], ctx) => {
      if (!be) return ctx.skip(gpu.why);
      await check(gemvCases[i]!, 8000 + i, [{}, { gemvRows: 0 }]);
    },
  );
});
