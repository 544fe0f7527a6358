/**
 * WebGPU memory and dispatch for the webgpu backend: storage buffers, a pipeline cache keyed by WGSL source, one
 * command encoder and compute pass that kernels record into until something needs the results (a read, a host write,
 * a sync), and readback through a mappable staging buffer. Every kernel's scalar parameters travel in a small uniform
 * buffer of 32-bit words (`Params`), read in WGSL with `pu(i)` / `pi(i)` / `pf(i)` (see PRELUDE).
 *
 * Ordering: dispatches in one compute pass see each other's writes in order; `queue.writeBuffer` runs before any
 * command buffer submitted after it, so a write first submits what is recorded (flush). Buffers freed while recorded
 * work may use them are destroyed after the next submit — or, with the buffer pool (./buffer_pool.ts, the default),
 * kept for reuse after the next submit: storage buffers, scratch, the uniform parameter blocks (written with
 * `queue.writeBuffer` into an idle pooled buffer, which lands before this encoder and after every earlier user) and
 * the readback staging buffers (back to the pool once unmapped).
 */
import type { DeviceBuffer, DType, HostArray } from '../backend.js';
import { BackendError } from '../../util/errors.js';
import { BufferPool, pooledSize } from './buffer_pool.js';
import type {
  GpuBufferLike,
  GpuCommandEncoderLike,
  GpuComputePassLike,
  GpuComputePipelineLike,
  GpuDeviceLike,
} from './types.js';

/** GPUBufferUsage and GPUMapMode flags (WebGPU spec). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_MODE_READ = 0x1;

/** Threads per workgroup of the elementwise and row kernels. */
export const WG = 256;

export class GpuBuf implements DeviceBuffer {
  readonly backend = 'webgpu';
  /** free() was called (later calls are errors); its release waits in the queue behind earlier work. */
  freed = false;
  /** The GPU buffer was released (a host step queued before the free may still read it until then). */
  released = false;
  constructor(
    readonly length: number,
    readonly dtype: DType,
    readonly gpu: GpuBufferLike,
  ) {}
}

/** Scalar kernel parameters as 32-bit words: u32, i32 and f32 (bits). */
export class Params {
  readonly words: number[] = [];
  private readonly f = new Float32Array(1);
  private readonly u = new Uint32Array(this.f.buffer);
  u32(...xs: number[]): this {
    for (const x of xs) this.words.push(x >>> 0);
    return this;
  }
  i32(...xs: number[]): this {
    for (const x of xs) this.words.push(x | 0);
    return this;
  }
  f32(...xs: number[]): this {
    for (const x of xs) {
      this.f[0] = x;
      this.words.push(this.u[0]!);
    }
    return this;
  }
}

/** WGSL shared by every kernel: the parameter block (binding 0) and its readers. `n` = vec4 count. */
export function prelude(nVec4: number): string {
  return `@group(0) @binding(0) var<uniform> P: array<vec4<u32>, ${Math.max(1, nVec4)}>;
fn pu(i: u32) -> u32 { return P[i / 4u][i % 4u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
`;
}

/** A storage binding's WGSL declaration. */
export function storage(binding: number, name: string, type: 'f32' | 'i32', write: boolean): string {
  return `@group(0) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;\n`;
}

/** The WGSL element type of a dtype (f64 never reaches this backend). */
export function wgslType(d: DType): 'f32' | 'i32' {
  return d === 'i32' ? 'i32' : 'f32';
}

/** Workgroup counts covering `n` groups in x, then y (x ≤ 65535). Shaders rebuild the flat index from num_workgroups. */
export function grid(groups: number): [number, number] {
  const g = Math.max(1, groups);
  const x = Math.min(g, 65535);
  return [x, Math.ceil(g / x)];
}

/** WGSL: the flat workgroup id of a 2-D grid from `grid`. */
export const FLAT_GROUP = 'let grp = wid.y * nwg.x + wid.x;';
/** WGSL: one thread per element, `e` its index, past parameter 0 (the element count) nothing to do. */
export const FLAT_ELEMENT = `${FLAT_GROUP}
  let e = grp * ${WG}u + lid;
  if (e >= pu(0u)) { return; }`;
export const BUILTINS =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

/**
 * One kernel call's dispatches, kept for replays (a decode graph's unchanged calls: src/model/decode_graph.ts): the
 * pipelines, bind groups and workgroup counts, and the buffers the call made for itself (its parameter blocks,
 * scratch, tables), held until `dropCall`. A replay records the same dispatches again without building anything.
 */
export interface CapturedCall {
  ready: boolean;
  dispatches: { pipe: GpuComputePipelineLike; group: unknown; groups: readonly number[] }[];
  owned: GpuBufferLike[];
}

