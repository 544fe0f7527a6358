/**
 * The webgpu backend: kernels in WGSL on a WebGPU device (a browser's `navigator.gpu`; in Chromium on Linux,
 * `--enable-unsafe-webgpu`, SwiftShader when there is no GPU; in Node the `webgpu` package, ./node_gpu.ts). Buffers stay on the device; kernels are recorded into
 * one command encoder and submitted when something needs results; `read` is the only wait. It has no `readSync`:
 * a kernel it does not implement runs on ref as a queued host step (`enqueueHost`, ordered by ../host_queue.ts).
 *
 * Native kernels: ./elementwise.ts (fill, copy, scale, unary maps, broadcasting binary ops, swiglu, swiglu_fused,
 * transpose, sum_to), ./matmul.ts, ./matmul_quant.ts (matmul_q8, matmul_bf16), ./norm.ts (layernorm, rmsnorm, softmax, cross-entropy, forward and backward),
 * ./movement.ts (slice, pad_slice, concat, write_at, embedding and its backward), ./optim.ts (adamw),
 * ./attention.ts (attention and the fused-qkv form, forward and backward), ./rope.ts (rope, rope_qkv,
 * rope_qkv_cache), ./reduce.ts (sumsq, sum_all), dropout, ./sample.ts (greedy `sample`). `sample` with any other
 * setting runs ref's sampler as a host step inside `run`: its ids must equal ref's float64 draw exactly and WGSL has
 * no f64. docs/BACKENDS.md lists the coverage.
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, HostIO, View } from '../backend.js';
import { HostStepQueue } from '../host_queue.js';
import { sampleKernel } from '../sample_rows.js';
import { sampleAttrs } from '../sampling.js';
import { validateKernelCall } from '../validate.js';
import { BackendError, OutOfMemoryError } from '../../util/errors.js';
import { size } from '../../util/shape.js';
import { ATTENTION_KERNELS, runAttention } from './attention.js';
import { GpuBuf, GpuContext, USAGE } from './core.js';
import { requestWebGpuDevice } from './device.js';
import { ELEMENTWISE_KERNELS, runElementwise } from './elementwise.js';
import type { KView } from './kview.js';
import { runMatmul } from './matmul.js';
import { QUANT_KERNELS, runMatmulQuant } from './matmul_quant.js';
import { MOVEMENT_KERNELS, runMovement } from './movement.js';
import { NORM_KERNELS, runNorm } from './norm.js';
import { runAdamw } from './optim.js';
import { REDUCE_KERNELS, runReduce } from './reduce.js';
import { runRope, runRopeQkv } from './rope.js';
import { runSampleGreedy, sampleOnDevice } from './sample.js';
import type { GpuDeviceLike } from './types.js';

/** Every kernel this backend runs natively. */
export const WEBGPU_KERNELS: ReadonlySet<string> = new Set<string>([
  ...ELEMENTWISE_KERNELS,
  'matmul',
  ...QUANT_KERNELS,
  ...NORM_KERNELS,
  ...MOVEMENT_KERNELS,
  ...ATTENTION_KERNELS,
  'rope',
  'rope_qkv',
  'rope_qkv_cache',
  ...REDUCE_KERNELS,
  'adamw',
  'sample',
]);

export interface WebGpuBackendOptions {
  /** A WebGPU `gpu` object (default: navigator.gpu, else in Node the `webgpu` package's). */
  gpu?: unknown;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly dtypes: readonly DType[] = ['f32', 'i32'];
  /** Native kernel calls and host steps (fallbacks) so far. */
  readonly counts = { native: 0, hostSteps: 0 };
  private readonly queue = new HostStepQueue();
  private readonly ctx: GpuContext;
  private inUse = 0;
  private peak = 0;
  /** The first asynchronous device error (validation, out of memory, device lost), reported by the next read/sync. */
  private deviceError: Error | null = null;
  private disposed = false;
  private readonly io: HostIO = {
    read: (buf) => this.ctx.download(buf as GpuBuf),
    write: (buf, data, offset) => this.ctx.upload(buf as GpuBuf, data, offset ?? 0),
  };

  /** The `gpu` object the device came from (Dawn's instance in Node lives while it is referenced; dispose drops it). */
  private gpu: unknown;

  constructor(
    device: GpuDeviceLike,
    private readonly adapterName: string,
    /** The adapter is WebGPU on the CPU (SwiftShader, lavapipe): correct, not fast. */
    readonly software = false,
    gpu: unknown = null,
  ) {
    this.gpu = gpu;
    this.ctx = new GpuContext(device);
    device.addEventListener('uncapturederror', (e) => {
      this.deviceError ??= new BackendError('E_WEBGPU', `webgpu backend: device error: ${e.error.message}`);
    });
    void device.lost.then((info) => {
      if (!this.disposed)
        this.deviceError ??= new BackendError(
          'E_DEVICE_LOST',
          `webgpu backend: device lost (${info.reason}): ${info.message}`,
        );
    });
  }

  describe(): string {
    return `webgpu (${this.adapterName}; ${WEBGPU_KERNELS.size} kernels native, sample beyond greedy on ref)`;
  }

