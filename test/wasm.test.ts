/**
 * The wasm backend beyond kernel values (those are in conformance.test.ts): the heap allocator (reuse, coalescing,
 * out-of-memory message), buffer I/O, memory growth, variant detection, and thread-count invariance — every split
 * kernel gives bitwise the same result on 1 and 2 threads.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Attrs, Backend, DType, HostArray } from '../src/backend/backend.js';
import { HeapAllocator } from '../src/backend/wasm/allocator.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/backend.js';
import { splitRange, collapse } from '../src/backend/wasm/layout.js';
import { ConfigError, OutOfMemoryError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';

describe('HeapAllocator', () => {
  const mk = (limit = 1 << 20) => {
    let committed = 0;
    const h = new HeapAllocator(1024, limit, (end) => (committed = Math.max(committed, end)));
    return { h, committed: () => committed };
  };

  it('aligns to 64 bytes and reuses a freed block of the same size', () => {
    const { h } = mk();
    const a = h.alloc(10),
      b = h.alloc(100),
      c = h.alloc(64);
    for (const p of [a, b, c]) expect(p % 64).toBe(0);
    expect(b - a).toBe(64);
    expect(c - b).toBe(128);
    h.free(b, 100);
    expect(h.alloc(90)).toBe(b);
    expect(h.inUse).toBe(64 + 128 + 64);
  });

  it('coalesces neighbours and lowers the top when the last block is freed', () => {
    const { h } = mk();
    const a = h.alloc(64),
      b = h.alloc(64),
      c = h.alloc(64),
      d = h.alloc(64);
    h.free(a, 64);
    h.free(c, 64);
    expect(h.freeBlocks).toBe(2);
    h.free(b, 64); // a, b, c merge into one block of 192
    expect(h.freeBlocks).toBe(1);
    expect(h.alloc(192)).toBe(a);
    h.free(a, 192);
    h.free(d, 64); // everything free: top returns to the base
    expect(h.freeBlocks).toBe(0);
    expect(h.end).toBe(1024);
    expect(h.inUse).toBe(0);
    expect(h.peak).toBe(256);
  });

  it('picks the best fitting block', () => {
    const { h } = mk();
    const a = h.alloc(256),
      x = h.alloc(64),
      b = h.alloc(128),
      y = h.alloc(64);
    h.free(a, 256);
    h.free(b, 128);
    expect(h.alloc(128)).toBe(b);
    expect(h.alloc(64)).toBe(a);
    void x;
    void y;
  });

  it('grows through the callback and throws OutOfMemoryError past the limit, saying how much was asked', () => {
    const { h, committed } = mk(1 << 20);
    h.alloc(500_000);
    expect(committed()).toBeGreaterThanOrEqual(1024 + 500_000);
    let err: unknown;
    try {
      h.alloc(3 << 20);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as Error).message).toMatch(/allocating 3\.0 MiB/);
    expect((err as OutOfMemoryError).requestedBytes).toBe(3 << 20);
  });
});

describe('layout helpers', () => {
  it('splitRange covers [0, n) with aligned cuts', () => {
    for (const [n, p, al] of [
      [100, 2, 16],
      [7, 4, 1],
      [3, 8, 4],
      [1000, 3, 8],
    ] as const) {
      const r = splitRange(n, p, al);
      expect(r[0]![0]).toBe(0);
      expect(r[r.length - 1]![1]).toBe(n);
      for (let k = 1; k < r.length; k++) {
        expect(r[k]![0]).toBe(r[k - 1]![1]);
        expect(r[k]![0] % al).toBe(0);
      }
    }
  });
  it('collapse merges contiguous axes and drops size-1 axes', () => {
    expect(
      collapse(
        [2, 3, 4],
        [
          [12, 4, 1],
          [12, 4, 1],
        ],
      ).dims,
    ).toEqual([24]);
    expect(
      collapse(
        [5, 1, 7],
        [
          [7, 7, 1],
          [0, 0, 1],
        ],
      ),
    ).toEqual({
      dims: [5, 7],
      strides: [
        [7, 1],
        [0, 1],
      ],
    });
  });
});

describe('wasm backend', () => {
  let be: WasmBackend;
  beforeAll(async () => {
    be = await createWasmBackend({ threads: 2 });
  });
  afterAll(() => be.dispose());

  it('does not keep the process alive: its workers hold no active handle', async () => {
    const count = () => process.getActiveResourcesInfo().filter((r) => /Worker|MessagePort/.test(r)).length;
    const before = count();
    const b2 = await createWasmBackend({ threads: 2 });
    expect(count()).toBe(before);
    b2.dispose();
  });

  it('spinMs: idle workers sleep at once with 0 and split kernels still agree bit for bit; a bad value is a ConfigError', async () => {
    await expect(createWasmBackend({ threads: 2, spinMs: -1 })).rejects.toThrow(ConfigError);
    await expect(createWasmBackend({ threads: 2, spinMs: Number.NaN })).rejects.toThrow(ConfigError);
    const b0 = await createWasmBackend({ threads: 2, spinMs: 0 });
    try {
      const M = 64,
        K = 256,
        N = 512; // big enough to split across both threads
      const run = (b: WasmBackend) => {
        const x = b.alloc(M * K, 'f32'),
          w = b.alloc(N * K, 'f32'),
          y = b.alloc(M * N, 'f32');
        b.write(
          x,
          Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)),
        );
        b.write(
          w,
          Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.3)),
        );
        const before = b.parallelDispatches;
        b.run(
          'matmul',
          [
            { buf: x, shape: [M, K] },
            { buf: w, shape: [N, K] },
          ],
          [{ buf: y, shape: [M, N] }],
          { transB: true },
        );
        expect(b.parallelDispatches).toBeGreaterThan(before);
        const out = Array.from(b.readSync(y));
        for (const t of [x, w, y]) b.free(t);
        return out;
      };
      expect(run(b0)).toEqual(run(be));
    } finally {
      b0.dispose();
    }
  });

  it('describes its variant and threads', () => {
    expect(be.describe()).toMatch(/^wasm \((relaxed SIMD FMA|SIMD128 mul\+add), 2 threads\)$/);
    // Node 20 needs the V8 flag, which the loader sets; every supported Node then runs the relaxed build
    expect(be.variant).toBe('relaxed');
  });

  it('writes, reads and frees buffers; freed memory is reused', () => {
    const a = be.alloc(1000, 'f32');
    const data = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5);
    be.write(a, data);
    expect(Array.from(be.readSync(a))).toEqual(Array.from(data));
    be.write(a, new Float32Array([7, 8]), 998);
    expect(Array.from(be.readSync(a).slice(996))).toEqual([498, 498.5, 7, 8]);
    const i = be.alloc(3, 'i32');
    be.write(i, new Int32Array([-1, 2, 3]));
    expect(Array.from(be.readSync(i))).toEqual([-1, 2, 3]);
    const before = be.memory().inUse;
    be.free(a);
    expect(be.memory().inUse).toBe(before - 4032);
    const b = be.alloc(1000, 'f32');
    expect(b.ptr).toBe(a.ptr);
    be.free(b);
    be.free(i);
    expect(() => be.readSync(a)).toThrow(/freed/);
    expect(() => be.write(i, new Int32Array(1))).toThrow(/freed/);
    expect(() => be.alloc(4, 'f64')).toThrow(/f32 and i32/);
  });

  it('grows its memory for big tensors and keeps data across growth', async () => {
    const a = be.alloc(5, 'f32');
    be.write(a, new Float32Array([1, 2, 3, 4, 5]));
    const before = be.committedBytes();
    const big = be.alloc(64 << 20, 'f32'); // 256 MiB
    expect(be.committedBytes()).toBeGreaterThan(before);
    be.write(big, new Float32Array([9]), (64 << 20) - 1);
    expect(be.readSync(big)[(64 << 20) - 1]).toBe(9);
    expect(Array.from(await be.read(a))).toEqual([1, 2, 3, 4, 5]);
    be.free(big);
    be.free(a);
  });

  it('running past 4 GiB is an OutOfMemoryError that says how much was needed', () => {
    let err: unknown;
    try {
      be.alloc(1.25 * 2 ** 30, 'f32'); // 5 GiB
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as Error).message).toMatch(/wasm backend: out of memory allocating 5120\.0 MiB/);
  });

  it('rejects bad ids and mismatched shapes with named errors', () => {
    const w = be.alloc(10 * 4, 'f32'),
      ids = be.alloc(3, 'i32'),
      out = be.alloc(12, 'f32');
    be.write(ids, new Int32Array([1, 10, 2]));
    expect(() =>
      be.run(
        'embedding',
        [
          { buf: w, shape: [10, 4] },
          { buf: ids, shape: [3] },
        ],
        [{ buf: out, shape: [3, 4] }],
      ),
    ).toThrow(/token id: 10 at position 1/);
    expect(() =>
      be.run(
        'matmul',
        [
          { buf: w, shape: [10, 4] },
          { buf: w, shape: [10, 4] },
        ],
        [{ buf: out, shape: [3, 4] }],
      ),
    ).toThrow(/matmul/);
    expect(() => be.run('nope', [], [])).toThrow(/no kernel 'nope'/);
    for (const b of [w, ids, out]) be.free(b);
  });
});

describe('thread-count invariance', () => {
  let one: Backend, two: WasmBackend;
  beforeAll(async () => {
    one = await createWasmBackend({ threads: 1 });
    two = await createWasmBackend({ threads: 2 });
  });
  afterAll(() => {
    one.dispose();
    two.dispose();
  });

  interface Spec {
    shape: number[];
    dtype?: DType;
    ids?: number;
    init?: boolean;
  }
  const cases: [string, Spec[], Spec[], Attrs?][] = [
    ['matmul', [{ shape: [300, 200] }, { shape: [200, 150] }], [{ shape: [300, 150] }]],
    ['matmul', [{ shape: [300, 200] }, { shape: [150, 200] }], [{ shape: [300, 150] }], { transB: true }],
    ['matmul', [{ shape: [256, 100] }, { shape: [256, 300] }], [{ shape: [100, 300] }], { transA: true }],
    ['matmul', [{ shape: [2, 300] }, { shape: [1001, 300] }], [{ shape: [2, 1001] }], { transB: true }],
    ['matmul', [{ shape: [6, 70, 50] }, { shape: [6, 50, 40] }], [{ shape: [6, 70, 40] }]],
    ['add', [{ shape: [700, 400] }, { shape: [400] }], [{ shape: [700, 400] }]],
    ['mul', [{ shape: [700, 401] }, { shape: [700, 401] }], [{ shape: [700, 401] }]],
    ['gelu', [{ shape: [300001] }], [{ shape: [300001] }]],
    [
      'layernorm',
      [{ shape: [1024, 130] }, { shape: [130] }, { shape: [130] }],
      [{ shape: [1024, 130] }, { shape: [1024] }, { shape: [1024] }],
      { eps: 1e-5 },
    ],
    [
      'layernorm_backward',
      [{ shape: [1024, 130] }, { shape: [1024, 130] }, { shape: [130] }, { shape: [1024] }, { shape: [1024] }],
      [{ shape: [1024, 130] }, { shape: [130] }, { shape: [130] }],
    ],
    [
      'rmsnorm_backward',
      [{ shape: [1024, 131] }, { shape: [1024, 131] }, { shape: [131] }, { shape: [1024] }],
      [{ shape: [1024, 131] }, { shape: [131] }],
    ],
    ['softmax', [{ shape: [512, 513] }], [{ shape: [512, 513] }]],
    [
      'cross_entropy',
      [{ shape: [256, 1000] }, { shape: [256], dtype: 'i32', ids: 1000 }],
      [{ shape: [256] }, { shape: [256] }],
    ],
    [
      'attention',
      [{ shape: [2, 64, 4, 16] }, { shape: [2, 64, 2, 16] }, { shape: [2, 64, 2, 16] }],
      [{ shape: [2, 64, 4, 16] }, { shape: [2, 4, 64] }],
      { scale: 0.25 },
    ],
    ['dropout', [{ shape: [300001] }], [{ shape: [300001] }], { p: 0.1, seed: 3 }],
    [
      'adamw',
      [{ shape: [300001] }],
      [
        { shape: [300001], init: true },
        { shape: [300001], init: true },
        { shape: [300001], init: true },
      ],
      { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 2 },
    ],
    ['transpose', [{ shape: [600, 700] }], [{ shape: [700, 600] }], { perm: [1, 0] }],
    ['sum_to', [{ shape: [1024, 601] }], [{ shape: [1, 601] }]],
    [
      'embedding_backward',
      [{ shape: [1024, 301] }, { shape: [1024], dtype: 'i32', ids: 500 }],
      [{ shape: [500, 301] }],
    ],
  ];

  it.each(cases.map((c, i) => [`${c[0]} [${c[1][0]!.shape}]`, i] as const))('%s', (_n, i) => {
    const [kernel, ins, outs, attrs] = cases[i]!;
    const rng = new Rng(i + 1);
    const gen = (s: Spec): HostArray => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (s.dtype === 'i32') return Int32Array.from({ length: n }, () => rng.int(s.ids ?? 10));
      const pos = kernel === 'adamw' || (kernel.endsWith('_backward') && s.shape.length === 1 && s.shape[0] === 1024);
      return Float32Array.from({ length: n }, () => (pos ? 0.5 + rng.random() : rng.normal()));
    };
    const before = two.parallelDispatches;
    const inData = ins.map(gen),
      outInit = outs.map((s) => (s.init ? gen(s) : null));
    const results = [one, two].map((be) => {
      const iv = ins.map((s, k) => {
        const b = be.alloc(inData[k]!.length, s.dtype ?? 'f32');
        be.write(b, inData[k]!);
        return { buf: b, shape: s.shape };
      });
      const ov = outs.map((s, k) => {
        const b = be.alloc(
          s.shape.reduce((a, c) => a * c, 1),
          'f32',
        );
        if (outInit[k]) be.write(b, outInit[k]!);
        return { buf: b, shape: s.shape };
      });
      be.run(kernel, iv, ov, attrs);
      const r = ov.map((v) => be.readSync!(v.buf));
      for (const v of [...iv, ...ov]) be.free(v.buf);
      return r;
    });
    expect(two.parallelDispatches, 'the 2-thread backend split this kernel').toBeGreaterThan(before);
    for (let k = 0; k < outs.length; k++) {
      const a = new Uint32Array(results[0]![k]!.buffer),
        b = new Uint32Array(results[1]![k]!.buffer);
      let diff = -1;
      for (let j = 0; j < a.length; j++)
        if (a[j] !== b[j]) {
          diff = j;
          break;
        }
      expect(diff, `output ${k} differs first at ${diff}`).toBe(-1);
    }
  });
});
