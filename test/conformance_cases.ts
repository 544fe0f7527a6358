/**
 * The kernel conformance cases, written once: the tables, the seeded input generator, the float64 oracle (`ref`) and
 * the tolerance. test/conformance.test.ts runs them on every registered backend in Node; test/webgpu_browser.test.ts
 * bundles this file into a page and runs them on the WebGPU backend in Chromium. No Node built-ins and no vitest here
 * (it must bundle for a browser). The tolerance and the case choices are explained in test/conformance.test.ts.
 */
import type { Attrs, Backend, DType, HostArray } from '../src/backend/backend.js';
import { runKernel } from '../src/backend/dispatch.js';
import { RefBackend } from '../src/backend/ref/backend.js';
import { Rng } from '../src/util/rng.js';

export const RTOL = 1e-5;

export type Gen =
  | 'normal'
  | 'positive' // (0.2, 3)
  | 'away' // normal, |x| ≥ 0.3 (divisors)
  | { ids: number; ignore?: number } // i32 ids in [0, n), a few set to `ignore`
  | { big: number } // normal · big
  | { range: [number, number] };

export interface TensorSpec {
  shape: number[];
  dtype?: DType;
  gen?: Gen;
}

export interface Case {
  name: string;
  kernel: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[]; // gen given = read-modify-write output, initialised with that data
  attrs?: Attrs;
  /** Replace generated inputs with values computed by the ref backend (e.g. o/lse from a forward pass). */
  prep?: (inputs: HostArray[]) => HostArray[] | Promise<HostArray[]>;
}

export function generate(spec: TensorSpec, rng: Rng): HostArray {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const g = spec.gen ?? 'normal';
  if (spec.dtype === 'i32') {
    const out = new Int32Array(n);
    if (typeof g === 'object' && 'ids' in g) {
      for (let i = 0; i < n; i++) out[i] = rng.int(g.ids);
      if (g.ignore !== undefined) for (let i = 0; i < n; i += 3) out[i] = g.ignore;
    } else for (let i = 0; i < n; i++) out[i] = rng.int(2001) - 1000;
    return out;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    if (g === 'positive') v = 0.2 + 2.8 * rng.random();
    else if (g === 'away') {
      v = rng.normal();
      v = Math.sign(v || 1) * (0.3 + Math.abs(v));
    } else if (typeof g === 'object' && 'big' in g) v = rng.normal() * g.big;
    else if (typeof g === 'object' && 'range' in g) v = g.range[0] + (g.range[1] - g.range[0]) * rng.random();
    else v = rng.normal();
    out[i] = v;
  }
  return out;
}

/** Run one kernel on a backend with host inputs; returns host outputs. `f64` runs float tensors as float64 (ref). */
export async function runOn(
  be: Backend,
  c: Case,
  ins: HostArray[],
  outInit: (HostArray | null)[],
  f64: boolean,
): Promise<HostArray[]> {
  const dt = (s: TensorSpec): DType => (s.dtype === 'i32' ? 'i32' : f64 ? 'f64' : 'f32');
  const bufs: ReturnType<Backend['alloc']>[] = [];
  try {
    const iv = c.inputs.map((s, k) => {
      const b = be.alloc(
        s.shape.reduce((x, y) => x * y, 1),
        dt(s),
      );
      bufs.push(b);
      be.write(b, convert(ins[k]!, dt(s)));
      return { buf: b, shape: s.shape };
    });
    const ov = c.outputs.map((s, k) => {
      const b = be.alloc(
        s.shape.reduce((x, y) => x * y, 1),
        dt(s),
      );
      bufs.push(b);
      const init = outInit[k];
      if (init) be.write(b, convert(init, dt(s)));
      return { buf: b, shape: s.shape };
    });
    runKernel(be, c.kernel, iv, ov, c.attrs);
    return await Promise.all(ov.map((v) => be.read(v.buf)));
  } finally {
    for (const b of bufs) be.free(b);
  }
}

/**
 * Case `i` of cases() on `be` and on ref in float64, from the same inputs (drawn from Rng(1000 + i), then the
 * case's prep; outputs the case initialises drawn after them): the worst error of each output against ref's.
 */
export async function compareCase(
  be: Backend,
  c: Case,
  i: number,
): Promise<{ ratio: number; at: number; got: number; want: number }[]> {
  const rng = new Rng(1000 + i);
  let ins = c.inputs.map((s) => generate(s, rng));
  if (c.prep) ins = await c.prep(ins);
  const inits = c.outputs.map((s) => (s.gen ? generate(s, rng) : null));
  const want = await runOn(ref64, c, ins, inits, true);
  const got = await runOn(be, c, ins, inits, false);
  return want.map((w, k) => {
    const { ratio, at } = worst(got[k]!, w, c.kernel === 'dropout');
    return { ratio, at, got: got[k]![at] ?? Number.NaN, want: w[at] ?? Number.NaN };
  });
}

export function convert(a: HostArray, dt: DType): HostArray {
  if (dt === 'f64') return a instanceof Float64Array ? a : Float64Array.from(a);
  if (dt === 'f32') return a instanceof Float32Array ? a : Float32Array.from(a);
  return a;
}

/** Largest violation of the tolerance (≤ 1 passes), or Infinity on a NaN/∞/integer mismatch. */
export function worst(got: HostArray, want: HostArray, exactZeros: boolean): { ratio: number; at: number } {
  let ss = 0,
    cnt = 0;
  for (const w of want) if (Number.isFinite(w)) (ss += w * w), cnt++;
  const rms = Math.sqrt(ss / Math.max(1, cnt));
  let ratio = 0,
    at = -1;
  const exact = want instanceof Int32Array;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!,
      w = want[i]!;
    let r: number;
    if (exact || !Number.isFinite(w) || (exactZeros && (g === 0) !== (w === 0))) r = g === w ? 0 : Infinity;
    else if (Number.isNaN(g)) r = Infinity;
    else r = Math.abs(g - w) / (RTOL * (Math.abs(w) + rms) + 1e-37);
    if (r > ratio) (ratio = r), (at = i);
  }
  return { ratio, at };
}

// ---- the cases ------------------------------------------------------------------------------------------------

export const f = (shape: number[], gen?: Gen): TensorSpec => ({ shape, ...(gen ? { gen } : {}) });
export const ids = (shape: number[], n: number, ignore?: number): TensorSpec => ({
  shape,
  dtype: 'i32',
  gen: { ids: n, ...(ignore !== undefined ? { ignore } : {}) },
});
export const ref64 = new RefBackend();

