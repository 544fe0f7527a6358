/**
 * Tensor: a shape over a reference-counted device buffer on one backend, plus what autograd needs (requiresGrad,
 * grad, the node that created it). Reshape shares the buffer (storage is refcounted), so `dispose` frees device
 * memory only when the last view goes.
 *
 * Memory is managed by scopes, not by hand: `tidy(fn)` frees every tensor created inside fn except what fn returns
 * (and gradients attached to parameters); tensors made outside any scope (parameters, optimizer state) live until
 * disposed. On the `ref` backend the garbage collector would cope anyway; on wasm/webgpu scopes keep the heap flat.
 */
import type { Backend, DeviceBuffer, DType, HostArray } from '../backend/backend.js';
import { runKernel } from '../backend/dispatch.js';
import { getBackend } from '../backend/registry.js';
import { BackendError, ShapeError } from '../util/errors.js';
import { fmtShape, size } from '../util/shape.js';

/** Refcounted device memory shared by views. */
export class Storage {
  refs = 0;
  /**
   * Gone before its last view went: given back (freeData) or handed to another tensor (takeData). The views stay,
   * for autograd's graph, but hold no memory of their own.
   */
  gone: 'freed' | 'moved' | 'vacant' | null = null;
  constructor(
    readonly backend: Backend,
    readonly buf: DeviceBuffer,
  ) {}
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0 && !this.gone) this.backend.free(this.buf);
  }
  /** Give the memory back now, whatever views remain (see freeData). Idempotent. */
  freeNow(): void {
    if (this.gone || this.refs === 0) return;
    this.gone = 'freed';
    this.backend.free(this.buf);
  }
  /** A new Storage that owns this memory from now on (see takeData); this one keeps its views and nothing else. */
  handOver(): Storage {
    if (this.gone || this.refs === 0) throw new BackendError('E_FREED', 'takeData: the memory is no longer there');
    this.gone = 'moved';
    return new Storage(this.backend, this.buf);
  }
}

/** What autograd records for a tensor made by an op. */
export interface Node {
  /** Op name (for debugging and the grad-rule table). */
  op: string;
  inputs: readonly Tensor[];
  /**
   * Given the gradient of this tensor's output, the gradients of `inputs` (null where none is needed). `into(i)`, when
   * given, hands over the gradient input i has accumulated so far if nothing else holds it (else null): a rule whose
   * kernel can accumulate adds its contribution into that tensor and returns it as input i's gradient, which saves
   * autograd an add and a buffer.
   */
  backward(dy: Tensor, into?: (i: number) => Tensor | null): (Tensor | null)[];
  /**
   * Ops with several differentiable outputs (split) share one node among them: `outputs` lists them, and autograd
   * calls `backwardMulti` once with every output's gradient (null where an output got none) instead of `backward`.
   */
  outputs?: readonly Tensor[];
  backwardMulti?(dys: readonly (Tensor | null)[]): (Tensor | null)[];
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly storage: Storage;
  /** Set on parameters (leaves) and on every tensor computed from one while gradients are enabled. */
  requiresGrad = false;
  /** Accumulated gradient (leaves only). */
  grad: Tensor | null = null;
  /** Autograd node (non-leaves). */
  node: Node | null = null;
  /** Optional name (parameters carry their checkpoint name). */
  name: string | undefined;
  private disposed = false;
  /** Kept tensors are never freed by a scope. */
  kept = false;

