/**
 * A linear layer over an activation, act(x)·W (+ b), that does not keep act(x) for the backward: the activation is
 * computed, read by the product and given back at once, then computed again inside the backward when the product's
 * weight gradient needs it (llm.c's recompute of the GELU; PyTorch's activation checkpointing of one op). The MLP's
 * activation output is 4·C floats a token and layer in GPT-2 (a quarter of what a block keeps), F in Llama.
 *
 *   forward:  f = act(x) (no tape); y = f·op(W) (+ b) (no tape); f given back; a node on y with inputs x…, W, b
 *   backward: f = act(x) again; dW = as matmul's rule; df = dy·op(W)ᵀ; dx = act's backward kernel on (x…, df);
 *             db = Σ rows of dy; f and df given back as soon as they are used
 *
 * The kernels, their inputs and their order are those of the plain path (gelu / swiglu, linear, and the gradient rules
 * of matmul, gelu and swiglu in ./grad_rules.ts), so the loss and every gradient are bit for bit the same
 * (test/recompute.test.ts); it costs one more activation pass a layer in the backward.
 */
import { ShapeError } from '../util/errors.js';
import { matmulGrads } from './grad_rules.js';
import { apply, attach } from './record.js';
import * as O from './ops_forward.js';
import { freeData, noGrad, type Tensor } from './tensor.js';

/** The activations it recomputes: GELU (tanh form) of one input, SwiGLU of gate and up. */
export type RecomputedActivation = 'gelu' | 'swiglu';

const activation = (act: RecomputedActivation, xs: readonly Tensor[]): Tensor =>
  act === 'gelu' ? O.gelu(xs[0]!) : O.swiglu(xs[0]!, xs[1]!);

/**
 * y = act(xs)·op(W) + b over the last axis, W stored as O.linear's `layout` says; act(xs) not kept for the backward.
 * xs: [x] for 'gelu', [gate, up] (same shape) for 'swiglu'; (…, K) → (…, N).
 */
export function linearOfActivation(
  act: RecomputedActivation,
  xs: readonly Tensor[],
  w: Tensor,
  b: Tensor | null,
  layout: 'out_in' | 'in_out' = 'out_in',
): Tensor {
  if (xs.length !== (act === 'gelu' ? 1 : 2))
    throw new ShapeError(`linearOfActivation: ${act} takes ${act === 'gelu' ? 1 : 2} inputs, got ${xs.length}`);
  const y = noGrad(() => {
    const f = activation(act, xs);
    const out = O.linear(f, w, b, layout);
    freeData(f); // read by the product, which is recorded: nothing else reads it
    return out;
  });
  const inputs = b ? [...xs, w, b] : [...xs, w];
  return attach(y, `linear_of_${act}`, inputs, (dy) => {
    const K = xs[0]!.shape[xs[0]!.rank - 1]!,
      N = dy.shape[dy.rank - 1]!;
    const transB = layout === 'out_in';
    const f = activation(act, xs); // (…, K), again
    const a = O.reshape(f, [-1, K]),
      d = O.reshape(dy, [-1, N]); // (M, K), (M, N)
    // matmul's rule for a·op(W): dW first (it reads f), then f goes
    const [, dw] = matmulGrads(a, w, d, false, transB, false, w.requiresGrad);
    freeData(f);
    const needX = xs.some((x) => x.requiresGrad);
    const da = needX ? matmulGrads(a, w, d, false, transB, true, false)[0] : null; // (M, K)
    const df = da ? O.reshape(da, xs[0]!.shape) : null; // (…, K)
    let dxs: (Tensor | null)[] = xs.map(() => null);
    if (df) {
      dxs =
        act === 'gelu'
          ? apply('gelu_backward', 'gelu_backward', [xs[0]!, df], [df.shape])
          : apply('swiglu_backward', 'swiglu_backward', [xs[0]!, xs[1]!, df], [df.shape, df.shape]);
      freeData(df);
    }
    const db = b?.requiresGrad ? O.sumTo(d, b.shape) : null;
    // views of dy go now, as the plain path's do once used: a view left on dy's memory would stop a later rule from
    // adding into the gradient that shares it (autograd's `into`), and the sums would round differently
    d.dispose();
    a.dispose();
    return b ? [...dxs, dw, db] : [...dxs, dw];
  });
}
