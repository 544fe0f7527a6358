// What a bench knows of the machine it runs on: the processor (model name, vendor/family/model from /proc/cpuinfo)
// and the line every bench prints first (processor, threads used, Node version); the float32 sgemm peak for "% of
// peak" columns, used only on the processor it was measured on (./anchors.mjs; LLMTS_PEAK_GFLOPS=<number> overrides);
// this machine's WebAssembly SIMD128 peak measured now; `exitIfHelp`, the --help / -h of every bench.
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { anchorFor } from './anchors.mjs';

/**
 * This processor: name ("AMD EPYC (AuthenticAMD family 26 model 2)"), key ("AuthenticAMD/26/2": what ./anchors.mjs
 * matches) and threads (hardware threads Node may use). From /proc/cpuinfo; elsewhere os.cpus()[0].model for both.
 * @returns {{ name: string, key: string, threads: number }}
 */
export function processor() {
  const threads = os.availableParallelism();
  /** @type {Record<string, string>} */
  const f = {};
  try {
    const first = fs.readFileSync('/proc/cpuinfo', 'utf8').split(/\n\s*\n/)[0] ?? '';
    for (const line of first.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) f[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
  } catch {
    // not Linux: the fallback below
  }
  const vendor = f.vendor_id;
  const family = f['cpu family'];
  const model = f.model;
  const modelName = f['model name'] ?? os.cpus()[0]?.model ?? 'unknown processor';
  if (vendor && family && model)
    return {
      name: `${modelName} (${vendor} family ${family} model ${model})`,
      key: `${vendor}/${family}/${model}`,
      threads,
    };
  return { name: modelName, key: modelName, threads };
}

/**
 * The line every bench prints first: "machine: AMD EPYC (AuthenticAMD family 26 model 2), 2 hardware threads, this
 * bench uses 2; Node v20.19.0"; with --json, the same as one JSON line ({ bench: "machine", ... }).
 * @param {string} bench @param {number} threadsUsed @param {boolean} json
 */
export function printMachine(bench, threadsUsed, json) {
  const p = processor();
  if (json)
    console.log(
      JSON.stringify({
        bench: 'machine',
        for: bench,
        processor: p.name,
        processor_key: p.key,
        hardware_threads: p.threads,
        threads_used: threadsUsed,
        node: process.version,
      }),
    );
  else
    console.log(
      `machine: ${p.name}, ${p.threads} hardware thread(s), this bench uses ${threadsUsed}; Node ${process.version}`,
    );
}

/**
 * The float32 sgemm peak for "% of peak" on `threads` threads: LLMTS_PEAK_GFLOPS when set, else the OpenBLAS figure
 * of ANCHORS.md when it was measured on this processor model with that thread count, else null (say why: `why`).
 * @param {number} [threads]
 * @returns {{ gflop_s: number, basis: string } | null}
 */
export function sgemmPeak(threads = os.availableParallelism()) {
  const env = process.env.LLMTS_PEAK_GFLOPS;
  if (env) {
    const g = Number(env);
    if (!(g > 0)) usageError(`LLMTS_PEAK_GFLOPS: expected a positive number of GFLOP/s, got ${JSON.stringify(env)}`);
    return { gflop_s: g, basis: 'LLMTS_PEAK_GFLOPS' };
  }
  const a = anchorFor('sgemm-peak', processor().key, { threads });
  return a ? { gflop_s: a.value, basis: `${a.about}, ${threads} thread(s), ANCHORS.md` } : null;
}

/** Why there is no sgemm peak here (for the line a bench prints in place of "% of peak"). */
export const NO_SGEMM_PEAK =
  'no sgemm peak measured on this processor model (ANCHORS.md has one for Sapphire Rapids only; LLMTS_PEAK_GFLOPS sets one)';

/** A bad flag or environment value: the message on stderr (no stack trace) and exit status 2. @param {string} msg @returns {never} */
export function usageError(msg) {
  console.error(`error: ${msg}`);
  process.exit(2);
}

/**
 * --help / -h: print the leading comment block of the bench file at `url` (its usage and flags, without comment
 * markers) and exit 0, before anything runs. Call first thing: `exitIfHelp(import.meta.url)`.
 * @param {string} url @param {string} [extra] printed after the block
 */
export function exitIfHelp(url, extra = '') {
  const argv = process.argv.slice(2);
  if (!argv.includes('--help') && !argv.includes('-h')) return;
  const lines = fs.readFileSync(fileURLToPath(url), 'utf8').split('\n');
  if (lines[0]?.startsWith('#!')) lines.shift();
  /** @type {string[]} */
  const out = [];
  if (lines[0]?.trim().startsWith('/**')) {
    for (const line of lines.slice(1)) {
      if (line.trim().startsWith('*/')) break;
      out.push(line.replace(/^\s*\* ?/, ''));
    }
  } else
    for (const line of lines) {
      if (!line.startsWith('//')) break;
      out.push(line.replace(/^\/\/ ?/, ''));
    }
  console.log(out.join('\n') + (extra ? `\n${extra}` : ''));
  process.exit(0);
}

/** @param {Iterable<number>} xs @returns {number} */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return /** @type {number} */ (s[s.length >> 1]);
}

