/**
 * Decode graphs: one KV-cached decode step (T = 1) recorded as the list of backend calls it makes, then replayed —
 * the idea of CUDA graphs and of llama.cpp's graph reuse. A decode step of a small model is ~70 kernel calls, and
 * building each one through the tensor layer (tensors, scopes, shape checks, dispatch) costs several microseconds of
 * JavaScript: at stories15M that was ~0.4–0.8 ms a token, 10–20 % of the step. A replay issues the same calls on the
 * same buffers with no tensor layer in between.
 *
 *   step A (position p)      recorded: every alloc, write, kernel call; runs as usual
 *   step B (position p + 1)  recorded again; its temporaries are kept (their frees deferred)
 *   compare A and B          same calls on the same buffers (temporaries matched by allocation order); a number
 *                            that differs is a position (an attribute, a view's length, a written position id):
 *                            it is replayed as B's value + (position − p − 1)·(B's − A's)
 *   replay (position q)      writes the new token ids, patches the positions, runs the calls; the logits land in a
 *                            fresh buffer the caller owns, as a plain forward's do
 *
 * Checks: a call that does not move is replayed through `Backend.runReplay` (unchecked; the same `inputs` array each
 * time, so a backend may capture it: wasm its WebAssembly calls, webgpu its dispatches); a call that moves is checked
 * once more at compile time, at the last position the graph may replay (the cache's capacity, the model's context),
 * and then replayed through `Backend.runUnchecked` — its checks are equalities and bounds on numbers affine in the
 * position, so what holds at B's position and at the last one holds in between. Backends without them get `run`.
 *
 * Bit-identical to the plain forward by construction (the same kernels on the same buffers), and checked by
 * test/decode_graph.test.ts. The graph lives on the KVCache it was recorded with (buffers replaced, rows dropped or a
 * reset dispose it) and is replayed only while the model's weights are the same tensors. Anything a recording cannot
 * replay (a host step or a read inside the forward, a temporary that outlives the step, a call sequence that differs
 * between A and B) leaves the plain forward in charge; after 3 failed recordings the cache stops trying.
 * `LLMTS_DECODE_GRAPH=0` turns graphs off (for comparisons).
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, View } from '../backend/backend.js';
import { validateKernelCall } from '../backend/validate.js';
import { Storage, Tensor, tidy } from '../tensor/tensor.js';

/** A buffer in a recorded call: one allocated during the step (by allocation order), or one that outlives it. */
type Ref = { tmp: number } | { buf: DeviceBuffer };

interface RecWrite {
  kind: 'write';
  ref: Ref;
  /** The data written (copied), or null when it was the step's token ids. */
  data: HostArray | null;
  offset: number | undefined;
}
interface RecRun {
  kind: 'run';
  name: string;
  inputs: { ref: Ref; shape: number[] }[];
  outputs: { ref: Ref; shape: number[] }[];
  attrs: Attrs | undefined;
}
type RecOp = RecWrite | RecRun;

/** What one recorded step saw. */
interface Recording {
  position: number;
  ops: RecOp[];
  /** Temporaries: the buffers allocated during the step, in order (length and dtype). */
  allocs: DeviceBuffer[];
  /** The temporaries whose frees were deferred (step B), by index. */
  deferred: Set<number>;
  /** Index of the result's buffer among the temporaries. */
  result: number;
  /** Why it cannot be replayed, when it cannot. */
  impure: string | null;
}

const METHODS = ['alloc', 'free', 'write', 'run', 'read', 'readSync', 'enqueueHost', 'sync'] as const;

/**
 * Run `fn` with `backend` recording: allocations numbered, frees of this step's buffers deferred (when `keep`),
 * writes and kernel calls listed. The shim is an own property on the backend object, removed afterwards.
 */
