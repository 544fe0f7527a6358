/**
 * Kernel conformance: one suite, written once, run against every registered backend (src/backend/registry.ts), in
 * each of its test configurations: `ref` always; `wasm` with relaxed SIMD on 2 threads and plain SIMD128 on 1 thread
 * when it loads; the GPU-shaped `async-test` backend of ./async_backend.ts (no readSync, six kernels: the rest runs on
 * ref through its host-step fallback). A new backend joins by registering. Kernels run through `runKernel`
 * (src/backend/dispatch.ts), as the tensor layer calls them, and outputs come back through `await read`. Every kernel of
 * src/backend/kernels.ts gets random inputs from a seeded Rng, odd sizes (1, 5, 7, 33, 129…), broadcasts,
 * transposes, GQA attention with T < S, ignore-index cross-entropy. Each output is compared with the `ref` backend
 * run in float64 (the oracle), from the same float32-rounded inputs.
 *
 * The cases, the generator and the oracle are in ./conformance_cases.ts (shared with the WebGPU run in Chromium,
 * ./webgpu_browser.test.ts).
 *
 * Tolerance: |got − want| ≤ 1e-5·(|want| + rms(want)) per element, i.e. about 84 float32 ulps of the output's own
 * scale. float32 rounding gives ~√K·2⁻²⁴ typically and K·2⁻²⁴ at worst for a K-term reduction (K up to ~1000
 * here; exp/log polynomials are good to ~2 ulps); reordering (SIMD lanes, blocked k loops, threads) stays inside
 * that, and the largest error measured on any case is ~0.15 of the bound (CONFORMANCE_REPORT=1 prints each
 * case's fraction), while a wrong index or a missing term lands far outside it. Integer outputs, dropout
 * masks and ±Infinity must match exactly. Some cases are sized so the wasm backend splits them across threads.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { canRun } from '../src/backend/dispatch.js';
import { KERNELS } from '../src/backend/kernels.js';
import { registeredBackends } from '../src/backend/registry.js';
import './async_backend.js'; // registers the 'async-test' backend
import { Rng } from '../src/util/rng.js';
import { type Case, cases, f, generate, ref64, runOn, worst } from './conformance_cases.js';

// ---- backends under test ------------------------------------------------------------------------------------------

interface Candidate {
  label: string;
  make: () => Promise<Backend>;
  /** The backend declares every kernel (supports() must say so); others may fall back to ref. */
  complete: boolean;
}
const candidates: Candidate[] = registeredBackends().flatMap((e) =>
  (e.testConfigs ?? [{ label: e.name, opts: {} }]).map((t) => ({
    label: t.label,
    make: () => e.create(t.opts),
    complete: !!e.complete,
  })),
);

const ALL = cases();

describe('kernel catalogue', () => {
  it('every kernel has at least one conformance case', () => {
    const covered = new Set(ALL.map((c) => c.kernel));
    expect(KERNELS.filter((k) => !covered.has(k))).toEqual([]);
  });
});

