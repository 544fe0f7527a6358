/**
 * Worker pool of the wasm backend: `threads − 1` worker_threads share the WebAssembly memory and the compiled
 * module with the main thread, which does a share of every split kernel itself. Dispatch goes through a command
 * block in a SharedArrayBuffer — one 512-byte slot per worker (sequence number, done flag, kernel index, float64
 * arguments) — with Atomics.notify/Atomics.wait, after a brief spin on both sides (a wake-up from Atomics.wait
 * costs ~57 µs here, a spinning waiter ~10 µs).
 *
 * `run` is synchronous: it returns when every part has finished. That suits Node (the main thread may
 * Atomics.wait); in a browser the backend must run in a Worker, since a page's main thread may not block.
 * Workers are unref'd, so an undisposed pool never keeps the process alive.
 */
import { BackendError } from '../../util/errors.js';

const SLOT_BYTES = 512;
const MAX_ARGS = (SLOT_BYTES - 64) / 8;
/** Spin iterations before sleeping: worker waiting for work, main thread waiting for workers. */
const WORKER_SPIN = 20000;
const MAIN_SPIN = 200000;

type WorkerLike = {
  on(ev: string, fn: (m: unknown) => void): unknown;
  once(ev: string, fn: (m: unknown) => void): unknown;
  unref(): void;
  terminate(): Promise<number>;
};

export type KernelFn = (...args: number[]) => void;

export class WorkerPool {
  private readonly I: Int32Array;
  private readonly A: Float64Array[];
  private gen = 0;
  /** Kernels dispatched to workers so far (tests check that big kernels really split). */
  dispatches = 0;
  private errors: string[] = [];
  private disposed = false;

  private constructor(private readonly workers: WorkerLike[], ctl: SharedArrayBuffer) {
    this.I = new Int32Array(ctl);
    this.A = workers.map((_, w) => new Float64Array(ctl, w * SLOT_BYTES + 64, MAX_ARGS));
    workers.forEach((wk) => {
      wk.on('message', (m) => {
        const e = (m as { error?: string }).error;
        if (e) this.errors.push(e);
      });
    });
  }

  /** Start `n` workers (n may be 0) on the given module and shared memory. */
  static async create(n: number, module: WebAssembly.Module, memory: WebAssembly.Memory, names: readonly string[]): Promise<WorkerPool> {
    const ctl = new SharedArrayBuffer(Math.max(1, n) * SLOT_BYTES);
    const workers: WorkerLike[] = [];
    if (n > 0) {
      const { Worker } = await import('node:worker_threads');
      const url = new URL('./worker.js', import.meta.url);
      const ready: Promise<void>[] = [];
      for (let w = 0; w < n; w++) {
        const wk = new Worker(url, {
          workerData: { module, memory, names, ctl, slotBytes: SLOT_BYTES, slot: w, spin: WORKER_SPIN },
        });
        ready.push(
          new Promise<void>((resolve, reject) => {
            wk.once('message', (m) => (m === 'ready' ? resolve() : reject(new BackendError('E_WORKER', `wasm worker: ${String(m)}`))));
            wk.once('error', (e) => reject(new BackendError('E_WORKER', `wasm worker failed to start: ${(e as Error).message}`)));
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
      for (const w of workers) w.unref();
    }
    return new WorkerPool(workers, ctl);
  }

  /** Threads available to a kernel: the workers plus the main thread. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Run kernel `index` (main-thread function `fn`) once per argument list: list 0 on the main thread, list t on
   * worker t − 1. Returns when all are done.
   */
  run(index: number, fn: KernelFn, parts: readonly (readonly number[])[]): void {
    if (this.disposed) throw new BackendError('E_DISPOSED', 'wasm backend: used after dispose()');
    const nw = parts.length - 1;
    if (nw > this.workers.length) throw new BackendError('E_INTERNAL', `wasm pool: ${parts.length} parts for ${this.threads} threads`);
    const gen = ++this.gen | 0;
    if (nw > 0) this.dispatches++;
    const I = this.I;
    for (let w = 0; w < nw; w++) {
      const args = parts[w + 1]!;
      if (args.length > MAX_ARGS) throw new BackendError('E_INTERNAL', `wasm pool: too many kernel arguments (${args.length})`);
      const base = (w * SLOT_BYTES) >> 2;
      const A = this.A[w]!;
      for (let i = 0; i < args.length; i++) A[i] = args[i]!;
      I[base + 2] = index;
      I[base + 3] = args.length;
      Atomics.store(I, base, gen);
      Atomics.notify(I, base, 1);
    }
    let mainErr: unknown = null;
    try {
      fn(...parts[0]!);
    } catch (e) {
      mainErr = e;
    }
    for (let w = 0; w < nw; w++) {
      const at = ((w * SLOT_BYTES) >> 2) + 1;
      let n = 0;
      let d = Atomics.load(I, at);
      while (d !== gen) {
        if (++n > MAIN_SPIN) {
          Atomics.wait(I, at, d, 50);
          n = MAIN_SPIN - 1000;
        }
        d = Atomics.load(I, at);
      }
      if (I[at + 3] !== 0) {
        I[at + 3] = 0;
        mainErr ??= new BackendError('E_WORKER', `wasm worker ${w} failed in a kernel${this.errors.length ? `: ${this.errors.join('; ')}` : ''}`);
      }
    }
    if (mainErr) throw mainErr;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const gen = ++this.gen | 0;
    for (let w = 0; w < this.workers.length; w++) {
      const base = (w * SLOT_BYTES) >> 2;
      this.I[base + 2] = -1;
      Atomics.store(this.I, base, gen);
      Atomics.notify(this.I, base, 1);
    }
    for (const w of this.workers) void w.terminate();
  }
}
