/**
 * The wasm backend's memory and dispatch, shared by its kernel files: one shared WebAssembly.Memory (up to 4 GiB)
 * managed by a TypeScript-side allocator (./allocator.ts), per-thread scratch, buffers (alloc, free, write, read),
 * and the helpers that split a kernel across the worker pool (./pool.ts). The kernels themselves are in
 * ./elementwise.ts, ./movement.ts, ./reduce.ts, ./matmul.ts, ./norm.ts, ./attention.ts and ./sample.ts (mirroring
 * ./assembly/*.ts); ./backend.ts joins them into the Backend.
 *
 * Shapes reaching a kernel have passed ../validate.ts; what stays here is wasm's own: a view must fit its buffer
 * (`p`), token ids must be inside the table (`checkIds`), memory grows in pages.
 */
import type { Attrs, DeviceBuffer, DType, HostArray, View } from '../backend.js';
import { BackendError, ConfigError, ShapeError } from '../../util/errors.js';
import { HeapAllocator } from './allocator.js';
import type { Variant } from './loader.js';
import type { WasmCapture } from './capture.js';
import type { KernelFn, WorkerPool } from './pool.js';
import { collapse, forEachOuter, splitRange } from './layout.js';

/** Kernel exports of the module, in the order the pool indexes them. */
export const EXPORTS = [
  'unary',
  'fill32',
  'cast',
  'binary',
  'swiglu_backward',
  'dropout',
  'adamw',
  'sum_to',
  'sum_f64',
  'strided_copy',
  'transpose2d',
  'embedding',
  'embedding_q8',
  'embedding_q4k',
  'embedding_bf16',
  'embedding_backward',
  'layernorm',
  'layernorm_backward',
  'layernorm_dw',
  'rmsnorm',
  'rmsnorm_backward',
  'rmsnorm_dw',
  'softmax',
  'softmax_backward',
  'cross_entropy',
  'cross_entropy_backward',
  'rope',
  'attention',
  'attention_backward',
  'matmul',
  'attention_scratch_bytes',
  'col_sum',
  'gemv_nt',
  'matmul_q8',
  'matmul_q4k',
  'matmul_bf16',
  'sample_row',
  'sample_scratch_bytes',
  'round_rows',
] as const;
export type ExportName = (typeof EXPORTS)[number];
export const EXPORT_INDEX = new Map<string, number>(EXPORTS.map((n, i) => [n, i]));

export const PAGE = 65536;
export const MAX_PAGES = 65536;
/** Bytes below this address belong to the module's static data. */
export const HEAP_BASE = PAGE;
/** Initial per-thread scratch: matmul needs 128 + 256·256·4 bytes. */
export const SCRATCH_BYTES = 1 << 20;
/** Chunks per thread of a split kernel (dynamic load balancing against the cost of each chunk). */
export const CHUNKS_PER_THREAD = 4;
/** Work (≈ flops or element-ops) below which a kernel stays on the main thread. */
export const MIN_PARALLEL_WORK = 1 << 18;
/** Weight bytes from which a gemv-shaped kernel is split across threads (measured: bench/lab/gemv-split.mjs). */
export const GEMV_PARALLEL_BYTES = 1 << 18;
/** Chunks the pool takes in one job. */
const MAX_POOL_CHUNKS = 1024;
/** float64 partial sums the `partials` buffer holds (sumsq, sum_all). */
export const PARTIALS = 1024;

export class WasmBuffer implements DeviceBuffer {
  readonly backend = 'wasm';
  freed = false;
  constructor(
    readonly length: number,
    readonly dtype: DType,
    readonly ptr: number,
    readonly bytes: number,
  ) {}
}

/** One kernel: the backend, its input and output views, its attributes (already validated). */
export type WasmKernel = (be: WasmCore, i: readonly View[], o: readonly View[], a: Attrs | undefined) => void;

