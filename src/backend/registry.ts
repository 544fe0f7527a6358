/**
 * Backend registry: which backends exist, which one is the default. A backend joins by `registerBackend` (a name, a
 * factory, and the configurations the conformance suite should test); `initBackend('auto')` picks the fastest that
 * works here (webgpu on a GPU in Node, else wasm, else ref) and makes it the default that new tensors use. `ref` is built in and always there.
 */
import type { Backend } from './backend.js';
import type { CountingGpuOptions, CountingStats } from './webgpu/counting_gpu.js';
import { RefBackend } from './ref/backend.js';
import { BackendError, ConfigError } from '../util/errors.js';

/** Built-in names; any registered name is accepted too. */
export type BackendName = 'ref' | 'wasm' | 'webgpu' | (string & {});

/** What `--backend` accepts on every command (the train settings and the generate / serve / inspect flags). */
export const BACKEND_CHOICES = ['auto', 'wasm', 'webgpu', 'ref'] as const;

export interface InitOptions {
  /** Worker threads for the wasm backend (default: the machine's cores). */
  threads?: number;
  /** Milliseconds an idle wasm worker spins for the next kernel before sleeping (default 2; WasmBackendOptions). */
  spinMs?: number;
  /** Make it the default for new tensors (default true). */
  setDefault?: boolean;
  /**
   * The matmul precision (webgpu only): 'f32' (default) or 'f16' — operands rounded to binary16, f32 accumulation
   * (webgpu/matmul_wgsl.ts). 'f16' with ref or wasm is a ConfigError; with 'auto' it takes webgpu or fails.
   */
  matmulPrecision?: 'f32' | 'f16';
}

/** How a backend is made, and how the test suites should exercise it. */
export interface BackendEntry {
  name: string;
  /** Create an instance (options: InitOptions, or a configuration's own options). */
  create(opts: Readonly<Record<string, unknown>>): Promise<Backend>;
  /** Configurations the conformance suite runs (default: one, with no options). */
  testConfigs?: readonly { label: string; opts: Readonly<Record<string, unknown>> }[];
  /** It implements every kernel of the catalogue (the suite checks `supports` says so). */
  complete?: boolean;
}

const entries = new Map<string, BackendEntry>();
const live = new Map<string, Backend>();
let current: Backend | null = null;

/** Add a backend (a later registration of the same name replaces the earlier one). */
export function registerBackend(e: BackendEntry): void {
  if (e.name === 'auto') throw new ConfigError('backend', "'auto' is not a backend name");
  entries.set(e.name, e);
}

/** Every registered backend, ref first. */
export function registeredBackends(): readonly BackendEntry[] {
  return [...entries.values()];
}

registerBackend({ name: 'ref', create: async () => new RefBackend(), complete: true });
registerBackend({
  name: 'wasm',
  complete: true,
  create: async (opts) => (await import('./wasm/backend.js')).createWasmBackend(opts),
  testConfigs: [
    { label: 'wasm (relaxed if available, 2 threads)', opts: { threads: 2 } },
    { label: 'wasm (SIMD128, 1 thread)', opts: { threads: 1, variant: 'simd' } },
  ],
});
// WebGPU: a browser's navigator.gpu, or in Node the optional `webgpu` package (Dawn; with Chromium's SwiftShader as
// the software adapter where there is no GPU: webgpu/node_gpu.ts). 'auto' picks it only for a hardware adapter in
// Node. The conformance suite runs it in Node through test/webgpu_node.test.ts (which skips, saying why, where Dawn
// finds no adapter) and in Chromium through test/webgpu_browser.test.ts, not through its own configurations here.
// Complete: every catalogue kernel is accepted by its `run` (sample beyond greedy runs ref's float64 sampler as a host
// step there, on the device's top-k candidates or on the read-back logits: webgpu/sample.ts).
registerBackend({
  name: 'webgpu',
  complete: true,
  create: async (opts) => (await import('./webgpu/backend.js')).createWebGpuBackend(opts),
  testConfigs: [],
});

/**
 * A webgpu backend on a counting device (webgpu/counting_gpu.ts: no memory held, no shader run, every createBuffer
 * counted; for planning memory without a GPU), made fresh: neither the live webgpu backend nor the default. `stats`:
 * the device's figures (peak, live, buffers made).
 */
