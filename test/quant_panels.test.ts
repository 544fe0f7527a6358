// Quantised products over many rows of x (a prompt's prefill) on the wasm backend run as float32 panels
// (src/backend/wasm/matmul.ts `panels`): the weights dequantised a panel of rows at a time by their form's embedding
// kernel, multiplied by the packed float32 kernel, the panel's columns copied into place, x rounded first as the
// kernel's contract rounds it (q8: per row to 14 bits; q4k: per 256 to 8 bits; bf16: not at all). The result must be
// round(x) · dequant(W)ᵀ to float32 rounding — in one panel or many (a ragged last one), on one thread or two — and
// so must the gemv-shaped path it replaces (the contract computed another way).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { View } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { roundBlockQ8K, roundRowQ8 } from '../src/backend/activation_rounding.js';
import { quantPanels } from '../src/backend/wasm/matmul.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/backend.js';
import { quantizeQ4K } from '../src/model/q4k.js';
import { quantizeBf16, quantizeQ8 } from '../src/model/quantize.js';
import { Rng } from '../src/util/rng.js';
import { relErr } from './helpers.js';

const one = await createWasmBackend({ threads: 1 });
const two = await createWasmBackend({ threads: 2, spinMs: 0 });
afterAll(() => {
  one.dispose();
  two.dispose();
});
const saved = structuredClone(quantPanels);
afterEach(() => Object.assign(quantPanels, structuredClone(saved)));

const randn = (rng: Rng, n: number, s = 1) => Float32Array.from({ length: n }, () => s * rng.normal());

type Kind = 'q8' | 'q4k' | 'bf16';
/** W (N, K) packed as `kind`: the matmul's weight inputs, and the embedding kernel's inputs before the ids. */
function pack(kind: Kind, w: Float32Array, N: number, K: number): { data: Int32Array; shape: number[] }[] {
  if (kind === 'q8') {
    const q = quantizeQ8(w, N, K);
    return [
      { data: q.data, shape: [N, K / 4] },
      { data: Int32Array.from(new Int32Array(q.scales.buffer)), shape: [N, K / 32] },
    ];
  }
  if (kind === 'q4k') return [{ data: quantizeQ4K(w, N, K), shape: [N, (K / 256) * 38] }];
  return [{ data: quantizeBf16(w, N, K), shape: [N, K / 2] }];
}

function view(be: WasmBackend, data: Float32Array | Int32Array, shape: number[]): View {
  const b = be.alloc(data.length, data instanceof Int32Array ? 'i32' : 'f32');
  be.write(b, data);
  return { buf: b, shape };
}

/** x (M, K) · Wᵀ through the backend's matmul_<kind>. */
function product(be: WasmBackend, kind: Kind, x: Float32Array, w: ReturnType<typeof pack>, M: number, N: number) {
  const K = x.length / M;
  const ins = [
    view(be, x, [M, K]),
    ...w.map((p, i) =>
      kind === 'q8' && i === 1 ? view(be, new Float32Array(p.data.buffer), p.shape) : view(be, p.data, p.shape),
    ),
  ];
  const out = { buf: be.alloc(M * N, 'f32'), shape: [M, N] };
  be.run(`matmul_${kind}`, ins, [out]);
  const y = Float32Array.from(be.readSync(out.buf) as Float32Array);
  for (const v of [...ins, out]) be.free(v.buf);
  return y;
}

/** x (M, K) as the product sees it: each value its rounded integer times its scale (xq·dx in float32). */
function roundedActivations(kind: 'q8' | 'q4k', X: Float32Array, M: number, K: number): Float32Array {
  const out = new Float32Array(M * K),
    xq = new Int32Array(K);
  for (let m = 0; m < M; m++) {
    const o = m * K;
    const block = kind === 'q8' ? K : 256;
    for (let b = 0; b < K / block; b++) {
      const dx = kind === 'q8' ? roundRowQ8(X, o, K, xq) : roundBlockQ8K(X, o + b * 256, xq, b * 256);
      for (let k = b * block; k < (b + 1) * block; k++) out[o + k] = Math.fround(xq[k]! * dx);
    }
  }
  return out;
}

/** round(x) · dequant(W)ᵀ in float64, W's rows dequantised by the reference backend's lookup kernel. */
function exact(
  kind: Kind,
  x0: Float32Array,
  w: ReturnType<typeof pack>,
  M: number,
  N: number,
  K: number,
  round = true,
) {
  const x = kind === 'bf16' || !round ? x0 : roundedActivations(kind, x0, M, K);
  const ref = getBackend('ref');
  const ins = w.map((p, i) => {
    const b = ref.alloc(p.data.length, kind === 'q8' && i === 1 ? 'f32' : 'i32');
    ref.write(b, kind === 'q8' && i === 1 ? new Float32Array(p.data.buffer) : p.data);
    return { buf: b, shape: p.shape };
  });
  const ids = ref.alloc(N, 'i32');
  ref.write(
    ids,
    Int32Array.from({ length: N }, (_, i) => i),
  );
  const out = ref.alloc(N * K, 'f32');
  ref.run(`embedding_${kind}`, [...ins, { buf: ids, shape: [N] }], [{ buf: out, shape: [N, K] }]);
  const wf = ref.readSync!(out) as Float32Array;
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * wf[n * K + k]!;
      y[m * N + n] = s;
    }
  return y;
}

describe.each([
  ['one thread', one],
  ['two threads', two],
] as const)('wasm quantised products as float32 panels, %s', (_n, be) => {
  it.each([
    ['q8', 100, 256, 70],
    ['q4k', 72, 512, 45],
    ['q4k', 80, 2048, 24],
    ['q4k', 64, 768, 40],
    ['bf16', 40, 96, 61],
  ] as const)(
    '%s: x (%i rows) · Wᵀ [%i in, %i out] in one panel, in ragged panels, and against gemv',
    (kind, M, K, N) => {
      const rng = new Rng(K + N);
      const x = randn(rng, M * K),
        w = pack(kind, randn(rng, N * K, 0.05), N, K);
      const want = exact(kind, x, w, M, N, K);
      const whole = product(be, kind, x, w, M, N);
      expect(relErr(whole, want)).toBeLessThan(1e-6);
      quantPanels.weights = 16 * K; // panels of 16 rows: N = 16·k + a ragged rest
      const split = product(be, kind, x, w, M, N);
      expect(relErr(split, want)).toBeLessThan(1e-6);
      quantPanels.minRows[kind] = M + 1; // the gemv-shaped path
      const gemv = product(be, kind, x, w, M, N);
      expect(relErr(gemv, want)).toBeLessThan(1e-6);
      expect(relErr(split, whole)).toBeLessThan(1e-6);
      // and the rounding matters: x unrounded is measurably another product (q8 ~1e-4, q4k ~1e-2)
      if (kind !== 'bf16') expect(relErr(whole, exact(kind, x, w, M, N, K, false))).toBeGreaterThan(1e-5);
    },
  );
});