for (const cand of candidates) {
  describe(`conformance: ${cand.label}`, () => {
    let be: Backend | null = null;
    let why = '';
    beforeAll(async () => {
      try {
        be = await cand.make();
      } catch (e) {
        why = (e as Error).message;
      }
    });
    afterAll(() => be?.dispose());

    // A backend that fails to start fails here (the kernels below are then skipped, saying why), unless
    // LLMTS_TEST_BACKENDS=ref asks for the oracle alone: then it is skipped too.
    it('initialises', (ctx) => {
      if (!be && cand.label !== 'ref' && process.env['LLMTS_TEST_BACKENDS'] === 'ref')
        ctx.skip(`${cand.label} unavailable (LLMTS_TEST_BACKENDS=ref): ${why}`);
      expect(be, `${cand.label} unavailable: ${why}`).not.toBeNull();
    });

    it(cand.complete ? 'supports every kernel' : 'runs every kernel (natively or on ref)', (ctx) => {
      if (!be) return ctx.skip(`${cand.label} unavailable: ${why}`);
      for (const k of KERNELS) expect(cand.complete ? be.supports(k) : canRun(be, k), k).toBe(true);
    });

    // a ragged batch, left-padded: each row's output equals that row run alone without padding (ref in float64)
    it.for([1, 6] as const)('padded attention = unpadded rows (T = %i per row beyond the prompt)', async (T, ctx) => {
      if (!be) return ctx.skip(`${cand.label} unavailable: ${why}`);
      const Hq = 4,
        Hkv = 2,
        D = 16,
        lens = [9, 4, 1], // real keys per row; the batch holds S = 9 positions, row b left-padded by 9 − lens[b]
        S = 9,
        B = lens.length,
        rng = new Rng(77 + T);
      const gen = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
      const q = gen(B * T * Hq * D),
        k = gen(B * S * Hkv * D),
        v = gen(B * S * Hkv * D);
      const rowStart = lens.map((n) => S - n);
      const qOffset = S - T; // the last T positions are queries (T = 1: a decode step)
      const pad: Case = {
        name: '',
        kernel: 'attention',
        inputs: [f([B, T, Hq, D]), f([B, S, Hkv, D]), f([B, S, Hkv, D])],
        outputs: [f([B, T, Hq, D]), f([B, Hq, T])],
        attrs: { scale: 0.25, rowStart, qOffset },
      };
      const [o] = await runOn(be, pad, [q, k, v], [null, null], false);
      for (let b = 0; b < B; b++) {
        const n = lens[b]!,
          s0 = rowStart[b]!,
          t0 = Math.max(0, s0 - qOffset); // query rows before t0 are padding themselves
        if (T - t0 <= 0) continue;
        const row: Case = {
          name: '',
          kernel: 'attention',
          inputs: [f([1, T - t0, Hq, D]), f([1, n, Hkv, D]), f([1, n, Hkv, D])],
          outputs: [f([1, T - t0, Hq, D]), f([1, Hq, T - t0])],
          attrs: { scale: 0.25 },
        };
        const part = (a: Float32Array, from: number, len: number) => a.slice(from, from + len);
        const [want] = await runOn(
          ref64,
          row,
          [
            part(q, (b * T + t0) * Hq * D, (T - t0) * Hq * D),
            part(k, (b * S + s0) * Hkv * D, n * Hkv * D),
            part(v, (b * S + s0) * Hkv * D, n * Hkv * D),
          ],
          [null, null],
          true,
        );
        const got = (o as Float32Array).slice((b * T + t0) * Hq * D, (b + 1) * T * Hq * D);
        const { ratio, at } = worst(got, want!, false);
        expect(ratio, `row ${b} at ${at}`).toBeLessThanOrEqual(1);
      }
    });

    it.for(ALL.map((c, i) => [c.name, i] as const))('%s', async ([, i], ctx) => {
      if (!be) return ctx.skip(`${cand.label} unavailable: ${why}`);
      const c = ALL[i]!;
      const rng = new Rng(1000 + i);
      let ins = c.inputs.map((s) => generate(s, rng));
      if (c.prep) ins = await c.prep(ins);
      const inits = c.outputs.map((s) => (s.gen ? generate(s, rng) : null));
      const want = await runOn(ref64, c, ins, inits, true);
      const got = await runOn(be, c, ins, inits, false);
      for (let k = 0; k < want.length; k++) {
        const { ratio, at } = worst(got[k]!, want[k]!, c.kernel === 'dropout');
        if (process.env.CONFORMANCE_REPORT)
          console.log(`[${cand.label}] ${c.name} out${k}: ${ratio.toFixed(3)} of tolerance`);
        expect(ratio, `output ${k} at ${at}: got ${got[k]![at]} want ${want[k]![at]}`).toBeLessThanOrEqual(1);
      }
    });
  });
}
