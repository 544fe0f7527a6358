/**
 * The one table of gradient rules. For an op y = f(inputs), a rule takes dL/dy and returns dL/d(input) for each
 * input (null where the input needs none, e.g. integer ids). Rules run with the tape off. Every rule here has a
 * central finite-difference check in float64 (test/gradcheck.test.ts). Rules are made of the forward ops
 * (./ops_forward.ts); ./ops.ts imports this table and the forward ops together, so neither imports the other.
 */
import { shapesEqual } from '../util/shape.js';
import { apply, applyInPlace, registerGrad, view } from './record.js';
import type { OpContext } from './record.js';
import type { Tensor } from './tensor.js';
import { empty, takeData, zeros } from './tensor.js';
import * as O from './ops_forward.js';

const need = (ctx: OpContext, i: number): boolean => ctx.inputs[i]!.requiresGrad;
const num = (ctx: OpContext, k: string): number => ctx.attrs[k] as number;
/** Run a kernel with the tape off (rules always run so) into fresh outputs. */
const kernel = (name: string, inputs: Tensor[], shapes: (readonly number[])[], attrs = {}): Tensor[] =>
  apply(name, name, inputs, shapes, attrs);

registerGrad('add', (c, dy) => [
  need(c, 0) ? O.sumTo(dy, c.inputs[0]!.shape) : null,
  need(c, 1) ? O.sumTo(dy, c.inputs[1]!.shape) : null,
]);
registerGrad('sub', (c, dy) => [
  need(c, 0) ? O.sumTo(dy, c.inputs[0]!.shape) : null,
  need(c, 1) ? O.sumTo(O.neg(dy), c.inputs[1]!.shape) : null,
]);
registerGrad('mul', (c, dy) => {
  const [a, b] = c.inputs as [Tensor, Tensor];
  return [need(c, 0) ? O.sumTo(O.mul(dy, b), a.shape) : null, need(c, 1) ? O.sumTo(O.mul(dy, a), b.shape) : null];
});
registerGrad('div', (c, dy) => {
  const [a, b] = c.inputs as [Tensor, Tensor];
  const y = c.outputs[0]!;
  return [
    need(c, 0) ? O.sumTo(O.div(dy, b), a.shape) : null,
    need(c, 1) ? O.sumTo(O.neg(O.div(O.mul(dy, y), b)), b.shape) : null,
  ];
});
registerGrad('scale', (c, dy) => [O.scale(dy, num(c, 'alpha'))]);
registerGrad('exp', (c, dy) => [O.mul(dy, c.outputs[0]!)]);
registerGrad('log', (c, dy) => [O.div(dy, c.inputs[0]!)]);
registerGrad('neg', (_c, dy) => [O.neg(dy)]);
registerGrad('sqrt', (c, dy) => [O.div(O.scale(dy, 0.5), c.outputs[0]!)]);
registerGrad('rsqrt', (c, dy) => {
  const y = c.outputs[0]!;
  return [O.mul(O.scale(dy, -0.5), O.mul(y, O.square(y)))];
});
registerGrad('square', (c, dy) => [O.mul(O.scale(dy, 2), c.inputs[0]!)]);
registerGrad('gelu', (c, dy) => kernel('gelu_backward', [c.inputs[0]!, dy], [dy.shape]));
registerGrad('silu', (c, dy) => kernel('silu_backward', [c.inputs[0]!, dy], [dy.shape]));
registerGrad('swiglu', (c, dy) => kernel('swiglu_backward', [c.inputs[0]!, c.inputs[1]!, dy], [dy.shape, dy.shape]));
registerGrad('swiglu_fused', (c, dy) => {
  const [g, u] = O.split(c.inputs[0]!, [dy.shape[dy.rank - 1]!, dy.shape[dy.rank - 1]!], -1) as [Tensor, Tensor];
  return [O.concat(kernel('swiglu_backward', [g, u, dy], [dy.shape, dy.shape]), -1)];
});
// d gate = dy·up·gelu'(gate), d up = dy·gelu(gate)
registerGrad('geglu_fused', (c, dy) => {
  const [g, u] = O.split(c.inputs[0]!, [dy.shape[dy.rank - 1]!, dy.shape[dy.rank - 1]!], -1) as [Tensor, Tensor];
  return [O.concat([kernel('gelu_backward', [g, O.mul(dy, u)], [dy.shape])[0]!, O.mul(dy, O.gelu(g))], -1)];
});

registerGrad('sum_to', (c, dy) => {
  const a = c.inputs[0]!;
  return [shapesEqual(a.shape, dy.shape) ? dy : O.add(zeros(a.shape, { backend: dy.backend, dtype: dy.dtype }), dy)];
});
registerGrad('transpose', (c, dy) => {
  const perm = c.attrs['perm'] as readonly number[];
  const inv = new Array<number>(perm.length);
  perm.forEach((p, k) => (inv[p] = k));
  return [O.transpose(dy, inv)];
});
registerGrad('slice', (c, dy) => kernel('pad_slice', [dy], [c.inputs[0]!.shape], { begin: c.attrs['begin'] }));
registerGrad('concat', (c, dy) => {
  const ax = num(c, 'axis');
  return O.split(
    dy,
    c.inputs.map((x) => x.shape[ax]!),
    ax,
  );
});

/**
 * The gradients of C = op(A)·op(B) for dC = dy: dA (when `needA`) and dB (when `needB`), each summed over the batch
 * axes it was broadcast along. Matmul's rule, and ./recompute.ts's product over a recomputed activation.
 */
