#!/usr/bin/env node
/**
 * Builds the WebAssembly kernels (src/backend/wasm/assembly/, AssemblyScript) into build/ at the repo root:
 *   build/kernels-simd.wasm     SIMD128 with mul+add
 *   build/kernels-relaxed.wasm  relaxed SIMD (f32x4.relaxed_madd)
 * Both import a shared memory (env.memory, max 4 GiB) and use no runtime GC: kernels take raw addresses.
 * Runs offline from `npm ci` (AssemblyScript is a devDependency; no native toolchain). Writes atomically.
 */
import { main } from 'assemblyscript/asc';
import { mkdirSync, renameSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src/backend/wasm/assembly/index.ts');
const out = join(root, 'build');
mkdirSync(out, { recursive: true });

const common = [
  entry,
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory',
  '2',
  '--maximumMemory',
  '65536',
  '--enable',
  'simd',
  '--enable',
  'threads',
  '--noExportMemory',
  '--disableWarning',
];
const variants = [
  { name: 'kernels-simd', flags: [] },
  { name: 'kernels-relaxed', flags: ['--enable', 'relaxed-simd'] },
];
const wat = process.argv.includes('--wat');

for (const v of variants) {
  const tmp = join(out, `${v.name}.wasm.tmp`);
  const args = [...common, ...v.flags, '--outFile', tmp];
  if (wat) args.push('--textFile', join(out, `${v.name}.wat`));
  const { error, stderr } = await main(args);
  if (error || !existsSync(tmp)) {
    process.stderr.write(stderr.toString());
    console.error(`build-wasm: ${v.name} failed: ${error?.message ?? 'no output'}`);
    process.exit(1);
  }
  renameSync(tmp, join(out, `${v.name}.wasm`));
  console.log(`build-wasm: build/${v.name}.wasm`);
}
