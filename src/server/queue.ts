/**
 * The generation queue: which requests use the model now, and in what order the others get their turn (first come,
 * first served), as llama-server's slots.
 *
 * Two kinds of job:
 *   - a generation (chat and text completions: `{ slot: true }`) takes one of `parallel` slots; generations in slots
 *     run together, their decode steps batched (src/generate/step_batcher.ts), as llama-server's `--parallel`;
 *   - anything else that runs the model (embeddings, inspection, Compare, switching the model) runs alone: it waits
 *     for the slots to empty, and no generation starts while it runs.
 * The queue is served in order: a job that cannot start yet (no free slot; or, for one that runs alone, a slot in
 * use) waits, and so does every job behind it.
 *
 * Bounds (each answered in OpenAI's error shape by the server):
 *   - at most `maxQueue` requests wait; one more is refused at once: 429 (queue full);
 *   - a request that waits longer than `maxWaitMs` gives up: 503 (busy), with Retry-After;
 *   - after `close()`, new requests and those still waiting get 503 (shutting down).
 * A waiting request whose client goes away (its signal aborts) leaves the queue without running.
 */
import { ConfigError } from '../util/errors.js';
import { HttpError } from './routes.js';

export interface QueueOptions {
  /** Requests that may wait for a turn (default 16; 0: none wait, only those that start at once run). */
  maxQueue?: number;
  /** Longest wait for a turn, in ms (default 120 000). */
  maxWaitMs?: number;
  /** Generations that run at once, their decode steps batched (default 1). */
  parallel?: number;
}

/** How a job uses the model. */
export interface JobKind {
  /** A generation: takes one of the `parallel` slots (else the job runs alone). */
  slot?: boolean;
}

interface Waiter {
  slot: boolean;
  start(): void;
  fail(e: Error): void;
}

/** The queue's numbers, for /health and the tests. */
export interface QueueStats {
  /** Jobs running now (generations in slots, or the one job that runs alone). */
  active: number;
  /** Requests waiting for their turn. */
  waiting: number;
  /** Requests refused because the queue was full (429). */
  refused: number;
  /** Requests that gave up waiting (503). */
  timedOut: number;
  /** Slots: generations that may run at once. */
  parallel: number;
}

export class GenerationQueue {
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  readonly parallel: number;
  /** Generations running in slots. */
  private slots = 0;
  /** A job that runs alone is running. */
  private alone = false;
  private closed = false;
  private readonly waiters: Waiter[] = [];
  private refused = 0;
  private timedOut = 0;

  constructor(o: QueueOptions = {}) {
    this.maxQueue = o.maxQueue ?? 16;
    this.maxWaitMs = o.maxWaitMs ?? 120_000;
    this.parallel = o.parallel ?? 1;
    if (!Number.isInteger(this.parallel) || this.parallel < 1)
      throw new ConfigError('parallel', `expected an integer ≥ 1, got ${String(o.parallel)}`);
  }

  get stats(): QueueStats {
    return {
      active: this.alone ? 1 : this.slots,
      waiting: this.waiters.length,
      refused: this.refused,
      timedOut: this.timedOut,
      parallel: this.parallel,
    };
  }

  /**
   * Run `job` when it is this request's turn. Rejects at once with HttpError 429 when the queue is full, 503 when
   * closed; later with 503 when the wait is too long, or with the signal's reason when the client leaves first.
   */
  async run<T>(signal: AbortSignal, job: () => Promise<T>, kind: JobKind = {}): Promise<T> {
    if (this.closed) throw shuttingDown();
    signal.throwIfAborted();
    const slot = kind.slot === true;
    if (this.waiters.length === 0 && this.fits(slot)) this.take(slot);
    else {
      if (this.waiters.length >= this.maxQueue) {
        this.refused++;
        throw new HttpError(
          429,
          `the server is busy: ${this.waiters.length} requests are already waiting (--max-queue ${this.maxQueue}); retry later`,
          'rate_limit_error',
          null,
          'queue_full',
        );
      }
      await this.wait(signal, slot); // taken for it by the job that hands over
    }
    try {
      return await job();
    } finally {
      if (slot) this.slots--;
      else this.alone = false;
      this.dispatch();
    }
  }

  /** Whether a job of this kind could start now. */
  private fits(slot: boolean): boolean {
    return !this.alone && (slot ? this.slots < this.parallel : this.slots === 0);
  }

  private take(slot: boolean): void {
    if (slot) this.slots++;
    else this.alone = true;
  }

  /** Start the waiting jobs from the head while they fit. */
  private dispatch(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.slot)) {
      const w = this.waiters.shift()!;
      this.take(w.slot);
      w.start();
    }
  }

  /** Wait until dispatch() starts it (its turn taken for it), the wait times out, or the client leaves. */
  private wait(signal: AbortSignal, slot: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const leave = (e: Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        this.dispatch(); // the one that left may have held back those behind it
        reject(e);
      };
      const onAbort = () => leave(signal.reason as Error);
      const w: Waiter = {
        slot,
        start: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: leave,
      };
      const timer = setTimeout(() => {
        this.timedOut++;
        leave(
          new HttpError(
            503,
            `the server is busy: no turn within ${Math.round(this.maxWaitMs / 1000)} s; retry later`,
            'server_error',
            null,
            'server_busy',
          ),
        );
      }, this.maxWaitMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  /** Refuse new requests and those waiting (503); the running ones finish (or are aborted by their owners). */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.fail(shuttingDown());
  }
}

function shuttingDown(): HttpError {
  return new HttpError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
}