export function cases(): Case[] {
  const cs: Case[] = [];
  const shapes = [[1], [7], [3, 33], [129, 5], [600, 700]];
  const unaryGen: Record<string, Gen> = {
    log: 'positive',
    sqrt: 'positive',
    rsqrt: 'positive',
    exp: { big: 3 },
    gelu: { big: 3 },
    silu: { big: 3 },
  };
  for (const k of ['exp', 'log', 'neg', 'sqrt', 'rsqrt', 'square', 'gelu', 'silu']) {
    for (const s of shapes.slice(0, k === 'gelu' || k === 'exp' ? 5 : 4))
      cs.push({ name: `${k} [${s}]`, kernel: k, inputs: [f(s, unaryGen[k])], outputs: [f(s)] });
  }
  cs.push({ name: 'exp extremes', kernel: 'exp', inputs: [f([64], { range: [-100, 80] })], outputs: [f([64])] });
  cs.push({ name: 'scale', kernel: 'scale', inputs: [f([33])], outputs: [f([33])], attrs: { alpha: 1.7, beta: -0.3 } });
  cs.push({ name: 'scale no beta', kernel: 'scale', inputs: [f([5, 7])], outputs: [f([5, 7])], attrs: { alpha: -2 } });
  cs.push({ name: 'fill f32', kernel: 'fill', inputs: [], outputs: [f([33])], attrs: { value: 2.5 } });
  cs.push({
    name: 'fill i32',
    kernel: 'fill',
    inputs: [],
    outputs: [{ shape: [7], dtype: 'i32' }],
    attrs: { value: -7 },
  });
  cs.push({ name: 'copy f32', kernel: 'copy', inputs: [f([3, 33])], outputs: [f([99])] });
  cs.push({
    name: 'copy f32→i32',
    kernel: 'copy',
    inputs: [f([37], { big: 100 })],
    outputs: [{ shape: [37], dtype: 'i32' }],
  });
  cs.push({ name: 'copy i32→f32', kernel: 'copy', inputs: [{ shape: [37], dtype: 'i32' }], outputs: [f([37])] });

  const pairs: [number[], number[], number[]][] = [
    [
      [3, 33],
      [3, 33],
      [3, 33],
    ],
    [[5, 7], [7], [5, 7]],
    [
      [4, 1, 7],
      [1, 3, 7],
      [4, 3, 7],
    ],
    [[1], [33], [33]],
    [[33], [1], [33]],
    [
      [2, 3, 1],
      [3, 5],
      [2, 3, 5],
    ],
    [
      [2, 1, 3, 1, 2, 3],
      [1, 2, 1, 2, 1, 3],
      [2, 2, 3, 2, 2, 3],
    ],
    [[512, 600], [600], [512, 600]],
    [
      [700, 800],
      [700, 800],
      [700, 800],
    ],
  ];
  for (const k of ['add', 'sub', 'mul', 'div']) {
    for (const [a, b, o] of pairs)
      cs.push({
        name: `${k} [${a}]·[${b}]`,
        kernel: k,
        inputs: [f(a), f(b, k === 'div' ? 'away' : undefined)],
        outputs: [f(o)],
      });
  }
  for (const k of ['gelu_backward', 'silu_backward', 'swiglu']) {
    cs.push({ name: `${k} [3,33]`, kernel: k, inputs: [f([3, 33], { big: 2 }), f([3, 33])], outputs: [f([3, 33])] });
    cs.push({
      name: `${k} big`,
      kernel: k,
      inputs: [f([256, 1030], { big: 2 }), f([256, 1030])],
      outputs: [f([256, 1030])],
    });
  }
  cs.push({
    name: 'gelu_backward bcast',
    kernel: 'gelu_backward',
    inputs: [f([5, 7], { big: 2 }), f([7])],
    outputs: [f([5, 7])],
  });
  for (const [shape, y] of [
    [
      [3, 66],
      [3, 33],
    ],
    [
      [2, 3, 10],
      [2, 3, 5],
    ],
    [
      [1, 1, 1536],
      [1, 1, 768],
    ],
    [
      [64, 2062],
      [64, 1031],
    ],
  ] as const)
    for (const kernel of ['swiglu_fused', 'geglu_fused'])
      cs.push({
        name: `${kernel} [${shape}]`,
        kernel,
        inputs: [f([...shape], { big: 2 })],
        outputs: [f([...y])],
      });
  cs.push({
    name: 'swiglu_backward',
    kernel: 'swiglu_backward',
    inputs: [f([3, 33], { big: 2 }), f([3, 33]), f([3, 33])],
    outputs: [f([3, 33]), f([3, 33])],
  });
  cs.push({
    name: 'swiglu_backward big',
    kernel: 'swiglu_backward',
    inputs: [f([64, 1031], { big: 2 }), f([64, 1031]), f([64, 1031])],
    outputs: [f([64, 1031]), f([64, 1031])],
  });

  const sums: [number[], number[]][] = [
    [
      [5, 7],
      [1, 7],
    ],
    [
      [5, 7],
      [5, 1],
    ],
    [
      [4, 3, 7],
      [1, 3, 1],
    ],
    [
      [4, 3, 7],
      [1, 1, 1],
    ],
    [
      [2, 3, 4, 5, 6],
      [2, 1, 4, 1, 6],
    ],
    [[129], [1]],
    [[7], [7]],
    [
      [1024, 129],
      [1, 129],
    ],
    [
      [1024, 601],
      [1, 601],
    ],
    [
      [4, 300, 33],
      [1, 1, 33],
    ],
  ];
  for (const [a, o] of sums)
    cs.push({ name: `sum_to [${a}]→[${o}]`, kernel: 'sum_to', inputs: [f(a)], outputs: [f(o)] });

  const perms: [number[], number[]][] = [
    [
      [5, 7],
      [1, 0],
    ],
    [
      [2, 3, 4, 5],
      [0, 2, 1, 3],
    ],
    [
      [2, 3, 4],
      [2, 0, 1],
    ],
    [
      [33, 129],
      [1, 0],
    ],
    [
      [3, 33, 9],
      [0, 2, 1],
    ],
    [
      [2, 3, 4, 5, 6],
      [4, 1, 0, 3, 2],
    ],
    [
      [300, 500],
      [1, 0],
    ],
  ];
  for (const [s, p] of perms)
    cs.push({
      name: `transpose [${s}] (${p})`,
      kernel: 'transpose',
      inputs: [f(s)],
      outputs: [f(p.map((k) => s[k]!))],
      attrs: { perm: p },
    });
  cs.push({
    name: 'transpose i32',
    kernel: 'transpose',
    inputs: [{ shape: [5, 7], dtype: 'i32' }],
    outputs: [{ shape: [7, 5], dtype: 'i32' }],
    attrs: { perm: [1, 0] },
  });

  cs.push({
    name: 'slice 3-d',
    kernel: 'slice',
    inputs: [f([5, 7, 9])],
    outputs: [f([3, 4, 5])],
    attrs: { begin: [1, 2, 3] },
  });
  cs.push({
    name: 'slice last axis',
    kernel: 'slice',
    inputs: [f([4, 12])],
    outputs: [f([4, 4])],
    attrs: { begin: [0, 4] },
  });
  cs.push({
    name: 'slice qkv',
    kernel: 'slice',
    inputs: [f([2, 5, 3 * 33])],
    outputs: [f([2, 5, 33])],
    attrs: { begin: [0, 0, 66] },
  });
  cs.push({
    name: 'pad_slice 3-d',
    kernel: 'pad_slice',
    inputs: [f([3, 4, 5])],
    outputs: [f([5, 7, 9])],
    attrs: { begin: [1, 2, 3] },
  });
  cs.push({
    name: 'pad_slice last axis',
    kernel: 'pad_slice',
    inputs: [f([4, 4])],
    outputs: [f([4, 12])],
    attrs: { begin: [0, 8] },
  });
  cs.push({
    name: 'concat axis 1',
    kernel: 'concat',
    inputs: [f([2, 3, 4]), f([2, 5, 4])],
    outputs: [f([2, 8, 4])],
    attrs: { axis: 1 },
  });
  cs.push({
    name: 'concat last axis ×3',
    kernel: 'concat',
    inputs: [f([3, 2]), f([3, 7]), f([3, 1])],
    outputs: [f([3, 10])],
    attrs: { axis: 1 },
  });
  cs.push({
    name: 'write_at',
    kernel: 'write_at',
    inputs: [f([2, 7])],
    outputs: [f([5, 7], 'normal')],
    attrs: { offset: 9 },
  });
  cs.push({
    name: 'write_at i32',
    kernel: 'write_at',
    inputs: [{ shape: [3], dtype: 'i32' }],
    outputs: [{ shape: [8], dtype: 'i32', gen: 'normal' }],
    attrs: { offset: 5 },
  });
  // a batch of rows into a preallocated [B, maxLen, …] cache: 3 blocks of 2·4, 40 apart (the B > 1 KV cache)
  cs.push({
    name: 'write_at 3 blocks',
    kernel: 'write_at',
    inputs: [f([3, 2, 4])],
    outputs: [f([3, 10, 4], 'normal')],
    attrs: { offset: 12, blocks: 3, blockStride: 40 },
  });
  cs.push({
    name: 'concat axis 0',
    kernel: 'concat',
    inputs: [f([1, 5]), f([4, 5])],
    outputs: [f([5, 5])],
    attrs: { axis: 0 },
  });

  // matmul: [M, K, N] × (transA, transB)
  const mm: [number, number, number][] = [
    [1, 7, 33],
    [7, 33, 1],
    [3, 5, 9],
    [33, 129, 7],
    [129, 33, 65],
    [64, 64, 64],
    [129, 65, 257],
    [2, 300, 130],
  ];
  for (const [M, K, N] of mm) {
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      cs.push({
        name: `matmul ${M}×${K}×${N}${tA ? ' Aᵀ' : ''}${tB ? ' Bᵀ' : ''}`,
        kernel: 'matmul',
        inputs: [f(tA ? [K, M] : [M, K]), f(tB ? [N, K] : [K, N])],
        outputs: [f([M, N])],
        attrs: { transA: tA, transB: tB },
      });
    }
  }
  cs.push({
    name: 'matmul accumulate alpha',
    kernel: 'matmul',
    inputs: [f([33, 17]), f([17, 9])],
    outputs: [f([33, 9], 'normal')],
    attrs: { accumulate: true, alpha: 0.5 },
  });
  cs.push({
    name: 'matmul accumulate Bᵀ big',
    kernel: 'matmul',
    inputs: [f([130, 300]), f([70, 300])],
    outputs: [f([130, 70], 'normal')],
    attrs: { transB: true, accumulate: true },
  });
  cs.push({ name: 'matmul batched', kernel: 'matmul', inputs: [f([3, 7, 5]), f([3, 5, 9])], outputs: [f([3, 7, 9])] });
  // a fused bias [N] on every row (linear layers): small, decode-shaped (gemv path), big (threads), batched, accumulate
  cs.push({ name: 'matmul bias', kernel: 'matmul', inputs: [f([7, 5]), f([5, 9]), f([9])], outputs: [f([7, 9])] });
  cs.push({
    name: 'matmul bias Bᵀ 2 rows',
    kernel: 'matmul',
    inputs: [f([2, 33]), f([17, 33]), f([17])],
    outputs: [f([2, 17])],
    attrs: { transB: true },
  });
  cs.push({
    name: 'matmul bias big',
    kernel: 'matmul',
    inputs: [f([256, 130]), f([130, 384]), f([384])],
    outputs: [f([256, 384])],
  });
  cs.push({
    name: 'matmul bias batched × shared W (x·Wᵀ)',
    kernel: 'matmul',
    inputs: [f([3, 7, 5]), f([9, 5]), f([9])],
    outputs: [f([3, 7, 9])],
    attrs: { transB: true },
  });
  cs.push({
    name: 'matmul bias accumulate',
    kernel: 'matmul',
    inputs: [f([33, 17]), f([17, 9]), f([9])],
    outputs: [f([33, 9], 'normal')],
    attrs: { accumulate: true, alpha: 0.5 },
  });
  cs.push({
    name: 'matmul batched × shared W (x·Wᵀ)',
    kernel: 'matmul',
    inputs: [f([3, 7, 5]), f([9, 5])],
    outputs: [f([3, 7, 9])],
    attrs: { transB: true },
  });
  cs.push({
    name: 'matmul shared A × batched',
    kernel: 'matmul',
    inputs: [f([7, 5]), f([4, 5, 9])],
    outputs: [f([4, 7, 9])],
  });
  cs.push({
    name: 'matmul batched big Aᵀ',
    kernel: 'matmul',
    inputs: [f([4, 65, 33]), f([4, 65, 66])],
    outputs: [f([4, 33, 66])],
    attrs: { transA: true },
  });
  cs.push({
    name: 'matmul 4-d batch',
    kernel: 'matmul',
    inputs: [f([2, 3, 4, 5]), f([2, 3, 5, 6])],
    outputs: [f([2, 3, 4, 6])],
  });
  cs.push({ name: 'matmul K=1', kernel: 'matmul', inputs: [f([9, 1]), f([1, 10])], outputs: [f([9, 10])] });
  // decode shapes: x·Wᵀ with 1–4 rows (the wasm gemv path), some big enough to split across threads
  for (const [M, K, N] of [
    [1, 288, 77],
    [2, 33, 9],
    [3, 129, 50],
    [4, 64, 1000],
    [1, 768, 300],
    [5, 40, 20],
  ] as const) {
    cs.push({
      name: `matmul decode ${M}×${K}×${N} Bᵀ`,
      kernel: 'matmul',
      inputs: [f([M, K]), f([N, K])],
      outputs: [f([M, N])],
      attrs: { transB: true },
    });
  }
  cs.push({
    name: 'matmul decode Bᵀ accumulate alpha',
    kernel: 'matmul',
    inputs: [f([1, 1, 100]), f([70, 100])],
    outputs: [f([1, 1, 70], 'normal')],
    attrs: { transB: true, accumulate: true, alpha: -0.5 },
  });
  // quantised linears: packed weights from full random bytes (q8) or bf16-rounded normals (bf16)
  const packQ8 = (ins: HostArray[], k: number): HostArray[] => {
    const r = new Rng(77 + k),
      w = new Int32Array(ins[1]!.length);
    for (let i = 0; i < w.length; i++) w[i] = (r.int(65536) << 16) | r.int(65536);
    return [ins[0]!, w, ins[2]!];
  };
  for (const [shape, N] of [
    [[1, 64], 5],
    [[3, 96], 33],
    [[2, 2, 32], 7],
    [[1, 512], 300],
    [[9, 64], 13],
    [[40, 128], 80],
  ] as const) {
    const K = shape[shape.length - 1]!;
    cs.push({
      name: `matmul_q8 [${shape}]·[${N}, ${K}]ᵀ`,
      kernel: 'matmul_q8',
      inputs: [f([...shape]), { shape: [N, K / 4], dtype: 'i32' }, f([N, K / 32], 'positive')],
      outputs: [f([...shape.slice(0, -1), N])],
      prep: (ins) => packQ8(ins, N),
    });
  }
  // q4k: random nibbles and 6-bit scales/mins, d and dmin small positive floats (weights within about ±0.2)
  const packQ4k = (ins: HostArray[], k: number): HostArray[] => {
    const r = new Rng(83 + k),
      w = new Int32Array(ins[1]!.length);
    const bytes = new Uint8Array(w.buffer),
      floats = new Float32Array(w.buffer);
    for (let b = 0; b < w.length / 38; b++) {
      floats[b * 38] = 2e-4 + r.random() * 2e-4;
      floats[b * 38 + 1] = 2e-3 + r.random() * 2e-3;
      for (let i = 8; i < 24; i++) bytes[b * 152 + i] = r.int(64);
      for (let i = 24; i < 152; i++) bytes[b * 152 + i] = r.int(256);
    }
    return [ins[0]!, w];
  };
  // decode (one row), prefill rows, a batch, several super-blocks per row, odd N
  for (const [shape, N] of [
    [[1, 256], 5],
    [[3, 512], 33],
    [[2, 2, 256], 7],
    [[1, 1024], 300],
    [[9, 256], 13],
  ] as const) {
    const K = shape[shape.length - 1]!;
    cs.push({
      name: `matmul_q4k [${shape}]·[${N}, ${K}]ᵀ`,
      kernel: 'matmul_q4k',
      inputs: [f([...shape]), { shape: [N, (K / 256) * 38], dtype: 'i32' }],
      outputs: [f([...shape.slice(0, -1), N])],
      prep: (ins) => packQ4k(ins, N),
    });
  }
  const packBf16 = (ins: HostArray[], k: number): HostArray[] => {
    const r = new Rng(91 + k),
      w = new Int32Array(ins[1]!.length);
    const fl = new Float32Array(1),
      u = new Uint32Array(fl.buffer);
    const half = (): number => ((fl[0] = r.normal()), u[0]! >>> 16);
    for (let i = 0; i < w.length; i++) w[i] = half() | (half() << 16);
    return [ins[0]!, w];
  };
  // decode path (M ≤ 4, K % 8 = 0: x permuted, K % 16 = 8 tail) and the plain loop (K % 8 ≠ 0, or M > 4)
  for (const [shape, N] of [
    [[1, 64], 5],
    [[3, 98], 33],
    [[2, 2, 30], 7],
    [[1, 512], 300],
    [[4, 40], 9],
    [[2, 24], 17],
    [[5, 48], 6],
  ] as const) {
    const K = shape[shape.length - 1]!;
    cs.push({
      name: `matmul_bf16 [${shape}]·[${N}, ${K}]ᵀ`,
      kernel: 'matmul_bf16',
      inputs: [f([...shape]), { shape: [N, K / 2], dtype: 'i32' }],
      outputs: [f([...shape.slice(0, -1), N])],
      prep: (ins) => packBf16(ins, N),
    });
  }

  cs.push({ name: 'embedding', kernel: 'embedding', inputs: [f([33, 7]), ids([3, 5], 33)], outputs: [f([3, 5, 7])] });
  cs.push({
    name: 'embedding big',
    kernel: 'embedding',
    inputs: [f([500, 129]), ids([1024], 500)],
    outputs: [f([1024, 129])],
  });
  // lookups in quantised tables (the tables packed as the matmul_q8 / matmul_q4k / matmul_bf16 cases' weights)
  for (const [V, C, n] of [
    [33, 256, [3, 5]],
    [300, 512, [64]],
  ] as const) {
    cs.push({
      name: `embedding_q8 [${V}, ${C}] ids [${n}]`,
      kernel: 'embedding_q8',
      inputs: [{ shape: [V, C / 4], dtype: 'i32' }, f([V, C / 32], 'positive'), ids([...n], V)],
      outputs: [f([...n, C])],
      prep: (ins) => {
        const [, w, s] = packQ8([ins[2]!, ins[0]!, ins[1]!], V);
        return [w!, s!, ins[2]!];
      },
    });
    cs.push({
      name: `embedding_q4k [${V}, ${C}] ids [${n}]`,
      kernel: 'embedding_q4k',
      inputs: [{ shape: [V, (C / 256) * 38], dtype: 'i32' }, ids([...n], V)],
      outputs: [f([...n, C])],
      prep: (ins) => [packQ4k([ins[1]!, ins[0]!], V)[1]!, ins[1]!],
    });
    cs.push({
      name: `embedding_bf16 [${V}, ${C}] ids [${n}]`,
      kernel: 'embedding_bf16',
      inputs: [{ shape: [V, C / 2], dtype: 'i32' }, ids([...n], V)],
      outputs: [f([...n, C])],
      prep: (ins) => [packBf16([ins[1]!, ins[0]!], V)[1]!, ins[1]!],
    });
  }
  cs.push({
    name: 'embedding_backward',
    kernel: 'embedding_backward',
    inputs: [f([3, 5, 7]), ids([3, 5], 6)],
    outputs: [f([6, 7])],
  });
  cs.push({
    name: 'embedding_backward big',
    kernel: 'embedding_backward',
    inputs: [f([1024, 301]), ids([1024], 500)],
    outputs: [f([500, 301])],
  });
  cs.push({
    name: 'embedding_backward accumulate',
    kernel: 'embedding_backward',
    inputs: [f([3, 5, 7]), ids([3, 5], 6)],
    outputs: [f([6, 7], 'normal')],
    attrs: { accumulate: true },
  });
  cs.push({
    name: 'embedding_backward big accumulate',
    kernel: 'embedding_backward',
    inputs: [f([1024, 301]), ids([1024], 500)],
    outputs: [f([500, 301], 'normal')],
    attrs: { accumulate: true },
  });

  for (const [N, C] of [
    [7, 33],
    [1, 129],
    [129, 7],
    [512, 129],
    [3, 4],
  ]) {
    const eps = { eps: 1e-5 };
    cs.push({
      name: `layernorm ${N}×${C}`,
      kernel: 'layernorm',
      inputs: [f([N, C], { big: 2 }), f([C]), f([C])],
      outputs: [f([N, C]), f([N]), f([N])],
      attrs: eps,
    });
    cs.push({
      name: `layernorm_backward ${N}×${C}`,
      kernel: 'layernorm_backward',
      inputs: [f([N, C]), f([N, C]), f([C]), f([N]), f([N], { range: [0.5, 2] })],
      outputs: [f([N, C]), f([C]), f([C])],
    });
    cs.push({
      name: `rmsnorm ${N}×${C}`,
      kernel: 'rmsnorm',
      inputs: [f([N, C], { big: 2 }), f([C])],
      outputs: [f([N, C]), f([N])],
      attrs: { eps: 1e-6 },
    });
    cs.push({
      name: `rmsnorm_backward ${N}×${C}`,
      kernel: 'rmsnorm_backward',
      inputs: [f([N, C]), f([N, C]), f([C]), f([N], { range: [0.5, 2] })],
      outputs: [f([N, C]), f([C])],
    });
    cs.push({ name: `softmax ${N}×${C}`, kernel: 'softmax', inputs: [f([N, C], { big: 3 })], outputs: [f([N, C])] });
    cs.push({
      name: `softmax_backward ${N}×${C}`,
      kernel: 'softmax_backward',
      inputs: [f([N, C], { range: [0, 0.2] }), f([N, C])],
      outputs: [f([N, C])],
    });
  }
  // accumulate: dx (read-modify-write, initialised) += the gradient; one case splits across threads
  for (const [N, C] of [
    [7, 33],
    [512, 129],
  ]) {
    cs.push({
      name: `layernorm_backward ${N}×${C} accumulate`,
      kernel: 'layernorm_backward',
      attrs: { accumulate: true },
      inputs: [f([N, C]), f([N, C]), f([C]), f([N]), f([N], { range: [0.5, 2] })],
      outputs: [f([N, C], 'normal'), f([C]), f([C])],
    });
    cs.push({
      name: `rmsnorm_backward ${N}×${C} accumulate`,
      kernel: 'rmsnorm_backward',
      attrs: { accumulate: true },
      inputs: [f([N, C]), f([N, C]), f([C]), f([N], { range: [0.5, 2] })],
      outputs: [f([N, C], 'normal'), f([C])],
    });
  }
  cs.push({
    name: 'layernorm 3-d',
    kernel: 'layernorm',
    inputs: [f([2, 3, 33]), f([33]), f([33])],
    outputs: [f([2, 3, 33]), f([2, 3]), f([2, 3])],
    attrs: { eps: 1e-5 },
  });

  for (const [B, T, H, D, off, inv] of [
    [2, 5, 3, 8, 3, false],
    [1, 4, 2, 6, 0, true],
    [1, 3, 1, 64, 100, false],
    [4, 64, 8, 32, 0, false],
    // wasm keeps one table of positions and points into it: grown far, then read near the start; past its last row
    [1, 2, 2, 8, 1000, false],
    [1, 3, 2, 8, 5, false],
    [1, 2, 1, 8, 70000, false],
  ] as const) {
    cs.push({
      name: `rope [${B},${T},${H},${D}] off ${off}${inv ? ' inverse' : ''}`,
      kernel: 'rope',
      inputs: [f([B, T, H, D])],
      outputs: [f([B, T, H, D])],
      attrs: { theta: 10000, offset: off, inverse: inv },
    });
  }
  // left-padded rows: positions count from each row's first real token (padding clamps to 0)
  for (const [B, T, H, D, off, inv, rowStart] of [
    [3, 6, 2, 8, 0, false, [0, 2, 5]],
    [3, 1, 2, 8, 7, true, [0, 3, 7]],
    [2, 5, 4, 64, 4, false, [1, 0]],
  ] as const) {
    cs.push({
      name: `rope [${B},${T},${H},${D}] off ${off} rowStart [${rowStart}]${inv ? ' inverse' : ''}`,
      kernel: 'rope',
      inputs: [f([B, T, H, D])],
      outputs: [f([B, T, H, D])],
      attrs: { theta: 10000, offset: off, inverse: inv, rowStart: [...rowStart] },
    });
  }
  // a scaled RoPE's own inverse frequencies (Llama 3's llama3 scaling): they replace θ^(−2i/D); two different arrays
  // of one length in a row (wasm keys its kept table by the array)
  const scaledFreqs = (D: number, k: number) =>
    Array.from({ length: D / 2 }, (_, i) => 10000 ** ((-2 * i) / D) / (1 + k * i));
  for (const [B, T, H, D, off, inv, k] of [
    [2, 5, 3, 8, 3, false, 1],
    [2, 5, 3, 8, 3, false, 3],
    [1, 4, 2, 64, 900, true, 2],
  ] as const) {
    cs.push({
      name: `rope [${B},${T},${H},${D}] off ${off} invFreq #${k}${inv ? ' inverse' : ''}`,
      kernel: 'rope',
      inputs: [f([B, T, H, D])],
      outputs: [f([B, T, H, D])],
      attrs: { theta: 10000, invFreq: scaledFreqs(D, k), offset: off, inverse: inv },
    });
  }
  cs.push({
    name: 'rope_qkv [2,3,(4+2·2)·8] off 5 invFreq',
    kernel: 'rope_qkv',
    inputs: [f([2, 3, 64])],
    outputs: [f([2, 3, 4, 8]), f([2, 3, 2, 8]), f([2, 3, 2, 8])],
    attrs: { heads: 4, kvHeads: 2, theta: 10000, invFreq: scaledFreqs(8, 1), offset: 5 },
  });
  cs.push({
    name: 'rope_qkv_cache [1,1,(4+2·2)·8] L 12 off 7 invFreq',
    kernel: 'rope_qkv_cache',
    inputs: [f([1, 1, 64])],
    outputs: [f([1, 1, 4, 8]), f([1, 12, 2, 8], 'normal'), f([1, 12, 2, 8], 'normal')],
    attrs: { heads: 4, kvHeads: 2, theta: 10000, invFreq: scaledFreqs(8, 2), offset: 7 },
  });
  // rope_qkv: a fused qkv [B, T, (Hq + 2·Hkv)·D] → rotated q, k and v (decode: T = 1 at an offset; GQA; padded rows)
  for (const [B, T, Hq, Hkv, D, off, rowStart] of [
    [1, 1, 6, 6, 48, 17, undefined],
    [2, 5, 4, 2, 8, 0, undefined],
    [3, 4, 2, 1, 6, 3, [0, 2, 3]],
    [1, 70, 8, 8, 64, 0, undefined],
  ] as const) {
    cs.push({
      name: `rope_qkv [${B},${T},(${Hq}+2·${Hkv})·${D}] off ${off}${rowStart ? ` rowStart [${rowStart}]` : ''}`,
      kernel: 'rope_qkv',
      inputs: [f([B, T, (Hq + 2 * Hkv) * D])],
      outputs: [f([B, T, Hq, D]), f([B, T, Hkv, D]), f([B, T, Hkv, D])],
      attrs: { heads: Hq, kvHeads: Hkv, theta: 10000, offset: off, ...(rowStart ? { rowStart: [...rowStart] } : {}) },
    });
  }
  // rope_qkv_cache: the same, k and v into [B, L, Hkv, D] caches at `offset` (the rest of each cache kept)
  for (const [B, T, Hq, Hkv, D, L, off, rowStart] of [
    [1, 1, 6, 6, 48, 40, 17, undefined],
    [1, 5, 4, 2, 8, 9, 4, undefined],
    [3, 1, 4, 2, 8, 12, 7, undefined],
    [3, 2, 2, 1, 6, 10, 3, [0, 2, 4]],
  ] as const) {
    cs.push({
      name: `rope_qkv_cache [${B},${T},(${Hq}+2·${Hkv})·${D}] L ${L} off ${off}${rowStart ? ` rowStart [${rowStart}]` : ''}`,
      kernel: 'rope_qkv_cache',
      inputs: [f([B, T, (Hq + 2 * Hkv) * D])],
      outputs: [f([B, T, Hq, D]), f([B, L, Hkv, D], 'normal'), f([B, L, Hkv, D], 'normal')],
      attrs: { heads: Hq, kvHeads: Hkv, theta: 10000, offset: off, ...(rowStart ? { rowStart: [...rowStart] } : {}) },
    });
  }

  // attention: [B, T, S, Hq, Hkv, D, causal, qOffset?]
  const at: [number, number, number, number, number, number, boolean, number | undefined][] = [
    [2, 5, 9, 4, 2, 8, true, undefined], // GQA, KV cache (qOffset = S − T = 4)
    [1, 7, 7, 3, 3, 5, true, undefined], // odd head dim
    [1, 7, 7, 2, 1, 5, false, undefined], // not causal, MQA
    [2, 1, 33, 2, 2, 16, true, undefined], // decode step
    [1, 3, 40, 4, 1, 16, true, undefined], // a few new tokens against a cache (streaming path)
    [1, 4, 4, 1, 1, 4, true, -1], // row 0 sees no key: o = 0, lse = -inf
    [2, 64, 64, 4, 4, 16, true, undefined], // big enough to split
    [1, 33, 129, 6, 2, 12, true, 50],
    [1, 1, 130, 6, 2, 48, true, undefined], // decode step, stories15M head size, keys not a multiple of 4
  ];
  for (const [B, T, S, Hq, Hkv, D, causal, qOffset] of at) {
    const attrs: Attrs = { scale: 1 / Math.sqrt(D), causal, ...(qOffset !== undefined ? { qOffset } : {}) };
    const name = `[B${B} T${T} S${S} Hq${Hq} Hkv${Hkv} D${D}${causal ? '' : ' full'}${qOffset !== undefined ? ` qOffset ${qOffset}` : ''}]`;
    const q = f([B, T, Hq, D]),
      kv = f([B, S, Hkv, D]);
    cs.push({
      name: `attention ${name}`,
      kernel: 'attention',
      inputs: [q, kv, kv],
      outputs: [f([B, T, Hq, D]), f([B, Hq, T])],
      attrs,
    });
    cs.push({
      name: `attention_backward ${name}`,
      kernel: 'attention_backward',
      inputs: [f([B, T, Hq, D]), q, kv, kv, f([B, T, Hq, D]), f([B, Hq, T])],
      outputs: [f([B, T, Hq, D]), f([B, S, Hkv, D]), f([B, S, Hkv, D])],
      attrs,
      prep: async (ins) => {
        // o and lse from the forward pass (ref, float64, rounded to float32)
        const [o, lse] = await runOn(
          ref64,
          { name: '', kernel: 'attention', inputs: [q, kv, kv], outputs: [f([B, T, Hq, D]), f([B, Hq, T])], attrs },
          [ins[1]!, ins[2]!, ins[3]!],
          [null, null],
          true,
        );
        return [ins[0]!, ins[1]!, ins[2]!, ins[3]!, Float32Array.from(o!), Float32Array.from(lse!)];
      },
    });
  }

  // left-padded rows (rowStart): row b ignores keys before rowStart[b]; padding query rows that see no key get o = 0,
  // lse = −∞. Prefill (T = S, the blocked path), decode against a preallocated cache longer than the keys written
  // (qOffset given: the keys past it are never read), a few tokens, not causal
  const padded: [number, number, number, number, number, number, boolean, number | undefined, number[]][] = [
    [3, 37, 37, 4, 2, 16, true, undefined, [0, 5, 36]],
    [3, 1, 50, 4, 2, 16, true, 20, [0, 7, 20]],
    [2, 3, 40, 6, 2, 12, true, 30, [4, 0]],
    [2, 7, 7, 2, 1, 5, false, undefined, [3, 0]],
    [4, 64, 64, 4, 4, 16, true, undefined, [0, 17, 1, 63]],
  ];
  for (const [B, T, S, Hq, Hkv, D, causal, qOffset, rowStart] of padded) {
    const attrs: Attrs = { scale: 1 / Math.sqrt(D), causal, rowStart, ...(qOffset !== undefined ? { qOffset } : {}) };
    cs.push({
      name: `attention [B${B} T${T} S${S} Hq${Hq} Hkv${Hkv} D${D}${causal ? '' : ' full'}${qOffset !== undefined ? ` qOffset ${qOffset}` : ''}] rowStart [${rowStart}]`,
      kernel: 'attention',
      inputs: [f([B, T, Hq, D]), f([B, S, Hkv, D]), f([B, S, Hkv, D])],
      outputs: [f([B, T, Hq, D]), f([B, Hq, T])],
      attrs,
    });
  }

  // a sliding window (Gemma's local layers): each query sees at most `window` keys ending at its own position.
  // Prefill across the blocked path's 32-row blocks, T past the WebGPU tiled kernels' minimum, a decode step and a
  // few tokens against a preallocated cache, window 2 (itself and one before: with 1, dq is 0 and only rounding is left), kept P, and with left padding (forward)
  const windowed: [number, number, number, number, number, number, number | undefined, number, boolean][] = [
    [2, 40, 40, 4, 2, 16, undefined, 8, false],
    [1, 70, 70, 2, 1, 12, undefined, 33, false],
    [2, 1, 50, 4, 2, 16, undefined, 10, false],
    [1, 3, 40, 4, 1, 16, 30, 5, false],
    [1, 16, 16, 2, 2, 8, undefined, 2, false],
    [2, 9, 9, 2, 1, 8, undefined, 4, true],
    [1, 20, 20, 4, 1, 256, undefined, 8, false], // Gemma 3's head size: the tiled WebGPU kernels' narrowest tiles
    [1, 1, 40, 4, 1, 256, undefined, 8, false], // and its decode step
  ];
  for (const [B, T, S, Hq, Hkv, D, qOffset, window, keep] of windowed) {
    const attrs: Attrs = {
      scale: 1 / Math.sqrt(D),
      causal: true,
      window,
      ...(qOffset !== undefined ? { qOffset } : {}),
    };
    const name = `[B${B} T${T} S${S} Hq${Hq} Hkv${Hkv} D${D}${qOffset !== undefined ? ` qOffset ${qOffset}` : ''}] window ${window}${keep ? ' kept P' : ''}`;
    const q = f([B, T, Hq, D]),
      kv = f([B, S, Hkv, D]);
    const fwd = (): Case => ({
      name: '',
      kernel: 'attention',
      inputs: [q, kv, kv],
      outputs: [f([B, T, Hq, D]), f([B, Hq, T]), ...(keep ? [f([B, Hq, T, S])] : [])],
      attrs,
    });
    cs.push({ ...fwd(), name: `attention ${name}` });
    cs.push({
      name: `attention_backward ${name}`,
      kernel: 'attention_backward',
      inputs: [f([B, T, Hq, D]), q, kv, kv, f([B, T, Hq, D]), f([B, Hq, T]), ...(keep ? [f([B, Hq, T, S])] : [])],
      outputs: [f([B, T, Hq, D]), f([B, S, Hkv, D]), f([B, S, Hkv, D])],
      attrs,
      prep: async (ins) => {
        const outs = await runOn(
          ref64,
          fwd(),
          [ins[1]!, ins[2]!, ins[3]!],
          keep ? [null, null, null] : [null, null],
          true,
        );
        return [ins[0]!, ins[1]!, ins[2]!, ins[3]!, ...outs.map((x) => Float32Array.from(x!))];
      },
    });
  }
  for (const [B, T, S, rowStart, window] of [
    [3, 37, 37, [0, 5, 36], 6],
    [2, 1, 50, [0, 7], 12],
  ] as const) {
    cs.push({
      name: `attention [B${B} T${T} S${S} Hq4 Hkv2 D16] rowStart [${rowStart}] window ${window}`,
      kernel: 'attention',
      inputs: [f([B, T, 4, 16]), f([B, S, 2, 16]), f([B, S, 2, 16])],
      outputs: [f([B, T, 4, 16]), f([B, 4, T])],
      attrs: { scale: 0.25, causal: true, rowStart: [...rowStart], window },
    });
  }

  // kept probabilities: the forward also writes P [B, Hq, T, S]; the backward reads it instead of recomputing
  const keptP: [number, number, number, number, number, number, boolean, number | undefined][] = [
    [2, 5, 9, 4, 2, 8, true, undefined],
    [1, 7, 7, 2, 1, 5, false, undefined],
    [2, 1, 33, 2, 2, 16, true, undefined],
    [1, 4, 4, 1, 1, 4, true, -1],
    [2, 64, 64, 4, 4, 16, true, undefined],
    [1, 33, 129, 6, 2, 12, true, 50],
  ];
  for (const [B, T, S, Hq, Hkv, D, causal, qOffset] of keptP) {
    const attrs: Attrs = { scale: 1 / Math.sqrt(D), causal, ...(qOffset !== undefined ? { qOffset } : {}) };
    const name = `[B${B} T${T} S${S} Hq${Hq} Hkv${Hkv} D${D}${causal ? '' : ' full'}${qOffset !== undefined ? ` qOffset ${qOffset}` : ''}] kept P`;
    const q = f([B, T, Hq, D]),
      kv = f([B, S, Hkv, D]);
    const fwd = (): Case => ({
      name: '',
      kernel: 'attention',
      inputs: [q, kv, kv],
      outputs: [f([B, T, Hq, D]), f([B, Hq, T]), f([B, Hq, T, S])],
      attrs,
    });
    cs.push({ ...fwd(), name: `attention ${name}` });
    cs.push({
      name: `attention_backward ${name}`,
      kernel: 'attention_backward',
      inputs: [f([B, T, Hq, D]), q, kv, kv, f([B, T, Hq, D]), f([B, Hq, T]), f([B, Hq, T, S])],
      outputs: [f([B, T, Hq, D]), f([B, S, Hkv, D]), f([B, S, Hkv, D])],
      attrs,
      prep: async (ins) => {
        const [o, lse, pr] = await runOn(ref64, fwd(), [ins[1]!, ins[2]!, ins[3]!], [null, null, null], true);
        return [
          ins[0]!,
          ins[1]!,
          ins[2]!,
          ins[3]!,
          Float32Array.from(o!),
          Float32Array.from(lse!),
          Float32Array.from(pr!),
        ];
      },
    });
  }

  // attention_qkv: fused projection [B, T, (Hq + 2·Hkv)·D]; [B, T, Hq, Hkv, D, causal]
  const aq: [number, number, number, number, number, boolean][] = [
    [2, 5, 4, 2, 8, true], // GQA
    [1, 7, 3, 3, 5, true], // odd head dim
    [1, 6, 2, 1, 4, false], // not causal, MQA
    [2, 64, 4, 4, 16, true], // big enough to split
    [1, 37, 6, 2, 12, true], // a partial block of query rows
  ];
  for (const [B, T, Hq, Hkv, D, causal] of [
    [2, 5, 4, 2, 8, true],
    [2, 64, 4, 4, 16, true],
    [1, 37, 6, 2, 12, true],
  ] as const) {
    const attrs: Attrs = { heads: Hq, kvHeads: Hkv, scale: 1 / Math.sqrt(D), causal };
    const name = `[B${B} T${T} Hq${Hq} Hkv${Hkv} D${D}] kept P`;
    const qkv = f([B, T, (Hq + 2 * Hkv) * D]);
    const fwd = (): Case => ({
      name: '',
      kernel: 'attention_qkv',
      inputs: [qkv],
      outputs: [f([B, T, Hq, D]), f([B, Hq, T]), f([B, Hq, T, T])],
      attrs,
    });
    cs.push({ ...fwd(), name: `attention_qkv ${name}` });
    cs.push({
      name: `attention_qkv_backward ${name}`,
      kernel: 'attention_qkv_backward',
      inputs: [f([B, T, Hq, D]), qkv, f([B, T, Hq, D]), f([B, Hq, T]), f([B, Hq, T, T])],
      outputs: [f([B, T, (Hq + 2 * Hkv) * D])],
      attrs,
      prep: async (ins) => {
        const [o, lse, pr] = await runOn(ref64, fwd(), [ins[1]!], [null, null, null], true);
        return [ins[0]!, ins[1]!, Float32Array.from(o!), Float32Array.from(lse!), Float32Array.from(pr!)];
      },
    });
  }
  for (const [B, T, Hq, Hkv, D, causal] of aq) {
    const attrs: Attrs = { heads: Hq, kvHeads: Hkv, scale: 1 / Math.sqrt(D), causal };
    const name = `[B${B} T${T} Hq${Hq} Hkv${Hkv} D${D}${causal ? '' : ' full'}]`;
    const qkv = f([B, T, (Hq + 2 * Hkv) * D]);
    const fwd = (): Case => ({
      name: '',
      kernel: 'attention_qkv',
      inputs: [qkv],
      outputs: [f([B, T, Hq, D]), f([B, Hq, T])],
      attrs,
    });
    cs.push({ ...fwd(), name: `attention_qkv ${name}` });
    cs.push({
      name: `attention_qkv_backward ${name}`,
      kernel: 'attention_qkv_backward',
      inputs: [f([B, T, Hq, D]), qkv, f([B, T, Hq, D]), f([B, Hq, T])],
      outputs: [f([B, T, (Hq + 2 * Hkv) * D])],
      attrs,
      prep: async (ins) => {
        const [o, lse] = await runOn(ref64, fwd(), [ins[1]!], [null, null], true);
        return [ins[0]!, ins[1]!, Float32Array.from(o!), Float32Array.from(lse!)];
      },
    });
  }

  for (const [N, V, ign] of [
    [7, 33, -100],
    [3, 1000, -100],
    [5, 1, -100],
    [64, 1000, -100],
    [6, 10, 0],
  ] as const) {
    const attrs: Attrs = ign === -100 ? {} : { ignoreIndex: ign };
    const name = `${N}×${V}${ign !== -100 ? ` ignore ${ign}` : ''}`;
    const lg = f([N, V], { big: 3 }),
      tg = ids([N], V, ign);
    cs.push({
      name: `cross_entropy ${name}`,
      kernel: 'cross_entropy',
      inputs: [lg, tg],
      outputs: [f([N]), f([N])],
      attrs,
    });
    cs.push({
      name: `cross_entropy_backward ${name}`,
      kernel: 'cross_entropy_backward',
      inputs: [lg, tg, f([N]), f([N])],
      outputs: [f([N, V])],
      attrs,
      prep: async (ins) => {
        const [, lse] = await runOn(
          ref64,
          { name: '', kernel: 'cross_entropy', inputs: [lg, tg], outputs: [f([N]), f([N])], attrs },
          [ins[0]!, ins[1]!],
          [null, null],
          true,
        );
        return [ins[0]!, ins[1]!, Float32Array.from(lse!), ins[3]!];
      },
    });
    // the same over its own logits (read-modify-write output); any lse will do for the kernel's arithmetic
    cs.push({
      name: `cross_entropy_backward_inplace ${name}`,
      kernel: 'cross_entropy_backward_inplace',
      inputs: [tg, f([N], { range: [0.5, 2] }), f([N])],
      outputs: [f([N, V], { big: 3 })],
      attrs,
    });
  }

  for (const [n, p, seed] of [
    [1000, 0.1, 1234],
    [1003, 0.5, -7],
    [33, 0, 5],
    [17, 1, 9],
    [300000, 0.2, 77],
  ] as const) {
    cs.push({
      name: `dropout n${n} p${p}`,
      kernel: 'dropout',
      inputs: [f([n])],
      outputs: [f([n])],
      attrs: { p, seed },
    });
  }

  for (const n of [1, 1001, 300001]) {
    cs.push({
      name: `adamw n${n}`,
      kernel: 'adamw',
      inputs: [f([n])],
      outputs: [f([n], 'normal'), f([n], { big: 0.1 }), f([n], { range: [0, 0.01] })],
      attrs: { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, gradScale: 0.5 },
    });
  }
  // several tensors in one call (multi-tensor AdamW: one triple of outputs per gradient)
  for (const sizes of [
    [5, 1, 33],
    [1001, 300001, 7, 70000],
    [300, 2, 257, 1, 9000], // an odd count: pairs, then one alone (webgpu)
  ]) {
    cs.push({
      name: `adamw ${sizes.length} tensors [${sizes}]`,
      kernel: 'adamw',
      inputs: sizes.map((n) => f([n])),
      outputs: sizes.flatMap((n) => [f([n], 'normal'), f([n], { big: 0.1 }), f([n], { range: [0, 0.01] })]),
      attrs: { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, gradScale: 0.5 },
    });
  }
  for (const k of ['sumsq', 'sum_all'])
    for (const s of [[1], [1001], [3, 129], [1 << 19]])
      cs.push({ name: `${k} [${s}]`, kernel: k, inputs: [f(s)], outputs: [f([1])] });
  for (const k of ['sumsq', 'sum_all']) {
    for (const shapes of [
      [[3], [1], [5, 7]],
      [[1 << 19], [33], [300001], [2, 64]],
      // more than one dispatch's 7 inputs (webgpu), chunk edges: 2048, 2049
      [[2048], [9], [2049], [4, 1000], [1], [6000], [7], [2047], [3, 3], [5000]],
    ]) {
      cs.push({ name: `${k} ${shapes.length} tensors`, kernel: k, inputs: shapes.map((s) => f(s)), outputs: [f([1])] });
    }
  }

  // sample: ids exactly ref's (the same float64 arithmetic), probabilities within float32 rounding; flat and peaked
  // rows, the binned top-p path (V ≥ 4096), every filter, greedy
  const sampleAttrs: Attrs[] = [
    { temperature: 1, topP: 0.9 },
    { temperature: 0 },
    { temperature: 0.7 },
    { temperature: 1.3, topK: 20, topP: 0.95 },
    { temperature: 1, minP: 0.05 },
    { temperature: 0.8, topP: 0.5, minP: 0.1 },
  ];
  for (const [N, V, gen] of [
    [1, 7, 'normal'],
    [3, 129, { big: 4 }],
    [2, 5000, { big: 0.4 }],
    [1, 32000, { big: 8 }],
  ] as const) {
    sampleAttrs.forEach((a, k) => {
      const u = Array.from({ length: N }, (_, n) => ((k * 7 + n * 3 + V) % 97) / 97);
      cs.push({
        name: `sample ${N}×${V} ${JSON.stringify(a)}`,
        kernel: 'sample',
        inputs: [f([N, 1, V], gen)],
        outputs: [{ shape: [N], dtype: 'i32' }, f([N, 2])],
        attrs: { ...a, u },
      });
    });
  }
  // quantised products over a prefill's many rows: the wasm backend's float32 panels (appended here, at the end, so
  // the cases above keep their indices and with them their inputs)
  for (const [kernel, shape, N, W, pack] of [
    ['matmul_q8', [100, 64], 37, 64 / 4, packQ8],
    ['matmul_q4k', [70, 256], 13, 38, packQ4k],
    ['matmul_bf16', [40, 64], 9, 64 / 2, packBf16],
  ] as const) {
    const K = shape[1];
    cs.push({
      name: `${kernel} [${shape}]·[${N}, ${K}]ᵀ (prefill rows)`,
      kernel,
      inputs: [
        f([...shape]),
        { shape: [N, W], dtype: 'i32' },
        ...(kernel === 'matmul_q8' ? [f([N, K / 32], 'positive')] : []),
      ],
      outputs: [f([shape[0], N])],
      prep: (ins) => pack(ins, N),
    });
  }
  return cs;
}