function record(
  backend: Backend,
  position: number,
  ids: Int32Array,
  keep: boolean,
  fn: () => Tensor,
): { rec: Recording; out: Tensor } {
  const rec: Recording = { position, ops: [], allocs: [], deferred: new Set(), result: -1, impure: null };
  const tmp = new Map<DeviceBuffer, number>();
  const ref = (buf: DeviceBuffer): Ref => {
    const i = tmp.get(buf);
    return i === undefined ? { buf } : { tmp: i };
  };
  const target = backend as unknown as Record<string, unknown>;
  const saved = METHODS.map((m) => [m, Object.hasOwn(target, m), target[m]] as const);
  const orig = Object.fromEntries(METHODS.map((m) => [m, target[m]])) as unknown as Backend;
  const impure = (what: string) => (rec.impure ??= what);
  // a backend's own buffers (tables, scratch) come and go inside its calls: not the step's business
  let inside = false;
  target.alloc = (length: number, dtype: DType): DeviceBuffer => {
    const buf = orig.alloc.call(backend, length, dtype);
    if (inside) return buf;
    tmp.set(buf, rec.allocs.length);
    rec.allocs.push(buf);
    return buf;
  };
  target.free = (buf: DeviceBuffer): void => {
    const i = inside ? undefined : tmp.get(buf);
    if (!inside && i === undefined) impure('a buffer made before the step was freed in it');
    if (keep && i !== undefined) rec.deferred.add(i);
    else orig.free.call(backend, buf);
  };
  target.write = (buf: DeviceBuffer, data: HostArray, offset?: number): void => {
    rec.ops.push({ kind: 'write', ref: ref(buf), data: data === ids ? null : data.slice(), offset });
    orig.write.call(backend, buf, data, offset);
  };
  target.run = (name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void => {
    const v = (x: View) => ({ ref: ref(x.buf), shape: [...x.shape] });
    rec.ops.push({ kind: 'run', name, inputs: inputs.map(v), outputs: outputs.map(v), attrs: attrs && { ...attrs } });
    inside = true;
    try {
      orig.run.call(backend, name, inputs, outputs, attrs);
    } finally {
      inside = false;
    }
  };
  for (const m of ['read', 'readSync', 'enqueueHost', 'sync'] as const) {
    const f = orig[m] as ((...a: unknown[]) => unknown) | undefined;
    if (f)
      target[m] = (...a: unknown[]) => {
        impure(`the forward called ${m} (a host step or a read)`);
        return f.apply(backend, a);
      };
  }
  let out: Tensor;
  try {
    out = tidy(fn);
  } catch (e) {
    // the step failed: nothing to replay; free what was deferred
    restore();
    for (const i of rec.deferred) orig.free.call(backend, rec.allocs[i]!);
    throw e;
  }
  restore();
  rec.result = tmp.get(out.buf) ?? -1;
  if (rec.result < 0) impure('the result is not a buffer of the step');
  return { rec, out };

  function restore() {
    for (const [m, own, f] of saved) {
      if (own) target[m] = f;
      else delete target[m];
    }
  }
}

/** A number at replay: B's value, or B's + steps·(B's − A's) for a position. */
type Num = number | { base: number; slope: number };

function diffNum(a: number, b: number): Num | null {
  if (a === b) return b;
  if (!Number.isInteger(a) || !Number.isInteger(b)) return null;
  return { base: b, slope: b - a };
}

function diffNums(a: readonly number[], b: readonly number[]): Num[] | null {
  if (a.length !== b.length) return null;
  const out: Num[] = [];
  for (let i = 0; i < a.length; i++) {
    const n = diffNum(a[i]!, b[i]!);
    if (n === null) return null;
    out.push(n);
  }
  return out;
}

const at = (n: Num, dp: number): number => (typeof n === 'number' ? n : n.base + dp * n.slope);
const positional = (ns: readonly Num[]) => ns.some((n) => typeof n !== 'number');

function sameRef(a: Ref, b: Ref): boolean {
  return 'tmp' in a ? 'tmp' in b && a.tmp === b.tmp : 'buf' in b && a.buf === b.buf;
}

/** Attributes of A and B: equal, or numbers (scalars, arrays) that move with the position. */
function diffAttrs(a: Attrs | undefined, b: Attrs | undefined): ((dp: number) => Attrs | undefined) | null {
  if (!a || !b) return a === b ? () => b : null;
  const ka = Object.keys(a),
    kb = Object.keys(b);
  if (ka.length !== kb.length) return null;
  const moving: [string, Num | Num[]][] = [];
  for (const k of kb) {
    const x = a[k],
      y = b[k];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') {
      const n = diffNum(x, y);
      if (n === null) return null;
      moving.push([k, n]);
    } else if (Array.isArray(x) && Array.isArray(y)) {
      const ns = diffNums(x as number[], y as number[]);
      if (ns === null) return null;
      if (positional(ns)) moving.push([k, ns]);
    } else return null;
  }
  if (moving.length === 0) return () => b;
  return (dp) => {
    const o: Record<string, Attrs[string]> = { ...b };
    for (const [k, n] of moving) o[k] = Array.isArray(n) ? n.map((x) => at(x, dp)) : at(n, dp);
    return o;
  };
}

/** One replayable call: given the steps since B, the token ids and the fresh result buffer. */
type Replay = (dp: number, ids: Int32Array, result: DeviceBuffer) => void;

