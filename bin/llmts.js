#!/usr/bin/env node
// Thin launcher: enables relaxed SIMD on Node 20 before any WebAssembly compiles, then runs the compiled CLI.
import v8 from 'node:v8';
try {
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
} catch {
  /* newer Node: on by default */
}
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
