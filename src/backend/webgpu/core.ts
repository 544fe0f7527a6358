/**
 * WebGPU memory and dispatch for the webgpu backend: storage buffers, a pipeline cache keyed by WGSL source, one
 * command encoder and compute pass that kernels record into until something needs the results (a read, a host write,
 * a sync), and readback through a mappable staging buffer. Every kernel's scalar parameters travel in a small uniform
 * buffer of 32-bit words (`Params`), read in WGSL with `pu(i)` / `pi(i)` / `pf(i)` (see PRELUDE).
 *
 * Ordering: dispatches in one compute pass see each other's writes in order; `queue.writeBuffer` runs before any
 * command buffer submitted after it, so a write first submits what is recorded (flush). Buffers freed while recorded
 * work may use them are destroyed after the next submit.
 */
import type { DeviceBuffer, DType, HostArray } from '../backend.js';
import { BackendError } from '../../util/errors.js';
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
export const BUILTINS =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

export class GpuContext {
  private readonly pipelines = new Map<string, GpuComputePipelineLike>();
  private encoder: GpuCommandEncoderLike | null = null;
  private pass: GpuComputePassLike | null = null;
  /** Uniform buffers and freed buffers the recorded work uses: destroyed after it is submitted. */
  private doomed: GpuBufferLike[] = [];
  /** Dispatches recorded since the backend started (tests and describe). */
  dispatches = 0;
  submits = 0;

  constructor(readonly device: GpuDeviceLike) {}

  createBuffer(bytes: number, usage: number): GpuBufferLike {
    return this.device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage });
  }

  /** Destroy `b` once the work recorded so far has been submitted. */
  release(b: GpuBufferLike): void {
    if (this.encoder) this.doomed.push(b);
    else b.destroy();
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
    const uni = this.device.createBuffer({ size: words.byteLength, usage: USAGE.UNIFORM, mappedAtCreation: true });
    new Uint32Array(uni.getMappedRange()).set(words);
    uni.unmap();
    const pipe = this.pipeline(prelude(words.length / 4) + code);
    const group = this.device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [uni, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(groups[0] ?? 1, groups[1] ?? 1, groups[2] ?? 1);
    this.doomed.push(uni);
    this.dispatches++;
  }

  /** A read-only storage buffer holding `data`, for the work recorded next (destroyed after its submit). */
  constBuffer(data: Float32Array): GpuBufferLike {
    const b = this.device.createBuffer({
      size: Math.max(4, data.byteLength),
      usage: USAGE.STORAGE,
      mappedAtCreation: true,
    });
    new Float32Array(b.getMappedRange()).set(data);
    b.unmap();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.doomed.push(b);
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
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(b.gpu, 0, staging, 0, bytes);
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ, 0, bytes);
      const view = staging.getMappedRange(0, bytes);
      (out as Float32Array).set(b.dtype === 'i32' ? (new Int32Array(view) as never) : new Float32Array(view));
      staging.unmap();
    } finally {
      staging.destroy();
    }
    return out;
  }
}

function toI32(a: HostArray): Int32Array {
  return a instanceof Int32Array ? a : Int32Array.from(a);
}
