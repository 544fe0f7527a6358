/**
 * The `wasm` backend: every kernel of ../kernels.ts as WebAssembly SIMD (AssemblyScript in ./assembly/, built into
 * build/ by scripts/build-wasm.mjs), on all cores. Tensors live in one shared WebAssembly.Memory (up to 4 GiB)
 * through a TypeScript-side allocator (./allocator.ts); big kernels are split across a worker pool (./pool.ts)
 * that shares the memory and the compiled module, the main thread taking a share.
 *
 *   const be = await createWasmBackend({ threads: 2 });   // threads: workers + main (default: all cores)
 *   be.describe()  // "wasm (relaxed SIMD FMA, 2 threads)"
 *
 * `run` is synchronous (returns when the kernel is done); in a browser this backend must live in a Worker.
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, View } from '../backend.js';
import { KERNELS } from '../kernels.js';
import { validateKernelCall } from '../validate.js';
import { BackendError, ConfigError, ShapeError } from '../../util/errors.js';
import { HeapAllocator } from './allocator.js';
import { loadKernels, type Variant } from './loader.js';
import { MAX_THREADS, WorkerPool, type KernelFn } from './pool.js';
import { broadcastStrides, collapse, forEachOuter, rowStrides, splitRange } from './layout.js';
import { checkSampleArgs, EXP_TABLE, penalizeRow, rowPenaltyPairs, sampleAttrs } from '../ref/sample.js';

/** Kernel exports of the module, in the order the pool indexes them. */
const EXPORTS = [
  'unary', 'fill32', 'cast', 'binary', 'swiglu_backward', 'dropout', 'adamw', 'sum_to', 'sum_f64', 'strided_copy',
  'transpose2d', 'embedding', 'embedding_backward', 'layernorm', 'layernorm_backward', 'layernorm_dw', 'rmsnorm',
  'rmsnorm_backward', 'rmsnorm_dw',
  'softmax', 'softmax_backward', 'cross_entropy', 'cross_entropy_backward', 'rope', 'attention', 'attention_backward',
  'matmul', 'attention_scratch_bytes', 'col_sum', 'gemv_nt', 'matmul_q8', 'matmul_bf16',
  'sample_row', 'sample_scratch_bytes',
] as const;
type ExportName = (typeof EXPORTS)[number];
const EXPORT_INDEX = new Map<string, number>(EXPORTS.map((n, i) => [n, i]));

const PAGE = 65536;
const MAX_PAGES = 65536;
/** Bytes below this address belong to the module's static data. */
const HEAP_BASE = PAGE;
/** Initial per-thread scratch: matmul needs 128 + 256·256·4 bytes. */
const SCRATCH_BYTES = 1 << 20;
/** Chunks per thread of a split kernel (dynamic load balancing against the cost of each chunk). */
const CHUNKS_PER_THREAD = 4;
/** Work (≈ flops or element-ops) below which a kernel stays on the main thread. */
const MIN_PARALLEL_WORK = 1 << 18;
/**
 * Chunks per thread of attention: one (batch, head) each up to this many, so a worker that wakes late or shares
 * its core still gets an even share (a chunk costs ~1 µs to hand out; a head ~50 µs at T = 128, D = 32).
 */
const ATTN_CHUNKS_PER_THREAD = 16;
/** Chunks the pool takes in one job. */
const MAX_POOL_CHUNKS = 1024;
/** float64 partial sums the `partials` buffer holds (sumsq, sum_all). */
const PARTIALS = 1024;

/** Rows up to which x·Wᵀ takes the dot-product (gemv) path instead of the packed 4×8 kernel. */
const GEMV_MAX_ROWS = 4;
/** Weight bytes from which a gemv-shaped kernel is split across threads (measured: bench/lab/gemv-split.mjs). */
const GEMV_PARALLEL_BYTES = 1 << 18;
/** Column chunks per thread of a split gemv. */
const GEMV_CHUNKS_PER_THREAD = 4;

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

export class WasmBuffer implements DeviceBuffer {
  readonly backend = 'wasm';
  freed = false;
  constructor(readonly length: number, readonly dtype: DType, readonly ptr: number, readonly bytes: number) {}
}

const UNARY_OPS: Record<string, number> = { exp: 1, log: 2, neg: 3, sqrt: 4, rsqrt: 5, square: 6, gelu: 7, silu: 8 };
const BINARY_OPS: Record<string, number> = { add: 0, sub: 1, mul: 2, div: 3, gelu_backward: 4, silu_backward: 5, swiglu: 6 };