/** The replay of B's calls (at most `maxDp` steps past B), or why A and B differ. */
function compile(backend: Backend, a: Recording, b: Recording, maxDp: number): Replay[] | string {
  if (a.ops.length !== b.ops.length) return `${a.ops.length} calls, then ${b.ops.length}`;
  if (a.allocs.length !== b.allocs.length) return `${a.allocs.length} temporaries, then ${b.allocs.length}`;
  if (a.result !== b.result) return 'the result is another temporary';
  for (let i = 0; i < b.allocs.length; i++) {
    const x = a.allocs[i]!,
      y = b.allocs[i]!;
    if (x.length !== y.length || x.dtype !== y.dtype) return `temporary ${i} changed size`;
    if (i !== b.result && !b.deferred.has(i)) return `temporary ${i} outlives the step`;
  }
  // a replay's buffer for a recorded one: the same, B's temporary, or (the result) the fresh buffer of that replay
  const bufOf = <R extends DeviceBuffer | null>(r: Ref, result: R): DeviceBuffer | R =>
    'buf' in r ? r.buf : r.tmp === b.result ? result : b.allocs[r.tmp]!;
  const fixed = (r: Ref): DeviceBuffer | null => bufOf(r, null);
  const out: Replay[] = [];
  for (let i = 0; i < b.ops.length; i++) {
    const x = a.ops[i]!,
      y = b.ops[i]!;
    if (x.kind !== y.kind) return `call ${i} differs`;
    if (y.kind === 'write') {
      const xw = x as RecWrite;
      if (!sameRef(xw.ref, y.ref) || xw.offset !== y.offset) return `write ${i} differs`;
      const r = y.ref;
      if (y.data === null) {
        if (xw.data !== null) return `write ${i}: token ids only once`;
        out.push((_, ids, res) => backend.write(bufOf(r, res), ids, y.offset));
        continue;
      }
      if (xw.data === null || xw.data.length !== y.data.length) return `write ${i} differs`;
      const ns = diffNums(Array.from(xw.data), Array.from(y.data));
      if (!ns) return `write ${i} differs`;
      const data = y.data;
      if (!positional(ns)) {
        out.push((_, __, res) => backend.write(bufOf(r, res), data, y.offset));
      } else {
        const cur = data.slice();
        out.push((dp, __, res) => {
          for (let k = 0; k < ns.length; k++) cur[k] = at(ns[k]!, dp);
          backend.write(bufOf(r, res), cur, y.offset);
        });
      }
      continue;
    }
    const xr = x as RecRun;
    if (xr.name !== y.name || xr.inputs.length !== y.inputs.length || xr.outputs.length !== y.outputs.length)
      return `call ${i} (${y.name}) differs`;
    const attrs = diffAttrs(xr.attrs, y.attrs);
    if (!attrs) return `call ${i} (${y.name}): attributes differ`;
    const views = (xs: RecRun['inputs'], ys: RecRun['inputs']) => {
      const r: { ref: Ref; shape: Num[] }[] = [];
      for (let k = 0; k < ys.length; k++) {
        if (!sameRef(xs[k]!.ref, ys[k]!.ref)) return null;
        const s = diffNums(xs[k]!.shape, ys[k]!.shape);
        if (!s) return null;
        r.push({ ref: ys[k]!.ref, shape: s });
      }
      return r;
    };
    const ins = views(xr.inputs, y.inputs),
      outs = views(xr.outputs, y.outputs);
    if (!ins || !outs) return `call ${i} (${y.name}): operands differ`;
    const name = y.name;
    const all = [...ins, ...outs];
    const moving = all.some((v) => positional(v.shape)) || attrs(0) !== attrs(1);
    const touchesResult = all.some((v) => fixed(v.ref) === null);
    if (!moving && !touchesResult) {
      const iv = ins.map((v) => ({ buf: fixed(v.ref)!, shape: v.shape as number[] }));
      const ov = outs.map((v) => ({ buf: fixed(v.ref)!, shape: v.shape as number[] }));
      const at0 = attrs(0);
      // unchanged since `run` accepted it in step B: replayed without the checks where the backend can
      if (backend.runReplay) out.push(() => backend.runReplay!(name, iv, ov, at0));
      else out.push(() => backend.run(name, iv, ov, at0));
    } else {
      const mk = (vs: typeof ins, dp: number, res: DeviceBuffer): View[] =>
        vs.map((v) => ({ buf: bufOf(v.ref, res), shape: v.shape.map((n) => at(n, dp)) }));
      // `run` checked it at B's position; checked here at the last one a replay may reach, it holds in between (the
      // checks are equalities and bounds on numbers affine in the position, sizes products of them): unchecked then
      let ok = false;
      if (backend.runUnchecked && maxDp >= 0) {
        try {
          const res = b.allocs[b.result]!;
          validateKernelCall(name, mk(ins, maxDp, res), mk(outs, maxDp, res), attrs(maxDp));
          ok = true;
        } catch {
          // not valid that far: checked at every replay
        }
      }
      const exec = ok ? backend.runUnchecked!.bind(backend) : backend.run.bind(backend);
      out.push((dp, _, res) => exec(name, mk(ins, dp, res), mk(outs, dp, res), attrs(dp)));
    }
  }
  return out;
}

