/**
 * The part of the WebGPU API this backend uses, declared here: TypeScript's lib.dom has no WebGPU types yet and
 * the package takes no dependency for them (@webgpu/types). Structural, so the browser's real objects fit. Usage and
 * map-mode flags are numbers from the spec (GPUBufferUsage, GPUMapMode), named in ./core.ts.
 */

export interface GpuBufferLike {
  readonly size: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

export interface GpuBindGroupLayoutLike {
  readonly label?: string;
}

/** A buffer binding of a bind group layout (visibility: GPUShaderStage flags, COMPUTE = 4). */
export interface GpuBindGroupLayoutEntryLike {
  binding: number;
  visibility: number;
  buffer: { type: 'uniform' | 'storage' | 'read-only-storage'; hasDynamicOffset?: boolean };
}

export interface GpuComputePipelineLike {
  getBindGroupLayout(index: number): GpuBindGroupLayoutLike;
}

export interface GpuComputePassLike {
  setPipeline(p: GpuComputePipelineLike): void;
  setBindGroup(index: number, group: unknown, dynamicOffsets?: readonly number[]): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}

export interface GpuCommandEncoderLike {
  beginComputePass(desc?: object): GpuComputePassLike;
  copyBufferToBuffer(src: GpuBufferLike, srcOffset: number, dst: GpuBufferLike, dstOffset: number, size: number): void;
  finish(): unknown;
}

export interface GpuQueueLike {
  submit(buffers: unknown[]): void;
  writeBuffer(
    buf: GpuBufferLike,
    offset: number,
    data: ArrayBufferView | ArrayBuffer,
    dataOffset?: number,
    size?: number,
  ): void;
  onSubmittedWorkDone(): Promise<void>;
}

export interface GpuErrorLike {
  readonly message: string;
}

export interface GpuLimitsLike {
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
}

export interface GpuDeviceLike {
  readonly queue: GpuQueueLike;
  readonly limits: GpuLimitsLike;
  readonly lost: Promise<{ reason: string; message: string }>;
  createBuffer(desc: { size: number; usage: number; mappedAtCreation?: boolean; label?: string }): GpuBufferLike;
  createShaderModule(desc: { code: string; label?: string }): unknown;
  createBindGroupLayout(desc: { entries: GpuBindGroupLayoutEntryLike[] }): GpuBindGroupLayoutLike;
  createPipelineLayout(desc: { bindGroupLayouts: GpuBindGroupLayoutLike[] }): unknown;
  createComputePipeline(desc: {
    /** 'auto', or a pipeline layout from createPipelineLayout. */
    layout: unknown;
    compute: { module: unknown; entryPoint: string };
    label?: string;
  }): GpuComputePipelineLike;
  createBindGroup(desc: {
    layout: GpuBindGroupLayoutLike;
    entries: { binding: number; resource: { buffer: GpuBufferLike; offset?: number; size?: number } }[];
  }): unknown;
  createCommandEncoder(): GpuCommandEncoderLike;
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<GpuErrorLike | null>;
  addEventListener(type: 'uncapturederror', fn: (e: { error: GpuErrorLike }) => void): void;
  destroy(): void;
}

export interface GpuAdapterLike {
  readonly limits: GpuLimitsLike;
  readonly features: ReadonlySet<string>;
  readonly info?: {
    vendor?: string;
    architecture?: string;
    device?: string;
    description?: string;
    /** In GPUAdapterInfo since 2024 (Dawn has it); older browsers had it on the adapter. */
    isFallbackAdapter?: boolean;
    /** Dawn, with `chromium-experimental-subgroup-matrix`: the subgroup-matrix shapes and types (./tensor_cores.ts). */
    subgroupMatrixConfigs?: readonly {
      componentType?: string;
      resultComponentType?: string;
      M?: number;
      N?: number;
      K?: number;
    }[];
  };
  readonly isFallbackAdapter?: boolean;
  requestDevice(desc?: {
    requiredLimits?: Record<string, number>;
    requiredFeatures?: string[];
  }): Promise<GpuDeviceLike>;
}

export interface GpuLike {
  requestAdapter(opts?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterLike | null>;
}
