/**
 * A counting WebGPU device, a planning tool: it implements the part of WebGPU this backend uses (./types.ts) but
 * holds no device memory and runs no shader. `createBuffer` records the size asked for (and `destroy` takes it off),
 * dispatches, copies and queue writes are no-ops, and a read back (`mapAsync` + `getMappedRange`) gives zero-filled
 * host memory of the size read, made only then (an upload is never copied: a 124M-parameter model's weights take no
 * host memory here). So the real backend, the real model and the real training step run in seconds at any shape —
 * GPT-2 124M at B16 T1024 included — with every number they compute zero, and `stats` says how many device bytes
 * that work would hold: `live`, `peak` (the most held at once), by kind (tensor storage, scratch, uniform, upload
 * staging, readback), and `createBuffer` calls.
 *
 *   const gpu = new CountingGpu();                       // an H200-like adapter under Dawn (COUNTING_H200_LIMITS)
 *   const be = await createWebGpuBackend({ gpu });       // the real backend on it
 *   ... a training step ...; await be.sync();
 *   gpu.stats.peak                                       // device bytes the step needs at most (pool included)
 *
 * The figures are exact for this backend's allocation order, which depends on host-side bookkeeping only (what is
 * allocated, freed and submitted when), not on timing: the same step on a real adapter makes the same createBuffer
 * calls (test/webgpu_memory.test.ts checks that against SwiftShader). What a real device adds is outside WebGPU's
 * view: the driver's own allocations, the CUDA-context-like overhead, and allocation granularity (buffers are
 * counted at the size asked for).
 *
 * `capacity` (default: unlimited) plays a device with that much memory: a storage buffer that would pass it is
 * refused as a real device refuses one, an 'out-of-memory' error in the open error scope (else the device's
 * 'uncapturederror' event), and the buffer counts nothing; the backend turns that into its OutOfMemoryError. A
 * buffer over `maxBufferSize` is a validation error the same way.
 */
import type {
  GpuAdapterLike,
  GpuBindGroupLayoutEntryLike,
  GpuBindGroupLayoutLike,
  GpuBufferLike,
  GpuCommandEncoderLike,
  GpuComputePassLike,
  GpuComputePipelineLike,
  GpuDeviceLike,
  GpuErrorLike,
  GpuLike,
  GpuLimitsLike,
  GpuQueueLike,
} from './types.js';

/**
 * Limits like those Dawn (Vulkan) offers on an NVIDIA H100/H200: a buffer up to 4 GiB, a storage binding up to
 * 2 GiB − 4 (Chromium's and Dawn's binding-range cap; the model's loss chunks its logits to fit it), 10 storage
 * buffers a stage, 32 KiB of workgroup memory. Assumed, not read from a device (none was available): pass `limits`
 * to plan for another adapter.
 */
export const COUNTING_H200_LIMITS: GpuLimitsLike = {
  maxBufferSize: 2 ** 32,
  maxStorageBufferBindingSize: 2 ** 31 - 4,
  maxStorageBuffersPerShaderStage: 10,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 1024,
};

/** The H200's memory as sold: 141 GB (nvidia-smi shows about 139.8 GiB usable). For `capacity` and comparisons. */
export const H200_BYTES = 141e9;

export interface CountingGpuOptions {
  /** The adapter's (and device's) limits: COUNTING_H200_LIMITS with these changed. */
  limits?: Partial<GpuLimitsLike>;
  /** Device bytes this device may hold at once (default unlimited): past it, createBuffer is refused (out of memory). */
  capacity?: number;
  /** The adapter's description (describe() shows it). */
  description?: string;
  /**
   * Called with every live buffer each time `peak` grows (in the createBuffer call that made it grow, before the
   * backend has the new buffer): a caller that wants to know what the peak is made of keeps this list.
   */
  onPeak?: (live: ReadonlySet<CountingBuffer>) => void;
}

/** GPUBufferUsage bits (as ./core.ts USAGE). */
const MAP_READ = 0x1,
  COPY_SRC = 0x4,
  UNIFORM = 0x40,
  STORAGE = 0x80;

/** What a buffer is for, from its usage: a tensor's storage (STORAGE|COPY_SRC|COPY_DST), a kernel's scratch, … */
export type BufferKind = 'tensor' | 'scratch' | 'uniform' | 'upload' | 'readback';

export function bufferKind(usage: number): BufferKind {
  if (usage & MAP_READ) return 'readback';
  if (usage & UNIFORM) return 'uniform';
  if (usage & STORAGE) return (usage & COPY_SRC) !== 0 ? 'tensor' : 'scratch';
  return 'upload';
}