/** The replayable step, owning B's temporaries (all but the result). */
class Graph {
  constructor(
    private readonly backend: Backend,
    private readonly calls: Replay[],
    private readonly owned: DeviceBuffer[],
    private readonly result: { length: number; dtype: DType; shape: readonly number[] },
    /** B's position. */
    readonly position: number,
    readonly batch: number,
    /** The last position it may replay (its calls that move with the position were checked up to it). */
    readonly maxPosition: number,
    /** The weights the recording read, to check that they are still the model's. */
    private readonly weights: readonly Tensor[],
  ) {}

  valid(weights: readonly Tensor[]): boolean {
    if (weights.length !== this.weights.length) return false;
    for (let i = 0; i < weights.length; i++) if (weights[i] !== this.weights[i] || weights[i]!.isDisposed) return false;
    return true;
  }

  replay(ids: Int32Array, position: number): Tensor {
    const r = this.result;
    const buf = this.backend.alloc(r.length, r.dtype);
    const out = new Tensor(new Storage(this.backend, buf), r.shape);
    const dp = position - this.position;
    for (const c of this.calls) c(dp, ids, buf);
    return out;
  }

  dispose(): void {
    for (const b of this.owned) this.backend.free(b);
    this.owned.length = 0;
  }
}

let enabled = (typeof process !== 'undefined' ? process.env?.LLMTS_DECODE_GRAPH : undefined) !== '0';

/** Turn decode graphs on or off for caches from now on (default on; LLMTS_DECODE_GRAPH=0 starts off). */
export function setDecodeGraphs(on: boolean): void {
  enabled = on;
}

/** What a KVCache holds for its decode graph: the last recording, the graph, the failures so far. */
export class DecodeGraphSlot {
  private last: Recording | null = null;
  private graph: Graph | null = null;
  private failures = 0;
  /** Why the last recording could not be replayed (tests, debugging). */
  lastFailure: string | null = null;

  /** Whether a replay is ready (tests, benchmarks). */
  get ready(): boolean {
    return this.graph !== null;
  }

  /**
   * One decode step of B rows at `position` (the cache's length before it): replayed when a graph is ready and
   * still valid, else run by `plain` (recorded while fewer than 3 recordings have failed). `weights`: the model's
   * weight tensors in a fixed order (the graph is dropped when they change). `maxPosition`: the last position this
   * cache may be asked to step at (its capacity, the model's context), past which a replay is never asked for.
   */
  step(
    backend: Backend,
    ids: Int32Array,
    B: number,
    position: number,
    maxPosition: number,
    weights: readonly Tensor[],
    plain: () => Tensor,
  ): { out: Tensor; replayed: boolean } {
    const g = this.graph;
    if (g) {
      if (position > g.maxPosition) return { out: plain(), replayed: false };
      if (g.batch === B && g.valid(weights)) return { out: g.replay(ids, position), replayed: true };
      this.drop();
    }
    if (this.failures >= 3 || !enabled) return { out: plain(), replayed: false };
    const prev = this.last;
    const keep = prev !== null && prev.position === position - 1;
    const { rec, out } = record(backend, position, ids, keep, plain);
    if (!keep) {
      this.last = rec.impure ? null : rec;
      if (rec.impure) this.fail(rec.impure);
      return { out, replayed: false };
    }
    this.last = null;
    const calls = rec.impure ?? compile(backend, prev, rec, maxPosition - position);
    if (typeof calls === 'string') {
      for (const i of rec.deferred) backend.free(rec.allocs[i]!);
      this.fail(calls);
      if (!rec.impure) this.last = { ...rec, deferred: new Set() }; // B may start the next pair
      return { out, replayed: false };
    }
    const owned = rec.allocs.filter((_, i) => i !== rec.result);
    const res = rec.allocs[rec.result]!;
    this.graph = new Graph(
      backend,
      calls,
      owned,
      { length: res.length, dtype: res.dtype, shape: [...out.shape] },
      position,
      B,
      maxPosition,
      weights,
    );
    return { out, replayed: false };
  }

  private fail(why: string): void {
    this.failures++;
    this.lastFailure = why;
  }

  /** Forget the graph (the cache's buffers or rows changed). */
  drop(): void {
    this.graph?.dispose();
    this.graph = null;
    this.last = null;
  }
}
