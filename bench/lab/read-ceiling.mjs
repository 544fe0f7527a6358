#!/usr/bin/env node
// Ceilings for float32 and 8-bit decoding on this machine (issue 17): how fast any program can read a decode step's
// weights, and how many int8 multiply-adds WebAssembly can do.
// - read: each of T threads sweeps its 1/T of an `mb` MB buffer (a model's float32 weights: stories15M 60.8 MB,
//   stories110M 438 MB), nothing but loads and adds: WebAssembly SIMD128 (bench/lab/read_ceiling.ts `readSum`, one
//   worker and one memory per thread) against native code with the widest vectors the C compiler targets here
//   (bench/lab/read_ceiling.c, `cc -O3 -march=native`: AVX-512 on an AVX-512 CPU), the two alternating, best of each;
//   on x86-64 the same C built for 128-bit SSE vectors only (`-march=x86-64-v2`), SIMD128's width: what the width
//   alone costs a loop that consumes every byte it reads.
//   A decode step reads every weight once, so tokens/s ≤ GB/s ÷ model bytes for any engine, run.c and llm.ts alike.
// - int8: `dotI8`, data in L1, i8 weights × i16 activations through i32x4.dot_i16x8_s (WebAssembly's only 8-bit
//   product path; no VNNI): an upper bound on an 8-bit matrix-vector product in WebAssembly, as multiply-adds/s.
// usage: node bench/lab/read-ceiling.mjs [--mb 60.8,438] [--threads 1,2] [--rounds 3] [--no-native]
// (needs `npm ci` for assemblyscript; a C compiler `cc` for the native side, else that column is skipped)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { printMachine } from '../machine.mjs';

const argv = process.argv.slice(2);
const opt = (/** @type {string} */ k, /** @type {string} */ d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? /** @type {string} */ (argv[i + 1]) : d;
};
const mbs = opt('--mb', '60.8,438').split(',').map(Number);
const threadsList = opt('--threads', '1,2').split(',').map(Number);
const rounds = Number(opt('--rounds', '3'));
const here = path.dirname(fileURLToPath(import.meta.url));
printMachine('read-ceiling', Math.max(...threadsList), false);

// TurboFan from the first call: one long sweep would otherwise run in Liftoff, V8's baseline compiler, throughout
(await import('node:v8')).setFlagsFromString('--no-liftoff');
const { main } = await import('assemblyscript/asc');
/** @type {Record<string, Uint8Array | string>} */
const out = {};
const { error } = await main(
  [
    path.join(here, 'read_ceiling.ts'),
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--enable',
    'simd',
    '--outFile',
    'rc.wasm',
    '--importMemory',
    '--initialMemory',
    '1',
    '--maximumMemory',
    '65536',
    '--disableWarning',
  ],
  { writeFile: (n, d) => void (out[n] = d), stdout: { write() {} }, stderr: { write() {} } },
);
if (error || !(out['rc.wasm'] instanceof Uint8Array))
  throw new Error(`read-ceiling: could not build read_ceiling.ts: ${error}`);
const module = await WebAssembly.compile(/** @type {Uint8Array<ArrayBuffer>} */ (out['rc.wasm']));

let native = argv.includes('--no-native') ? null : path.join(os.tmpdir(), `llmts-read-ceiling-${process.pid}`);
// the same C at WebAssembly SIMD128's width: 128-bit SSE vectors only (x86-64-v2: SSE4.2, no AVX), so the two native
// columns say what the vector width alone costs a loop that consumes every byte (on other processors: not built)
let native128 = native && process.arch === 'x64' ? `${native}-128` : null;
if (native) {
  try {
    execFileSync('cc', ['-O3', '-march=native', '-pthread', path.join(here, 'read_ceiling.c'), '-o', native]);
  } catch (e) {
    console.log(`native side skipped: cc failed (${/** @type {Error} */ (e).message.split('\n')[0]})`);
    native = native128 = null;
  }
}
if (native128) {
  try {
    execFileSync('cc', ['-O3', '-march=x86-64-v2', '-pthread', path.join(here, 'read_ceiling.c'), '-o', native128]);
  } catch (e) {
    console.log(`native 128-bit column skipped: cc failed (${/** @type {Error} */ (e).message.split('\n')[0]})`);
    native128 = null;
  }
}
/** GB/s of one native run. @param {string} exe @param {number} T @param {number} mb @param {number} passes */
const nativeRun = (exe, T, mb, passes) =>
  Number(
    execFileSync(exe, [String(T), String(mb), String(passes), String(rounds)])
      .toString()
      .split(' ')[2],
  );