/** A numeric attribute (booleans as 0/1), or its default; required when no default is given. */
export function num(a: Attrs | undefined, key: string, dflt?: number): number {
  const v = a?.[key];
  if (v === undefined) {
    if (dflt === undefined) throw new ConfigError(key, 'kernel attribute is required');
    return dflt;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'number') throw new ConfigError(key, `kernel attribute must be a number, got ${typeof v}`);
  return v;
}
export function flag(a: Attrs | undefined, key: string, dflt: boolean): boolean {
  const v = a?.[key];
  return v === undefined ? dflt : Boolean(v);
}
export function nums(a: Attrs | undefined, key: string): readonly number[] {
  const v = a?.[key];
  if (!Array.isArray(v)) throw new ConfigError(key, 'kernel attribute must be a number array');
  return v as readonly number[];
}
export function prod(s: readonly number[]): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

/** Memory, buffers and the thread split; the kernel files reach these members directly (package-internal). */
export class WasmCore {
  f32!: Float32Array;
  i32!: Int32Array;
  u8!: Uint8Array;
  /** The module's kernel exports (swapped for recording ones while a call is captured: ./capture.ts). */
  fns: Record<ExportName, KernelFn>;
  readonly heap: HeapAllocator;
  scratch: number[] = [];
  private scratchBytes = 0;
  /** float64 partial sums, one per chunk (sumsq, sum_all). */
  readonly partials: number;
  protected disposed = false;
  /** The kernel call being captured (./capture.ts), or null. */
  capture: WasmCapture | null = null;
  /** Bumped whenever the per-thread scratch moves: captured calls point at it (./capture.ts). */
  epoch = 0;
  /** The last rope cos/sin table (./attention.ts). */
  ropeTable: { key: string; rows: number; buf: WasmBuffer } | null = null;
  /** The sample kernel's exp table (2^(−j/256) as float64, copied from ref's), allocated on first use (./sample.ts). */
  expTablePtr = 0;
  /** The sample kernel's penalised copy of a row (allocated when penalties are first asked). */
  penaltyRow: WasmBuffer | null = null;

  constructor(
    readonly mem: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    readonly pool: WorkerPool,
    readonly variant: Variant,
  ) {
    this.fns = Object.fromEntries(EXPORTS.map((n) => [n, instance.exports[n] as KernelFn])) as Record<
      ExportName,
      KernelFn
    >;
    this.refreshViews();
    this.heap = new HeapAllocator(HEAP_BASE, MAX_PAGES * PAGE, (end) => this.ensureMemory(end));
    this.ensureScratch(SCRATCH_BYTES);
    this.partials = this.heap.alloc(8 * PARTIALS);
  }

  /** Threads a kernel may use (workers + main). */
  get threads(): number {
    return this.pool.threads;
  }

  // ---- memory ---------------------------------------------------------------------------------------------------

  /**
   * A kernel is about to use memory from JavaScript (views, allocation): a capture of it could not repeat that
   * (./capture.ts). Called by refreshViews, alloc and free; a kernel reading state kept on the host calls it itself.
   */
  hostSide(): void {
    if (this.capture) this.capture.impure = true;
  }

  refreshViews(): void {
    this.hostSide();
    const buf = this.mem.buffer;
    if (this.u8 && this.u8.buffer === buf && this.u8.byteLength === buf.byteLength) return;
    this.f32 = new Float32Array(buf);
    this.i32 = new Int32Array(buf);
    this.u8 = new Uint8Array(buf);
  }

  private ensureMemory(end: number): void {
    const have = this.mem.buffer.byteLength;
    if (end > have) {
      const needPages = Math.ceil((end - have) / PAGE);
      const curPages = have / PAGE;
      // grow by at least 1/8 of the current size to keep the number of grows small
      const pages = Math.min(MAX_PAGES - curPages, Math.max(needPages, Math.ceil(curPages / 8)));
      this.mem.grow(pages);
    }
    this.refreshViews();
  }

