/**
 * The webgpu backend where WebGPU is missing or offers no adapter: named errors, not crashes; and `auto` does not
 * pick it without a GPU (SwiftShader is correct, not fast). Its kernels are checked in Node (./webgpu_node.test.ts)
 * and in Chromium (./webgpu_browser.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { initBackend, registeredBackends } from '../src/backend/registry.js';
import { KERNELS } from '../src/backend/kernels.js';
import { createWebGpuBackend, WEBGPU_KERNELS } from '../src/backend/webgpu/backend.js';
import { loadNodeWebGpu } from '../src/backend/webgpu/node_gpu.js';

describe('webgpu backend without a usable WebGPU', () => {
  it('is registered, opt-in, with no configuration of its own in the conformance suite (./webgpu_node.test.ts runs it)', () => {
    const e = registeredBackends().find((b) => b.name === 'webgpu');
    expect(e).toBeDefined();
    expect(e!.testConfigs).toEqual([]);
    expect(e!.complete).toBe(true);
  });

  it('says WebGPU is missing (E_NO_WEBGPU) where the webgpu package does not load, and how to install it', async () => {
    await expect(loadNodeWebGpu('llmts-no-such-package')).rejects.toMatchObject({
      name: 'BackendError',
      code: 'E_NO_WEBGPU',
      message: expect.stringMatching(/Node has no WebGPU of its own.*npm install webgpu@0\.6\.2/),
    });
  });

  it('says no adapter was found (E_NO_ADAPTER) when the gpu object offers none', async () => {
    const gpu = { requestAdapter: async () => null };
    await expect(createWebGpuBackend({ gpu })).rejects.toMatchObject({
      code: 'E_NO_ADAPTER',
      message: expect.stringMatching(/found no adapter/),
    });
  });

  it('its native kernels are the catalogue, every kernel (sample: greedy in WGSL, other settings on ref)', () => {
    expect([...WEBGPU_KERNELS].filter((k) => !(KERNELS as readonly string[]).includes(k))).toEqual([]);
    // sample beyond greedy runs ref's float64 sampler as a host step inside run: its ids must equal ref's exactly, and
    // WGSL has no f64 (src/backend/webgpu/sample.ts)
    expect(KERNELS.filter((k) => !WEBGPU_KERNELS.has(k))).toEqual([]);
  });

  it("'auto' does not pick it without a GPU (no GPU device node here, or a software adapter only)", async (ctx) => {
    const { mayHaveGpu } = await import('../src/backend/webgpu/node_gpu.js');
    if (mayHaveGpu()) return ctx.skip('this machine may have a GPU: auto may pick webgpu on it');
    const b = await initBackend('auto', { setDefault: false });
    expect(b.name).not.toBe('webgpu');
  });
});