export function matmulGrads(
  a: Tensor,
  b: Tensor,
  dy: Tensor,
  tA: boolean,
  tB: boolean,
  needA: boolean,
  needB: boolean,
): [Tensor | null, Tensor | null] {
  let da: Tensor | null = null,
    db: Tensor | null = null;
  if (needA) {
    da = !tA ? O.matmul(dy, b, { transB: !tB }) : O.matmul(b, dy, { transA: tB, transB: true });
    if (!shapesEqual(da.shape, a.shape)) da = O.sumTo(da, [...new Array<number>(da.rank - a.rank).fill(1), ...a.shape]);
    if (da.rank !== a.rank) da = O.reshape(da, a.shape);
  }
  if (needB) {
    db = !tB ? O.matmul(a, dy, { transA: !tA }) : O.matmul(dy, a, { transA: true, transB: tA });
    if (!shapesEqual(db.shape, b.shape)) db = O.sumTo(db, [...new Array<number>(db.rank - b.rank).fill(1), ...b.shape]);
    if (db.rank !== b.rank) db = O.reshape(db, b.shape);
  }
  return [da, db];
}

registerGrad('matmul', (c, dy) => {
  const [a, b] = c.inputs as [Tensor, Tensor];
  const [da, db] = matmulGrads(
    a,
    b,
    dy,
    Boolean(c.attrs['transA']),
    Boolean(c.attrs['transB']),
    need(c, 0),
    need(c, 1),
  );
  // a fused bias [N]: the column sums of dy
  const bias = c.inputs[2];
  return bias ? [da, db, need(c, 2) ? O.sumTo(dy, bias.shape) : null] : [da, db];
});

/**
 * Run a backward kernel whose first output (`accumulated` input's gradient) can be added into the gradient that input
 * already has (kernel attr accumulate): then that tensor is the output and comes back as the gradient.
 */
function accumulating(
  name: string,
  inputs: Tensor[],
  shapes: (readonly number[])[],
  acc: Tensor | null,
  attrs = {},
): Tensor[] {
  if (!acc?.backend.supports(name)) {
    if (!acc) return kernel(name, inputs, shapes, attrs);
    // a backend without the kernel runs it on ref through apply: add the fresh gradient to acc there
    const out = kernel(name, inputs, shapes, attrs);
    const sum = O.add(acc, out[0]!);
    acc.dispose();
    out[0]!.dispose();
    return [sum, ...out.slice(1)];
  }
  const rest = shapes.slice(1).map((s) => empty(s, { backend: acc.backend, dtype: acc.dtype }));
  acc.backend.run(name, inputs.map(view), [acc, ...rest].map(view), { ...attrs, accumulate: true });
  return [acc, ...rest];
}

registerGrad('embedding', (c, dy, into) => [
  need(c, 0)
    ? accumulating('embedding_backward', [dy, c.inputs[1]!], [c.inputs[0]!.shape], into?.(0) ?? null)[0]!
    : null,
  null,
]);
registerGrad('layernorm', (c, dy, into) => {
  const [x, w] = c.inputs as [Tensor, Tensor, Tensor];
  const [, mean, rstd] = c.outputs as [Tensor, Tensor, Tensor];
  return accumulating('layernorm_backward', [dy, x, w, mean, rstd], [x.shape, w.shape, w.shape], into?.(0) ?? null);
});
registerGrad('rmsnorm', (c, dy, into) => {
  const [x, w] = c.inputs as [Tensor, Tensor];
  return accumulating('rmsnorm_backward', [dy, x, w, c.outputs[1]!], [x.shape, w.shape], into?.(0) ?? null);
});
registerGrad('softmax', (c, dy) => kernel('softmax_backward', [c.outputs[0]!, dy], [dy.shape]));
registerGrad('rope', (c, dy) => kernel('rope', [dy], [dy.shape], { ...c.attrs, inverse: true }));
// outputs[2], when the forward kept them: the probabilities, so the backward need not recompute them
registerGrad('attention', (c, dy) => {
  const [q, k, v] = c.inputs as [Tensor, Tensor, Tensor];
  const [o, lse, p] = c.outputs as [Tensor, Tensor, Tensor | undefined];
  return kernel('attention_backward', [dy, q, k, v, o, lse, ...(p ? [p] : [])], [q.shape, k.shape, v.shape], c.attrs);
});
registerGrad('attention_qkv', (c, dy) => {
  const [o, lse, p] = c.outputs as [Tensor, Tensor, Tensor | undefined];
  return kernel('attention_qkv_backward', [dy, c.inputs[0]!, o, lse, ...(p ? [p] : [])], [c.inputs[0]!.shape], c.attrs);
});
registerGrad('cross_entropy', (c, dy) => {
  const [logits, targets] = c.inputs as [Tensor, Tensor];
  return [kernel('cross_entropy_backward', [logits, targets, c.outputs[1]!, dy], [logits.shape], c.attrs)[0]!, null];
});
// crossEntropy(…, { gradInPlace: true }): the logits' memory becomes their gradient (the logits read E_FREED after)
registerGrad('cross_entropy_over_logits', (c, dy) => {
  const [logits, targets] = c.inputs as [Tensor, Tensor];
  const g = takeData(logits);
  applyInPlace('cross_entropy_backward_inplace', [targets, c.outputs[1]!, dy], [g], c.attrs);
  return [g, null];
});
registerGrad('dropout', (c, dy) => kernel('dropout', [dy], [dy.shape], c.attrs));
