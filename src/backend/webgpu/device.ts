/**
 * Finding a WebGPU device: a `gpu` object passed in, else `navigator.gpu` (a browser; Chromium needs
 * `--enable-unsafe-webgpu` where WebGPU is not on by default, e.g. Linux, where SwiftShader is its software adapter),
 * else, in Node, the `webgpu` package (Dawn; ./node_gpu.ts says how it finds a Vulkan driver on Linux). Each way it
 * can fail is a named BackendError that says what was missing and what to do. The adapter is named, and said to be a
 * software one (SwiftShader, lavapipe, WARP: correct, not fast) where it is. For the f16 matmul path (`f16`), Dawn's
 * instance gets the toggles that open shader-f16 and subgroup matrices on NVIDIA, and the device the tensor-core
 * features where the adapter has them all (./tensor_cores.ts); otherwise nothing is asked that was not before.
 */
import { BackendError } from '../../util/errors.js';
import { DAWN_F16_TOGGLES, TC_FEATURES } from './tensor_cores.js';
import type { GpuAdapterLike, GpuDeviceLike, GpuLike } from './types.js';

export interface WebGpuDevice {
  device: GpuDeviceLike;
  adapter: GpuAdapterLike;
  /** "vendor architecture (description)" of the adapter, ", software" where it is one, for describe(). */
  adapterName: string;
  /** A CPU implementation of WebGPU (see isSoftwareAdapter). */
  software: boolean;
  /** The `gpu` object the device came from: Dawn's instance lives as long as this is referenced. */
  gpu: GpuLike;
  /** The optional features requested with the device (TC_FEATURES when the f16 path asked and the adapter has them; else none). */
  features: readonly string[];
}

/** How to ask for the device: `f16` (the f16 matmul path) opens the tensor-core features where they are. */
export interface DeviceRequest {
  f16?: boolean;
}

/**
 * The flags of Dawn's instance (Node's `webgpu` package create([...])): none for the default f32 path, the toggles
 * that open shader-f16 and subgroup matrices on NVIDIA (DAWN_F16_TOGGLES) for the f16 path.
 */
export const dawnFlags = (req: DeviceRequest = {}): string[] => (req.f16 ? [DAWN_F16_TOGGLES] : []);

/** The optional features to request: all of TC_FEATURES when `req.f16` and the adapter has them all, else none. */
export function optionalFeatures(adapter: GpuAdapterLike, req: DeviceRequest = {}): string[] {
  return req.f16 && TC_FEATURES.every((f) => adapter.features.has(f)) ? [...TC_FEATURES] : [];
}

function navigatorGpu(): GpuLike | null {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  return (nav?.gpu as GpuLike | undefined) ?? null;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** The `gpu` entry point where no Node binding is needed: the one given, else `navigator.gpu`, else null. */
export function gpuEntry(given?: unknown): GpuLike | null {
  return given ? (given as GpuLike) : navigatorGpu();
}

function noWebGpu(): BackendError {
  return new BackendError(
    'E_NO_WEBGPU',
    'webgpu backend: WebGPU is not available in this page. In Chromium on Linux start it with --enable-unsafe-webgpu; ' +
      'WebGPU also needs a secure context (https or localhost).',
  );
}

/** SwiftShader, lavapipe/llvmpipe, WARP, or an adapter that says it is a fallback: WebGPU on the CPU. */
export function isSoftwareAdapter(adapter: GpuAdapterLike): boolean {
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter || adapter.isFallbackAdapter) return true;
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return /swiftshader|lavapipe|llvmpipe|softpipe|microsoft basic render|\bwarp\b/i.test(text);
}

/** "vendor architecture (description)", "unnamed adapter" where the adapter says nothing. */
export function adapterLabel(adapter: GpuAdapterLike): string {
  const info = adapter.info ?? {};
  const name =
    [info.vendor, info.architecture].filter(Boolean).join(' ') + (info.description ? ` (${info.description})` : '');
  return name || 'unnamed adapter';
}

/** An adapter from `gpu` (null where it offers none). */
async function highPerformanceAdapter(gpu: GpuLike): Promise<GpuAdapterLike | null> {
  return gpu.requestAdapter({ powerPreference: 'high-performance' });
}

/** The gpu object and its adapter: given / navigator.gpu, else (Node) the `webgpu` package in ./node_gpu.ts's Vulkan environment. */
async function findAdapter(
  given: unknown,
  req: DeviceRequest,
): Promise<{ gpu: GpuLike; adapter: GpuAdapterLike | null; where: string }> {
  const gpu = gpuEntry(given);
  if (gpu) return { gpu, adapter: await highPerformanceAdapter(gpu), where: 'navigator.gpu.requestAdapter()' };
  if (!isNode) throw noWebGpu();
  const { dawnSearched, loadNodeWebGpu, withVulkanEnv } = await import(/* node-only */ './node_gpu.js');
  const mod = await loadNodeWebGpu();
  return withVulkanEnv(async (added) => {
    const g = mod.create(dawnFlags(req));
    return { gpu: g, adapter: await highPerformanceAdapter(g), where: dawnSearched(added) };
  });
}

/**
 * Request an adapter and a device with the adapter's largest buffer limits; with `req.f16`, Dawn's f16 toggles (Node)
 * and the tensor-core features where the adapter has them (never required: without them the device is as before).
 */
export async function requestWebGpuDevice(given?: unknown, req: DeviceRequest = {}): Promise<WebGpuDevice> {
  const { gpu, adapter, where } = await findAdapter(given, req);
  if (!adapter)
    throw new BackendError(
      'E_NO_ADAPTER',
      `webgpu backend: ${where} found no adapter (no GPU driver, and no software adapter such as SwiftShader)`,
    );
  const l = adapter.limits;
  const features = optionalFeatures(adapter, req);
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
    ...(features.length ? { requiredFeatures: features } : {}),
  });
  const software = isSoftwareAdapter(adapter);
  return {
    device,
    adapter,
    gpu,
    software,
    features,
    adapterName: adapterLabel(adapter) + (software ? ', software' : ''),
  };
}

/**
 * For `auto` in Node: whether Dawn offers a hardware adapter here (a GPU, not SwiftShader or lavapipe). Cheap where
 * there is no GPU (no Dawn is loaded without a GPU device node: ./node_gpu.ts mayHaveGpu), ~40 ms where it looks;
 * false in a browser (auto keeps wasm there) and wherever the `webgpu` package does not load.
 */
export async function hasHardwareWebGpu(): Promise<boolean> {
  if (!isNode || navigatorGpu()) return false;
  const { loadNodeWebGpu, mayHaveGpu, withVulkanEnv } = await import(/* node-only */ './node_gpu.js');
  if (!mayHaveGpu()) return false;
  try {
    const mod = await loadNodeWebGpu();
    const adapter = await withVulkanEnv(async () => highPerformanceAdapter(mod.create([])), false);
    return !!adapter && !isSoftwareAdapter(adapter);
  } catch {
    return false;
  }
}
