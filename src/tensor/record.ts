/**
 * The bridge between ops and autograd: run a kernel into fresh outputs, and — when gradients are on and an input
 * needs one — attach a Node whose backward looks the op up in the one table of gradient rules (grad_rules.ts).
 */
import type { Attrs, Backend, DType } from '../backend/backend.js';
import { getBackend } from '../backend/registry.js';
import { BackendError } from '../util/errors.js';
import { empty, isGradEnabled, Tensor } from './tensor.js';
import type { Node } from './tensor.js';

/** What a gradient rule sees: the op's inputs, all its outputs (aux outputs like lse included) and attributes. */
export interface OpContext {
  op: string;
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  attrs: Attrs;
}

/**
 * dL/dy → dL/d(input) per input. `into(i)` (optional) hands over input i's gradient accumulated so far, when nothing
 * else holds it, for a kernel that can add into it (see Node.backward); a rule that takes it must return it for i.
 */
export type GradRule = (ctx: OpContext, dy: Tensor, into?: (i: number) => Tensor | null) => (Tensor | null)[];

const rules = new Map<string, GradRule>();

export function registerGrad(op: string, rule: GradRule): void {
  rules.set(op, rule);
}

export function view(t: Tensor): { buf: Tensor['buf']; shape: readonly number[] } {
  t.assertLive();
  return { buf: t.buf, shape: t.shape };
}

/**
 * Run kernel `kernel` on `inputs`, allocating outputs of the given shapes (dtype of the first input unless given),
 * on the first input's backend. Records a Node on outputs[0] under `op` when differentiable.
 */
export function apply(
  op: string,
  kernel: string,
  inputs: readonly Tensor[],
  outShapes: readonly (readonly number[])[],
  attrs: Attrs = {},
  outDtypes?: readonly DType[],
): Tensor[] {
  const backend = inputs[0]!.backend;
  for (const t of inputs) {
    if (t.backend !== backend) throw new BackendError('E_MIXED_BACKENDS', `${op}: inputs live on ${backend.name} and ${t.backend.name}; move them to one backend first`);
  }
  const dt = inputs.find((t) => t.dtype !== 'i32')?.dtype ?? inputs[0]!.dtype;
  const outputs = outShapes.map((s, i) => empty(s, { backend, dtype: outDtypes?.[i] ?? dt }));
  if (backend.supports(kernel)) backend.run(kernel, inputs.map(view), outputs.map(view), attrs);
  else runOnRef(backend, kernel, inputs, outputs, attrs);
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    const rule = rules.get(op);
    if (rule) {
      const ctx: OpContext = { op, inputs, outputs, attrs };
      const node: Node = { op, inputs, backward: (dy, into) => rule(ctx, dy, into) };
      outputs[0]!.node = node;
      outputs[0]!.requiresGrad = true;
    }
  }
  return outputs;
}

/**
 * Fallback for a kernel the backend lacks: copy the inputs to the ref backend, run there, copy the outputs back.
 * Only for backends that can read synchronously (CPU); a GPU backend must implement every kernel it is used with.
 */
function runOnRef(backend: Backend, kernel: string, inputs: readonly Tensor[], outputs: readonly Tensor[], attrs: Attrs): void {
  const ref = getBackend('ref');
  const readSync = backend.readSync;
  if (!readSync || !ref.supports(kernel)) throw new BackendError('E_KERNEL', `backend ${backend.name} has no kernel '${kernel}' and cannot fall back to ref`);
  const toRef = (t: Tensor) => {
    const b = ref.alloc(t.size, t.dtype);
    ref.write(b, readSync.call(backend, t.buf).subarray(0, t.size));
    return { buf: b, shape: t.shape };
  };
  const ins = inputs.map(toRef), outs = outputs.map(toRef);
  ref.run(kernel, ins, outs, attrs);
  outs.forEach((o, i) => backend.write(outputs[i]!.buf, ref.readSync!(o.buf)));
  for (const v of [...ins, ...outs]) ref.free(v.buf);
}

/** Attach a node to an output computed some other way (views, composites). */
export function attach(out: Tensor, op: string, inputs: readonly Tensor[], backward: (dy: Tensor) => (Tensor | null)[]): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.node = { op, inputs, backward };
    out.requiresGrad = true;
  }
  return out;
}
