/**
 * The webgpu backend in Node, through the optional `webgpu` package (Dawn): the kernel conformance suite
 * (./conformance_suite.ts) and the Hugging Face parity checks (./hf_parity_suite.ts), the same checks ref and wasm
 * pass, on whatever adapter Dawn offers. Without a GPU that is Chromium's SwiftShader (Vulkan on the CPU), found at
 * /usr/lib/chromium/vk_swiftshader_icd.json (src/backend/webgpu/node_gpu.ts): correctness, not speed.
 *
 * Skipped, with the reason printed, where there is no adapter (no `webgpu` package, no libvulkan1, no chromium);
 * LLMTS_REQUIRE_WEBGPU=1 makes that a failure.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { createWebGpuBackend } from '../src/backend/webgpu/backend.js';
import { isSoftwareAdapter } from '../src/backend/webgpu/device.js';
import { SWIFTSHADER_ICD, vulkanEnvFor } from '../src/backend/webgpu/node_gpu.js';
import { describeConformance } from './conformance_suite.js';
import { describeHfParity } from './hf_parity_suite.js';

const REQUIRE = process.env['LLMTS_REQUIRE_WEBGPU'] === '1';
const envBefore = { vk: process.env['VK_ADD_DRIVER_FILES'], xdg: process.env['XDG_RUNTIME_DIR'] };

let be: WebGpuBackend | null = null;
let why = '';
try {
  be = await createWebGpuBackend();
  console.info(`webgpu in Node: ${be.describe()}`);
} catch (e) {
  why = (e as Error).message;
  if (REQUIRE) throw new Error(`${why}, and LLMTS_REQUIRE_WEBGPU=1`);
  console.warn(`webgpu in Node: ${why}: skipped`);
}
afterAll(() => be?.dispose());

describe('webgpu in Node: finding an adapter', () => {
  it('adds SwiftShader only on Linux, only where the environment names no Vulkan driver, only if installed', () => {
    const yes = () => true,
      no = () => false;
    expect(vulkanEnvFor({}, 'linux', yes)).toEqual({ addDriver: SWIFTSHADER_ICD, needsXdg: true });
    expect(vulkanEnvFor({ XDG_RUNTIME_DIR: '/run/user/1' }, 'linux', no)).toEqual({ addDriver: null, needsXdg: false });
    for (const k of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES'])
      expect(vulkanEnvFor({ [k]: '/x.json' }, 'linux', yes).addDriver, k).toBeNull();
    expect(vulkanEnvFor({}, 'darwin', yes)).toEqual({ addDriver: null, needsXdg: false });
  });

  it('tells software adapters from GPUs', () => {
    const adapter = (info: object, isFallbackAdapter?: boolean) =>
      ({ limits: {}, features: new Set(), info, isFallbackAdapter, requestDevice: async () => null }) as never;
    expect(isSoftwareAdapter(adapter({ vendor: 'google', architecture: 'swiftshader' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'nvidia', isFallbackAdapter: true }))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'x' }, true))).toBe(true);
    expect(isSoftwareAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }))).toBe(
      false,
    );
  });

  it('starts a device, names its adapter, and puts the environment back', (ctx) => {
    if (!be) return ctx.skip(why);
    expect(be.describe()).toMatch(/^webgpu \(.+; \d+ kernels native/);
    if (/swiftshader/i.test(be.describe())) expect(be.software && be.describe()).toMatch(/, software;/);
    expect(process.env['VK_ADD_DRIVER_FILES']).toBe(envBefore.vk);
    expect(process.env['XDG_RUNTIME_DIR']).toBe(envBefore.xdg);
  });
});

describeConformance({ label: 'webgpu (Node)', make: () => createWebGpuBackend(), complete: false, optional: true });

if (be) describeHfParity('webgpu (Node)', be);
else describe.skip(`Hugging Face parity on webgpu (Node): ${why}`, () => it('skipped', () => {}));
