#!/usr/bin/env node
// How long a split kernel takes after the pool has been idle for a while: two chunks of a ~18 µs fill on 2 threads,
// after idle gaps of 0–1000 µs, with idle workers spinning `spinMs` before they sleep (the backend option). A
// sleeping worker wakes late (50 µs to several hundred), so the pair takes longer than one thread doing both.
//   node bench/lab/pool-wake.mjs [spinMs,...]   (default 0,2)
const { createWasmBackend } = await import('../../dist/backend/wasm/backend.js');
for (const spinMs of (process.argv[2] || '0,2').split(',').map(Number)) {
  const backend = await createWasmBackend({ threads: 2, spinMs });
  // the lab reaches into the backend's private pool and kernel table on purpose
  const internals =
    /** @type {{ pool: import('../../dist/backend/wasm/pool.js').WorkerPool, fns: Record<string, (...a: number[]) => void> }} */ (
      /** @type {unknown} */ (backend)
    );
  const pool = internals.pool;
  const E = 1 << 17; // floats per chunk (512 KB)
  const buf = backend.alloc(2 * E, 'f32');
  const f = /** @type {(...a: number[]) => void} */ (internals.fns['fill32']);
  const idx = 1; // EXPORTS index of fill32 (src/backend/wasm/backend.ts)
  const med = (/** @type {number[]} */ a) => /** @type {number} */ ([...a].sort((x, y) => x - y)[a.length >> 1]);
  const one = () => {
    const t0 = performance.now();
    f(buf.ptr, 0, 0, 0, E);
    return (performance.now() - t0) * 1000;
  };
  for (let i = 0; i < 50; i++) one();
  console.log(`spinMs ${spinMs}: one chunk on one thread ${med(Array.from({ length: 200 }, one)).toFixed(1)} µs`);
  for (const gap of [0, 20, 200, 1000]) {
    const ts = [];
    for (let r = 0; r < 200; r++) {
      const t1 = performance.now();
      while (performance.now() - t1 < gap / 1000);
      const t0 = performance.now();
      pool.run(idx, f, [
        [buf.ptr, 0, 0, 0, E],
        [buf.ptr, 0, 0, E, 2 * E],
      ]);
      ts.push((performance.now() - t0) * 1000);
    }
    ts.sort((a, b) => a - b);
    console.log(
      `  after ${String(gap).padStart(4)} µs idle: two chunks ${ts[100].toFixed(1)} µs (median; p75 ${ts[150].toFixed(1)})`,
    );
  }
  backend.dispose();
}
process.exit(0);
