/**
 * The `wasm` backend: every kernel of ../kernels.ts as WebAssembly SIMD (AssemblyScript in ./assembly/, built into
 * build/ by scripts/build-wasm.mjs), on all cores. Tensors live in one shared WebAssembly.Memory (up to 4 GiB)
 * through a TypeScript-side allocator (./allocator.ts); big kernels are split across a worker pool (./pool.ts)
 * that shares the memory and the compiled module, the main thread taking a share.
 *
 *   const be = await createWasmBackend({ threads: 2 });   // threads: workers + main (default: all cores)
 *   be.describe()  // "wasm (relaxed SIMD FMA, 2 threads)"
 *
 * This file joins the parts: memory and dispatch (./core.ts) and the kernel tables, grouped as in ./assembly/*.ts
 * (./elementwise.ts, ./movement.ts, ./reduce.ts, ./matmul.ts, ./norm.ts, ./attention.ts, ./sample.ts). Every call
 * is checked against ../signatures.ts (../validate.ts) before a kernel sees it.
 *
 * `run` is synchronous (returns when the kernel is done); in a browser this backend must live in a Worker.
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, View } from '../backend.js';
import { validateKernelCall } from '../validate.js';
import { BackendError, ConfigError } from '../../util/errors.js';
import { loadKernels, type Variant } from './loader.js';
import { MAX_THREADS, WorkerPool } from './pool.js';
import { EXPORTS, HEAP_BASE, MAX_PAGES, PAGE, SCRATCH_BYTES, WasmCore, type WasmKernel } from './core.js';
import { ELEMENTWISE } from './elementwise.js';
import { MOVEMENT } from './movement.js';
import { REDUCE } from './reduce.js';
import { MATMUL } from './matmul.js';
import { NORM } from './norm.js';
import { ATTENTION } from './attention.js';
import { captureKernel, replayKernel, type WasmCapture } from './capture.js';
import { SAMPLE } from './sample.js';

export { WasmBuffer } from './core.js';

export interface WasmBackendOptions {
  /** Threads, the main thread included (default: os.availableParallelism() in Node, navigator.hardwareConcurrency in a browser). 1 = no workers. */
  threads?: number;
  /** Kernel variant: 'auto' (relaxed SIMD where accepted, default), 'relaxed' or 'simd'. */
  variant?: Variant | 'auto';
  /** Initial memory in MiB (it grows as needed up to 4 GiB). */
  initialMiB?: number;
  /**
   * Milliseconds an idle worker thread spins for the next kernel before it sleeps (default 2: waking a sleeping
   * thread costs more than most decode kernels take). 0 = sleep at once (less CPU burnt while idle, slower).
   */
  spinMs?: number;
}

/** Every kernel the backend has, by catalogue name. */
const KERNEL_TABLE: Readonly<Record<string, WasmKernel>> = {
  ...ELEMENTWISE,
  ...MOVEMENT,
  ...REDUCE,
  ...MATMUL,
  ...NORM,
  ...ATTENTION,
  ...SAMPLE,
};

export class WasmBackend extends WasmCore implements Backend {
  readonly name = 'wasm';
  readonly dtypes: readonly DType[] = ['f32', 'i32'];
  /** runReplay's captures, by the caller's inputs array (dropped with it). */
  private readonly captured = new WeakMap<readonly View[], WasmCapture>();

  /** Kernels split across worker threads so far. */
  get parallelDispatches(): number {
    return this.pool.dispatches;
  }

  describe(): string {
    const v = this.variant === 'relaxed' ? 'relaxed SIMD FMA' : 'SIMD128 mul+add';
    return `wasm (${v}, ${this.pool.note ?? `${this.threads} thread${this.threads > 1 ? 's' : ''}`})`;
  }

  read(buf: DeviceBuffer): Promise<HostArray> {
    try {
      return Promise.resolve(this.readSync(buf));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  memory(): { inUse: number; peak: number; limit: number } {
    return { inUse: this.heap.inUse, peak: this.heap.peak, limit: MAX_PAGES * PAGE - HEAP_BASE };
  }

  /** Bytes of WebAssembly memory currently committed. */
  committedBytes(): number {
    return this.mem.buffer.byteLength;
  }

  /** Every kernel, for f32 and i32 operands (no f64). */
  supports(name: string, dtypes?: readonly DType[]): boolean {
    return name in KERNEL_TABLE && (!dtypes || dtypes.every((d) => d === 'f32' || d === 'i32'));
  }

  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void {
    this.live();
    const k = KERNEL_TABLE[name];
    if (!k) throw new BackendError('E_KERNEL', `wasm backend has no kernel '${name}'`);
    validateKernelCall(name, inputs, outputs, attrs);
    k(this, inputs, outputs, attrs);
  }

  /**
   * `run` for a call identical to one `run` accepted, issued again with the same `inputs` array (a decode graph's
   * unchanged calls): the first time its WebAssembly calls are captured (./capture.ts), later times made again
   * straight from the capture, nothing converted or checked. A kernel that uses memory from JavaScript, or a capture
   * older than the scratch, runs as `runUnchecked`.
   */
  runReplay(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void {
    this.live();
    const k = KERNEL_TABLE[name]!;
    const c = this.captured.get(inputs);
    if (c && c.epoch === this.epoch) {
      if (c.impure) k(this, inputs, outputs, attrs);
      else replayKernel(this, c);
      return;
    }
    this.captured.set(
      inputs,
      captureKernel(this, () => k(this, inputs, outputs, attrs)),
    );
  }

  /** `run` without `validateKernelCall`, for a call its caller has checked (a decode graph's moving calls). */
  runUnchecked(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void {
    this.live();
    KERNEL_TABLE[name]!(this, inputs, outputs, attrs);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.dispose();
  }
}

/** Create the wasm backend: compile the kernels, allocate the shared memory, start the worker pool. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  let threads = opts.threads;
  if (threads === undefined) {
    // Node: the cores it may use; a browser (or Deno, Bun): navigator.hardwareConcurrency
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    const os = isNode ? await import('node:os').catch(() => null) : null;
    threads = Math.min(
      MAX_THREADS,
      os ? (os.availableParallelism?.() ?? os.cpus().length) : (globalThis.navigator?.hardwareConcurrency ?? 1),
    );
  }
  if (!Number.isInteger(threads) || threads < 1)
    throw new ConfigError('threads', `must be a positive integer, got ${threads}`);
  if (opts.spinMs !== undefined && !(opts.spinMs >= 0 && opts.spinMs < Infinity))
    throw new ConfigError('spinMs', `must be a number of milliseconds ≥ 0, got ${opts.spinMs}`);
  const { module, variant } = await loadKernels(opts.variant ?? 'auto');
  const initialMiB = opts.initialMiB ?? 16;
  const initial = Math.max(2, Math.ceil((initialMiB * 2 ** 20) / PAGE) + Math.ceil((threads * SCRATCH_BYTES) / PAGE));
  const memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort: () => {
        throw new BackendError('E_WASM_ABORT', 'wasm kernel aborted');
      },
    },
  });
  const pool = await WorkerPool.create(threads - 1, module, memory, EXPORTS, opts.spinMs);
  return new WasmBackend(memory, instance, pool, variant);
}
