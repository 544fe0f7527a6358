// The wasm backend's captured calls (src/backend/wasm/capture.ts): `runReplay` captures a call's WebAssembly calls
// the first time and makes them again later. A replay must compute what `run` computes on the buffers' current
// contents (1 thread and a split across the pool), a kernel that uses memory from JavaScript (embedding's id check)
// must keep doing so, and a capture must not outlive the scratch it points at.
import { afterAll, describe, expect, it } from 'vitest';
import type { Attrs, View } from '../src/backend/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/backend.js';
import { quantizeQ8 } from '../src/model/quantize.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';

const one = await createWasmBackend({ threads: 1 });
const two = await createWasmBackend({ threads: 2, spinMs: 0 });
afterAll(() => {
  one.dispose();
  two.dispose();
});

function randn(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function buf(be: WasmBackend, data: Float32Array | Int32Array, shape: number[]): View {
  const b = be.alloc(data.length, data instanceof Int32Array ? 'i32' : 'f32');
  be.write(b, data);
  return { buf: b, shape };
}

/** What `run` gives for the same call on fresh buffers holding the same inputs. */
function viaRun(be: WasmBackend, name: string, ins: readonly View[], outs: readonly View[], attrs?: Attrs) {
  const fresh = ins.map((v) => buf(be, be.readSync(v.buf) as Float32Array, [...v.shape]));
  const o = outs.map((v) => ({ buf: be.alloc(v.buf.length, v.buf.dtype), shape: [...v.shape] }));
  be.run(name, fresh, o, attrs);
  const r = o.map((v) => Array.from(be.readSync(v.buf)));
  for (const v of [...fresh, ...o]) be.free(v.buf);
  return r;
}

describe.each([
  ['1 thread', one],
  ['2 threads', two],
] as const)('wasm runReplay, %s', (_n, be) => {
  it.each([
    // gemv (M = 1), the packed 4×8 matmul (big enough to split across 2 threads), a norm, a broadcast add
    [
      'matmul',
      [
        [1, 96],
        [64, 96],
      ],
      [[1, 64]],
      { transB: true },
    ],
    [
      'matmul',
      [
        [96, 128],
        [128, 96],
      ],
      [[96, 96]],
      {},
    ],
    ['rmsnorm', [[5, 64], [64]], [[5, 64], [5]], { eps: 1e-5 }],
    ['add', [[7, 32], [32]], [[7, 32]], {}],
  ] as const)(
    '%s: every replay computes what run computes on the inputs of the moment',
    (name, inShapes, outShapes, attrs) => {
      const rng = new Rng(3);
      const ins = inShapes.map((s) => buf(be, randn(rng, numel(s)), [...s]));
      const outs = outShapes.map((s) => ({
        buf: be.alloc(numel(s), 'f32'),
        shape: [...s],
      }));
      const a: Attrs = { ...attrs };
      const results: number[][][] = [];
      for (let round = 0; round < 4; round++) {
        // new contents in the same buffers: a capture holds addresses, not values
        for (const v of ins) be.write(v.buf, randn(rng, v.buf.length));
        be.runReplay(name, ins, outs, a);
        const got = outs.map((v) => Array.from(be.readSync(v.buf)));
        expect(got).toEqual(viaRun(be, name, ins, outs, a));
        results.push(got);
      }
      expect(results[3]).not.toEqual(results[2]);
      for (const v of [...ins, ...outs]) be.free(v.buf);
    },
  );

  it('matmul_q8 (gemv on packed weights): replays equal run', () => {
    const rng = new Rng(4);
    const [N, K] = [48, 64];
    const q = quantizeQ8(randn(rng, N * K), N, K);
    const ins = [buf(be, randn(rng, K), [1, K]), buf(be, q.data, [N, K / 4]), buf(be, q.scales, [(N * K) / 32])];
    const outs = [{ buf: be.alloc(N, 'f32'), shape: [1, N] }];
    for (let round = 0; round < 3; round++) {
      be.write(ins[0]!.buf, randn(rng, K));
      be.runReplay('matmul_q8', ins, outs, {});
      const want = outs.map((v) => ({ buf: be.alloc(v.buf.length, 'f32'), shape: v.shape }));
      be.run('matmul_q8', ins, want, {});
      expect(Array.from(be.readSync(outs[0]!.buf))).toEqual(Array.from(be.readSync(want[0]!.buf)));
      be.free(want[0]!.buf);
    }
    for (const v of [...ins, ...outs]) be.free(v.buf);
  });

  it('embedding checks its ids at every replay (a kernel that reads memory from JavaScript is not captured)', () => {
    const rng = new Rng(5);
    const table = buf(be, randn(rng, 10 * 8), [10, 8]);
    const ids = buf(be, Int32Array.of(1, 9, 4), [3]);
    const out = { buf: be.alloc(24, 'f32'), shape: [3, 8] };
    const ins = [table, ids];
    be.runReplay('embedding', ins, [out], {});
    be.write(ids.buf, Int32Array.of(2, 3, 0));
    be.runReplay('embedding', ins, [out], {});
    const t = be.readSync(table.buf);
    expect(Array.from(be.readSync(out.buf))).toEqual([...t.slice(16, 24), ...t.slice(24, 32), ...t.slice(0, 8)]);
    be.write(ids.buf, Int32Array.of(2, 10, 0));
    expect(() => be.runReplay('embedding', ins, [out], {})).toThrow(ConfigError);
    for (const v of [table, ids, out]) be.free(v.buf);
  });
});

describe('wasm runReplay: a capture lives as long as the scratch it points at', () => {
  it('after the scratch moves, a replay captures again instead of writing where the old scratch was', async () => {
    const be = await createWasmBackend({ threads: 1 });
    try {
      const rng = new Rng(6);
      // matmul_q8 keeps x's row, rounded to int16, in the thread's scratch
      const K = 256,
        N = 32;
      const q = quantizeQ8(randn(rng, N * K), N, K);
      const ins = [buf(be, randn(rng, K), [1, K]), buf(be, q.data, [N, K / 4]), buf(be, q.scales, [(N * K) / 32])];
      const out = { buf: be.alloc(N, 'f32'), shape: [1, N] };
      const a = {};
      be.runReplay('matmul_q8', ins, [out], a);
      const oldScratch = be.scratch[0]!;
      const epoch = be.epoch;
      // more scratch than there is: the old block is freed and a bigger one made elsewhere
      be.ensureScratch(8 << 20);
      expect(be.epoch).toBe(epoch + 1);
      expect(be.scratch[0]).not.toBe(oldScratch);
      // a tensor now where the old scratch was (first fit), full of a marker
      const marker = new Float32Array(4 * K).fill(12345);
      const squatter = be.alloc(marker.length, 'f32');
      expect(squatter.ptr).toBe(oldScratch);
      be.write(squatter, marker);
      be.write(ins[0]!.buf, randn(rng, K));
      be.runReplay('matmul_q8', ins, [out], a);
      expect(Array.from(be.readSync(squatter))).toEqual(Array.from(marker));
      const want = { buf: be.alloc(N, 'f32'), shape: [1, N] };
      be.run('matmul_q8', ins, [want], a);
      expect(Array.from(be.readSync(out.buf))).toEqual(Array.from(be.readSync(want.buf)));
      be.free(squatter);
    } finally {
      be.dispose();
    }
  });
});
