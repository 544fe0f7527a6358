/**
 * In Chromium: the kernel conformance cases (../conformance_cases.ts) on the webgpu backend, each compared with ref
 * in float64 exactly as test/conformance.test.ts does in Node (same seeds: case i draws from Rng(1000 + i)).
 * Results go to window.__webgpu for test/webgpu_browser.test.ts to judge. `?kernels=a,b` runs only those kernels (a quick check while developing).
 */
import { createWebGpuBackend } from '../../src/backend/webgpu/backend.js';
import { cases, compareCase } from '../conformance_cases.js';

export interface CaseResult {
  name: string;
  kernel: string;
  native: boolean;
  /** Per output: largest error as a fraction of the tolerance (≤ 1 passes), and where, got and want there. */
  outputs: { ratio: number; at: number; got: number; want: number }[];
  error?: string;
}

export interface WebGpuPageResult {
  done: boolean;
  error?: string;
  describe: string;
  results: CaseResult[];
  dispatches: number;
  hostSteps: number;
  ms: number;
}

const state: WebGpuPageResult = { done: false, describe: '', results: [], dispatches: 0, hostSteps: 0, ms: 0 };
(window as unknown as { __webgpu: WebGpuPageResult }).__webgpu = state;

async function main(): Promise<void> {
  const t0 = performance.now();
  const only = new URLSearchParams(location.search).get('kernels')?.split(',');
  const be = await createWebGpuBackend();
  state.describe = be.describe();
  const all = cases();
  for (let i = 0; i < all.length; i++) {
    const c = all[i]!;
    if (only && !only.includes(c.kernel)) continue;
    const native = be.supports(
      c.kernel,
      c.inputs.map((s) => s.dtype ?? 'f32'),
    );
    const r: CaseResult = { name: c.name, kernel: c.kernel, native, outputs: [] };
    try {
      r.outputs = await compareCase(be, c, i);
    } catch (e) {
      r.error = (e as Error).message;
    }
    state.results.push(r);
  }
  state.dispatches = be.stats().dispatches;
  state.hostSteps = be.counts.hostSteps;
  be.dispose();
  state.ms = Math.round(performance.now() - t0);
}

main()
  .catch((e: unknown) => {
    state.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  })
  .finally(() => {
    state.done = true;
  });