  ensureScratch(bytes: number): void {
    if (bytes <= this.scratchBytes && this.scratch.length === this.threads) return;
    const size = Math.max(bytes, this.scratchBytes);
    for (const p of this.scratch) this.heap.free(p, this.scratchBytes);
    this.scratch = [];
    this.epoch++;
    for (let t = 0; t < this.threads; t++) this.scratch.push(this.heap.alloc(size));
    this.scratchBytes = size;
    this.pool.setScratch(this.scratch);
  }

  alloc(length: number, dtype: DType): WasmBuffer {
    if (dtype !== 'f32' && dtype !== 'i32')
      throw new BackendError('E_DTYPE', `wasm backend stores f32 and i32, not ${dtype}`);
    if (!Number.isInteger(length) || length < 0)
      throw new ShapeError(`wasm backend: cannot allocate ${length} elements`);
    this.live();
    this.hostSide();
    const bytes = length * 4;
    const ptr = this.heap.alloc(bytes);
    return new WasmBuffer(length, dtype, ptr, bytes);
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf);
    this.hostSide();
    b.freed = true;
    this.heap.free(b.ptr, b.bytes);
  }

  write(buf: DeviceBuffer, data: HostArray, offset = 0): void {
    const b = this.own(buf);
    if (offset < 0 || offset + data.length > b.length) {
      throw new BackendError(
        'E_WRITE',
        `write of ${data.length} elements at ${offset} past the end of a buffer of ${b.length}`,
      );
    }
    this.refreshViews();
    const view = b.dtype === 'i32' ? this.i32 : this.f32;
    view.set(data, (b.ptr >>> 2) + offset);
  }

  readSync(buf: DeviceBuffer): HostArray {
    const b = this.own(buf);
    this.refreshViews();
    const s = b.ptr >>> 2;
    return b.dtype === 'i32' ? this.i32.slice(s, s + b.length) : this.f32.slice(s, s + b.length);
  }

  protected live(): void {
    if (this.disposed) throw new BackendError('E_DISPOSED', 'wasm backend: used after dispose()');
  }

  own(buf: DeviceBuffer): WasmBuffer {
    if (!(buf instanceof WasmBuffer))
      throw new BackendError('E_FOREIGN_BUFFER', `a ${buf.backend} buffer was passed to the wasm backend`);
    if (buf.freed) throw new BackendError('E_FREED', 'wasm backend: use of a freed buffer');
    return buf;
  }

  /** Address of a view's buffer, after checking its shape fits (memory safety: kernels trust the address). */
  p(v: View): number {
    const b = this.own(v.buf);
    const n = prod(v.shape);
    if (n > b.length)
      throw new ShapeError(`wasm backend: view of shape [${v.shape}] (${n} elements) on a buffer of ${b.length}`);
    return b.ptr;
  }

  /** Token ids at address p (n of them) must be in [0, V) (or equal `ignore`): kernels index tables with them. */
  checkIds(p: number, n: number, V: number, ignore: number | null, what: string): void {
    this.refreshViews();
    const ids = this.i32,
      base = p >>> 2;
    for (let k = 0; k < n; k++) {
      const id = ids[base + k]!;
      if ((id < 0 || id >= V) && id !== ignore)
        throw new ConfigError(what, `${id} at position ${k} is outside [0, ${V})`);
    }
  }

  // ---- dispatch -------------------------------------------------------------------------------------------------

  /**
   * Run `fn` over [0, n) split into chunks (cut at multiples of `align`) when `work` is big enough; `args(lo, hi,
   * scratch)` gives a chunk's full argument list, ending (scratch, lo, hi). Chunks are taken dynamically by the
   * threads (a few per thread), each with its own scratch.
   */
  par(
    fn: ExportName,
    n: number,
    work: number,
    align: number,
    args: (lo: number, hi: number, scratch: number) => number[],
    perThread = CHUNKS_PER_THREAD,
  ): void {
    const threads =
      work >= MIN_PARALLEL_WORK ? Math.min(this.threads, Math.max(1, Math.floor(work / (MIN_PARALLEL_WORK / 2)))) : 1;
    if (threads <= 1 || n <= align) {
      this.fns[fn](...args(0, n, this.scratch[0]!));
      return;
    }
    const ranges = splitRange(n, threads * perThread, align);
    this.pool.run(
      EXPORT_INDEX.get(fn)!,
      this.fns[fn],
      ranges.map(([lo, hi]) => args(lo, hi, 0)),
    );
  }

  /** Like `par` with args ending (scratch, lo, hi). */
  range(fn: ExportName, n: number, work: number, align: number, head: number[]): void {
    this.par(fn, n, work, align, (lo, hi, s) => [...head, s, lo, hi]);
  }

  /**
   * Run an elementwise kernel (args: head, scratch, lo, hi) over several tensors in one dispatch: each tensor's
   * range is cut into chunks of about total/(threads·CHUNKS_PER_THREAD) elements (multiples of 16), and all chunks
   * go to the pool together. `cost`: work per element. Returns the chunks in the order they were made.
   */
  multi(
    fn: ExportName,
    parts: readonly { n: number; head: number[] }[],
    cost: number,
    chunkArgs?: (c: number) => number[],
  ): number[][] {
    const total = parts.reduce((s, p) => s + p.n, 0);
    const threads = total * cost >= MIN_PARALLEL_WORK ? this.threads : 1;
    const target = threads > 1 ? Math.max(1024, Math.ceil(total / (threads * CHUNKS_PER_THREAD) / 16) * 16) : Infinity;
    const chunks: number[][] = [];
    for (const p of parts) {
      const pieces = p.n <= target ? 1 : Math.ceil(p.n / target);
      for (const [lo, hi] of pieces === 1 ? [[0, p.n] as [number, number]] : splitRange(p.n, pieces, 16)) {
        chunks.push([...p.head, ...(chunkArgs ? chunkArgs(chunks.length) : []), 0, lo, hi]);
      }
    }
    const idx = EXPORT_INDEX.get(fn)!,
      f = this.fns[fn];
    if (threads <= 1) {
      for (const c of chunks) {
        c[c.length - 3] = this.scratch[0]!;
        f(...c);
      }
    } else {
      for (let c0 = 0; c0 < chunks.length; c0 += MAX_POOL_CHUNKS)
        this.pool.run(idx, f, chunks.slice(c0, c0 + MAX_POOL_CHUNKS));
    }
    return chunks;
  }

  /** dst[Σ i·ds] = src[Σ i·ss] over dims (addresses in bytes, strides in elements). */
  strided(ps: number, pd: number, dims: readonly number[], ss: readonly number[], ds: readonly number[]): void {
    if (prod(dims) === 0) return;
    const c = collapse(dims, [ss, ds]);
    if (
      c.dims.length === 2 &&
      c.strides[0]![1] !== 1 &&
      c.strides[0]![0] === 1 &&
      c.strides[1]![1] === 1 &&
      c.strides[1]![0] === c.dims[1]
    ) {
      // plain 2-D transpose: dst [R, Cn] = src [Cn, R]ᵀ; src is [Cn rows, R cols]
      const R = c.dims[0]!,
        Cn = c.dims[1]!;
      this.range('transpose2d', Cn, R * Cn, 8, [ps, pd, Cn, R]);
      return;
    }
    forEachOuter(c, (off, d, s) => {
      const [a, b] = s as [number[], number[]];
      this.range('strided_copy', d[0]!, d[0]! * d[1]! * d[2]! * d[3]!, 1, [
        ps + off[0]! * 4,
        pd + off[1]! * 4,
        d[1]!,
        d[2]!,
        d[3]!,
        a[0]!,
        a[1]!,
        a[2]!,
        a[3]!,
        b[0]!,
        b[1]!,
        b[2]!,
        b[3]!,
      ]);
    });
  }
}