const KINDS: readonly BufferKind[] = ['tensor', 'scratch', 'uniform', 'upload', 'readback'];

/** What the counting device has seen. */
export class CountingStats {
  /** Device bytes of the buffers not destroyed yet. */
  live = 0;
  /** The most `live` has been. */
  peak = 0;
  /** `live` by kind now, and as it was when `peak` was reached. */
  readonly liveByKind: Record<BufferKind, number> = zeroKinds();
  readonly peakByKind: Record<BufferKind, number> = zeroKinds();
  /** createBuffer calls that made a buffer, and destroy calls. */
  created = 0;
  destroyed = 0;
  /** Buffers refused (capacity or maxBufferSize). */
  refused = 0;
  dispatches = 0;
  submits = 0;
  /** Bytes queue.writeBuffer was asked to write, and bytes read back through mapAsync. */
  bytesWritten = 0;
  bytesRead = 0;

  /** `peak` and `peakByKind` start again from what is live now (to measure one step after a warm-up). */
  resetPeak(): void {
    this.peak = this.live;
    Object.assign(this.peakByKind, this.liveByKind);
  }
}

function zeroKinds(): Record<BufferKind, number> {
  return { tensor: 0, scratch: 0, uniform: 0, upload: 0, readback: 0 };
}

/** A buffer of the counting device: its size and usage; memory only for a mapped range, made when it is asked for. */
export class CountingBuffer implements GpuBufferLike {
  readonly kind: BufferKind;
  private range: ArrayBuffer | null = null;
  destroyed = false;
  constructor(
    private readonly dev: CountingDevice,
    readonly size: number,
    readonly usage: number,
    /** Refused by the device (out of memory or over maxBufferSize): holds nothing, counts nothing. */
    readonly invalid: boolean,
    mapped: boolean,
  ) {
    this.kind = bufferKind(usage);
    if (mapped) this.range = new ArrayBuffer(size);
  }
  async mapAsync(_mode: number, offset = 0, size?: number): Promise<void> {
    this.range = new ArrayBuffer(size ?? this.size - offset);
    this.dev.stats.bytesRead += this.range.byteLength;
  }
  getMappedRange(_offset = 0, size?: number): ArrayBuffer {
    return this.range ?? new ArrayBuffer(size ?? this.size);
  }
  unmap(): void {
    this.range = null;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.range = null;
    this.dev.forget(this);
  }
}

class Scope {
  error: GpuErrorLike | null = null;
  constructor(readonly filter: string) {}
}

const NOOP_PASS: GpuComputePassLike = {
  setPipeline() {},
  setBindGroup() {},
  dispatchWorkgroups() {},
  end() {},
};

class CountingDevice implements GpuDeviceLike {
  readonly queue: GpuQueueLike;
  readonly lost: Promise<{ reason: string; message: string }>;
  private resolveLost: (v: { reason: string; message: string }) => void = () => {};
  /** The buffers not destroyed yet. */
  readonly liveSet = new Set<CountingBuffer>();
  private readonly scopes: Scope[] = [];
  private readonly listeners: ((e: { error: GpuErrorLike }) => void)[] = [];
  /** The one command encoder handed out (recording is a no-op). */
  private readonly encoder: GpuCommandEncoderLike;

  constructor(
    readonly limits: GpuLimitsLike,
    readonly stats: CountingStats,
    private readonly capacity: number,
    private readonly onPeak?: (live: ReadonlySet<CountingBuffer>) => void,
  ) {
    this.lost = new Promise((r) => (this.resolveLost = r));
    const pass: GpuComputePassLike = { ...NOOP_PASS, dispatchWorkgroups: () => void stats.dispatches++ };
    this.queue = {
      submit: () => void stats.submits++,
      writeBuffer: (_b, _o, data, dataOffset = 0, size) => {
        // `dataOffset` and `size` count elements of a typed array (bytes of an ArrayBuffer)
        const unit = ArrayBuffer.isView(data) ? ((data as Float32Array).BYTES_PER_ELEMENT ?? 1) : 1;
        stats.bytesWritten += (size ?? data.byteLength / unit - dataOffset) * unit;
      },
      onSubmittedWorkDone: async () => {},
    };
    this.encoder = {
      beginComputePass: () => pass,
      copyBufferToBuffer: () => {},
      finish: () => ({}),
    };
  }

