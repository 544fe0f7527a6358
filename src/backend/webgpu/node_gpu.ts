/**
 * WebGPU in Node: the `webgpu` package (Dawn's dawn.node, an optional dependency of llmts) gives a `gpu` object like
 * a browser's navigator.gpu. On Linux Dawn runs on Vulkan, through the system's loader (libvulkan.so.1, Debian's
 * `libvulkan1`) and whatever Vulkan drivers (ICDs) are installed: a GPU's driver, or a software one. Mesa's lavapipe
 * (Debian bookworm's 22.3) is refused by Dawn ("shaderUniform*ArrayDynamicIndexing required"); Chromium's
 * SwiftShader works, and Debian's `chromium` installs its ICD at /usr/lib/chromium/vk_swiftshader_icd.json. So, when
 * the environment names no drivers itself (VK_ICD_FILENAMES, VK_DRIVER_FILES, VK_ADD_DRIVER_FILES) and that file
 * exists, it is added through VK_ADD_DRIVER_FILES, beside the system's drivers (a GPU's driver still comes first for
 * `high-performance`): a machine without a GPU still gets a software adapter. libwayland's "XDG_RUNTIME_DIR is invalid"
 * complaint, printed while Vulkan drivers start, is silenced by an empty temporary XDG_RUNTIME_DIR when none is set.
 * Both variables are set only while the adapter is requested, then put back.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackendError } from '../../util/errors.js';
import type { GpuLike } from './types.js';

/** The npm package and the version llmts is tested with (package.json's optionalDependencies). */
export const NODE_WEBGPU_PACKAGE = 'webgpu';
export const NODE_WEBGPU_VERSION = '0.6.2';
/** Chromium's SwiftShader Vulkan driver, as Debian's `chromium` package installs it. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

interface WebGpuModule {
  create(flags: string[]): GpuLike;
}

/** Load the `webgpu` package (BackendError E_NO_WEBGPU, saying how to install it, where it is missing). */
export async function loadNodeWebGpu(spec: string = NODE_WEBGPU_PACKAGE): Promise<WebGpuModule> {
  try {
    // a variable specifier: browser bundlers leave this Node-only, native package alone
    const m = (await import(/* @vite-ignore */ spec)) as Partial<WebGpuModule>;
    if (typeof m.create !== 'function') throw new Error(`${NODE_WEBGPU_PACKAGE} has no create()`);
    return m as WebGpuModule;
  } catch (e) {
    throw new BackendError(
      'E_NO_WEBGPU',
      `webgpu backend: Node has no WebGPU of its own and the '${spec}' package (Dawn) did not load ` +
        `(${(e as Error).message.split('\n')[0]}). It is an optional dependency of llmts: ` +
        `npm install ${NODE_WEBGPU_PACKAGE}@${NODE_WEBGPU_VERSION}`,
    );
  }
}

/**
 * The environment changes for Vulkan in this process (none off Linux): the SwiftShader driver where the environment
 * names no drivers and the file exists, a temporary XDG_RUNTIME_DIR where none is set. Pure: reads `env`, `exists`.
 */
export function vulkanEnvFor(
  env: Readonly<Record<string, string | undefined>>,
  platform: string,
  exists: (file: string) => boolean = fs.existsSync,
): { addDriver: string | null; needsXdg: boolean } {
  if (platform !== 'linux') return { addDriver: null, needsXdg: false };
  const named = ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES'].some((k) => !!env[k]);
  return {
    addDriver: !named && exists(SWIFTSHADER_ICD) ? SWIFTSHADER_ICD : null,
    needsXdg: !env['XDG_RUNTIME_DIR'],
  };
}

/**
 * Run `fn` with the Vulkan environment of vulkanEnvFor set (without the SwiftShader driver when `software` is false),
 * then put the environment back as it was.
 */
export function withVulkanEnv<T>(fn: (addedDriver: string | null) => Promise<T>, software = true): Promise<T> {
  // one at a time: a second request must not see (or put back) the first one's temporary variables
  const run = envLock.then(() => inVulkanEnv(fn, software));
  envLock = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}
let envLock: Promise<void> = Promise.resolve();

async function inVulkanEnv<T>(fn: (addedDriver: string | null) => Promise<T>, software: boolean): Promise<T> {
  const env = vulkanEnvFor(process.env, process.platform);
  const addDriver = software ? env.addDriver : null,
    needsXdg = env.needsXdg;
  const xdg = needsXdg ? fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-xdg-')) : null;
  if (addDriver) process.env['VK_ADD_DRIVER_FILES'] = addDriver;
  if (xdg) process.env['XDG_RUNTIME_DIR'] = xdg;
  try {
    return await fn(addDriver);
  } finally {
    if (addDriver) delete process.env['VK_ADD_DRIVER_FILES'];
    if (xdg) {
      delete process.env['XDG_RUNTIME_DIR'];
      fs.rmSync(xdg, { recursive: true, force: true });
    }
  }
}

/**
 * Whether this machine may have a GPU that Vulkan drives, checked without loading Dawn: off Linux, yes (Metal, D3D);
 * on Linux, a device node of a GPU driver (/dev/nvidia0, /dev/dri/renderD*). No GPU node, no Dawn: `auto` stays cheap.
 */
export function mayHaveGpu(platform: string = process.platform): boolean {
  if (platform !== 'linux') return true;
  if (fs.existsSync('/dev/nvidia0')) return true;
  try {
    return fs.readdirSync('/dev/dri').some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** Where Dawn looked, for E_NO_ADAPTER: on Linux, the Vulkan loader and drivers, and what to install. */
export function dawnSearched(addedDriver: string | null): string {
  if (process.platform !== 'linux') return 'Dawn (the webgpu package)';
  const named = ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES'].find((k) => !!process.env[k]);
  const drivers = addedDriver
    ? `the system's Vulkan drivers and ${addedDriver}`
    : named
      ? `the Vulkan drivers ${named} names`
      : `the system's Vulkan drivers (no ${SWIFTSHADER_ICD}: apt-get install chromium)`;
  return `Dawn (the webgpu package), through the Vulkan loader libvulkan.so.1 (Debian: libvulkan1) and ${drivers},`;
}
