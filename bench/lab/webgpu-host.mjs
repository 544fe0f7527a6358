#!/usr/bin/env node
// What recording a training step costs the host on the webgpu backend: the JavaScript (tensor layer, autograd, kernel
// wrappers) and the Dawn API calls (pipelines, bind groups, parameter blocks) spent before the step's one submit,
// apart from the device's work. A GPT (by default the calls of train.bench.mjs's tiny shape — 4 layers, 192
// dispatches a step — at tiny widths, so that SwiftShader's work stays small) runs forward, backward and AdamW (a
// fixed gradScale, so nothing is read mid-step), then reads the loss. The step is timed in two parts:
//   record: from the first call to the end of opt.zeroGrad() — everything the host does to record the step
//           (host µs per dispatch = record ÷ dispatches; `in dispatch`: the part spent inside GpuContext.dispatch);
//   wait:   the loss read: submit, the device's work, mapAsync. On SwiftShader the "device" is the CPU too, so this
//           part is large and says nothing about a GPU; record is what a GPU step would cost the host. (Where a step
//           submits midway — a build whose host writes flush — SwiftShader's work competes with the recording for
//           the CPU, so `record` there also counts some of the device's work.)
// and then, apart: the backend alone — the step's kernel calls (logged during a step) issued again straight to the
// backend, 4 times, then one sync: µs per dispatch of validation, kernel wrappers and GpuContext.dispatch, with the
// device idle while they are recorded. (On SwiftShader the first Dawn call after the device went idle can stall for
// milliseconds; the step's record time has that stall in both builds, the backend-alone figure leaves it out.)
// Median of the timed steps (the first ones, which compile shaders, untimed), rounds alternating between builds. Run
// it with node --expose-gc: each step then starts after a full garbage collection (see step()); without, a 30–50 ms
// pause lands in some steps' recording and the medians wander. VERBOSE=1 prints every step's record/in-dispatch ms.
// usage: node --expose-gc bench/lab/webgpu-host.mjs [--shape calls|micro|tiny|…] [--steps N] [--rounds R] [--base DIR]
//   (after npm run build) --shape: calls (default: tiny's 4 layers and calls, widths 32, B2 T16), or a shape of
//   ../train_shapes.mjs GPU_SHAPES (tiny B8 T128 takes ~1 min a step on SwiftShader: for a GPU)
//   --base DIR   also run the build in DIR (a copy of dist/ from another commit, inside this repository so that it
//                finds node_modules), alternating rounds with this one in one process: an A/B.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { GPU_SHAPES, gptConfig } from '../train_shapes.mjs';

const argv = process.argv.slice(2);
/** @param {string} k @param {string} d */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? (argv[i + 1] ?? d) : d;
};
// `calls`: the tiny shape's 4 layers (192 dispatches a step) at widths that leave SwiftShader next to nothing to do
/** @type {Record<string, import('../train_shapes.mjs').Shape>} */
const SHAPES = { ...GPU_SHAPES, calls: { L: 4, C: 32, H: 4, V: 64, T: 16, B: 2, peerSteps: 1 } };
const shapeName = opt('--shape', 'calls');
const s = SHAPES[shapeName];
if (!s) throw new Error(`--shape: unknown ${shapeName}`);
const steps = Number(opt('--steps', '4'));
const rounds = Number(opt('--rounds', '3'));
const base = opt('--base', '');