function num(a: Attrs | undefined, key: string, dflt?: number): number {
  const v = a?.[key];
  if (v === undefined) {
    if (dflt === undefined) throw new ConfigError(key, 'kernel attribute is required');
    return dflt;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'number') throw new ConfigError(key, `kernel attribute must be a number, got ${typeof v}`);
  return v;
}
function flag(a: Attrs | undefined, key: string, dflt: boolean): boolean {
  const v = a?.[key];
  return v === undefined ? dflt : Boolean(v);
}
function nums(a: Attrs | undefined, key: string): readonly number[] {
  const v = a?.[key];
  if (!Array.isArray(v)) throw new ConfigError(key, 'kernel attribute must be a number array');
  return v as readonly number[];
}
function prod(s: readonly number[]): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly dtypes: readonly DType[] = ['f32', 'i32'];
  private f32!: Float32Array;
  private i32!: Int32Array;
  private u8!: Uint8Array;
  private readonly fns: Record<ExportName, KernelFn>;
  private readonly heap: HeapAllocator;
  private scratch: number[] = [];
  private scratchBytes = 0;
  /** float64 partial sums, one per chunk (sumsq, sum_all). */
  private readonly partials: number;
  private disposed = false;
  /** The last rope cos/sin table (see the rope kernel). */
  private ropeTable: { key: string; buf: WasmBuffer } | null = null;
  /** The sample kernel's exp table (2^(−j/256) as float64, copied from ref's), allocated on first use. */
  private expTablePtr = 0;
  /** The sample kernel's penalised copy of a row (allocated when penalties are first asked). */
  private penaltyRow: WasmBuffer | null = null;

  constructor(
    private readonly mem: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    private readonly pool: WorkerPool,
    readonly variant: Variant,
  ) {
    this.fns = Object.fromEntries(EXPORTS.map((n) => [n, instance.exports[n] as KernelFn])) as Record<ExportName, KernelFn>;
    this.refreshViews();
    this.heap = new HeapAllocator(HEAP_BASE, MAX_PAGES * PAGE, (end) => this.ensureMemory(end));
    this.ensureScratch(SCRATCH_BYTES);
    this.partials = this.heap.alloc(8 * PARTIALS);
  }

  /** Kernels split across worker threads so far. */
  get parallelDispatches(): number {
    return this.pool.dispatches;
  }

  /** Threads a kernel may use (workers + main). */
  get threads(): number {
    return this.pool.threads;
  }

  describe(): string {
    const v = this.variant === 'relaxed' ? 'relaxed SIMD FMA' : 'SIMD128 mul+add';
    return `wasm (${v}, ${this.pool.note ?? `${this.threads} thread${this.threads > 1 ? 's' : ''}`})`;
  }

  // ---- memory ---------------------------------------------------------------------------------------------------

  private refreshViews(): void {
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

  private ensureScratch(bytes: number): void {
    if (bytes <= this.scratchBytes && this.scratch.length === this.threads) return;
    const size = Math.max(bytes, this.scratchBytes);
    for (const p of this.scratch) this.heap.free(p, this.scratchBytes);
    this.scratch = [];
    for (let t = 0; t < this.threads; t++) this.scratch.push(this.heap.alloc(size));
    this.scratchBytes = size;
    this.pool.setScratch(this.scratch);
  }

  alloc(length: number, dtype: DType): WasmBuffer {
    if (dtype !== 'f32' && dtype !== 'i32') throw new BackendError('E_DTYPE', `wasm backend stores f32 and i32, not ${dtype}`);
    if (!Number.isInteger(length) || length < 0) throw new ShapeError(`wasm backend: cannot allocate ${length} elements`);
    this.live();
    const bytes = length * 4;
    const ptr = this.heap.alloc(bytes);
    return new WasmBuffer(length, dtype, ptr, bytes);
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf);
    b.freed = true;
    this.heap.free(b.ptr, b.bytes);
  }

  write(buf: DeviceBuffer, data: HostArray, offset = 0): void {
    const b = this.own(buf);
    if (offset < 0 || offset + data.length > b.length) {
      throw new BackendError('E_WRITE', `write of ${data.length} elements at ${offset} past the end of a buffer of ${b.length}`);
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
    return (KERNELS as readonly string[]).includes(name) && (!dtypes || dtypes.every((d) => d === 'f32' || d === 'i32'));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.dispose();
  }

  private live(): void {
    if (this.disposed) throw new BackendError('E_DISPOSED', 'wasm backend: used after dispose()');
  }

  private own(buf: DeviceBuffer): WasmBuffer {
    if (!(buf instanceof WasmBuffer)) throw new BackendError('E_FOREIGN_BUFFER', `a ${buf.backend} buffer was passed to the wasm backend`);
    if (buf.freed) throw new BackendError('E_FREED', 'wasm backend: use of a freed buffer');
    return buf;
  }

  /** Address of a view's buffer, after checking its shape fits. */
  private p(v: View): number {
    const b = this.own(v.buf);
    const n = prod(v.shape);
    if (n > b.length) throw new ShapeError(`wasm backend: view of shape [${v.shape}] (${n} elements) on a buffer of ${b.length}`);
    return b.ptr;
  }

  // ---- dispatch -------------------------------------------------------------------------------------------------

  /**
   * Run `fn` over [0, n) split into chunks (cut at multiples of `align`) when `work` is big enough; `args(lo, hi,
   * scratch)` gives a chunk's full argument list, ending (scratch, lo, hi). Chunks are taken dynamically by the
   * threads (a few per thread), each with its own scratch.
   */
  private par(fn: ExportName, n: number, work: number, align: number, args: (lo: number, hi: number, scratch: number) => number[], perThread = CHUNKS_PER_THREAD): void {
    const threads = work >= MIN_PARALLEL_WORK ? Math.min(this.threads, Math.max(1, Math.floor(work / (MIN_PARALLEL_WORK / 2)))) : 1;
    if (threads <= 1 || n <= align) {
      this.fns[fn](...args(0, n, this.scratch[0]!));
      return;
    }
    const ranges = splitRange(n, threads * perThread, align);
    this.pool.run(EXPORT_INDEX.get(fn)!, this.fns[fn], ranges.map(([lo, hi]) => args(lo, hi, 0)));
  }

  /** Like `par` with args ending (scratch, lo, hi). */
  private range(fn: ExportName, n: number, work: number, align: number, head: number[]): void {
    this.par(fn, n, work, align, (lo, hi, s) => [...head, s, lo, hi]);
  }

  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void {
    this.live();
    const k = (this.kernels as Record<string, (i: readonly View[], o: readonly View[], a: Attrs | undefined) => void>)[name];
    if (!k) throw new BackendError('E_KERNEL', `wasm backend has no kernel '${name}'`);
    validateKernelCall(name, inputs, outputs, attrs);
    k.call(this, inputs, outputs, attrs);
  }

  private readonly kernels: Record<string, (this: WasmBackend, i: readonly View[], o: readonly View[], a: Attrs | undefined) => void> = {
    fill(_i, o, a) {
      const out = o[0]!, n = prod(out.shape), v = num(a, 'value');
      let bits: number;
      if (out.buf.dtype === 'i32') bits = v | 0;
      else bits = new Int32Array(new Float32Array([v]).buffer)[0]!;
      this.range('fill32', n, n, 16, [this.p(out), bits]);
    },
    copy(i, o) {
      const a = i[0]!, out = o[0]!, n = prod(out.shape);
      if (prod(a.shape) !== n) throw new ShapeError(`copy: [${a.shape}] → [${out.shape}] differ in size`);
      const pa = this.p(a), po = this.p(out);
      if (a.buf.dtype === out.buf.dtype) {
        this.refreshViews();
        if (pa !== po) this.u8.copyWithin(po, pa, pa + n * 4);
      } else {
        this.range('cast', n, n, 16, [a.buf.dtype === 'f32' ? 0 : 1, pa, po]);
      }
    },
    add(i, o) { this.binary(0, i, o); },
    sub(i, o) { this.binary(1, i, o); },
    mul(i, o) { this.binary(2, i, o); },
    div(i, o) { this.binary(3, i, o); },
    gelu_backward(i, o) { this.binary(4, i, o); },
    silu_backward(i, o) { this.binary(5, i, o); },
    swiglu(i, o) { this.binary(6, i, o); },
    scale(i, o, a) { this.unary(0, i, o, num(a, 'alpha'), num(a, 'beta', 0)); },
    exp(i, o) { this.unary(UNARY_OPS.exp!, i, o); },
    log(i, o) { this.unary(UNARY_OPS.log!, i, o); },
    neg(i, o) { this.unary(UNARY_OPS.neg!, i, o); },
    sqrt(i, o) { this.unary(UNARY_OPS.sqrt!, i, o); },
    rsqrt(i, o) { this.unary(UNARY_OPS.rsqrt!, i, o); },
    square(i, o) { this.unary(UNARY_OPS.square!, i, o); },
    gelu(i, o) { this.unary(UNARY_OPS.gelu!, i, o); },
    silu(i, o) { this.unary(UNARY_OPS.silu!, i, o); },
    swiglu_backward(i, o) {
      const n = prod(o[0]!.shape);
      for (const v of [...i, ...o]) if (prod(v.shape) !== n) throw new ShapeError('swiglu_backward: all operands must have the same size');
      this.range('swiglu_backward', n, n * 8, 16, [this.p(i[0]!), this.p(i[1]!), this.p(i[2]!), this.p(o[0]!), this.p(o[1]!)]);
    },
    sum_to(i, o) {
      const a = i[0]!, out = o[0]!;
      const r = a.shape.length;
      if (out.shape.length !== r || out.shape.some((d, k) => d !== 1 && d !== a.shape[k])) {
        throw new ShapeError(`sum_to: [${out.shape}] is not a reduction of [${a.shape}]`);
      }
      const pa = this.p(a), po = this.p(out);
      const no = prod(out.shape);
      this.fns.fill32(po, 0, 0, 0, no);
      if (prod(a.shape) === 0) return;
      const c = collapse(a.shape, [rowStrides(a.shape), broadcastStrides(out.shape, a.shape)]);
      if (c.dims.length === 2 && c.strides[1]![0] === 0 && c.strides[1]![1] === 1) {
        // [R, K] → [1, K] (bias gradients): split the columns
        const [R, K] = c.dims as [number, number];
        this.range('col_sum', K, R * K, 16, [pa, po, R, K]);
        return;
      }
      forEachOuter(c, (off, d, s) => {
        this.fns.sum_to(pa + off[0]! * 4, po + off[1]! * 4, d[1]!, d[2]!, d[3]!, s[1]![0]!, s[1]![1]!, s[1]![2]!, s[1]![3]!, 0, 0, d[0]!);
      });
    },
    transpose(i, o, a) {
      const x = i[0]!, out = o[0]!, perm = nums(a, 'perm');
      const r = x.shape.length;
      if (perm.length !== r || out.shape.some((d, k) => d !== x.shape[perm[k]!])) {
        throw new ShapeError(`transpose: perm [${perm}] does not map [${x.shape}] to [${out.shape}]`);
      }
      const sa = rowStrides(x.shape);
      this.strided(this.p(x), this.p(out), out.shape, perm.map((pk) => sa[pk]!), rowStrides(out.shape));
    },
    slice(i, o, a) {
      const x = i[0]!, out = o[0]!, begin = nums(a, 'begin');
      this.checkBox(x.shape, out.shape, begin, 'slice');
      const sa = rowStrides(x.shape);
      const off = begin.reduce((acc, b, k) => acc + b * sa[k]!, 0);
      this.strided(this.p(x) + off * 4, this.p(out), out.shape, sa, rowStrides(out.shape));
    },
    pad_slice(i, o, a) {
      const x = i[0]!, out = o[0]!, begin = nums(a, 'begin');
      this.checkBox(out.shape, x.shape, begin, 'pad_slice');
      const po = this.p(out);
      const n = prod(out.shape);
      this.range('fill32', n, n, 16, [po, 0]);
      const so = rowStrides(out.shape);
      const off = begin.reduce((acc, b, k) => acc + b * so[k]!, 0);
      this.strided(this.p(x), po + off * 4, x.shape, rowStrides(x.shape), so);
    },
    concat(i, o, a) {
      const out = o[0]!, r = out.shape.length;
      const axis = num(a, 'axis') < 0 ? num(a, 'axis') + r : num(a, 'axis');
      const so = rowStrides(out.shape);
      let pos = 0;
      const po = this.p(out);
      for (const x of i) {
        if (x.shape.length !== r || x.shape.some((d, k) => k !== axis && d !== out.shape[k])) {
          throw new ShapeError(`concat: input [${x.shape}] does not fit output [${out.shape}] along axis ${axis}`);
        }
        this.strided(this.p(x), po + pos * so[axis]! * 4, x.shape, rowStrides(x.shape), so);
        pos += x.shape[axis]!;
      }
      if (pos !== out.shape[axis]) throw new ShapeError(`concat: inputs cover ${pos} of ${out.shape[axis]} along axis ${axis}`);
    },
    write_at(i, o, a) {
      const x = i[0]!, out = o[0]!, n = prod(x.shape), off = num(a, 'offset');
      if (!Number.isInteger(off) || off < 0 || off + n > out.buf.length) {
        throw new ShapeError(`write_at: ${n} elements at offset ${off} do not fit in a buffer of ${out.buf.length}`);
      }
      if (x.buf.dtype !== out.buf.dtype) throw new ShapeError(`write_at: ${x.buf.dtype} into ${out.buf.dtype}`);
      const ps = this.p(x), pd = this.own(out.buf).ptr + off * 4;
      this.refreshViews();
      this.u8.copyWithin(pd, ps, ps + n * 4);
    },
    matmul(i, o, a) {
      let accumulate = flag(a, 'accumulate', false);
      const bias = i[2];
      if (bias) {
        // out = bias on every row (or out += bias), then the product accumulates onto it: no separate add pass
        const out = o[0]!, N = out.shape[out.shape.length - 1] ?? 1, rows = N === 0 ? 0 : prod(out.shape) / N;
        if (prod(bias.shape) !== N) throw new ShapeError(`matmul: bias [${bias.shape}] does not have the ${N} columns of [${out.shape}]`);
        if (accumulate) this.binary(0, [out, { buf: bias.buf, shape: [N] }], [out]);
        else this.strided(this.p(bias), this.p(out), [rows, N], [0, 1], [N, 1]);
        accumulate = true;
      }
      this.matmul(i[0]!, i[1]!, o[0]!, flag(a, 'transA', false), flag(a, 'transB', false), accumulate, num(a, 'alpha', 1));
    },
    embedding(i, o) {
      const w = i[0]!, ids = i[1]!, out = o[0]!;
      const V = w.shape[0]!, C = w.shape[1]!, N = prod(ids.shape);
      if (prod(out.shape) !== N * C) throw new ShapeError(`embedding: output [${out.shape}] is not [${ids.shape}, ${C}]`);
      const pids = this.p(ids);
      this.checkIds(pids, N, V, null, 'embedding: token id');
      this.range('embedding', N, N * C, 1, [this.p(w), pids, this.p(out), C]);
    },
    embedding_backward(i, o, a) {
      const dy = i[0]!, ids = i[1]!, dw = o[0]!;
      const V = dw.shape[0]!, C = dw.shape[1]!, N = prod(ids.shape);
      if (prod(dy.shape) !== N * C) throw new ShapeError(`embedding_backward: dy [${dy.shape}] is not [${ids.shape}, ${C}]`);
      const pids = this.p(ids);
      this.checkIds(pids, N, V, null, 'embedding_backward: token id');
      this.range('embedding_backward', C, V * C + N * C, 16, [this.p(dy), pids, this.p(dw), V, C, N, flag(a, 'accumulate', false) ? 1 : 0]);
    },
    layernorm(i, o, a) {
      const x = i[0]!, C = x.shape[x.shape.length - 1]!, N = prod(x.shape) / C;
      this.range('layernorm', N, N * C * 4, 1, [this.p(x), this.p(i[1]!), this.p(i[2]!), this.p(o[0]!), this.p(o[1]!), this.p(o[2]!), C, num(a, 'eps')]);
    },
    layernorm_backward(i, o, a) {
      const x = i[1]!, C = x.shape[x.shape.length - 1]!, N = prod(x.shape) / C;
      const head = [this.p(i[0]!), this.p(x), this.p(i[2]!), this.p(i[3]!), this.p(i[4]!), this.p(o[0]!), this.p(o[1]!), this.p(o[2]!), C,
        flag(a, 'accumulate', false) ? 1 : 0];
      this.normBackward('layernorm_backward', N, C, head, [this.p(i[0]!), this.p(x), this.p(i[3]!), this.p(i[4]!), this.p(o[1]!), this.p(o[2]!)]);
    },
    rmsnorm(i, o, a) {
      const x = i[0]!, C = x.shape[x.shape.length - 1]!, N = prod(x.shape) / C;
      this.range('rmsnorm', N, N * C * 3, 1, [this.p(x), this.p(i[1]!), this.p(o[0]!), this.p(o[1]!), C, num(a, 'eps')]);
    },
    rmsnorm_backward(i, o, a) {
      const x = i[1]!, C = x.shape[x.shape.length - 1]!, N = prod(x.shape) / C;
      const head = [this.p(i[0]!), this.p(x), this.p(i[2]!), this.p(i[3]!), this.p(o[0]!), this.p(o[1]!), C, flag(a, 'accumulate', false) ? 1 : 0];
      this.normBackward('rmsnorm_backward', N, C, head, [this.p(i[0]!), this.p(x), this.p(i[3]!), this.p(o[1]!)]);
    },
    softmax(i, o) {
      const x = i[0]!, C = x.shape[x.shape.length - 1]!, N = prod(x.shape) / C;
      this.range('softmax', N, N * C * 8, 1, [this.p(x), this.p(o[0]!), C]);
    },
    softmax_backward(i, o) {
      const y = i[0]!, C = y.shape[y.shape.length - 1]!, N = prod(y.shape) / C;
      this.range('softmax_backward', N, N * C * 3, 1, [this.p(y), this.p(i[1]!), this.p(o[0]!), C]);
    },
    rope(i, o, a) {
      const x = i[0]!;
      if (x.shape.length !== 4) throw new ShapeError(`rope: x must be [B, T, H, D], got [${x.shape}]`);
      const [B, T, H, D] = x.shape as [number, number, number, number];
      if (D % 2 !== 0) throw new ShapeError(`rope: head dim ${D} must be even`);
      const half = D / 2;
      const theta = num(a, 'theta'), offset = num(a, 'offset', 0), sign = flag(a, 'inverse', false) ? -1 : 1;
      // cos/sin tables [T, D/2] in float32 as transformers computes them (inv_freq, angle rounded to f32); the last
      // table is kept, so the 2·layers rope calls of one decode step compute it once
      const key = `${theta}|${D}|${offset}|${T}|${sign}`;
      let tbl = this.ropeTable?.key === key ? this.ropeTable.buf : null;
      if (!tbl) {
        if (this.ropeTable) this.free(this.ropeTable.buf);
        this.ropeTable = null;
        tbl = this.alloc(2 * T * half, 'f32');
        this.refreshViews();
        const base = tbl.ptr >>> 2;
        const inv = new Float32Array(half);
        for (let k = 0; k < half; k++) inv[k] = 1 / Math.pow(theta, Math.fround((2 * k) / D));
        for (let t = 0; t < T; t++) {
          const pos = offset + t;
          for (let k = 0; k < half; k++) {
            const ang = Math.fround(pos * inv[k]!);
            this.f32[base + t * half + k] = Math.cos(ang);
            this.f32[base + T * half + t * half + k] = sign * Math.fround(Math.sin(ang));
          }
        }
        this.ropeTable = { key, buf: tbl };
      }
      this.range('rope', B * T, B * T * H * D * 2, 1, [this.p(x), this.p(o[0]!), tbl.ptr, tbl.ptr + T * half * 4, T, H, D]);
    },
    attention(i, o, a) {
      const [q, k, v] = i as [View, View, View];
      const d = this.attnDims(q, k, v);
      this.attnForward(this.p(q), this.p(k), this.p(v), o, a, d, d.Hq * d.D, d.Hkv * d.D);
    },
    attention_backward(i, o, a) {
      const [dO, q, k, v, out, lse] = i as [View, View, View, View, View, View];
      const d = this.attnDims(q, k, v);
      this.attnBackward(dO, this.p(q), this.p(k), this.p(v), out, lse, i[6], this.p(o[0]!), this.p(o[1]!), this.p(o[2]!), a, d, d.Hq * d.D, d.Hkv * d.D);
    },
    attention_qkv(i, o, a) {
      const qkv = i[0]!;
      const d = this.qkvDims(qkv, a);
      const pq = this.p(qkv), row = (d.Hq + 2 * d.Hkv) * d.D;
      this.attnForward(pq, pq + d.Hq * d.D * 4, pq + (d.Hq + d.Hkv) * d.D * 4, o, a, d, row, row);
    },
    attention_qkv_backward(i, o, a) {
      const [dO, qkv, out, lse] = i as [View, View, View, View];
      const d = this.qkvDims(qkv, a);
      if (prod(o[0]!.shape) !== prod(qkv.shape)) throw new ShapeError(`attention_qkv_backward: dqkv [${o[0]!.shape}] is not the shape of qkv [${qkv.shape}]`);
      const pq = this.p(qkv), pd = this.p(o[0]!), row = (d.Hq + 2 * d.Hkv) * d.D, ko = d.Hq * d.D * 4, vo = (d.Hq + d.Hkv) * d.D * 4;
      this.attnBackward(dO, pq, pq + ko, pq + vo, out, lse, i[4], pd, pd + ko, pd + vo, a, d, row, row);
    },
    cross_entropy(i, o, a) {
      const lg = i[0]!, V = lg.shape[lg.shape.length - 1]!, N = prod(lg.shape) / V, ignore = num(a, 'ignoreIndex', -100);
      const pt = this.p(i[1]!);
      this.checkIds(pt, N, V, ignore, 'cross_entropy: target');
      this.range('cross_entropy', N, N * V * 6, 1, [this.p(lg), pt, this.p(o[0]!), this.p(o[1]!), V, ignore]);
    },
    cross_entropy_backward(i, o, a) {
      const lg = i[0]!, V = lg.shape[lg.shape.length - 1]!, N = prod(lg.shape) / V, ignore = num(a, 'ignoreIndex', -100);
      const pt = this.p(i[1]!);
      this.checkIds(pt, N, V, ignore, 'cross_entropy_backward: target');
      this.range('cross_entropy_backward', N, N * V * 6, 1, [this.p(lg), pt, this.p(i[2]!), this.p(i[3]!), this.p(o[0]!), V, ignore]);
    },
    dropout(i, o, a) {
      const n = prod(o[0]!.shape), p = num(a, 'p'), seed = num(a, 'seed');
      const thr = p <= 0 ? 0 : Math.ceil(p * 4294967296);
      const dropAll = thr >= 4294967296 ? 1 : 0;
      this.range('dropout', n, n * 4, 16, [this.p(i[0]!), this.p(o[0]!), seed | 0, dropAll ? 0 : thr, dropAll, 1 / (1 - p)]);
    },
    adamw(i, o, a) {
      const lr = num(a, 'lr'), b1 = num(a, 'beta1'), b2 = num(a, 'beta2'), eps = num(a, 'eps');
      const wd = num(a, 'weightDecay'), step = num(a, 'step'), gs = num(a, 'gradScale', 1);
      if (o.length !== 3 * i.length) throw new ShapeError(`adamw: ${i.length} gradients need ${3 * i.length} outputs (param, m, v each), got ${o.length}`);
      const stepSize = lr / (1 - Math.pow(b1, step)), invBc2s = 1 / Math.sqrt(1 - Math.pow(b2, step));
      const parts = i.map((g, j) => {
        const n = prod(g.shape);
        for (let r = 0; r < 3; r++) if (prod(o[3 * j + r]!.shape) !== n) throw new ShapeError('adamw: grad, param, m and v must have the same size');
        return { n, head: [this.p(g), this.p(o[3 * j]!), this.p(o[3 * j + 1]!), this.p(o[3 * j + 2]!), 1 - lr * wd, b1, b2, eps, stepSize, invBc2s, gs] };
      });
      this.multi('adamw', parts, 4);
    },
    matmul_q8(i, o) {
      const [x, wq, sc] = i as [View, View, View];
      const { M, N, K } = this.quantDims('matmul_q8', x, wq, o[0]!, 4);
      if (K % 32 !== 0 || prod(sc.shape) !== (N * K) / 32) {
        throw new ShapeError(`matmul_q8: K = ${K} must be a multiple of 32 and scales [${sc.shape}] must hold ${(N * K) / 32} values`);
      }
      this.ensureScratch(16 + 4 * 2 * K); // four rows of x rounded to int16 (gemv.ts)
      this.gemv('matmul_q8', N, N * K * M, [this.p(x), this.p(wq), this.p(sc), this.p(o[0]!), M, N, K]);
    },
    matmul_bf16(i, o) {
      const [x, wb] = i as [View, View];
      const { M, N, K } = this.quantDims('matmul_bf16', x, wb, o[0]!, 2);
      this.ensureScratch(4 * 4 * K); // up to four rows of x, permuted (gemv.ts)
      this.gemv('matmul_bf16', N, N * K * 2 * M, [this.p(x), this.p(wb), this.p(o[0]!), M, N, K]);
    },
    sample(i, o, a) {
      const x = i[0]!, V = x.shape[x.shape.length - 1] ?? 0, N = V > 0 ? prod(x.shape) / V : 0;
      const { o: opts, u, topN, penalties } = sampleAttrs(a);
      checkSampleArgs(N, V, opts, u);
      if (topN > 0 && (!o[2] || !o[3] || prod(o[2].shape) !== N * topN || prod(o[3].shape) !== N * topN))
        throw new ShapeError(`sample: topN ${topN} needs outputs ids [${N}, ${topN}] and logprobs [${N}, ${topN}]`);
      const pti = topN > 0 ? this.p(o[2]!) : 0, ptl = topN > 0 ? this.p(o[3]!) : 0;
      if (typeof this.fns.sample_row !== 'function') throw new BackendError('E_KERNEL', 'wasm backend: build/kernels-*.wasm predates the sample kernel; rebuild them (npm run build:wasm)');
      if (prod(o[0]!.shape) !== N || prod(o[1]!.shape) !== 2 * N) throw new ShapeError(`sample: ${N} rows need ids [${N}] and probs [${N}, 2], got [${o[0]!.shape}] and [${o[1]!.shape}]`);
      this.ensureScratch(this.fns.sample_scratch_bytes(V) as unknown as number);
      if (this.expTablePtr === 0) {
        this.expTablePtr = this.heap.alloc(EXP_TABLE.byteLength);
        this.refreshViews();
        new Float64Array(this.mem.buffer, this.expTablePtr, EXP_TABLE.length).set(EXP_TABLE);
      }
      const px = this.p(x), pi = this.p(o[0]!), pp = this.p(o[1]!);
      for (let n = 0; n < N; n++) {
        const row = px + 4 * n * V;
        let src = row;
        const pairs = rowPenaltyPairs(penalties, n);
        if (pairs) {
          // the penalised copy (ref's penalizeRow, the same JavaScript) in a buffer kept for it
          if (!this.penaltyRow || this.penaltyRow.length < V) {
            if (this.penaltyRow) this.free(this.penaltyRow);
            this.penaltyRow = this.alloc(V, 'f32');
          }
          src = this.penaltyRow.ptr;
          this.refreshViews();
          this.f32.copyWithin(src >>> 2, row >>> 2, (row >>> 2) + V);
          penalizeRow(this.f32.subarray(src >>> 2, (src >>> 2) + V), pairs, penalties!.settings);
        }
        this.fns.sample_row(src, V, opts.temperature, opts.topK, opts.topP, opts.minP, u[n]!, this.expTablePtr, pi + 4 * n, pp + 8 * n, this.scratch[0]!,
          topN, pti + 4 * n * topN, ptl + 4 * n * topN, row);
      }
    },
    sumsq(i, o) { this.sumAll(i, o[0]!, true); },
    sum_all(i, o) { this.sumAll(i, o[0]!, false); },
  };

  // ---- kernel helpers ---------------------------------------------------------------------------------------------

  private unary(op: number, i: readonly View[], o: readonly View[], alpha = 1, beta = 0): void {
    const n = prod(o[0]!.shape);
    if (prod(i[0]!.shape) !== n) throw new ShapeError(`elementwise: input [${i[0]!.shape}] and output [${o[0]!.shape}] differ in size`);
    const cost = op >= 7 ? 12 : op === 2 ? 20 : op === 1 ? 6 : 1;
    this.range('unary', n, n * cost, 16, [op, this.p(i[0]!), this.p(o[0]!), alpha, beta]);
  }

  private binary(op: number, i: readonly View[], o: readonly View[]): void {
    const a = i[0]!, b = i[1]!, out = o[0]!;
    const os = out.shape;
    const r = os.length;
    if (a.shape.length > r || b.shape.length > r) throw new ShapeError(`broadcast: [${a.shape}] and [${b.shape}] do not fit [${os}]`);
    for (const s of [a.shape, b.shape]) {
      for (let k = 0; k < s.length; k++) {
        const d = s[k]!, od = os[r - s.length + k]!;
        if (d !== od && d !== 1) throw new ShapeError(`broadcast: [${a.shape}] and [${b.shape}] do not fit [${os}]`);
      }
    }
    const pa = this.p(a), pb = this.p(b), po = this.p(out);
    const n = prod(os);
    if (n === 0) return;
    const cost = op >= 4 ? 12 : 1;
    const c = collapse(os, [broadcastStrides(a.shape, os), broadcastStrides(b.shape, os), rowStrides(os)]);
    if (c.dims.length === 1) {
      // one contiguous run (same shapes, or one side a scalar): split by element ranges
      const sa = c.strides[0]![0]!, sb = c.strides[1]![0]!;
      this.par('binary', n, n * cost, 16, (lo, hi, s) =>
        [op, pa + lo * sa * 4, pb + lo * sb * 4, po + lo * 4, 1, 1, hi - lo, 0, 0, 0, sa, 0, 0, 0, sb, s, 0, 1]);
      return;
    }
    forEachOuter(c, (off, d, s) => {
      const [sa, sb] = s as [number[], number[]];
      const inner = d[1]! * d[2]! * d[3]!;
      this.par('binary', d[0]!, d[0]! * inner * cost, 1, (lo, hi, sc) =>
        [op, pa + off[0]! * 4, pb + off[1]! * 4, po + off[2]! * 4, d[1]!, d[2]!, d[3]!, sa[0]!, sa[1]!, sa[2]!, sa[3]!, sb[0]!, sb[1]!, sb[2]!, sb[3]!, sc, lo, hi]);
    });
  }

  /** dst[Σ i·ds] = src[Σ i·ss] over dims. */
  private strided(ps: number, pd: number, dims: readonly number[], ss: readonly number[], ds: readonly number[]): void {
    if (prod(dims) === 0) return;
    const c = collapse(dims, [ss, ds]);
    if (c.dims.length === 2 && c.strides[0]![1] !== 1 && c.strides[0]![0] === 1 && c.strides[1]![1] === 1 && c.strides[1]![0] === c.dims[1]) {
      // plain 2-D transpose: dst [R, Cn] = src [Cn, R]ᵀ; src is [Cn rows, R cols]
      const R = c.dims[0]!, Cn = c.dims[1]!;
      this.range('transpose2d', Cn, R * Cn, 8, [ps, pd, Cn, R]);
      return;
    }
    forEachOuter(c, (off, d, s) => {
      const [a, b] = s as [number[], number[]];
      this.range('strided_copy', d[0]!, d[0]! * d[1]! * d[2]! * d[3]!, 1,
        [ps + off[0]! * 4, pd + off[1]! * 4, d[1]!, d[2]!, d[3]!, a[0]!, a[1]!, a[2]!, a[3]!, b[0]!, b[1]!, b[2]!, b[3]!]);
    });
  }

  private checkBox(big: readonly number[], small: readonly number[], begin: readonly number[], what: string): void {
    if (big.length !== small.length || begin.length !== big.length || big.some((d, k) => begin[k]! < 0 || begin[k]! + small[k]! > d)) {
      throw new ShapeError(`${what}: box at [${begin}] of shape [${small}] does not fit in [${big}]`);
    }
  }

  private checkIds(p: number, n: number, V: number, ignore: number | null, what: string): void {
    this.refreshViews();
    const ids = this.i32, base = p >>> 2;
    for (let k = 0; k < n; k++) {
      const id = ids[base + k]!;
      if ((id < 0 || id >= V) && id !== ignore) throw new ConfigError(what, `${id} at position ${k} is outside [0, ${V})`);
    }
  }

  /**
   * Norm backward: dx by rows; dw (and db) in the same pass on one thread, or by a column-split *_dw pass on
   * several (same summation order, so the result does not depend on the thread count).
   */
  private normBackward(fn: 'layernorm_backward' | 'rmsnorm_backward', N: number, C: number, head: number[], dwArgs: number[]): void {
    const work = N * C * 6;
    const threads = work >= MIN_PARALLEL_WORK && N >= 2 ? Math.min(this.threads, N) : 1;
    if (threads <= 1) {
      this.fns[fn](...head, 1, this.scratch[0]!, 0, N);
      return;
    }
    this.par(fn, N, work, 1, (lo, hi, s) => [...head, 0, s, lo, hi]);
    const dwFn = fn === 'layernorm_backward' ? 'layernorm_dw' : 'rmsnorm_dw';
    this.par(dwFn, C, N * C * 3, 4, (lo, hi, s) => [...dwArgs, N, C, s, lo, hi]);
  }

  /**
   * Run an elementwise kernel (args: head, scratch, lo, hi) over several tensors in one dispatch: each tensor's
   * range is cut into chunks of about total/(threads·CHUNKS_PER_THREAD) elements (multiples of 16), and all chunks
   * go to the pool together. `cost`: work per element. Returns the chunks in the order they were made.
   */
  private multi(fn: ExportName, parts: readonly { n: number; head: number[] }[], cost: number, chunkArgs?: (c: number) => number[]): number[][] {
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
    const idx = EXPORT_INDEX.get(fn)!, f = this.fns[fn];
    if (threads <= 1) {
      for (const c of chunks) {
        c[c.length - 3] = this.scratch[0]!;
        f(...c);
      }
    } else {
      for (let c0 = 0; c0 < chunks.length; c0 += MAX_POOL_CHUNKS) this.pool.run(idx, f, chunks.slice(c0, c0 + MAX_POOL_CHUNKS));
    }
    return chunks;
  }

  /** Σ a (or Σ a²) over every input, in float64 partials (one per chunk) summed here in chunk order. */
  private sumAll(ins: readonly View[], out: View, sq: boolean): void {
    const po = this.p(out);
    const parts = ins.map((a) => ({ n: prod(a.shape), head: [this.p(a), sq ? 1 : 0] }));
    let s = 0;
    // one partial per chunk; a group of G tensors makes at most G + threads·CHUNKS_PER_THREAD chunks
    const G = PARTIALS - this.threads * CHUNKS_PER_THREAD - 1;
    for (let j0 = 0; j0 < parts.length; j0 += G) {
      const chunks = this.multi('sum_f64', parts.slice(j0, j0 + G), 1, (c) => [this.partials + 8 * c]);
      this.refreshViews();
      const dv = new Float64Array(this.mem.buffer, this.partials, chunks.length);
      for (let c = 0; c < chunks.length; c++) s += dv[c]!;
    }
    this.f32[po >>> 2] = s;
  }

  /** M, N, K of a quantised linear: x [..., M, K], packed weights [N, K/per], out [..., M, N]. */
  private quantDims(what: string, x: View, w: View, out: View, per: number): { M: number; N: number; K: number } {
    const K = x.shape[x.shape.length - 1]!, N = w.shape[0]!, M = prod(x.shape) / K;
    if (w.shape.length !== 2 || w.shape[1]! * per !== K || out.shape[out.shape.length - 1] !== N || prod(out.shape) !== M * N) {
      throw new ShapeError(`${what}: x [${x.shape}], packed weights [${w.shape}] (${per} per element) and out [${out.shape}] do not fit`);
    }
    return { M, N, K };
  }

  /**
   * A decode-shaped kernel (args end with scratch, lo, hi over N output columns): split by columns when the work is
   * big enough to be worth a second thread (`bytes`: weight bytes × rows of x; each chunk a multiple of 8 columns).
   */
  private gemv(fn: 'gemv_nt' | 'matmul_q8' | 'matmul_bf16', N: number, bytes: number, head: number[]): void {
    if (bytes < GEMV_PARALLEL_BYTES || this.threads <= 1 || N < 16) {
      this.fns[fn](...head, this.scratch[0]!, 0, N);
      return;
    }
    const ranges = splitRange(N, this.threads * GEMV_CHUNKS_PER_THREAD, 8);
    this.pool.run(EXPORT_INDEX.get(fn)!, this.fns[fn], ranges.map(([lo, hi]) => [...head, 0, lo, hi]));
  }

  private attnDims(q: View, k: View, v: View): { B: number; T: number; S: number; Hq: number; Hkv: number; D: number } {
    if (q.shape.length !== 4 || k.shape.length !== 4) throw new ShapeError(`attention: q [${q.shape}] and k [${k.shape}] must be [B, T, H, D]`);
    const [B, T, Hq, D] = q.shape as [number, number, number, number];
    const S = k.shape[1]!, Hkv = k.shape[2]!;
    if (k.shape[0] !== B || k.shape[3] !== D || v.shape.join() !== k.shape.join() || Hq % Hkv !== 0) {
      throw new ShapeError(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not fit (Hq must be a multiple of Hkv)`);
    }
    return { B, T, S, Hq, Hkv, D };
  }

  /** B, T, Hq, Hkv, D of a fused qkv [B, T, (Hq + 2·Hkv)·D] from the heads/kvHeads attributes (S = T). */
  private qkvDims(qkv: View, a: Attrs | undefined): { B: number; T: number; S: number; Hq: number; Hkv: number; D: number } {
    const Hq = num(a, 'heads'), Hkv = num(a, 'kvHeads', Hq);
    const [B, T, W] = qkv.shape as [number, number, number];
    const D = W / (Hq + 2 * Hkv);
    if (qkv.shape.length !== 3 || !Number.isInteger(D) || D < 1 || !(Hq >= 1) || !(Hkv >= 1) || Hq % Hkv !== 0) {
      throw new ShapeError(`attention_qkv: qkv [${qkv.shape}] is not [B, T, (heads + 2·kvHeads)·D] for heads ${Hq}, kvHeads ${Hkv}`);
    }
    return { B, T, S: T, Hq, Hkv, D };
  }

  private attnScratch(S: number, D: number): void {
    this.ensureScratch((this.fns.attention_scratch_bytes as unknown as (S: number, D: number) => number)(S, D));
  }

  /** Attention forward on q/k/v addresses with token row strides qRow (q) and kRow (k, v), in elements. */
  private attnForward(pq: number, pk: number, pv: number, o: readonly View[], a: Attrs | undefined,
    d: { B: number; T: number; S: number; Hq: number; Hkv: number; D: number }, qRow: number, kRow: number): void {
    const causal = flag(a, 'causal', true), qOffset = num(a, 'qOffset', d.S - d.T);
    if (prod(o[0]!.shape) !== d.B * d.T * d.Hq * d.D || prod(o[1]!.shape) !== d.B * d.Hq * d.T) {
      throw new ShapeError(`attention: outputs [${o[0]!.shape}] and [${o[1]!.shape}] are not [${[d.B, d.T, d.Hq, d.D]}] and [${[d.B, d.Hq, d.T]}]`);
    }
    const prob = this.probs(o[2], d, 'attention');
    this.attnScratch(d.S, d.D);
    // decoding (T < 4) streams the cached keys and values like a gemv streams weights: split by their bytes
    const work = d.T < 4 ? (d.B * d.Hkv * d.S * d.D * 8 >= GEMV_PARALLEL_BYTES ? MIN_PARALLEL_WORK * this.threads : 0) : d.B * d.Hq * d.T * d.S * d.D * 4;
    const head = [pq, pk, pv, this.p(o[0]!), this.p(o[1]!), prob, d.T, d.S, d.Hq, d.Hkv, d.D, qRow, kRow, num(a, 'scale'), causal ? 1 : 0, qOffset];
    this.par('attention', d.B * d.Hq, work, 1, (lo, hi, s) => [...head, s, lo, hi], ATTN_CHUNKS_PER_THREAD);
  }

  /** Address of the optional kept-probabilities view p [B, Hq, T, S] (0 when absent). */
  private probs(p: View | undefined, d: { B: number; T: number; S: number; Hq: number }, what: string): number {
    if (!p) return 0;
    if (prod(p.shape) !== d.B * d.Hq * d.T * d.S) throw new ShapeError(`${what}: probabilities [${p.shape}] are not [${[d.B, d.Hq, d.T, d.S]}]`);
    return this.p(p);
  }

  /** Attention backward; dq/dk/dv share the row strides of q and k/v. */
  private attnBackward(dO: View, pq: number, pk: number, pv: number, out: View, lse: View, p: View | undefined, pdq: number, pdk: number, pdv: number,
    a: Attrs | undefined, d: { B: number; T: number; S: number; Hq: number; Hkv: number; D: number }, qRow: number, kRow: number): void {
    const causal = flag(a, 'causal', true), qOffset = num(a, 'qOffset', d.S - d.T);
    const no = d.B * d.T * d.Hq * d.D;
    if (prod(dO.shape) !== no || prod(out.shape) !== no || prod(lse.shape) !== d.B * d.Hq * d.T) {
      throw new ShapeError(`attention_backward: do [${dO.shape}], o [${out.shape}], lse [${lse.shape}] do not fit [${[d.B, d.T, d.Hq, d.D]}]`);
    }
    const prob = this.probs(p, d, 'attention_backward');
    this.attnScratch(d.S, d.D);
    const work = d.B * d.Hq * d.T * d.S * d.D * 10;
    const head = [this.p(dO), pq, pk, pv, this.p(out), this.p(lse), prob, pdq, pdk, pdv,
      d.T, d.S, d.Hq, d.Hkv, d.D, qRow, kRow, num(a, 'scale'), causal ? 1 : 0, qOffset];
    this.par('attention_backward', d.B * d.Hkv, work, 1, (lo, hi, s) => [...head, s, lo, hi], ATTN_CHUNKS_PER_THREAD);
  }

  private matmul(a: View, b: View, out: View, transA: boolean, transB: boolean, accumulate: boolean, alpha: number): void {
    const mat = (s: readonly number[]): [number, number] => [s.length >= 2 ? s[s.length - 2]! : 1, s[s.length - 1]!];
    const [ar, ac] = mat(a.shape), [br, bc] = mat(b.shape), [M, N] = mat(out.shape);
    let m = transA ? ac : ar;
    const K = transA ? ar : ac, Kb = transB ? bc : br, n = transB ? br : bc;
    if (m !== M || n !== N || K !== Kb) {
      throw new ShapeError(`matmul: [${a.shape}]${transA ? 'ᵀ' : ''} · [${b.shape}]${transB ? 'ᵀ' : ''} does not give [${out.shape}]`);
    }
    let batch = M * N === 0 ? 0 : prod(out.shape) / (M * N);
    const ba = ar * ac === 0 ? 1 : prod(a.shape) / (ar * ac), bb = br * bc === 0 ? 1 : prod(b.shape) / (br * bc);
    if ((ba !== batch && ba !== 1) || (bb !== batch && bb !== 1)) {
      throw new ShapeError(`matmul: batch of [${a.shape}] or [${b.shape}] does not match [${out.shape}]`);
    }
    if (batch === 0) return;
    let bsA = ba === 1 ? 0 : M * K, bsB = bb === 1 ? 0 : K * N;
    const bsC = M * N;
    // a batch of row blocks times one shared matrix is one tall matrix
    if (batch > 1 && bsB === 0 && !transA && bsA === M * K) {
      m = M * batch;
      batch = 1;
      bsA = 0;
    }
    const pa = this.p(a), pb = this.p(b), pc = this.p(out);
    if (batch === 1 && transB && !transA && m <= GEMV_MAX_ROWS) {
      // x·Wᵀ for a few rows (decode): dot products over contiguous weight rows, columns split across threads
      this.gemv('gemv_nt', N, N * K * 4 * m, [pa, pb, pc, m, N, K, alpha, accumulate ? 1 : 0]);
      return;
    }
    const work = 2 * batch * m * N * K;
    // matrix-vector products (decode) are memory-bound: worth splitting at a lower flop count
    const threads = work >= MIN_PARALLEL_WORK * (m < 4 ? 1 : 4) ? this.threads : 1;
    const head = [pa, pb, pc, batch, bsA, bsB, bsC, m, N, K, transA ? 1 : 0, transB ? 1 : 0, alpha, accumulate ? 1 : 0];
    if (threads <= 1) {
      this.fns.matmul(...head, 0, this.scratch[0]!, 0, batch);
      return;
    }
    let split: number, total: number, align: number;
    if (batch >= threads && (batch % threads === 0 || batch >= 4 * threads)) [split, total, align] = [0, batch, 1];
    else if (m >= 4 * threads && m >= N) [split, total, align] = [1, m, 4];
    else if (N >= 8 * threads) [split, total, align] = [2, N, 8];
    else if (m >= 4 * threads) [split, total, align] = [1, m, 4];
    else {
      this.fns.matmul(...head, 0, this.scratch[0]!, 0, batch);
      return;
    }
    const ranges = splitRange(total, threads * 2, align);
    this.pool.run(EXPORT_INDEX.get('matmul')!, this.fns.matmul, ranges.map(([lo, hi]) => [...head, split, 0, lo, hi]));
  }
}

/** Create the wasm backend: compile the kernels, allocate the shared memory, start the worker pool. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  let threads = opts.threads;
  if (threads === undefined) {
    // Node: the cores it may use; a browser (or Deno, Bun): navigator.hardwareConcurrency
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    const os = isNode ? await import('node:os').catch(() => null) : null;
    threads = Math.min(MAX_THREADS, os ? (os.availableParallelism?.() ?? os.cpus().length) : (globalThis.navigator?.hardwareConcurrency ?? 1));
  }
  if (!Number.isInteger(threads) || threads < 1) throw new ConfigError('threads', `must be a positive integer, got ${threads}`);
  if (opts.spinMs !== undefined && !(opts.spinMs >= 0 && opts.spinMs < Infinity)) throw new ConfigError('spinMs', `must be a number of milliseconds ≥ 0, got ${opts.spinMs}`);
  const { module, variant } = await loadKernels(opts.variant ?? 'auto');
  const initialMiB = opts.initialMiB ?? 16;
  const initial = Math.max(2, Math.ceil((initialMiB * 2 ** 20) / PAGE) + Math.ceil((threads * SCRATCH_BYTES) / PAGE));
  const memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
  const instance = await WebAssembly.instantiate(module, { env: { memory, abort: () => { throw new BackendError('E_WASM_ABORT', 'wasm kernel aborted'); } } });
  const pool = await WorkerPool.create(threads - 1, module, memory, EXPORTS, opts.spinMs);
  return new WasmBackend(memory, instance, pool, variant);
}