/**
 * This machine's WebAssembly SIMD128 float32 peak, measured now: bench/lab/simd_peak.ts (12 independent f32x4
 * multiply-add chains; relaxed FMA where the runtime accepts it) run on `threads` threads at once (worker_threads),
 * best of a few trials. The ceiling for any WASM kernel here: WebAssembly has only 128-bit vectors, whatever the CPU.
 * Returns { gflop_s, perThread, threads, fma } (fma: whether relaxed FMA ran, else separate mul + add).
 */
export async function wasmSimdPeak(threads = os.availableParallelism()) {
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  const { main } = await import('assemblyscript/asc');
  const src = fileURLToPath(new URL('./lab/simd_peak.ts', import.meta.url));
  let fma = true;
  let bytes = null;
  for (const relaxed of [true, false]) {
    /** @type {Record<string, string | Uint8Array>} */
    const out = {};
    const { error } = await main(
      [
        src,
        '-O3',
        '--noAssert',
        '--runtime',
        'stub',
        '--enable',
        'simd',
        ...(relaxed ? ['--enable', 'relaxed-simd'] : []),
        '--outFile',
        'peak.wasm',
        '--disableWarning',
      ],
      {
        writeFile: (name, data) => {
          out[name] = data;
        },
        stdout: { write() {} },
        stderr: { write() {} },
      },
    );
    const built = /** @type {Uint8Array<ArrayBuffer> | string | undefined} */ (out['peak.wasm']);
    if (!error && built instanceof Uint8Array && WebAssembly.validate(built)) {
      bytes = built;
      fma = relaxed;
      break;
    }
  }
  if (!bytes) throw new Error('wasmSimdPeak: could not build bench/lab/simd_peak.ts');
  const module = await WebAssembly.compile(bytes);
  const { Worker } = await import('node:worker_threads');
  const ITERS = 20_000_000;
  const code = `const { parentPort, workerData } = await import('node:worker_threads');
    (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
    const inst = new WebAssembly.Instance(workerData.module, {});
    parentPort.on('message', (n) => { const t0 = performance.now(); inst.exports.fmaPeak(n, 1.0001); parentPort.postMessage(performance.now() - t0); });
    parentPort.postMessage('ready');`;
  /** @type {import('node:worker_threads').Worker[]} */
  const workers = [];
  for (let t = 0; t < threads; t++) {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { module } });
    await new Promise((res) => w.once('message', res));
    workers.push(w);
  }
  /** @param {number} n @returns {Promise<number[]>} */
  const round = (n) =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise((res) => {
            w.once('message', res);
            w.postMessage(n);
          }),
      ),
    );
  await round(ITERS / 20); // compile and warm
  let best = Infinity;
  for (let trial = 0; trial < 3; trial++) best = Math.min(best, Math.max(...(await round(ITERS))));
  await Promise.all(workers.map((w) => w.terminate()));
  const perThread = (96 * ITERS) / (best / 1e3) / 1e9;
  return { gflop_s: perThread * threads, perThread, threads, fma };
}
