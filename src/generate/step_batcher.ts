/**
 * Continuous batching (vLLM's, llama-server's parallel slots): generations that began at different times share
 * their decode steps. Each generation runs the ordinary engine loop (./engine.ts) on a *lane*, a DecoderModel that
 * stands for the model; a lane's one-token step (B = 1, T = 1, with its cache) is held until the other decoding
 * lanes reach theirs, then one `decodeRows` forward serves them all — every weight read once for the batch, which is what a
 * memory-bound decode step costs — and each lane gets its own row of the logits back.
 *
 *   lane A  prefill ─ step ─┐        ┌─ sample ─ step ─┐
 *   lane B      prefill ─ step ─ decodeRows (A, B, C) ─ sample ─ step ─ decodeRows …
 *   lane C          step ───┘        └─ sample ─ step ─┘
 *
 * A step is held until every lane that is decoding has one pending (or has left, or turned to a prefill), or
 * `maxWaitMs` has passed since the first one came (a lane busy elsewhere: a slow client), then the pending ones run.
 * A lane that has not stepped yet (a new request prefilling: `prefillChunk` lets the others step between its chunks)
 * is not waited for. Anything else — a prefill, a speculative verification, a batch of rows, a model without
 * `decodeRows` or too small to gain (`minStepWeights`), a lane alone — runs at once, as the model itself would.
 * Each row reads its own cache at its own position, so a lane's tokens are those it would draw alone, up to float
 * rounding (the batched matmul may sum in another order than the one-row product).
 *
 * A held step's logits are a `LogitsTensor` with `settle()`: the engine awaits it before sampling, then samples the
 * row where it lives (the `sample` kernel) as it does any step's.
 */
import { ConfigError } from '../util/errors.js';
import { slice } from '../tensor/ops.js';
import { noGrad, Tensor, tidy } from '../tensor/tensor.js';
import type { DecoderCache, DecoderModel, LogitsTensor } from './interfaces.js';

/** A model that can run one decode step of many independent one-row caches (CausalLM.decodeRows). */
export interface RowDecoder<C extends DecoderCache = DecoderCache> extends DecoderModel<C> {
  /** ids (B,): row b's next token, fed through caches[b] (one row each) → logits (B, 1, V); each cache advances. */
  decodeRows(ids: Int32Array, caches: readonly C[]): LogitsTensor;
}

export interface StepBatcherOptions {
  /** Longest hold of a step waiting for the other lanes, in ms (default 2). */
  maxWaitMs?: number;
  /**
   * Batch only the steps of models that read at least this many weights a decode step (default 2,000,000, estimated
   * from the config as 12·L·C² + V·C). Below it a step costs mostly JavaScript, not weight reads, and the one-row
   * step (a replayed decode graph) is as fast as a row of a batched one: the lanes then step one by one.
   */
  minStepWeights?: number;
}

/** What the batcher did (the server's /health, the tests, the bench). */
export interface StepBatcherStats {
  /** Lanes open now. */
  lanes: number;
  /** decodeRows forwards run (held steps, by batch). */
  batches: number;
  /** Rows in them, in all: rows / batches is the mean batch. */
  rows: number;
  /** The largest batch. */
  maxRows: number;
  /** Steps that ran at once, alone (a lane alone, a prefill, a verification). */
  direct: number;
  /** Batches that ran when maxWaitMs was up, not every decoding lane having come. */
  timedOut: number;
}

interface Held<C> {
  model: RowDecoder<C & DecoderCache>;
  id: number;
  cache: C;
  resolve(t: LogitsTensor): void;
  reject(e: unknown): void;
}

