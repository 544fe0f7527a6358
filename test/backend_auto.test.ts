/**
 * 'auto' on a machine with a GPU: it picks webgpu, except for the trainers that read back inside a step (PPO, RLOO,
 * KTO: `hostReads`), which get the CPU backend. The GPU is simulated: Dawn's probe says "hardware adapter" and the
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

  it('with hostReads (PPO, RLOO, KTO) picks a backend that reads synchronously, not webgpu', async () => {
    const b = await initBackend('auto', { setDefault: false, hostReads: true });
    expect(['wasm', 'ref']).toContain(b.name);
    expect(typeof b.readSync).toBe('function');
  });

  it('a named backend is taken as given, hostReads or not', async () => {
    expect((await initBackend('webgpu', { setDefault: false, hostReads: true })).name).toBe('webgpu');
  });
});
