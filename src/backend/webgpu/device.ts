/**
 * Finding a WebGPU device: `navigator.gpu` (a browser; Chromium needs `--enable-unsafe-webgpu` where WebGPU is not
 * on by default, e.g. Linux, where SwiftShader is its software adapter), or a `gpu` object passed in (a Node
 * binding such as the `webgpu` package's `create([])`, not a dependency of this package). Each way it can fail is a
 * named BackendError that says what was missing and what to do.
 */
import { BackendError } from '../../util/errors.js';
import type { GpuAdapterLike, GpuDeviceLike, GpuLike } from './types.js';

export interface WebGpuDevice {
  device: GpuDeviceLike;
  adapter: GpuAdapterLike;
  /** "vendor architecture (description)" of the adapter, for describe(). */
  adapterName: string;
}

/** The `gpu` entry point: the one given, else `navigator.gpu`. */
export function gpuEntry(given?: unknown): GpuLike {
  if (given) return given as GpuLike;
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (!nav?.gpu) {
    const where =
      typeof window === 'undefined' ? 'here (no navigator.gpu in this runtime: Node has none)' : 'in this page';
    throw new BackendError(
      'E_NO_WEBGPU',
      `webgpu backend: WebGPU is not available ${where}. In Chromium on Linux start it with --enable-unsafe-webgpu; ` +
        'WebGPU also needs a secure context (https or localhost). In Node pass a gpu object: initBackend is not wired to one yet.',
    );
  }
  return nav.gpu as GpuLike;
}

/** Request an adapter and a device with the adapter's largest buffer limits. */
export async function requestWebGpuDevice(given?: unknown): Promise<WebGpuDevice> {
  const gpu = gpuEntry(given);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new BackendError(
      'E_NO_ADAPTER',
      'webgpu backend: navigator.gpu.requestAdapter() found no adapter (no GPU driver, and no software adapter such as SwiftShader or lavapipe)',
    );
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
  });
  const info = adapter.info ?? {};
  const adapterName =
    [info.vendor, info.architecture].filter(Boolean).join(' ') + (info.description ? ` (${info.description})` : '');
  return { device, adapter, adapterName: adapterName || 'unnamed adapter' };
}
