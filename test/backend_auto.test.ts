/**
 * 'auto' on a machine with a GPU: it picks webgpu (every trainer runs there: the ones that read back inside a step
 * stage their loss, src/train/staged_loss.ts). The GPU is simulated: Dawn's probe says "hardware adapter" and the
 * webgpu entry makes a stand-in backend.
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('../src/backend/webgpu/device.js', () => ({ hasHardwareWebGpu: async () => true }));

describe("initBackend('auto') where a hardware WebGPU adapter is found", async () => {
  const { initBackend, registerBackend } = await import('../src/backend/registry.js');
  const standIn = { name: 'webgpu', describe: () => 'webgpu (stand-in)' };
  registerBackend({ name: 'webgpu', create: async () => standIn as never });

  it('picks webgpu', async () => {
    expect((await initBackend('auto', { setDefault: false })).name).toBe('webgpu');
  });

  it('a named backend is taken as given', async () => {
    expect((await initBackend('webgpu', { setDefault: false })).name).toBe('webgpu');
    expect((await initBackend('wasm', { setDefault: false })).name).toBe('wasm');
  });
});
