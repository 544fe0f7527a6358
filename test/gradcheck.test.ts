/**
 * Finite-difference gradient checks of every gradient rule, in float64 on the ref backend: for y = op(inputs) and
 * a fixed random R, L = Σ y·R; the analytic dL/dx from backward() must match central differences
 * (L(x + h) − L(x − h)) / 2h at every element, on small random inputs with odd sizes.
 */
import { describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { backward } from '../src/tensor/autograd.js';
import * as O from '../src/tensor/ops.js';
import { linearOfActivation } from '../src/tensor/recompute.js';
import { noGrad, tensor, tidy } from '../src/tensor/tensor.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';

const ref = getBackend('ref');
const rng = new Rng(1234);

interface Input {
  shape: number[];
  /** Values: default N(0, 1). */
  init?: (r: Rng) => number;
  /** Not differentiated (integer ids, targets). */
  ints?: Int32Array;
}

const f64 = (data: Float64Array, shape: number[], grad: boolean): Tensor =>
  tensor(data, shape, { dtype: 'f64', backend: ref, requiresGrad: grad });

function check(name: string, inputs: Input[], fn: (...xs: Tensor[]) => Tensor, tol = 1e-6): void {
  it(name, async () => {
    const vals = inputs.map(
      (inp) =>
        inp.ints ??
        Float64Array.from({ length: inp.shape.reduce((a, b) => a * b, 1) }, () =>
          (inp.init ?? ((r: Rng) => r.normal()))(rng),
        ),
    );
    const make = (grad: boolean) =>
      inputs.map((inp, i) =>
        inp.ints
          ? tensor(inp.ints, inp.shape, { dtype: 'i32', backend: ref })
          : f64(vals[i] as Float64Array, inp.shape, grad),
      );
    // output weights R
    const probe = noGrad(() => fn(...make(false)));
    const R = Float64Array.from({ length: probe.size }, () => rng.normal());
    const outShape = probe.shape;
    const loss = (xs: Tensor[]) => O.sum(O.mul(fn(...xs), f64(R, [...outShape], false)));
    const xs = make(true);
    tidy(() => {
      const L = loss(xs);
      backward(L);
      return [];
    });
    const h = 1e-6;
    for (let i = 0; i < inputs.length; i++) {
      if (inputs[i]!.ints) continue;
      const g = xs[i]!.grad!.dataSync();
      const v = vals[i] as Float64Array;
      let maxErr = 0,
        maxRef = 0;
      for (let j = 0; j < v.length; j++) {
        const orig = v[j]!;
        v[j] = orig + h;
        const lp = noGrad(() => loss(make(false)).dataSync()[0]!);
        v[j] = orig - h;
        const lm = noGrad(() => loss(make(false)).dataSync()[0]!);
        v[j] = orig;
        const num = (lp - lm) / (2 * h);
        maxErr = Math.max(maxErr, Math.abs(num - g[j]!));
        maxRef = Math.max(maxRef, Math.abs(num));
      }
      expect(maxErr / Math.max(maxRef, 1), `${name}: input ${i}`).toBeLessThan(tol);
    }
  });
}

const pos = (r: Rng) => 0.5 + r.random() * 2;

describe('finite-difference gradient checks (float64, ref)', () => {
  check('add (broadcast)', [{ shape: [3, 5] }, { shape: [5] }], (a, b) => O.add(a, b));
  check('sub (broadcast)', [{ shape: [2, 1, 3] }, { shape: [4, 3] }], (a, b) => O.sub(a, b));
  check('mul (broadcast)', [{ shape: [3, 1] }, { shape: [3, 7] }], (a, b) => O.mul(a, b));
  check('div (broadcast)', [{ shape: [3, 7] }, { shape: [7], init: pos }], (a, b) => O.div(a, b));
  check('scale', [{ shape: [5] }], (a) => O.scale(a, -1.7, 0.3));
  check('exp', [{ shape: [6] }], O.exp);
  check('log', [{ shape: [6], init: pos }], O.log);
  check('neg', [{ shape: [6] }], O.neg);
  check('sqrt', [{ shape: [6], init: pos }], O.sqrt);
  check('rsqrt', [{ shape: [6], init: pos }], O.rsqrt);
  check('square', [{ shape: [6] }], O.square);
  check('gelu', [{ shape: [3, 7] }], O.gelu);
  check('silu', [{ shape: [3, 7] }], O.silu);
  check('swiglu', [{ shape: [3, 7] }, { shape: [3, 7] }], (g, u) => O.swiglu(g, u));
  check('swiglu_fused', [{ shape: [2, 3, 14] }], O.swigluFused);
  check('geglu_fused', [{ shape: [2, 3, 14] }], O.gegluFused);
  check('ropeQKV (recording: split + rope)', [{ shape: [1, 3, 5 * 4] }], (x) => {
    const [q, k, v] = O.ropeQKV(x, 3, 1, 100, 2);
    return O.concat([O.reshape(q, [1, 3, 12]), O.reshape(k, [1, 3, 4]), O.reshape(v, [1, 3, 4])], -1);
  });
  check('sum over axes', [{ shape: [3, 4, 5] }], (a) => O.sum(a, [0, 2]));
  check('mean', [{ shape: [3, 5] }], (a) => O.mean(a, 1, true));
  check('reshape', [{ shape: [3, 4] }], (a) => O.reshape(a, [2, 6]));
  check('transpose', [{ shape: [2, 3, 5] }], (a) => O.transpose(a, [2, 0, 1]));
  check('slice', [{ shape: [4, 7] }], (a) => O.slice(a, [1, 2], [2, 4]));
  check('split + concat', [{ shape: [3, 7] }, { shape: [3, 2] }], (a, b) => {
    const [x, y] = O.split(a, [3, 4], 1);
    return O.concat([y!, b, x!], 1);
  });
  check('split with an unused piece, pieces used twice', [{ shape: [2, 9] }], (a) => {
    const [x, , z] = O.split(a, [3, 2, 4], 1);
    return O.concat([O.mul(z!, z!), x!, z!], 1);
  });
  for (const [tA, tB] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    check(
      `matmul transA=${tA} transB=${tB}`,
      [{ shape: tA ? [5, 3] : [3, 5] }, { shape: tB ? [7, 5] : [5, 7] }],
      (a, b) => O.matmul(a, b, { transA: tA, transB: tB }),
    );
  }
  check('matmul batched', [{ shape: [2, 3, 5] }, { shape: [2, 5, 4] }], (a, b) => O.matmul(a, b));
  check('matmul batched with a shared matrix', [{ shape: [2, 3, 5] }, { shape: [4, 5] }], (a, b) =>
    O.matmul(a, b, { transB: true }),
  );
  check('matmul shared left, batched right, transA', [{ shape: [5, 3] }, { shape: [2, 5, 4] }], (a, b) =>
    O.matmul(a, b, { transA: true }),
  );
  check('linear (in_out layout, bias)', [{ shape: [2, 3, 5] }, { shape: [5, 4] }, { shape: [4] }], (x, w, b) =>
    O.linear(x, w, b, 'in_out'),
  );
  check('embedding', [{ shape: [7, 3] }, { shape: [2, 3], ints: Int32Array.from([1, 6, 1, 0, 3, 1]) }], (w, i) =>
    O.embedding(w, i),
  );
  check('layerNorm', [{ shape: [3, 7] }, { shape: [7] }, { shape: [7] }], (x, w, b) => O.layerNorm(x, w, b, 1e-5));
  check('rmsNorm', [{ shape: [3, 7] }, { shape: [7] }], (x, w) => O.rmsNorm(x, w, 1e-5));
  check('softmax', [{ shape: [3, 7] }], O.softmax);
  check('rope', [{ shape: [2, 3, 2, 6] }], (x) => O.rope(x, 10000, 2));
  check('rope, left-padded rows (rowStart)', [{ shape: [2, 3, 2, 6] }], (x) => O.rope(x, 10000, 2, [0, 3]));
  check('rope, a scaled RoPE (its own inverse frequencies, Llama 3)', [{ shape: [2, 3, 2, 6] }], (x) =>
    O.rope(x, { theta: 10000, invFreq: [1, 0.3, 0.007] }, 5),
  );
  // Qwen3's q/k norm: RMSNorm over each head's D of a [B, T, H, D] projection, then the rotation
  check('rope(rmsNorm over heads) (Qwen3 q/k norm)', [{ shape: [2, 3, 2, 6] }, { shape: [6], init: pos }], (x, w) =>
    O.rope(O.rmsNorm(x, w, 1e-6), 10000, 1),
  );
  check(
    'attention (causal, multi-head)',
    [{ shape: [2, 5, 2, 3] }, { shape: [2, 5, 2, 3] }, { shape: [2, 5, 2, 3] }],
    (q, k, v) => O.attention(q, k, v),
  );
  check(
    'attention (grouped-query 4:2, KV-cache offset T < S)',
    [{ shape: [1, 3, 4, 3] }, { shape: [1, 7, 2, 3] }, { shape: [1, 7, 2, 3] }],
    (q, k, v) => O.attention(q, k, v),
  );
  check(
    'attention (sliding window 3, grouped-query, KV-cache offset)',
    [{ shape: [1, 4, 4, 3] }, { shape: [1, 8, 2, 3] }, { shape: [1, 8, 2, 3] }],
    (q, k, v) => O.attention(q, k, v, { window: 3 }),
  );
  check(
    'attention (not causal)',
    [{ shape: [1, 4, 2, 3] }, { shape: [1, 5, 1, 3] }, { shape: [1, 5, 1, 3] }],
    (q, k, v) => O.attention(q, k, v, { causal: false }),
  );
  check('attentionQKV (fused qkv, multi-head)', [{ shape: [2, 5, 3 * 2 * 3] }], (qkv) => O.attentionQKV(qkv, 2));
  check('attentionQKV (grouped-query 4:2)', [{ shape: [1, 4, (4 + 2 * 2) * 3] }], (qkv) => O.attentionQKV(qkv, 4, 2));
  check('attentionQKV (not causal)', [{ shape: [1, 4, (2 + 2) * 3] }], (qkv) =>
    O.attentionQKV(qkv, 2, 1, { causal: false }),
  );
  // a residual stream: x feeds both a LayerNorm and the sum, so layernorm_backward adds into x's gradient in place
  check(
    'x + layerNorm(x) (gradient accumulated in place)',
    [{ shape: [2, 3, 7] }, { shape: [7] }, { shape: [7] }],
    (x, w, b) => O.add(x, O.layerNorm(x, w, b, 1e-5)),
  );
  check('x + rmsNorm(x) (gradient accumulated in place)', [{ shape: [3, 7] }, { shape: [7] }], (x, w) =>
    O.add(O.rmsNorm(x, w, 1e-5), x),
  );
  // a tied embedding: the head's gradient first, then embedding_backward adds the scattered rows into it
  check(
    'tied embedding (head gradient + embedding gradient in place)',
    [{ shape: [6, 4] }, { shape: [5], ints: Int32Array.from([1, 5, 1, 0, 3]) }],
    (w, i) => O.matmul(O.embedding(w, i), w, { transB: true }),
  );
  check(
    'crossEntropy (with ignored rows)',
    [{ shape: [5, 7] }, { shape: [5], ints: Int32Array.from([3, -100, 0, 6, 2]) }],
    (l, t) => O.crossEntropy(l, t),
  );
  // the gradient written over the logits (an intermediate, as the causal LM's loss has them)
  check(
    'crossEntropy with its gradient in place (with ignored rows)',
    [{ shape: [5, 7] }, { shape: [5], ints: Int32Array.from([3, -100, 0, 6, 2]) }],
    (l, t) => O.crossEntropy(O.scale(l, 1.5), t, -100, { gradInPlace: true }),
  );
  check('dropout', [{ shape: [4, 9] }], (x) => O.dropout(x, 0.3, 99));
  // the MLP's activation recomputed in the backward (src/tensor/recompute.ts), both layouts, with and without bias
  check(
    'linearOfActivation gelu (W [in, out], bias)',
    [{ shape: [2, 3, 6] }, { shape: [6, 5] }, { shape: [5] }],
    (x, w, b) => linearOfActivation('gelu', [x], w, b, 'in_out'),
  );
  check(
    'linearOfActivation swiglu (W [out, in], no bias)',
    [{ shape: [4, 6] }, { shape: [4, 6] }, { shape: [3, 6] }],
    (g, u, w) => linearOfActivation('swiglu', [g, u], w, null, 'out_in'),
  );
});

describe('autograd bookkeeping', () => {
  it('a residual stream and a tied embedding need no gradient adds (the kernels accumulate in place)', () => {
    const mk = (shape: number[], grad = true) =>
      f64(
        Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
        shape,
        grad,
      );
    const [x, w, b, emb] = [mk([2, 3, 5]), mk([5]), mk([5]), mk([7, 5])];
    const ids = tensor(Int32Array.from([1, 4, 6, 1, 0, 2]), [2, 3], { dtype: 'i32', backend: ref });
    const runs: string[] = [];
    const orig = ref.run.bind(ref);
    ref.run = (name, i, o, a) => (runs.push(name), orig(name, i, o, a));
    try {
      tidy(() => {
        // as in the model: x0 = x + embedding; x1 = x0 + f(layerNorm(x0)); logits = x1·embᵀ (tied)
        const x0 = O.add(x, O.embedding(emb, ids));
        const h = O.add(x0, O.scale(O.layerNorm(x0, w, b, 1e-5), 2));
        const logits = O.matmul(O.reshape(h, [6, 5]), emb, { transB: true });
        const L = O.sum(logits);
        runs.length = 0;
        backward(L);
        if (process.env.DEBUG_RUNS) console.log(runs.join(' '));
        return [];
      });
    } finally {
      ref.run = orig;
    }
    // the only adds left are the sum's broadcast of the seed; x and emb each got two contributions without one
    expect(runs.filter((n) => n === 'add').length).toBeLessThanOrEqual(1);
    expect(runs).toContain('layernorm_backward');
    expect(runs).toContain('embedding_backward');
  });
  it('gradients of a tensor used twice are summed, and leaves accumulate across backward calls', () => {
    const x = tensor(Float64Array.from([1, 2, 3]), [3], { dtype: 'f64', backend: ref, requiresGrad: true });
    for (let k = 0; k < 2; k++) {
      tidy(() => {
        backward(O.sum(O.mul(x, x))); // d/dx Σx² = 2x
        return [];
      });
    }
    expect(Array.from(x.grad!.dataSync())).toEqual([4, 8, 12]);
  });
  it('tidy frees intermediates but keeps parameter gradients', () => {
    const x = tensor(Float64Array.from([1, 2]), [2], { dtype: 'f64', backend: ref, requiresGrad: true });
    const before = ref.memory().inUse;
    tidy(() => {
      backward(O.sum(O.exp(O.scale(x, 2))));
      return [];
    });
    expect(x.grad).not.toBeNull();
    expect(ref.memory().inUse - before).toBe(x.grad!.size * 8);
  });
});
