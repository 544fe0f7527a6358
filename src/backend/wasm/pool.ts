/**
 * Worker pool of the wasm backend: `threads − 1` worker_threads share the WebAssembly memory and the compiled
 * module with the main thread, which takes part in every split kernel itself.
 *
 * A job is a list of chunks (one argument list each, usually a few per thread). Dispatch goes through a command
 * block in a SharedArrayBuffer: the main thread writes the chunks' arguments, the kernel index and a ticket word
 * `count << 12 | next`, bumps the job counter and Atomics.notify's the workers; every thread (main included) then
 * takes chunks with Atomics.add on the ticket until `next ≥ count`, and counts finished chunks in `done`. Chunks
 * are taken dynamically, so a thread slowed by another process on its core simply takes fewer. A chunk index and
 * its job's count come from one atomic read, and a job's arguments stay untouched until all of its chunks are
 * done, so a worker waking late can never run a stale chunk. Every kernel's arguments end with (scratch, lo, hi);
 * the thread that runs a chunk puts its own scratch address in place of `scratch`. Both sides spin before sleeping (a
 * wake-up from Atomics.wait costs 50 µs to several hundred here; a spinning worker picks a job up in a few µs).
 *
 * `run` is synchronous: it returns when every chunk has finished. Node: workers are `node:worker_threads`
 * (unref'd, so an undisposed pool never keeps the process alive) and the main thread may Atomics.wait. Browser: workers
 * are module Web Workers, which need SharedArrayBuffer, i.e. a cross-origin-isolated page (COOP same-origin + COEP
 * require-corp); otherwise the pool runs on one thread and `note` says why. A page's main thread may not block, so
 * there it only spins on the done counter (kernels are short); in a Worker it may wait as in Node.
 */
import { BackendError } from '../../util/errors.js';

/** Word indices in the command block. */
const GEN = 0,
  TICKET = 1,
  DONE = 2,
  FN = 3,
  NARGS = 4,
  ERROR = 5,
  EXIT = 6;
/** Words 16.. hold each thread's scratch address (thread 0 = main). */
const SCRATCH = 16;
/** Most threads a pool runs (main included); a default thread count is capped to it. */
export const MAX_THREADS = 64;
const MAX_ARGS = 24;
const MAX_CHUNKS = 1024;
const ARGS_OFFSET = (SCRATCH + MAX_THREADS) * 4;
/**
 * Default milliseconds a worker spins for its next job before sleeping in Atomics.wait. A sleeping worker takes
 * 50 µs to several hundred to wake (bench/lab/pool-wake.mjs), longer than most decode kernels, so between the
 * kernels of a forward it keeps spinning, as OpenMP's threads do; after 2 ms without work it sleeps. Measured: a
 * tiny training step +5–14%, stories15M q8 decode +7–29% over sleeping at once.
 */
export const DEFAULT_SPIN_MS = 2;
/** Milliseconds the main thread spins for the workers' last chunks before it waits. */
const MAIN_SPIN_MS = 1;

const IS_NODE = typeof process !== 'undefined' && !!process.versions?.node;

type WorkerLike = {
  on(ev: string, fn: (m: unknown) => void): unknown;
  once(ev: string, fn: (m: unknown) => void): unknown;
  unref(): void;
  terminate(): Promise<number>;
};

export type KernelFn = (...args: number[]) => void;

export class WorkerPool {
  private readonly I: Int32Array;
  private readonly A: Float64Array;
  private disposed = false;
  /** Jobs dispatched to workers so far (tests check that big kernels really split). */
  dispatches = 0;
  /** Whether this thread may block in Atomics.wait (not a browser page's main thread). */
  private readonly mayWait = mainMayWait();

  private constructor(
    private readonly workers: WorkerLike[],
    ctl: ArrayBuffer | SharedArrayBuffer,
    private readonly errors: string[],
    /** Why the pool has fewer threads than asked for (e.g. "1 thread: page is not cross-origin isolated"), else null. */
    readonly note: string | null = null,
  ) {
    this.I = new Int32Array(ctl, 0, SCRATCH + MAX_THREADS);
    this.A = new Float64Array(ctl, ARGS_OFFSET);
  }

  /** Start `n` workers (n may be 0) on the given module and shared memory; idle workers spin `spinMs` before sleeping. */
  static async create(
    n: number,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    names: readonly string[],
    spinMs = DEFAULT_SPIN_MS,
  ): Promise<WorkerPool> {
    const ctlBytes = ARGS_OFFSET + MAX_CHUNKS * MAX_ARGS * 8;
    const ctl = typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(ctlBytes) : new ArrayBuffer(ctlBytes);
    const workers: WorkerLike[] = [];
    if (n + 1 > MAX_THREADS) throw new BackendError('E_CONFIG', `wasm pool: at most ${MAX_THREADS} threads`);
    const wt = n > 0 && IS_NODE ? await import('node:worker_threads').catch(() => null) : null;
    const missing = n === 0 || wt ? null : IS_NODE ? 'node:worker_threads is unavailable' : webThreadsMissing();
    if (missing) return new WorkerPool([], ctl, [], `1 thread: ${missing}`); // run on this thread only
    if (n > 0) {
      const url = new URL('./worker.js', import.meta.url);
      const ready: Promise<void>[] = [];
      for (let w = 0; w < n; w++) {
        const data = {
          module,
          memory,
          names,
          ctl,
          argsOffset: ARGS_OFFSET,
          maxArgs: MAX_ARGS,
          spin: spinMs,
          scratchWord: SCRATCH + w + 1,
        };
        const wk = wt ? new wt.Worker(url, { workerData: data }) : startWebWorker(data);
        ready.push(
          new Promise<void>((resolve, reject) => {
            wk.once('message', (m) =>
              m === 'ready' ? resolve() : reject(new BackendError('E_WORKER', `wasm worker: ${String(m)}`)),
            );
            wk.once('error', (e) =>
              reject(new BackendError('E_WORKER', `wasm worker failed to start: ${(e as Error).message}`)),
            );
          }),
        );
        workers.push(wk as unknown as WorkerLike);
      }
      try {
        await Promise.all(ready);
      } catch (e) {
        await Promise.all(workers.map((w) => w.terminate()));
        throw e;
      }
    }
    // listeners first, then unref (a 'message' listener added after unref() would keep the process alive)
    const errors: string[] = [];
    for (const w of workers) {
      w.on('message', (m) => {
        const e = (m as { error?: string } | null)?.error;
        if (e) errors.push(e);
      });
      w.unref();
    }
    return new WorkerPool(workers, ctl, errors);
  }

