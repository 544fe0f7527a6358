// Worker thread of the wasm backend's pool (plain JavaScript so it runs from src/ under vitest and from dist/).
// It instantiates the shared compiled kernel module on the shared memory, then loops: wait for the job counter to
// change (spinning briefly, then Atomics.wait), take chunks of the job from the shared ticket until none is left,
// run each, count it done. See pool.ts for the command block layout and why the ticket is safe without locks.
// Runs as a Node worker_threads worker (its data in workerData) and as a browser module Web Worker (its data in the
// first message); either way it answers 'ready' once instantiated. No static node: import, so it loads in a browser.
const isNode = typeof process !== 'undefined' && !!process.versions?.node;
let post, data;
if (isNode) {
  const { parentPort, workerData } = await import('node:worker_threads');
  [post, data] = [(m) => parentPort.postMessage(m), workerData];
} else {
  post = (m) => self.postMessage(m);
  data = await new Promise((resolve) => self.addEventListener('message', (e) => resolve(e.data), { once: true }));
}

const { module, memory, names, ctl, argsOffset, maxArgs, spin, scratchWord } = data;
const instance = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort: () => {
      throw new Error('wasm abort');
    },
  },
});
const fns = names.map((n) => instance.exports[n]);
const I = new Int32Array(ctl, 0, argsOffset / 4);
const A = new Float64Array(ctl, argsOffset);
// word indices (pool.ts)
const GEN = 0,
  TICKET = 1,
  DONE = 2,
  FN = 3,
  NARGS = 4,
  ERROR = 5,
  EXIT = 6;
const args = [];

post('ready');

let seen = Atomics.load(I, GEN);
for (;;) {
  // spin for `spin` ms (a clock read in the loop: a bare Atomics.load loop is hoisted by V8's optimiser and would
  // spin for nothing), then sleep until the job counter moves
  let g = Atomics.load(I, GEN);
  let t0 = performance.now();
  while (g === seen) {
    if (performance.now() - t0 > spin) {
      Atomics.wait(I, GEN, seen);
      t0 = performance.now();
    }
    g = Atomics.load(I, GEN);
  }
  seen = g;
  if (Atomics.load(I, EXIT) !== 0) break;
  for (;;) {
    const t = Atomics.add(I, TICKET, 1);
    const count = (t >>> 12) & 0xfff,
      idx = t & 0xfff;
    if (idx >= count) break;
    const f = I[FN],
      na = I[NARGS];
    args.length = na;
    const base = idx * maxArgs;
    for (let i = 0; i < na; i++) args[i] = A[base + i];
    args[na - 3] = I[scratchWord] >>> 0; // this thread's scratch
    try {
      fns[f](...args);
    } catch (e) {
      Atomics.store(I, ERROR, 1);
      post({ error: String(e?.stack ? e.stack : e) });
    }
    if (Atomics.add(I, DONE, 1) + 1 === count) Atomics.notify(I, DONE);
  }
}
