/**
 * The backend contract. A backend owns device memory and runs kernels by name on it. It never sees a `Tensor`:
 * only buffers, shapes and attributes. Small on purpose, so a new backend (WASM, WebGPU) is a day's work, and
 * shaped for an asynchronous GPU as well as a synchronous CPU: `run` only enqueues; reading data back is `read`,
 * which returns a Promise, so a GPU queue never stalls inside an op.
 *
 * Every kernel's semantics are written once, in `kernels.ts`, its signature (operands, dtypes, attributes, shape
 * rules) once in `signatures.ts`, checked by one validator (`validate.ts`); the `ref` backend is their
 * plain-TypeScript oracle. A backend may implement any subset: `dispatch.ts` runs the rest on `ref`. Buffers are dense and row-major; a kernel may assume its inputs and
 * outputs are contiguous and do not alias unless the kernel says it is in-place.
 */

/** Element types. `f64` exists on the `ref` backend only, for finite-difference gradient checks. */
export type DType = 'f32' | 'f64' | 'i32';

/** Host-side typed array of a dtype. */
export type HostArray = Float32Array | Float64Array | Int32Array;

/** An opaque handle to device memory owned by one backend. */
export interface DeviceBuffer {
  /** Name of the backend that owns it. */
  readonly backend: string;
  /** Number of elements. */
  readonly length: number;
  readonly dtype: DType;
}

/** A buffer seen through a shape, as a kernel receives it. */
export interface View {
  readonly buf: DeviceBuffer;
  readonly shape: readonly number[];
}

/** Kernel attributes: small plain values. */
export type Attrs = Readonly<Record<string, number | boolean | string | readonly number[] | undefined>>;

export interface Backend {
  /** Short name: 'ref', 'wasm', 'webgpu'. */
  readonly name: string;
  /** Human description (variant, threads), for logs and benchmarks. */
  describe(): string;
  /** dtypes this backend stores. */
  readonly dtypes: readonly DType[];
  /**
   * Optional: the operand precision of its matmul kernels where it is not float32 — 'f16' (the webgpu backend's
   * f16 path: operands rounded to binary16, f32 accumulation). Absent or 'f32': exact float32 products. The training
   * loop turns on dynamic loss scaling when it is 'f16' (src/train/loss_scale.ts).
   */
  readonly matmulPrecision?: 'f32' | 'f16';
  /** Allocate an uninitialised (may hold garbage) buffer of `length` elements. */
  alloc(length: number, dtype: DType): DeviceBuffer;
  /** Return a buffer's memory. Using it afterwards is an error. */
  free(buf: DeviceBuffer): void;
  /** Copy host data into a buffer (same dtype; `data.length` ≤ buffer length), starting at element `offset`. */
  write(buf: DeviceBuffer, data: HostArray, offset?: number): void;
  /** Copy a buffer to a new host array, after all kernels enqueued before have run. */
  read(buf: DeviceBuffer): Promise<HostArray>;
  /** Synchronous read, only on backends that can (CPU). Undefined on GPU backends. */
  readSync?(buf: DeviceBuffer): HostArray;
  /**
   * Enqueue (or run) kernel `name`. Outputs are pre-allocated by the caller with their final shapes. A backend checks
   * the call with `validateKernelCall` (./validate.ts) before touching memory. Only called when `supports` said yes.
   */
  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void;
  /**
   * Optional: `run` without `validateKernelCall`, for a call identical (kernel, buffers, shapes, attributes) to one
   * `run` has accepted — a decode graph's replay (src/model/decode_graph.ts), where checking ~70 unchanged calls a
   * token costs more than a small model's kernels. The caller passes the same `inputs` array each time it repeats the
   * call, so a backend may capture what the call did the first time and repeat that (wasm: its WebAssembly calls;
   * webgpu: its dispatches).
   */
  runReplay?(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void;
  /**
   * Optional: `run` without `validateKernelCall`, for a call its caller has already checked — a decode graph's calls
   * whose shapes and attributes move with the position, validated at both ends of the positions it may replay.
   */
  runUnchecked?(name: string, inputs: readonly View[], outputs: readonly View[], attrs?: Attrs): void;
  /**
   * Whether this backend runs kernel `name` for inputs of these dtypes (in input order; omitted: for some dtypes),
   * like ggml's supports_op. Anything it does not support runs on `ref` instead (./dispatch.ts `runKernel`): through
   * `readSync` on a CPU backend, through `enqueueHost` on one without it. `ref` supports every kernel.
   */
  supports(name: string, dtypes?: readonly DType[]): boolean;
  /**
   * For backends without `readSync` (GPU): run the host step `step` after all work enqueued so far and before any
   * work enqueued later — `run`, `write`, `read` and `free` called meanwhile wait for it. `step` reads and writes
   * buffers through `io`, which acts at once (the queue ahead of it has run). An error thrown by `step` rejects the
   * next `read` or `sync`. ./host_queue.ts implements the ordering; see docs/BACKENDS.md.
   */
  enqueueHost?(step: (io: HostIO) => Promise<void>): void;
  /** Resolves when all enqueued work has finished. */
  sync(): Promise<void>;
  /** Memory statistics in bytes, for error messages and benchmarks. */
  memory(): { inUse: number; peak: number; limit: number };
  /**
   * Optional: the largest one tensor may be, in bytes, where that is below what memory allows (webgpu: a kernel binds
   * each tensor whole, so min(maxBufferSize, maxStorageBufferBindingSize): 2 GiB − 4 on an H200). Work that would make
   * a bigger tensor splits it: the model's loss computes the logits and cross-entropy in row chunks under it.
   */
  readonly maxTensorBytes?: number;
  /** Release every resource (workers, device). */
  dispose(): void;
}

/** Buffer access inside a host step (`Backend.enqueueHost`): immediate, unlike the backend's queued methods. */
export interface HostIO {
  read(buf: DeviceBuffer): Promise<HostArray>;
  write(buf: DeviceBuffer, data: HostArray, offset?: number): void;
}

/** Element size in bytes. */
export function dtypeBytes(d: DType): number {
  return d === 'f64' ? 8 : 4;
}

/** Allocate a host array of a dtype. */
export function hostArray(dtype: DType, length: number): HostArray {
  if (dtype === 'f32') return new Float32Array(length);
  if (dtype === 'f64') return new Float64Array(length);
  return new Int32Array(length);
}
