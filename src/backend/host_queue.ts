/**
 * Ordering for a backend without `readSync` (a GPU): the `enqueueHost` half of the backend contract, reusable. While
 * no host step is pending, device operations (run, write, free) are issued at once; once a host step is scheduled,
 * later operations wait behind it in order, so a step sees every effect enqueued before it and none after. Reads
 * wait for the whole chain. The first error of a deferred operation or step is kept and rejects the next
 * `read`/`settled` (as a GPU reports errors asynchronously).
 *
 *   enqueueHost(step) { this.queue.host(() => step(this.io)); }
 *   run(...)          { validateKernelCall(...); this.queue.device(() => this.encode(...)); }
 *   write(b, data)    { const d = this.queue.pending ? data.slice() : data; this.queue.device(() => this.upload(b, d)); }
 *   read(b)           { return this.queue.after(() => this.download(b)); }
 *   sync()            { return this.queue.settled(); }
 */
export class HostStepQueue {
  private tail: Promise<void> | null = null;
  private failure: unknown = null;

  /** True while a host step (or work queued behind one) has not run yet: data a deferred op keeps must be copied. */
  get pending(): boolean {
    return this.tail !== null;
  }

  /** Issue `op` now when nothing is pending, else after what is pending. */
  device(op: () => void): void {
    if (!this.tail) {
      op();
      return;
    }
    this.chain(this.tail.then(() => this.guard(op)));
  }

  /** Schedule an asynchronous host step after everything enqueued so far. */
  host(step: () => Promise<void>): void {
    const prev = this.tail ?? Promise.resolve();
    this.chain(
      prev.then(async () => {
        try {
          await step();
        } catch (e) {
          this.failure ??= e;
        }
      }),
    );
  }

  /** `fn` after everything enqueued so far (a read); rejects with a kept error first. */
  async after<T>(fn: () => Promise<T>): Promise<T> {
    await this.settled();
    return fn();
  }

  /** Resolves when nothing is pending; rejects (once) with the first error a deferred operation or step threw. */
  async settled(): Promise<void> {
    while (this.tail) await this.tail;
    if (this.failure !== null) {
      const e = this.failure;
      this.failure = null;
      throw e;
    }
  }

  private guard(op: () => void): void {
    try {
      op();
    } catch (e) {
      this.failure ??= e;
    }
  }

  private chain(p: Promise<void>): void {
    this.tail = p;
    void p.then(() => {
      if (this.tail === p) this.tail = null;
    });
  }
}