export class GpuContext {
  private readonly pipelines = new Map<string, GpuComputePipelineLike>();
  /** The call being captured (`captureCall`): what it dispatches and the buffers it makes are kept there. */
  private capturing: CapturedCall | null = null;
  private encoder: GpuCommandEncoderLike | null = null;
  private pass: GpuComputePassLike | null = null;
  /** Uniform buffers and freed buffers the recorded work uses: destroyed after it is submitted (no pool). */
  private doomed: GpuBufferLike[] = [];
  /** Pooled buffers the recorded work uses: back to the pool after it is submitted. */
  private recycled: GpuBufferLike[] = [];
  /** The buffer pool; null with `pool: false` (every buffer made new and destroyed). */
  readonly pool: BufferPool | null;
  /** Largest buffer a size class may round up to (a binding must fit maxStorageBufferBindingSize). */
  private readonly cap: number;
  /** Dispatches recorded since the backend started (tests and describe). */
  dispatches = 0;
  submits = 0;
  /** device.createBuffer calls so far, of every kind (storage, scratch, uniform, staging). */
  created = 0;
  /**
   * Called when the device reports that a storage buffer of `size` bytes could not be made (WebGPU says so
   * asynchronously, through an 'out-of-memory' error scope around createBuffer).
   */
  onOutOfMemory: ((size: number) => void) | null = null;
  /** Out-of-memory scopes not answered yet. */
  private readonly scopes = new Set<Promise<void>>();

