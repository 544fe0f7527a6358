/**
 * Finds, reads and compiles the kernel module (build/kernels-*.wasm, made by scripts/build-wasm.mjs), choosing the
 * relaxed-SIMD variant (fused multiply-add) where the runtime accepts it and plain SIMD128 otherwise.
 *
 * Node 20 keeps relaxed SIMD behind `--experimental-wasm-relaxed-simd`; setting it with v8.setFlagsFromString
 * before the module compiles turns it on, and worker threads started afterwards accept relaxed opcodes too.
 * Node ≥ 22 and current browsers have it on. Paths resolve from this file, so the same code works from
 * src/backend/wasm/ (vitest) and dist/backend/wasm/.
 */
import { BackendError } from '../../util/errors.js';

export type Variant = 'relaxed' | 'simd';

/** (v128, v128, v128) → v128 = f32x4.relaxed_madd: validates only where relaxed SIMD is available. */
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);
/** (v128) → v128 = f32x4.sqrt: plain SIMD128. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01,
  0x00, 0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0xfd, 0xe3, 0x01, 0x0b,
]);

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** Whether relaxed SIMD validates here, after trying to switch it on (Node 20). */
export async function relaxedSimdAvailable(): Promise<boolean> {
  if (WebAssembly.validate(RELAXED_PROBE)) return true;
  if (isNode) {
    try {
      const v8 = await import('node:v8');
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      return false;
    }
  }
  return WebAssembly.validate(RELAXED_PROBE);
}

export function simdAvailable(): boolean {
  return WebAssembly.validate(SIMD_PROBE);
}

async function readBytes(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (isNode && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    try {
      return new Uint8Array(await readFile(fileURLToPath(url)));
    } catch (e) {
      throw new BackendError(
        'E_WASM_MISSING',
        `wasm backend: cannot read ${fileURLToPath(url)} — run \`npm run build:wasm\` (${(e as Error).message})`,
      );
    }
  }
  const res = await fetch(url);
  if (!res.ok) throw new BackendError('E_WASM_MISSING', `wasm backend: cannot fetch ${url.href} (${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

export interface LoadedKernels {
  module: WebAssembly.Module;
  variant: Variant;
}

/** Compile the best variant the runtime accepts ('auto'), or the one asked for. */
export async function loadKernels(want: Variant | 'auto' = 'auto'): Promise<LoadedKernels> {
  if (!simdAvailable()) throw new BackendError('E_NO_SIMD', 'wasm backend: this runtime has no WebAssembly SIMD128');
  let variant: Variant = want === 'auto' ? ((await relaxedSimdAvailable()) ? 'relaxed' : 'simd') : want;
  if (variant === 'relaxed' && want === 'relaxed' && !(await relaxedSimdAvailable())) {
    throw new BackendError(
      'E_NO_RELAXED_SIMD',
      'wasm backend: relaxed SIMD was asked for but this runtime does not accept it',
    );
  }
  const file = (v: Variant) => new URL(`../../../build/kernels-${v}.wasm`, import.meta.url);
  try {
    return { module: await WebAssembly.compile(await readBytes(file(variant))), variant };
  } catch (e) {
    if (variant !== 'relaxed' || want === 'relaxed') throw e;
    variant = 'simd';
    return { module: await WebAssembly.compile(await readBytes(file(variant))), variant };
  }
}
