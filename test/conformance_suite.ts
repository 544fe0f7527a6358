/**
 * The per-backend half of the kernel conformance suite (./conformance.test.ts says what it checks and to what
 * tolerance): one describe block for one backend, so a backend whose instance is made elsewhere (WebGPU in Node,
 * ./webgpu_node.test.ts) runs the same checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { canRun } from '../src/backend/dispatch.js';
import { KERNELS } from '../src/backend/kernels.js';
import { Rng } from '../src/util/rng.js';
import { type Case, cases, compareCase, f, ref64, runOn, worst } from './conformance_cases.js';

export interface Candidate {
  label: string;
  make: () => Promise<Backend>;
  /** The backend declares every kernel (supports() must say so); others may fall back to ref. */
  complete: boolean;
  /** Skip, with this reason, rather than fail when make() throws (the "initialises" check says why). */
  optional?: boolean;
}

const ALL = cases();

/** Every conformance check on one backend. */
export function describeConformance(cand: Candidate): void {
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
    // LLMTS_TEST_BACKENDS=ref asks for the oracle alone, or the candidate is optional: then it is skipped too.
    it('initialises', (ctx) => {
      if (!be && cand.label !== 'ref' && process.env['LLMTS_TEST_BACKENDS'] === 'ref')
        ctx.skip(`${cand.label} unavailable (LLMTS_TEST_BACKENDS=ref): ${why}`);
      if (!be && cand.optional) return ctx.skip(`${cand.label} unavailable: ${why}`);
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
      for (const [k, { ratio, at, got, want }] of (await compareCase(be, c, i)).entries()) {
        if (process.env.CONFORMANCE_REPORT)
          console.log(`[${cand.label}] ${c.name} out${k}: ${ratio.toFixed(3)} of tolerance`);
        expect(ratio, `output ${k} at ${at}: got ${got} want ${want}`).toBeLessThanOrEqual(1);
      }
    });
  });
}
