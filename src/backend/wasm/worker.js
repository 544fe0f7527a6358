// Worker thread of the wasm backend's pool (plain JavaScript so it runs from src/ under vitest and from dist/).
// It instantiates the shared compiled kernel module on the shared memory, then loops: wait for its command slot's
// sequence number to change (spinning briefly, then Atomics.wait), call the kernel with the slot's arguments,
// publish `done`. Slot layout (Int32 words): 0 seq, 1 done, 2 kernel index (-1 = exit), 3 argument count,
// 4 error flag; float64 arguments from byte 64. See pool.ts.
import { parentPort, workerData } from 'node:worker_threads';

const { module, memory, names, ctl, slotBytes, slot, spin } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('wasm abort'); } } });
const fns = names.map((n) => instance.exports[n]);
const I = new Int32Array(ctl, slot * slotBytes, 16);
const A = new Float64Array(ctl, slot * slotBytes + 64, (slotBytes - 64) / 8);
const args = [];

parentPort.postMessage('ready');

let last = Atomics.load(I, 0);
for (;;) {
  let s = Atomics.load(I, 0);
  let n = 0;
  while (s === last) {
    if (++n > spin) {
      Atomics.wait(I, 0, last);
      n = 0;
    }
    s = Atomics.load(I, 0);
  }
  last = s;
  const f = I[2];
  if (f < 0) break;
  const na = I[3];
  args.length = na;
  for (let i = 0; i < na; i++) args[i] = A[i];
  try {
    fns[f](...args);
  } catch (e) {
    I[4] = 1;
    parentPort.postMessage({ error: String(e && e.stack ? e.stack : e) });
  }
  Atomics.store(I, 1, s);
  Atomics.notify(I, 1);
}
