/**
 * The bridge between ops and autograd: run a kernel into fresh outputs, and — when gradients are on and an input
 * needs one — attach a Node whose backward looks the op up in the one table of gradient rules (grad_rules.ts).
 */
import type { Attrs, DType } from '../backend/backend.js';
import { runKernel } from '../backend/dispatch.js';
import { BackendError } from '../util/errors.js';
import { empty, isGradEnabled, type Tensor } from './tensor.js';
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
    if (t.backend !== backend)
      throw new BackendError(
        'E_MIXED_BACKENDS',
        `${op}: inputs live on ${backend.name} and ${t.backend.name}; move them to one backend first`,
      );
  }
  const dt = inputs.find((t) => t.dtype !== 'i32')?.dtype ?? inputs[0]!.dtype;
  const outputs = outShapes.map((s, i) => empty(s, { backend, dtype: outDtypes?.[i] ?? dt }));
  runKernel(backend, kernel, inputs.map(view), outputs.map(view), attrs);
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
 * Run kernel `kernel` in place: `targets` are outputs the kernel reads and rewrites (write_at's cache buffer, adamw's
 * param/m/v), through the same dispatch as `apply` (so a backend without the kernel falls back to ref, in order).
 * No autograd node: in-place updates are not differentiable (KV cache writes, optimiser steps).
 */
export function applyInPlace(
  kernel: string,
  inputs: readonly Tensor[],
  targets: readonly Tensor[],
  attrs: Attrs = {},
): void {
  const backend = (inputs[0] ?? targets[0])!.backend;
  for (const t of [...inputs, ...targets]) {
    if (t.backend !== backend)
      throw new BackendError(
        'E_MIXED_BACKENDS',
        `${kernel}: operands live on ${backend.name} and ${t.backend.name}; move them to one backend first`,
      );
  }
  runKernel(backend, kernel, inputs.map(view), targets.map(view), attrs);
}

/** Attach a node to an output computed some other way (views, composites). */
export function attach(
  out: Tensor,
  op: string,
  inputs: readonly Tensor[],
  backward: (dy: Tensor) => (Tensor | null)[],
): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.node = { op, inputs, backward };
    out.requiresGrad = true;
  }
  return out;
}