/** @param {string} dir */
async function load(dir) {
  const lib = await import(pathToFileURL(path.resolve(dir, 'index.js')).href);
  const { createWebGpuBackend } = await import(pathToFileURL(path.resolve(dir, 'backend/webgpu/backend.js')).href);
  const backend = await createWebGpuBackend();
  lib.setBackend(backend);
  // the backend's GpuContext (private in TypeScript): its dispatch is timed on top of the step
  const ctx = backend.ctx;
  const dispatch = ctx.dispatch.bind(ctx);
  const t = { inDispatch: 0 };
  ctx.dispatch = (/** @type {unknown[]} */ ...a) => {
    const t0 = performance.now();
    dispatch(...a);
    t.inDispatch += performance.now() - t0;
  };
  const rng = new lib.Rng(1);
  const model = lib.initModel(gptConfig(s), rng, { backend });
  const adam = new lib.AdamW(model.params, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const ids = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  const tg = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  /** One step: { record ms, wait ms, inDispatch ms, dispatches, submits, loss }. */
  async function step() {
    const st0 = backend.stats();
    t.inDispatch = 0;
    // a full collection first where --expose-gc allows: waiting on SwiftShader polls (setImmediate) and leaves tens of
    // MB of garbage, whose 30–50 ms mark-compact would otherwise land in some steps' recording at random
    globalThis.gc?.();
    // SwiftShader: the first Dawn call after the device went idle can stall for milliseconds; taken here, apart
    const ts = performance.now();
    ctx.device.createCommandEncoder();
    const t0 = performance.now();
    const loss = lib.tidy(() => {
      const l = model.loss(ids, tg, s.B, s.T);
      lib.backward(l);
      return l;
    });
    adam.step({ gradScale: 1 });
    adam.zeroGrad();
    const t1 = performance.now();
    const lv = await loss.item();
    loss.dispose();
    await backend.sync();
    const t2 = performance.now();
    const st1 = backend.stats();
    return {
      record: t1 - t0,
      wait: t2 - t1,
      stall: t0 - ts,
      inDispatch: t.inDispatch,
      dispatches: st1.dispatches - st0.dispatches,
      submits: st1.submits - st0.submits,
      loss: lv,
      hostSteps: backend.counts.hostSteps,
    };
  }
  /**
   * The backend alone: one step's kernel calls (backend.run, logged while a step runs, its frees held back) run again
   * `times` times straight into the backend, then one sync. No tensor layer, no host write, no submit midway: what
   * recording the step's dispatches costs the backend. Returns { record ms per replay, dispatches per replay }.
   */
  /** @param {number} times */
  async function replay(times) {
    /** @type {[string, unknown[], unknown[], object][]} */
    const calls = [];
    /** @type {unknown[]} */
    const held = [];
    const run = backend.run.bind(backend),
      free = backend.free.bind(backend);
    backend.run = (
      /** @type {string} */ name,
      /** @type {unknown[]} */ ins,
      /** @type {unknown[]} */ outs,
      /** @type {object} */ attrs,
    ) => {
      calls.push([name, ins, outs, attrs ?? {}]);
      run(name, ins, outs, attrs);
    };
    backend.free = (/** @type {unknown} */ buf) => held.push(buf);
    try {
      await step();
    } finally {
      backend.run = run;
      backend.free = free;
    }
    await backend.sync();
    globalThis.gc?.();
    // one call first, untimed: the first Dawn call after the device went idle can stall for milliseconds (SwiftShader)
    const [n0, i0, o0, a0] = calls[0] ?? [];
    if (n0) run(n0, i0, o0, a0);
    const d0 = backend.stats().dispatches;
    const t0 = performance.now();
    for (let k = 0; k < times; k++) for (const [name, ins, outs, attrs] of calls) run(name, ins, outs, attrs);
    const t1 = performance.now();
    const dispatches = (backend.stats().dispatches - d0) / times;
    await backend.sync();
    for (const buf of held) free(buf);
    await backend.sync();
    return { record: (t1 - t0) / times, dispatches };
  }
  return { dir, backend, step, replay };
}

const runs = [await load(path.resolve(import.meta.dirname, '../../dist'))];
if (base) runs.push(await load(base));
console.log(
  `${runs[0].backend.describe()}; GPT L${s.L} C${s.C} H${s.H} V${s.V}, B${s.B} T${s.T}: host cost of one training step`,
);
/** @type {Map<string, ReturnType<Awaited<ReturnType<typeof load>>['step']> extends Promise<infer R> ? R[] : never>} */
const results = new Map(runs.map((r) => [r.dir, []]));
for (const r of runs) {
  const w = await r.step(); // shaders compile here
  await r.step();
  console.log(`  ${path.relative(process.cwd(), r.dir) || '.'}: warm-up loss ${w.loss.toFixed(5)}`);
}
/** @type {Map<string, { record: number, dispatches: number }[]>} */
const replays = new Map(runs.map((r) => [r.dir, []]));
for (let k = 0; k < rounds; k++)
  for (const r of runs) {
    for (let i = 0; i < steps; i++) results.get(r.dir)?.push(await r.step());
    replays.get(r.dir)?.push(await r.replay(4));
  }

/** @param {number[]} xs */
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
for (const r of runs) {
  const rs = results.get(r.dir) ?? [];
  const rec = median(rs.map((x) => x.record)),
    wait = median(rs.map((x) => x.wait)),
    inD = median(rs.map((x) => x.inDispatch)),
    stall = median(rs.map((x) => x.stall));
  const d = rs[0]?.dispatches ?? 0;
  console.log(
    `  ${(path.relative(process.cwd(), r.dir) || '.').padEnd(14)} ${d} dispatches, ${rs[0]?.submits} submits, ` +
      `${rs[0]?.hostSteps} host steps; record ${(rec * 1000).toFixed(0)} µs/step = ${((rec * 1000) / d).toFixed(2)} µs/dispatch ` +
      `(in GpuContext.dispatch ${((inD * 1000) / d).toFixed(2)} µs/dispatch); wait ${wait.toFixed(1)} ms; ` +
      `first Dawn call after idle ${(stall * 1000).toFixed(0)} µs (apart); ` +
      `last loss ${rs[rs.length - 1]?.loss.toFixed(5)}`,
  );
  const rp = replays.get(r.dir) ?? [];
  const rr = median(rp.map((x) => x.record)),
    rd = rp[0]?.dispatches ?? 0;
  console.log(
    `  ${''.padEnd(14)} backend alone (the step's kernel calls again, no tensor layer, no submit midway): ` +
      `${(rr * 1000).toFixed(0)} µs per step's calls = ${((rr * 1000) / rd).toFixed(2)} µs/dispatch`,
  );
}
if (process.env.VERBOSE)
  for (const r of runs)
    console.log(
      r.dir,
      (results.get(r.dir) ?? []).map((x) => `${x.record.toFixed(1)}/${x.inDispatch.toFixed(1)}`).join(' '),
    );
for (const r of runs) r.backend.dispose();
process.exit(0);