  constructor(
    readonly device: GpuDeviceLike,
    pooled = true,
  ) {
    this.pool = pooled ? new BufferPool((size, usage) => this.make(size, usage)) : null;
    this.cap = Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize);
  }

  /** A new GPU buffer of `size` bytes (storage buffers inside an out-of-memory error scope). */
  private make(size: number, usage: number, mappedAtCreation = false): GpuBufferLike {
    this.created++;
    const watch = this.onOutOfMemory !== null && (usage & USAGE.STORAGE) !== 0;
    if (watch) this.device.pushErrorScope('out-of-memory');
    const b = this.device.createBuffer({ size, usage, ...(mappedAtCreation ? { mappedAtCreation } : {}) });
    if (watch) {
      const p = this.device.popErrorScope().then(
        (e) => {
          if (e) this.onOutOfMemory?.(size);
        },
        () => {},
      );
      this.scopes.add(p);
      void p.then(() => this.scopes.delete(p));
    }
    return b;
  }

  /** Resolves when every out-of-memory scope opened so far has answered (a read or sync reports what they found). */
  async scopesAnswered(): Promise<void> {
    while (this.scopes.size > 0) await Promise.all([...this.scopes]);
  }

  /** The bytes a request of `bytes` holds on the device: its size class with the pool, else 4-byte aligned. */
  sizeFor(bytes: number): number {
    return this.pool ? pooledSize(bytes, this.cap) : Math.max(4, Math.ceil(bytes / 4) * 4);
  }

  /** A buffer for `bytes` of `usage`: from the pool (or new) with the pool, else new. */
  createBuffer(bytes: number, usage: number): GpuBufferLike {
    const b = this.pool
      ? this.pool.take(bytes, usage, this.cap)
      : this.make(Math.max(4, Math.ceil(bytes / 4) * 4), usage);
    this.capturing?.owned.push(b);
    return b;
  }

  /** Whether a request of `bytes` for `usage` would be served by an idle pooled buffer (no new device memory). */
  canReuse(bytes: number, usage: number): boolean {
    return this.pool?.has(bytes, usage, this.cap) ?? false;
  }

  /** Destroy (or, with the pool, give back) `b` once the work recorded so far has been submitted. */
  release(b: GpuBufferLike): void {
    if (this.capturing?.owned.includes(b)) return; // kept by the captured call until dropCall
    if (this.pool?.owns(b)) {
      if (this.encoder) this.recycled.push(b);
      else this.pool.give(b);
    } else if (this.encoder) this.doomed.push(b);
    else b.destroy();
  }

  private openEncoder(): void {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
  }

  private pipeline(code: string): GpuComputePipelineLike {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(code, p);
    }
    return p;
  }

  /**
   * Record one dispatch of `code` (entry point `main`; binding 0 the parameter block, then `buffers` at 1, 2, …).
   * The shader must use every binding it declares (layout 'auto' drops unused ones).
   */
  dispatch(code: string, params: Params, buffers: readonly GpuBufferLike[], groups: readonly number[]): void {
    const words = new Uint32Array(Math.max(4, Math.ceil(params.words.length / 4) * 4));
    words.set(params.words);
    const uni = this.pool ? this.pooledWith(words, USAGE.UNIFORM) : this.mappedWith(words, USAGE.UNIFORM);
    const pipe = this.pipeline(prelude(words.length / 4) + code);
    const group = this.device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [uni, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    this.openEncoder();
    if (!this.pass) this.pass = this.encoder!.beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(groups[0] ?? 1, groups[1] ?? 1, groups[2] ?? 1);
    if (this.capturing) {
      this.capturing.owned.push(uni);
      this.capturing.dispatches.push({ pipe, group, groups: [...groups] });
    } else this.release(uni);
    this.dispatches++;
  }

  /** Run `fn` (one kernel call's dispatches) capturing them into `c` for `replayCall`. */
  captureCall(c: CapturedCall, fn: () => void): void {
    this.capturing = c;
    try {
      fn();
    } finally {
      this.capturing = null;
    }
    c.ready = true;
  }

  /** Record a captured call's dispatches again: the same pipelines and bind groups, nothing built. */
  replayCall(c: CapturedCall): void {
    this.openEncoder();
    if (!this.pass) this.pass = this.encoder!.beginComputePass();
    for (const d of c.dispatches) {
      this.pass.setPipeline(d.pipe);
      this.pass.setBindGroup(0, d.group);
      this.pass.dispatchWorkgroups(d.groups[0] ?? 1, d.groups[1] ?? 1, d.groups[2] ?? 1);
      this.dispatches++;
    }
  }

  /** Give back what a captured call kept (after the work recorded so far is submitted). */
  dropCall(c: CapturedCall): void {
    for (const b of c.owned.splice(0)) this.release(b);
    c.dispatches.length = 0;
    c.ready = false;
  }

  /** A read-only storage buffer holding `data`, for the work recorded next (released after its submit). */
  constBuffer(data: Float32Array): GpuBufferLike {
    const b = this.pool ? this.pooledWith(data, USAGE.STORAGE) : this.mappedWith(data, USAGE.STORAGE);
    this.openEncoder();
    if (this.capturing) this.capturing.owned.push(b);
    else this.release(b);
    return b;
  }

  /** A new buffer holding `data` (mappedAtCreation: a write before any later submit, into memory nothing else uses). */
  private mappedWith(data: Uint32Array | Float32Array, usage: number): GpuBufferLike {
    const b = this.make(Math.max(4, data.byteLength), usage, true);
    new Uint8Array(b.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    b.unmap();
    return b;
  }

  /**
   * A pooled buffer holding `data`, written with queue.writeBuffer: the buffer is idle (every earlier user was
   * submitted, ./buffer_pool.ts), so the write lands after them and before the encoder that will use it.
   */
  private pooledWith(data: Uint32Array | Float32Array, usage: number): GpuBufferLike {
    const b = this.pool!.take(data.byteLength, usage | USAGE.COPY_DST, this.cap);
    if (data.byteLength > 0) this.device.queue.writeBuffer(b, 0, data);
    return b;
  }

  /** Submit what is recorded (queue.submit), then destroy what waited for it. */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    this.encoder = null;
    this.pass = null;
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
    for (const b of this.recycled) this.pool!.give(b);
    this.recycled = [];
  }

  /** Host data into `b` at element `offset`, after the work recorded so far. */
  upload(b: GpuBuf, data: HostArray, offset: number): void {
    if (data.length === 0) return;
    this.flush();
    const src = b.dtype === 'i32' ? toI32(data) : data instanceof Float32Array ? data : Float32Array.from(data);
    this.device.queue.writeBuffer(b.gpu, offset * 4, src);
  }

  /** Copy `b` out after all work recorded so far (copy to a staging buffer, submit, mapAsync). */
  async download(b: GpuBuf): Promise<HostArray> {
    if (b.released) throw new BackendError('E_FREED', 'webgpu backend: read of a freed buffer');
    const bytes = b.length * 4;
    const out: HostArray = b.dtype === 'i32' ? new Int32Array(b.length) : new Float32Array(b.length);
    if (bytes === 0) return out;
    const staging = this.createBuffer(bytes, USAGE.MAP_READ | USAGE.COPY_DST);
    this.openEncoder();
    this.pass?.end();
    this.pass = null;
    this.encoder!.copyBufferToBuffer(b.gpu, 0, staging, 0, bytes);
    this.flush();
    let done = false;
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, bytes);
      const view = staging.getMappedRange(0, bytes);
      (out as Float32Array).set(b.dtype === 'i32' ? (new Int32Array(view) as never) : new Float32Array(view));
      staging.unmap();
      done = true;
    } finally {
      // unmapped after a finished copy: idle, reusable at once; after a failure, in an unknown state: destroyed
      if (done && this.pool) this.pool.give(staging);
      else staging.destroy();
    }
    return out;
  }
}

function toI32(a: HostArray): Int32Array {
  return a instanceof Int32Array ? a : Int32Array.from(a);
}
