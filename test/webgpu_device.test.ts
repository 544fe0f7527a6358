/**
 * The webgpu backend where there is no WebGPU (Node here): named errors, not crashes, and `auto` never picks it.
 * Its kernels are checked in Chromium (./webgpu_browser.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { initBackend, registeredBackends } from '../src/backend/registry.js';
import { KERNELS } from '../src/backend/kernels.js';
import { createWebGpuBackend, WEBGPU_KERNELS } from '../src/backend/webgpu/backend.js';
import { BackendError } from '../src/util/errors.js';

describe('webgpu backend without WebGPU', () => {
  it('is registered, opt-in, with no Node test configuration', () => {
    const e = registeredBackends().find((b) => b.name === 'webgpu');
    expect(e).toBeDefined();
    expect(e!.testConfigs).toEqual([]);
    expect(e!.complete).toBeFalsy();
  });

  it('says WebGPU is missing (E_NO_WEBGPU), through the registry too', async () => {
    await expect(createWebGpuBackend()).rejects.toMatchObject({
      name: 'BackendError',
      code: 'E_NO_WEBGPU',
      message: expect.stringMatching(/WebGPU is not available.*--enable-unsafe-webgpu/),
    });
    await expect(initBackend('webgpu', { setDefault: false })).rejects.toBeInstanceOf(BackendError);
  });

  it('says no adapter was found (E_NO_ADAPTER) when the gpu object offers none', async () => {
    const gpu = { requestAdapter: async () => null };
    await expect(createWebGpuBackend({ gpu })).rejects.toMatchObject({
      code: 'E_NO_ADAPTER',
      message: expect.stringMatching(/found no adapter/),
    });
  });

  it('its native kernels are catalogue kernels; only sample, the quantised matmuls and the fused decode kernels fall back', () => {
    expect([...WEBGPU_KERNELS].filter((k) => !(KERNELS as readonly string[]).includes(k))).toEqual([]);
    // the fused decode kernels (issue 17: swiglu_fused, rope_qkv, rope_qkv_cache) have no WGSL yet (docs/BACKENDS.md)
    expect(KERNELS.filter((k) => !WEBGPU_KERNELS.has(k)).sort()).toEqual(
      ['matmul_q8', 'matmul_bf16', 'sample', 'swiglu_fused', 'rope_qkv', 'rope_qkv_cache'].sort(),
    );
  });

  it("'auto' does not pick it", async () => {
    const b = await initBackend('auto', { setDefault: false });
    expect(b.name).not.toBe('webgpu');
  });
});
