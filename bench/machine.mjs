// What we know of this machine's peak, for "% of peak" columns: float32 sgemm in OpenBLAS measured on the project's
// machines (../shared/design/ANCHORS.md). Override with LLMTS_PEAK_GFLOPS=<number> on another machine.
import os from 'node:os';

export function peakGflops(threads = os.availableParallelism()) {
  if (process.env.LLMTS_PEAK_GFLOPS) return Number(process.env.LLMTS_PEAK_GFLOPS);
  return threads >= 2 ? 330 : 169;
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
  const { fileURLToPath } = await import('node:url');
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