  /** Threads available to a kernel: the workers plus the main thread. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Scratch addresses per thread (index 0: the main thread). */
  setScratch(ptrs: readonly number[]): void {
    for (let t = 0; t < Math.min(ptrs.length, this.threads); t++) this.I[SCRATCH + t] = ptrs[t]! | 0;
  }

  /** Run kernel `index` (main-thread function `fn`) once per argument list, on all threads. Returns when all are done. */
  run(index: number, fn: KernelFn, chunks: readonly (readonly number[])[]): void {
    if (this.disposed) throw new BackendError('E_DISPOSED', 'wasm backend: used after dispose()');
    const n = chunks.length;
    if (n === 0) return;
    const own = this.I[SCRATCH]!;
    const withScratch = (c: readonly number[]): number[] => {
      const a = c.slice();
      a[a.length - 3] = own >>> 0;
      return a;
    };
    if (n === 1 || this.workers.length === 0) {
      for (const c of chunks) fn(...withScratch(c));
      return;
    }
    if (n > MAX_CHUNKS) throw new BackendError('E_INTERNAL', `wasm pool: ${n} chunks (max ${MAX_CHUNKS})`);
    const I = this.I,
      A = this.A;
    const na = chunks[0]!.length;
    if (na > MAX_ARGS) throw new BackendError('E_INTERNAL', `wasm pool: too many kernel arguments (${na})`);
    for (let c = 0; c < n; c++) {
      const args = chunks[c]!,
        base = c * MAX_ARGS;
      for (let i = 0; i < na; i++) A[base + i] = args[i]!;
    }
    I[FN] = index;
    I[NARGS] = na;
    Atomics.store(I, DONE, 0);
    Atomics.store(I, TICKET, n << 12);
    Atomics.add(I, GEN, 1);
    Atomics.notify(I, GEN);
    this.dispatches++;
    // the main thread takes chunks too
    let mainErr: unknown = null;
    for (;;) {
      const t = Atomics.add(I, TICKET, 1);
      const idx = t & 0xfff;
      if (idx >= n) break;
      try {
        fn(...withScratch(chunks[idx]!));
      } catch (e) {
        mainErr ??= e;
      }
      Atomics.add(I, DONE, 1);
    }
    // spin (reading the clock: a bare Atomics.load loop is hoisted by the optimiser), then wait in 50 ms slices
    let d = Atomics.load(I, DONE);
    const t0 = performance.now();
    while (d !== n) {
      if (this.mayWait && performance.now() - t0 > MAIN_SPIN_MS) Atomics.wait(I, DONE, d, 50);
      d = Atomics.load(I, DONE);
    }
    if (Atomics.load(I, ERROR) !== 0) {
      Atomics.store(I, ERROR, 0);
      mainErr ??= new BackendError(
        'E_WORKER',
        `wasm worker failed in a kernel${this.errors.length ? `: ${this.errors.join('; ')}` : ''}`,
      );
    }
    if (mainErr) throw mainErr;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.I, EXIT, 1);
    Atomics.add(this.I, GEN, 1);
    Atomics.notify(this.I, GEN);
    for (const w of this.workers) void w.terminate();
  }
}

/** Why Web Workers cannot share this page's memory, or null when they can. */
function webThreadsMissing(): string | null {
  if (typeof Worker !== 'function') return 'no Web Workers here';
  if (!globalThis.crossOriginIsolated)
    return 'page is not cross-origin isolated; serve it with COOP same-origin + COEP require-corp';
  if (typeof SharedArrayBuffer !== 'function') return 'no SharedArrayBuffer here';
  return null;
}

/** A module Web Worker running ./worker.js; its first message carries what Node passes as workerData. */
function startWebWorker(data: Record<string, unknown>): WorkerLike {
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const wrap = (ev: string, fn: (m: unknown) => void) => (e: Event) =>
    fn(
      ev === 'message' ? (e as MessageEvent).data : new Error((e as ErrorEvent).message || 'worker.js failed to load'),
    );
  w.postMessage(data);
  return {
    on: (ev, fn) => w.addEventListener(ev, wrap(ev, fn)),
    once: (ev, fn) => w.addEventListener(ev, wrap(ev, fn), { once: true }),
    unref: () => {},
    terminate: async () => {
      w.terminate();
      return 0;
    },
  };
}

/** False on a browser page's main thread, where Atomics.wait throws. */
function mainMayWait(): boolean {
  if (typeof SharedArrayBuffer !== 'function') return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}