export async function createCountingWebGpu(
  opts: CountingGpuOptions = {},
): Promise<{ backend: Backend; stats: () => CountingStats }> {
  const { CountingGpu } = await import('./webgpu/counting_gpu.js');
  const gpu = new CountingGpu(opts);
  const backend = await (await import('./webgpu/backend.js')).createWebGpuBackend({ gpu });
  return { backend, stats: () => gpu.stats };
}

/** A backend that is already initialised (or the current default when no name is given). */
export function getBackend(name?: BackendName): Backend {
  if (!name) {
    if (!current) current = ensureRef();
    return current;
  }
  if (name === 'ref') return ensureRef();
  const b = live.get(name);
  if (!b)
    throw new BackendError('E_BACKEND', `backend '${name}' is not initialised: await initBackend('${name}') first`);
  return b;
}

function ensureRef(): Backend {
  let r = live.get('ref');
  if (!r) {
    r = new RefBackend();
    live.set('ref', r);
  }
  return r;
}

/** 'auto' picks webgpu in Node where Dawn offers a hardware adapter (webgpu/device.ts hasHardwareWebGpu), never SwiftShader. */
let autoWebGpu: Promise<boolean> | null = null;
async function autoPicksWebGpu(): Promise<boolean> {
  if (!entries.has('webgpu')) return false;
  autoWebGpu ??= import('./webgpu/device.js').then((m) => m.hasHardwareWebGpu()); // once per process
  return autoWebGpu;
}

/** The error for f16 matmuls asked of a backend without them (ref, wasm): they are a webgpu setting. */
export function f16NeedsWebGpu(backend: string): ConfigError {
  return new ConfigError(
    'precision',
    `f16 matmuls are a webgpu backend setting; the ${backend} backend computes in float32 only (use --backend webgpu, or --precision f32)`,
  );
}

/**
 * Initialise a registered backend and, by default, make it the default one. 'auto': webgpu on a hardware adapter
 * (Node with a GPU and the `webgpu` package), else wasm where it works, else ref.
 */
export async function initBackend(name: BackendName | 'auto' = 'auto', opts: InitOptions = {}): Promise<Backend> {
  let b: Backend | null = null;
  if (opts.matmulPrecision === 'f16') {
    // the f16 path exists on webgpu only: say so rather than train in float32 under an f16 flag
    if (name !== 'webgpu' && name !== 'auto') throw f16NeedsWebGpu(name);
    if (name === 'auto' && !(await autoPicksWebGpu()))
      throw new ConfigError(
        'precision',
        "f16 matmuls need the webgpu backend, and 'auto' found no WebGPU GPU here (--backend webgpu runs it on a software adapter, slowly)",
      );
    name = 'webgpu';
  } else if (opts.matmulPrecision !== undefined && opts.matmulPrecision !== 'f32')
    throw new ConfigError('precision', `expected f32 or f16, got ${JSON.stringify(opts.matmulPrecision)}`);
  if (name === 'ref') b = ensureRef();
  else if (name !== 'auto') b = await create(name, opts);
  else {
    // auto: each candidate in turn, ref last; a failure here is a reason to try the next one
    for (const key of [...((await autoPicksWebGpu()) ? ['webgpu'] : []), 'wasm']) {
      b = await create(key, opts).catch(() => null);
      if (b) break;
    }
    b ??= ensureRef();
  }
  if (opts.setDefault !== false) current = b;
  return b;
}

/** The live instance of a registered backend, created on first use. */
async function create(key: string, opts: InitOptions): Promise<Backend> {
  const entry = entries.get(key);
  if (!entry)
    throw new ConfigError('backend', `unknown backend '${key}' (expected ${[...entries.keys()].join(', ')} or auto)`);
  const existing = live.get(key);
  if (existing) {
    if (opts.matmulPrecision !== undefined && opts.matmulPrecision !== (existing.matmulPrecision ?? 'f32'))
      throw new ConfigError(
        'precision',
        `the ${key} backend is already initialised with ${existing.matmulPrecision ?? 'f32'} matmuls; one process has one ${key} backend`,
      );
    return existing;
  }
  const b = await entry.create({
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    ...(opts.spinMs !== undefined ? { spinMs: opts.spinMs } : {}),
    ...(opts.matmulPrecision !== undefined ? { matmulPrecision: opts.matmulPrecision } : {}),
  });
  live.set(key, b);
  return b;
}

/** Make an initialised backend the default for new tensors. */
export function setBackend(b: Backend): void {
  current = b;
}