/** The shared decode steps of a server's generations. One per served model at a time is enough; it holds no memory. */
export class StepBatcher {
  readonly maxWaitMs: number;
  readonly minStepWeights: number;
  private open = 0;
  /** Open lanes that step one token at a time now: the ones a held step waits for. */
  private stepping = 0;
  private held: Held<unknown>[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushQueued = false;
  private readonly counts = { batches: 0, rows: 0, maxRows: 0, direct: 0, timedOut: 0 };

  constructor(o: StepBatcherOptions = {}) {
    this.maxWaitMs = o.maxWaitMs ?? 2;
    if (!(this.maxWaitMs >= 0)) throw new ConfigError('maxWaitMs', `expected a number ≥ 0, got ${String(o.maxWaitMs)}`);
    this.minStepWeights = o.minStepWeights ?? 2e6;
  }

  get stats(): StepBatcherStats {
    return { lanes: this.open, ...this.counts };
  }

  /**
   * A lane for one generation on `model`: pass it to the engine in place of the model, and `close()` it when the
   * generation is over (a lane left open holds the others' steps up to `maxWaitMs` each).
   */
  lane<C extends DecoderCache>(model: DecoderModel<C>): Lane<C> {
    this.open++;
    let closed = false;
    // decoding one token a step (counted in `stepping`); false before its first step and while it prefills
    let stepping = false;
    const batcher = this;
    const setStepping = (on: boolean) => {
      if (on === stepping) return;
      stepping = on;
      batcher.stepping += on ? 1 : -1;
    };
    const batchable =
      typeof (model as Partial<RowDecoder<C>>).decodeRows === 'function' && stepWeights(model) >= this.minStepWeights;
    return {
      config: model.config,
      newCache: (batch, maxLen, rowStart) => model.newCache(batch, maxLen, rowStart),
      forward(ids, B, T, opts) {
        const cache = opts?.cache;
        if (closed) throw new ConfigError('lane', 'this lane was closed');
        const step = cache !== undefined && B === 1 && T === 1;
        setStepping(step);
        if (!batchable || !step || batcher.open < 2) {
          batcher.counts.direct++;
          const out = model.forward(ids, B, T, opts);
          if (!step) batcher.maybeFlush(); // the others need not wait for this one's next step
          return out;
        }
        return batcher.hold(model as RowDecoder<C>, ids[0]!, cache);
      },
      close() {
        if (closed) return;
        closed = true;
        setStepping(false);
        batcher.open--;
        batcher.maybeFlush();
      },
    };
  }

  /** A step held for the batch: its logits once the batch has run. */
  private hold<C extends DecoderCache>(model: RowDecoder<C>, id: number, cache: C): LogitsTensor {
    let settled: LogitsTensor | null = null;
    let disposed = false,
      taken = false; // settle() hands the logits over: their new owner frees them
    const result = new Promise<LogitsTensor>((resolve, reject) =>
      this.held.push({ model, id, cache, resolve, reject } as Held<unknown>),
    ).then((t) => {
      if (disposed) t.dispose();
      return (settled = t);
    });
    result.catch(() => {}); // its owner sees the error when it settles
    this.maybeFlush();
    return {
      settle: () => {
        taken = true;
        return result;
      },
      data: async () => (await result).data(),
      dispose() {
        if (taken || disposed) return;
        disposed = true;
        settled?.dispose();
      },
    };
  }

  /** Run the held steps now if every stepping lane has one; else within maxWaitMs. */
  private maybeFlush(): void {
    if (this.held.length === 0) return;
    if (this.held.length >= this.stepping) {
      if (!this.flushQueued) {
        this.flushQueued = true;
        // outside the caller's tensor scope, and after the event loop's turn: a lane that never yields between its
        // tokens (no signal) still lets new lanes in
        if (typeof setImmediate === 'function') setImmediate(() => this.flush());
        else queueMicrotask(() => this.flush());
      }
      return;
    }
    this.timer ??= setTimeout(() => {
      this.counts.timedOut++;
      this.flush();
    }, this.maxWaitMs);
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const held = this.held;
    this.held = [];
    // one forward per model (a server serves one; a switch waits for the lanes to close)
    const byModel = new Map<unknown, Held<DecoderCache>[]>();
    for (const h of held as Held<DecoderCache>[]) {
      const g = byModel.get(h.model);
      if (g) g.push(h);
      else byModel.set(h.model, [h]);
    }
    for (const group of byModel.values()) void this.runGroup(group);
  }

  private async runGroup(group: Held<DecoderCache>[]): Promise<void> {
    const model = group[0]!.model;
    let logits: LogitsTensor;
    try {
      const ids = Int32Array.from(group, (h) => h.id);
      logits = noGrad(() =>
        tidy(() =>
          model.decodeRows(
            ids,
            group.map((h) => h.cache),
          ),
        ),
      );
    } catch {
      // one row's bad step (a full cache, the context's end) must not fail the others: each runs alone, and a row
      // that fails gets its own error
      for (const h of group) {
        try {
          this.counts.direct++;
          h.resolve(noGrad(() => tidy(() => model.forward(Int32Array.of(h.id), 1, 1, { cache: h.cache }))));
        } catch (e) {
          h.reject(e);
        }
      }
      return;
    }
    this.counts.batches++;
    this.counts.rows += group.length;
    this.counts.maxRows = Math.max(this.counts.maxRows, group.length);
    const V = model.config.vocabSize;
    try {
      for (let b = 0; b < group.length; b++) {
        try {
          group[b]!.resolve(await rowOf(logits, b, V));
        } catch (e) {
          group[b]!.reject(e);
        }
      }
    } finally {
      logits.dispose();
    }
  }
}

/** One generation's stand-in for the model (StepBatcher.lane). */
export interface Lane<C extends DecoderCache = DecoderCache> extends DecoderModel<C> {
  /** The generation is over: its steps no longer hold the others'. */
  close(): void;
}

/** Weights a decode step reads, estimated from the config (12·L·C² + V·C); Infinity when it does not say. */
export function stepWeights(model: DecoderModel): number {
  const c = model.config as { vocabSize: number; hiddenSize?: number; numLayers?: number };
  if (!c.hiddenSize || !c.numLayers) return Infinity;
  return 12 * c.numLayers * c.hiddenSize ** 2 + c.vocabSize * c.hiddenSize;
}

/** Row b of logits (B, 1, V) as logits of its own: a (1, 1, V) tensor where they live (sampled there), else a copy. */
async function rowOf(logits: LogitsTensor, b: number, V: number): Promise<LogitsTensor> {
  if (logits instanceof Tensor) return noGrad(() => slice(logits, [b, 0, 0], [1, 1, V]));
  const all = await logits.data();
  const row = Float32Array.from({ length: V }, (_, i) => all[b * V + i]!);
  return { data: async () => row, dispose() {} };
}