  createBuffer(desc: { size: number; usage: number; mappedAtCreation?: boolean }): GpuBufferLike {
    const s = this.stats;
    const tooBig = desc.size > this.limits.maxBufferSize;
    const noRoom = !tooBig && (desc.usage & STORAGE) !== 0 && s.live + desc.size > this.capacity;
    if (tooBig || noRoom) {
      s.refused++;
      this.report(
        tooBig ? 'validation' : 'out-of-memory',
        tooBig
          ? `createBuffer: size ${desc.size} exceeds maxBufferSize ${this.limits.maxBufferSize}`
          : `createBuffer: out of memory allocating ${desc.size} bytes (${s.live} of ${this.capacity} held)`,
      );
      return new CountingBuffer(this, desc.size, desc.usage, true, desc.mappedAtCreation ?? false);
    }
    const b = new CountingBuffer(this, desc.size, desc.usage, false, desc.mappedAtCreation ?? false);
    this.liveSet.add(b);
    s.created++;
    s.live += b.size;
    s.liveByKind[b.kind] += b.size;
    if (s.live > s.peak) {
      s.peak = s.live;
      for (const k of KINDS) s.peakByKind[k] = s.liveByKind[k];
      this.onPeak?.(this.liveSet);
    }
    return b;
  }

  /** A buffer was destroyed: its bytes are free. */
  forget(b: CountingBuffer): void {
    if (b.invalid || !this.liveSet.delete(b)) return;
    this.stats.destroyed++;
    this.stats.live -= b.size;
    this.stats.liveByKind[b.kind] -= b.size;
  }

  private report(filter: string, message: string): void {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const scope = this.scopes[i]!;
      if (scope.filter === filter) {
        scope.error ??= { message };
        return;
      }
    }
    for (const fn of this.listeners) fn({ error: { message } });
  }

  createShaderModule(): unknown {
    return {};
  }
  createBindGroupLayout(_desc: { entries: GpuBindGroupLayoutEntryLike[] }): GpuBindGroupLayoutLike {
    return {};
  }
  createPipelineLayout(): unknown {
    return {};
  }
  createComputePipeline(): GpuComputePipelineLike {
    const layout = {};
    return { getBindGroupLayout: () => layout };
  }
  createBindGroup(): unknown {
    return {};
  }
  createCommandEncoder(): GpuCommandEncoderLike {
    return this.encoder;
  }
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void {
    this.scopes.push(new Scope(filter));
  }
  async popErrorScope(): Promise<GpuErrorLike | null> {
    const s = this.scopes.pop();
    if (!s) throw new Error('popErrorScope: no error scope is open');
    return s.error;
  }
  addEventListener(_type: 'uncapturederror', fn: (e: { error: GpuErrorLike }) => void): void {
    this.listeners.push(fn);
  }
  destroy(): void {
    for (const b of [...this.liveSet]) b.destroy();
    this.resolveLost({ reason: 'destroyed', message: 'device destroyed' });
  }
}

/**
 * A `gpu` object (for `createWebGpuBackend({ gpu })`) whose adapter gives counting devices. `stats` are those of the
 * latest device requested (one backend a CountingGpu, as a rule).
 */
export class CountingGpu implements GpuLike {
  readonly limits: GpuLimitsLike;
  stats = new CountingStats();
  private readonly capacity: number;
  private device: CountingDevice | null = null;

  constructor(private readonly opts: CountingGpuOptions = {}) {
    this.limits = { ...COUNTING_H200_LIMITS, ...opts.limits };
    this.capacity = opts.capacity ?? Number.POSITIVE_INFINITY;
  }

  /** The buffers the latest device holds now (a caller's own split of `live`). */
  liveBuffers(): ReadonlySet<CountingBuffer> {
    return this.device?.liveSet ?? new Set();
  }

  async requestAdapter(): Promise<GpuAdapterLike> {
    const limits = this.limits;
    return {
      limits,
      features: new Set<string>(),
      info: {
        vendor: 'counting',
        architecture: 'no memory, no shaders',
        description: this.opts.description ?? 'a planning device with H200-like limits',
      },
      requestDevice: async (desc) => {
        const req = desc?.requiredLimits ?? {};
        const granted = { ...limits } as Record<string, number>;
        for (const [k, v] of Object.entries(req)) if (k in granted) granted[k] = Math.min(v, granted[k]!);
        this.stats = new CountingStats();
        this.device = new CountingDevice(
          granted as unknown as GpuLimitsLike,
          this.stats,
          this.capacity,
          this.opts.onPeak,
        );
        return this.device;
      },
    };
  }
}