const code = `const { parentPort, workerData } = await import('node:worker_threads');
  const { module, bytes } = workerData;
  const pages = Math.ceil((bytes + 65536) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const inst = new WebAssembly.Instance(module, { env: { memory, abort() {} } });
  const f = new Float32Array(memory.buffer, 0, bytes / 4);
  for (let i = 0; i < f.length; i++) f[i] = 1e-3 * (i % 1000);
  parentPort.on('message', ([kind, n, passes]) => {
    const t0 = performance.now();
    const r = kind === 'read' ? inst.exports.readSum(0, n, passes) : inst.exports.dotI8(0, 4096, n, passes);
    parentPort.postMessage([performance.now() - t0, r]);
  });
  parentPort.postMessage('ready');`;

/**
 * Run `threads` workers with `bytes` each; returns the best wall time (ms) over rounds of `job`.
 * @param {number} threads @param {number} bytes @param {[string, number, number]} job
 */
async function wasmBest(threads, bytes, job) {
  /** @type {Worker[]} */
  const ws = [];
  for (let t = 0; t < threads; t++) {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
      workerData: { module, bytes },
    });
    await new Promise((res) => w.once('message', res));
    ws.push(w);
  }
  const round = async () => {
    const t0 = performance.now();
    await Promise.all(
      ws.map(
        (w) =>
          new Promise((res) => {
            w.once('message', res);
            w.postMessage(job);
          }),
      ),
    );
    return performance.now() - t0;
  };
  await round(); // warm
  let best = Infinity;
  for (let r = 0; r < rounds; r++) best = Math.min(best, await round());
  await Promise.all(ws.map((w) => w.terminate()));
  return best;
}

console.log('\nread ceiling (GB/s; best of each, wasm and native alternating):');
console.log(
  'threads  MB      wasm SIMD128   native (cc -march=native)   native 128-bit (SSE4.2)   tok/s bound (wasm / native)',
);
for (const T of threadsList)
  for (const mb of mbs) {
    const per = Math.floor((mb * 1e6) / T / 128) * 128;
    const passes = Math.max(1, Math.round(400e6 / (per * T)));
    let wasm = 0,
      nat = 0,
      nat128 = 0;
    for (let rep = 0; rep < 2; rep++) {
      const ms = await wasmBest(T, per, ['read', per, passes]);
      wasm = Math.max(wasm, (per * T * passes) / (ms / 1e3) / 1e9);
      if (native) nat = Math.max(nat, nativeRun(native, T, mb, passes));
      if (native128) nat128 = Math.max(nat128, nativeRun(native128, T, mb, passes));
    }
    const b = mb * 1e6;
    const col = (/** @type {string | null} */ exe, /** @type {number} */ v) =>
      exe ? v.toFixed(1).padStart(8) : '     —  ';
    console.log(
      `${String(T).padEnd(8)} ${String(mb).padEnd(7)} ${wasm.toFixed(1).padStart(8)}       ${col(native, nat)}                    ${col(native128, nat128)}                  ${((wasm * 1e9) / b).toFixed(1)} / ${native ? ((nat * 1e9) / b).toFixed(1) : '—'}`,
    );
  }
console.log('\nint8 multiply-adds in WebAssembly (i32x4.dot_i16x8_s, data in L1; 4096 weights a sweep):');
for (const T of threadsList) {
  const passes = 200_000;
  const ms = await wasmBest(T, 1 << 16, ['dot', 4096, passes]);
  const gmac = (4096 * passes * T) / (ms / 1e3) / 1e9;
  console.log(
    `${T} thread(s): ${gmac.toFixed(1)} G multiply-adds/s → at most ${((gmac * 1e9) / 110e6).toFixed(0)} tok/s for stories110M's ~110M products a token (15M: ${((gmac * 1e9) / 15.2e6).toFixed(0)})`,
  );
}
for (const exe of [native, native128]) if (exe) fs.rmSync(exe, { force: true });