  alloc(length: number, dtype: DType): DeviceBuffer {
    if (dtype === 'f64') throw new BackendError('E_DTYPE', 'webgpu backend: f64 buffers exist on the ref backend only');
    const bytes = Math.max(4, length * 4);
    const limit = this.ctx.device.limits.maxBufferSize;
    if (bytes > limit) throw new OutOfMemoryError('webgpu', bytes, this.inUse, limit);
    const gpu = this.ctx.createBuffer(bytes, USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST);
    this.inUse += bytes;
    this.peak = Math.max(this.peak, this.inUse);
    return new GpuBuf(length, dtype, gpu);
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf);
    b.freed = true;
    this.inUse -= Math.max(4, b.length * 4);
    this.queue.device(() => {
      b.released = true;
      this.ctx.release(b.gpu);
    });
  }

  write(buf: DeviceBuffer, data: HostArray, offset = 0): void {
    const b = this.own(buf);
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(
        'E_WRITE',
        `webgpu backend: write of ${data.length} elements at ${offset} past the end of a buffer of ${b.length}`,
      );
    const d = this.queue.pending ? data.slice() : data;
    this.queue.device(() => this.ctx.upload(b, d, offset));
  }

  read(buf: DeviceBuffer): Promise<HostArray> {
    const b = this.own(buf);
    return this.queue.after(async () => {
      const out = await this.ctx.download(b);
      this.throwDeviceError();
      return out;
    });
  }

  supports(name: string, dtypes?: readonly DType[]): boolean {
    return WEBGPU_KERNELS.has(name) && !dtypes?.includes('f64');
  }

  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs: Attrs = {}): void {
    if (!WEBGPU_KERNELS.has(name)) throw new BackendError('E_KERNEL', `webgpu backend has no kernel '${name}'`);
    validateKernelCall(name, inputs, outputs, attrs);
    if (name === 'sample' && !sampleOnDevice(outputs.length, attrs)) {
      this.sampleOnHost(inputs, outputs, attrs);
      return;
    }
    this.counts.native++;
    const ins: KView[] = inputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    const outs: KView[] = outputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    const at = { ...attrs };
    this.queue.device(() => {
      if (name === 'matmul') runMatmul(this.ctx, ins, outs, at);
      else if (name === 'sample') runSampleGreedy(this.ctx, ins, outs);
      else if (name === 'matmul_q8' || name === 'matmul_bf16') runMatmulQuant(this.ctx, name, ins, outs);
      else if (name === 'adamw') runAdamw(this.ctx, ins, outs, at);
      else if (name === 'rope') runRope(this.ctx, ins, outs, at);
      else if (name === 'rope_qkv' || name === 'rope_qkv_cache')
        runRopeQkv(this.ctx, ins, outs, at, name === 'rope_qkv_cache');
      else if (name === 'sumsq' || name === 'sum_all') runReduce(this.ctx, name, ins, outs);
      else if (name.startsWith('attention')) runAttention(this.ctx, name, ins, outs, at);
      else if ((NORM_KERNELS as readonly string[]).includes(name)) runNorm(this.ctx, name, ins, outs, at);
      else if ((MOVEMENT_KERNELS as readonly string[]).includes(name)) runMovement(this.ctx, name, ins, outs, at);
      else runElementwise(this.ctx, name, ins, outs, at);
    });
  }

  /** `sample` with settings WGSL cannot reproduce exactly (./sample.ts): ref's sampler on the logits, as a host step. */
  private sampleOnHost(inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    for (const v of [...inputs, ...outputs]) this.own(v.buf);
    const { o, u, topN, penalties } = sampleAttrs(attrs);
    const x = inputs[0]!,
      outs = outputs.map((v) => ({
        buf: v.buf,
        data: v.buf.dtype === 'i32' ? new Int32Array(size(v.shape)) : new Float32Array(size(v.shape)),
      }));
    this.enqueueHost(async (io) => {
      const n = size(x.shape);
      const logits = { data: (await io.read(x.buf)).subarray(0, n), shape: x.shape };
      const [ids, probs, topIds, topLp] = outs;
      sampleKernel(
        logits,
        ids!,
        probs!,
        o,
        u,
        topN > 0 ? { n: topN, ids: topIds!, logprobs: topLp! } : undefined,
        penalties,
      );
      for (const v of outs) io.write(v.buf, v.data);
    });
  }

  enqueueHost(step: (io: HostIO) => Promise<void>): void {
    this.counts.hostSteps++;
    this.queue.host(() => step(this.io));
  }

  async sync(): Promise<void> {
    await this.queue.settled();
    this.ctx.flush();
    await this.ctx.device.queue.onSubmittedWorkDone();
    this.throwDeviceError();
  }

  memory(): { inUse: number; peak: number; limit: number } {
    return { inUse: this.inUse, peak: this.peak, limit: this.ctx.device.limits.maxBufferSize };
  }

  /** Dispatches and submits recorded so far (tests check the work ran on the device). */
  stats(): { dispatches: number; submits: number } {
    return { dispatches: this.ctx.dispatches, submits: this.ctx.submits };
  }

  dispose(): void {
    this.disposed = true;
    this.ctx.device.destroy();
    this.gpu = null;
  }

  private throwDeviceError(): void {
    const e = this.deviceError;
    if (e) {
      this.deviceError = null;
      throw e;
    }
  }

  private own(buf: DeviceBuffer): GpuBuf {
    if (!(buf instanceof GpuBuf))
      throw new BackendError('E_FOREIGN_BUFFER', `a ${buf.backend} buffer was passed to the webgpu backend`);
    if (buf.freed) throw new BackendError('E_FREED', 'webgpu backend: use of a freed buffer');
    return buf;
  }
}

/**
 * Create the webgpu backend on the adapter WebGPU offers for `high-performance` (navigator.gpu, or in Node the
 * `webgpu` package: ./device.ts); BackendError E_NO_WEBGPU / E_NO_ADAPTER if none.
 */
export async function createWebGpuBackend(opts: Readonly<Record<string, unknown>> = {}): Promise<WebGpuBackend> {
  const { device, adapterName, software, gpu } = await requestWebGpuDevice((opts as WebGpuBackendOptions).gpu);
  return new WebGpuBackend(device, adapterName, software, gpu);
}
