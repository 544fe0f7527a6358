/**
 * The generation queue: the model runs one request at a time (one KV-cached decoding loop on one backend; the
 * backend's threads already work on each forward), so requests wait their turn here, first come first served, as in
 * llama-server with one slot.
 *
 * Bounds (each answered in OpenAI's error shape by the server):
 *   - at most `maxQueue` requests wait behind the running one; one more is refused at once: 429 (queue full);
 *   - a request that waits longer than `maxWaitMs` gives up: 503 (busy), with Retry-After;
 *   - after `close()`, new requests and those still waiting get 503 (shutting down).
 * A waiting request whose client goes away (its signal aborts) leaves the queue without running.
 */
import { HttpError } from './routes.js';

export interface QueueOptions {
  /** Requests that may wait behind the running one (default 16; 0: only the running one). */
  maxQueue?: number;
  /** Longest wait for a turn, in ms (default 120 000). */
  maxWaitMs?: number;
}

interface Waiter {
  start(): void;
  fail(e: Error): void;
}

/** The queue's numbers, for /health and the tests. */
export interface QueueStats {
  /** 1 while a request generates, else 0. */
  active: number;
  /** Requests waiting for their turn. */
  waiting: number;
  /** Requests refused because the queue was full (429). */
  refused: number;
  /** Requests that gave up waiting (503). */
  timedOut: number;
}

export class GenerationQueue {
  readonly maxQueue: number;
  readonly maxWaitMs: number;
  private running = false;
  private closed = false;
  private readonly waiters: Waiter[] = [];
  private refused = 0;
  private timedOut = 0;

  constructor(o: QueueOptions = {}) {
    this.maxQueue = o.maxQueue ?? 16;
    this.maxWaitMs = o.maxWaitMs ?? 120_000;
  }

  get stats(): QueueStats {
    return {
      active: this.running ? 1 : 0,
      waiting: this.waiters.length,
      refused: this.refused,
      timedOut: this.timedOut,
    };
  }

  /**
   * Run `job` when it is this request's turn. Rejects at once with HttpError 429 when the queue is full, 503 when
   * closed; later with 503 when the wait is too long, or with the signal's reason when the client leaves first.
   */
  async run<T>(signal: AbortSignal, job: () => Promise<T>): Promise<T> {
    if (this.closed) throw shuttingDown();
    signal.throwIfAborted();
    if (this.running) {
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
      await this.wait(signal); // the request before hands its turn over: `running` stays true
    } else this.running = true;
    try {
      return await job();
    } finally {
      const next = this.waiters.shift();
      if (next) next.start();
      else this.running = false;
    }
  }

  /** Wait until the running request hands over (it calls start()), the wait times out, or the client leaves. */
  private wait(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const leave = (e: Error) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(e);
      };
      const onAbort = () => leave(signal.reason as Error);
      const w: Waiter = {
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

  /** Refuse new requests and those waiting (503); the running one finishes (or is aborted by its owner). */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.fail(shuttingDown());
  }
}

function shuttingDown(): HttpError {
  return new HttpError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
}
