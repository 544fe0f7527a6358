/**
 * Captured kernel calls of the wasm backend (its `runReplay`, for a decode graph's unchanged calls:
 * src/model/decode_graph.ts). A kernel's TypeScript side turns views and attributes into WebAssembly calls —
 * pointers, strides, the thread split — which for the same call on the same buffers come out the same every time.
 * Capturing runs the kernel once with its exports and the worker pool's `run` recording their arguments; a replay
 * makes the recorded calls again and nothing else.
 *
 *   capture:  kernel(be, views, attrs) → [ export(args…) | pool.run(index, export, chunks) ]…   (and runs them)
 *   replay:   the same list, straight into WebAssembly
 *
 * Only a kernel that talks to memory through its exports alone can be captured: one that allocates, frees, reads or
 * writes memory from JavaScript (token id checks, the RoPE table, host-side sums and copies: every such path calls
 * `alloc`, `free`, `refreshViews` or `hostSide`) is marked `impure` and runs as usual on replay. A capture points at
 * the per-thread scratch, so it is valid for one `epoch` of it (./core.ts bumps the epoch when scratch is
 * reallocated); memory growth keeps every address.
 */
import type { KernelFn } from './pool.js';
import type { ExportName, WasmCore } from './core.js';

/** One recorded WebAssembly call: an export on the main thread, or a split across the pool. */
type Step =
  | { readonly pool: false; readonly f: KernelFn; readonly args: readonly number[] }
  | {
      readonly pool: true;
      readonly index: number;
      readonly f: KernelFn;
      readonly chunks: readonly (readonly number[])[];
    };

export interface WasmCapture {
  /** The scratch epoch it was captured in (./core.ts `epoch`). */
  readonly epoch: number;
  readonly steps: Step[];
  /** The kernel touched memory from JavaScript: not replayable. */
  impure: boolean;
}

/** A backend's recording exports (made once): each records its call into `be.capture`, then makes it. */
interface Recorder {
  fns: Record<ExportName, KernelFn>;
  /** The real export behind a recording one. */
  original: Map<KernelFn, KernelFn>;
}
const recorders = new WeakMap<WasmCore, Recorder>();

function recorder(be: WasmCore): Recorder {
  let r = recorders.get(be);
  if (r) return r;
  const original = new Map<KernelFn, KernelFn>();
  const fns = {} as Record<ExportName, KernelFn>;
  for (const [name, f] of Object.entries(be.fns) as [ExportName, KernelFn][]) {
    // size queries (…_scratch_bytes) change nothing: not worth repeating
    const w: KernelFn = name.endsWith('_scratch_bytes')
      ? f
      : (...args: number[]) => {
          be.capture?.steps.push({ pool: false, f, args });
          return f(...args);
        };
    original.set(w, f);
    fns[name] = w;
  }
  recorders.set(be, (r = { fns, original }));
  return r;
}

/** Run `kernel` on `be`, recording the WebAssembly calls it makes; they run as usual. */
export function captureKernel(be: WasmCore, kernel: () => void): WasmCapture {
  const cap: WasmCapture = { epoch: be.epoch, steps: [], impure: false };
  const { fns: recording, original } = recorder(be);
  const fns = be.fns;
  const pool = be.pool;
  const run = pool.run;
  const own = Object.hasOwn(pool, 'run');
  // an own property shadowing the pool's method while capturing, put back afterwards
  pool.run = (index: number, f: KernelFn, chunks: readonly (readonly number[])[]): void => {
    const real = original.get(f) ?? f;
    cap.steps.push({ pool: true, index, f: real, chunks: chunks.map((c) => c.slice()) });
    run.call(pool, index, real, chunks);
  };
  be.fns = recording;
  be.capture = cap;
  try {
    kernel();
  } finally {
    be.fns = fns;
    be.capture = null;
    if (own) pool.run = run;
    else delete (pool as { run?: unknown }).run;
  }
  // scratch reallocated while capturing: the calls before it point at the old scratch
  if (be.epoch !== cap.epoch) cap.impure = true;
  return cap;
}

/** Make a capture's calls again. */
export function replayKernel(be: WasmCore, cap: WasmCapture): void {
  const pool = be.pool;
  for (const s of cap.steps) {
    if (s.pool) pool.run(s.index, s.f, s.chunks);
    else s.f(...s.args);
  }
}