  constructor(storage: Storage, shape: readonly number[]) {
    if (size(shape) > storage.buf.length)
      throw new ShapeError(`shape ${fmtShape(shape)} larger than its buffer (${storage.buf.length})`);
    this.storage = storage;
    this.shape = shape;
    storage.retain();
    currentScope()?.push(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }
  get buf(): DeviceBuffer {
    return this.storage.buf;
  }
  get dtype(): DType {
    return this.storage.buf.dtype;
  }
  get size(): number {
    return size(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The elements, after all queued work has run (works on every backend). */
  async data(): Promise<HostArray> {
    this.assertLive();
    const d = await this.backend.read(this.buf);
    return d.length === this.size ? d : d.subarray(0, this.size);
  }

  /** Synchronous read: CPU backends only. */
  dataSync(): HostArray {
    this.assertLive();
    const r = this.backend.readSync;
    if (!r)
      throw new BackendError(
        'E_SYNC_READ',
        `backend ${this.backend.name} cannot read synchronously; use await t.data()`,
      );
    const d = r.call(this.backend, this.buf);
    return d.length === this.size ? d : d.subarray(0, this.size);
  }

  /** The single element of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item() needs one element, tensor has shape ${fmtShape(this.shape)}`);
    return (await this.data())[0]!;
  }

  /** Free this view (device memory goes when its last view does). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.node = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    this.storage.release();
  }

  assertLive(): void {
    if (this.disposed)
      throw new BackendError('E_DISPOSED', `tensor #${this.id}${this.name ? ` (${this.name})` : ''} was disposed`);
    if (this.storage.gone === 'vacant')
      throw new BackendError(
        'E_FREED',
        `tensor #${this.id}${this.name ? ` (${this.name})` : ''} ${fmtShape(this.shape)} is vacant: it was loaded ` +
          'without its values (a linear left in its GGUF file for quantizeModel), so nothing can read it',
      );
    if (this.storage.gone)
      throw new BackendError(
        'E_FREED',
        `tensor #${this.id}${this.name ? ` (${this.name})` : ''} ${fmtShape(this.shape)}: its memory was ` +
          (this.storage.gone === 'freed' ? 'given back (freeData)' : 'handed to another tensor (takeData)') +
          ' after its last use, so nothing may read it any more',
      );
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}, ${this.backend.name})`;
  }
}

/**
 * Give back the memory of `t` (and of every view sharing it) now, before its scope ends, keeping the tensors and
 * their autograd nodes: for an intermediate whose last reader has been recorded and that no gradient rule reads —
 * the rules of its own op and of its consumers use only their inputs' shapes, or other tensors (a projection's
 * output once the residual add has it: matmul's rule reads its inputs, add's only shapes). Anything that reads it
 * afterwards (a kernel, data(), a gradient rule that does need it) throws BackendError E_FREED rather than reading
 * reused memory. Scopes and dispose then free nothing twice. On an asynchronous backend the free is ordered after the
 * work already recorded, as any dispose is.
 */
export function freeData(t: Tensor): void {
  t.storage.freeNow();
}

/**
 * A tensor of `shape` that holds no memory: a parameter whose values live elsewhere (a model's linear weights loaded
 * straight into their quantised form). Reading it throws BackendError E_FREED, saying it is vacant; disposing it
 * frees nothing.
 */
export function vacantTensor(shape: readonly number[], opts: { backend?: Backend; name?: string } = {}): Tensor {
  const backend = opts.backend ?? getBackend();
  const storage = new Storage(backend, { backend: backend.name, length: size(shape), dtype: 'f32' });
  storage.gone = 'vacant';
  const t = new Tensor(storage, shape);
  if (opts.name !== undefined) t.name = opts.name;
  return t;
}

/**
 * A new tensor of `t`'s shape that owns `t`'s memory, contents as they are, for a kernel to overwrite in place: `t`
 * and every view of it keep their autograd nodes but throw BackendError E_FREED if anything reads them afterwards
 * (the cross-entropy's backward writes the logits' gradient over the logits this way, where nothing else reads
 * them). The new tensor is freed as any other.
 */
export function takeData(t: Tensor): Tensor {
  t.assertLive();
  return new Tensor(t.storage.handOver(), t.shape);
}

// ---------------------------------------------------------------- scopes

const scopes: Tensor[][] = [];

function currentScope(): Tensor[] | undefined {
  return scopes[scopes.length - 1];
}

/** Mark a tensor (and so its memory) as surviving every enclosing scope. */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

function collect(x: unknown, out: Set<Tensor>): void {
  if (x instanceof Tensor) out.add(x);
  else if (Array.isArray(x)) for (const y of x) collect(y, out);
  else if (x && typeof x === 'object' && !(x instanceof Promise) && Object.getPrototypeOf(x) === Object.prototype)
    for (const y of Object.values(x)) collect(y, out);
}

/**
 * A scope entered by several synchronous `run`s with awaits between them (a loss built around a read from the
 * device, src/train/staged_loss.ts): every tensor created inside any run, and not kept, is disposed by `close`
 * unless it is among `close`'s results. Unlike separate tidy calls, tensors made in one run keep their autograd
 * nodes for the next. The scope is on the stack only while a run executes, so other work during the awaits (a
 * server's requests) is not collected into it.
 */
export class Scope {
  private readonly tensors: Tensor[] = [];
  private closed = false;

  run<T>(fn: () => T): T {
    if (this.closed) throw new Error('Scope.run after close');
    scopes.push(this.tensors);
    try {
      return fn();
    } finally {
      scopes.pop();
    }
  }

  /** Dispose the scope's tensors except those in `result` (a tensor, or inside an array / plain object), which leave the tape and move to the enclosing scope. */
  close<T>(result: T): T {
    this.closed = true;
    const ret = new Set<Tensor>();
    collect(result, ret);
    const parent = currentScope();
    for (const t of this.tensors) {
      if (ret.has(t)) {
        t.node = null; // returned tensors leave the tape: what made them is freed
        parent?.push(t);
      } else if (!t.kept) t.dispose();
    }
    this.tensors.length = 0;
    return result;
  }
}

/**
 * Run fn in a scope: every tensor created inside and not returned (as a tensor, or inside an array / plain object)
 * is disposed when fn returns. Returned tensors move to the enclosing scope. fn must be synchronous (a scope
 * around awaits: Scope).
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope();
  return scope.close(scope.run(fn)); // a throw leaves the scope's tensors as they are, as before
}

// ---------------------------------------------------------------- grad mode

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn without recording the autograd tape. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// ---------------------------------------------------------------- creation

export interface TensorOptions {
  dtype?: DType;
  backend?: Backend;
  requiresGrad?: boolean;
  name?: string;
}

/** A new uninitialised tensor. */
export function empty(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  const backend = opts.backend ?? getBackend();
  const dtype = opts.dtype ?? 'f32';
  const n = size(shape);
  if (!Number.isInteger(n) || n < 0 || shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new ShapeError(`invalid shape ${fmtShape(shape)}`);
  const t = new Tensor(new Storage(backend, backend.alloc(Math.max(n, 1), dtype)), [...shape]);
  if (opts.requiresGrad) t.requiresGrad = true;
  if (opts.name) t.name = opts.name;
  return t;
}

/** A tensor holding `data` (copied), of the given shape. */
export function tensor(
  data: HostArray | readonly number[],
  shape: readonly number[],
  opts: TensorOptions = {},
): Tensor {
  const dtype = opts.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Float64Array ? 'f64' : 'f32');
  if (data.length !== size(shape)) throw new ShapeError(`tensor: ${data.length} values for shape ${fmtShape(shape)}`);
  const t = empty(shape, { ...opts, dtype });
  let host: HostArray;
  if (
    Array.isArray(data) ||
    (data as HostArray).constructor !== (dtype === 'f32' ? Float32Array : dtype === 'f64' ? Float64Array : Int32Array)
  ) {
    host =
      dtype === 'f32'
        ? Float32Array.from(data as ArrayLike<number>)
        : dtype === 'f64'
          ? Float64Array.from(data as ArrayLike<number>)
          : Int32Array.from(data as ArrayLike<number>);
  } else host = data as HostArray;
  if (host.length > 0) t.backend.write(t.buf, host);
  return t;
}

export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const t = empty(shape, opts);
  runKernel(t.backend, 'fill', [], [{ buf: t.buf, shape: t.shape }], { value });
  return t;
}

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}
