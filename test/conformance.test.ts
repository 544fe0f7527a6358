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
 * ./webgpu_browser.test.ts); the checks on one backend in ./conformance_suite.ts (shared with WebGPU in Node,
 * ./webgpu_node.test.ts).
 *
 * Tolerance: |got − want| ≤ 1e-5·(|want| + rms(want)) per element, i.e. about 84 float32 ulps of the output's own
 * scale. float32 rounding gives ~√K·2⁻²⁴ typically and K·2⁻²⁴ at worst for a K-term reduction (K up to ~1000
 * here; exp/log polynomials are good to ~2 ulps); reordering (SIMD lanes, blocked k loops, threads) stays inside
 * that, and the largest error measured on any case is ~0.15 of the bound (CONFORMANCE_REPORT=1 prints each
 * case's fraction), while a wrong index or a missing term lands far outside it. Integer outputs, dropout
 * masks and ±Infinity must match exactly. Some cases are sized so the wasm backend splits them across threads.
 */
import { describe, it, expect } from 'vitest';
import { KERNELS } from '../src/backend/kernels.js';
import { registeredBackends } from '../src/backend/registry.js';
import './async_backend.js'; // registers the 'async-test' backend
import { cases } from './conformance_cases.js';
import { type Candidate, describeConformance } from './conformance_suite.js';

// ---- backends under test ------------------------------------------------------------------------------------------

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

for (const cand of candidates) describeConformance(cand);
