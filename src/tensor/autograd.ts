/**
 * Reverse-mode automatic differentiation over the tape that ops record (Tensor.node). `backward(loss)` walks the
 * graph in reverse topological order, calls each node's gradient rule, sums gradients that meet, frees
 * intermediate gradients as soon as they are used (a rule whose kernel can accumulate adds straight into the gradient
 * an input already has, instead of a fresh tensor plus an add), and accumulates into `.grad` of leaves that require one
 * (parameters) — so gradient accumulation over micro-batches is just several backward calls.
 */
import { ShapeError } from '../util/errors.js';
import { shapesEqual } from '../util/shape.js';
import { add } from './ops.js';
import { full, keep, noGrad, type Tensor } from './tensor.js';
import type { Node } from './tensor.js';

/** Tensors in reverse topological order (outputs before the inputs they depend on). */
function order(root: Tensor): Tensor[] {
  const seen = new Set<Tensor>();
  const post: Tensor[] = [];
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const ins = t.node?.inputs ?? [];
    if (i < ins.length) {
      top[1]++;
      const c = ins[i]!;
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      post.push(t);
      stack.pop();
    }
  }
  return post.reverse();
}

/**
 * Backpropagate from `root` (a scalar unless `seed` gives dL/droot). Leaves with requiresGrad get `.grad` added to.
 */
export function backward(root: Tensor, seed?: Tensor): void {
  if (!root.requiresGrad)
    throw new ShapeError('backward: the tensor does not depend on anything that requires a gradient');
  if (!seed && root.size !== 1)
    throw new ShapeError(
      `backward: root must be a scalar (got ${root.size} elements) or a seed gradient must be given`,
    );
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    const uses = new Map<Tensor, number>(); // how many entries of `grads` hold a gradient tensor
    const hold = (g: Tensor) => uses.set(g, (uses.get(g) ?? 0) + 1);
    const drop = (g: Tensor) => {
      const n = (uses.get(g) ?? 0) - 1;
      if (n <= 0) {
        uses.delete(g);
        if (!g.kept) g.dispose();
      } else uses.set(g, n);
    };
    const put = (t: Tensor, g: Tensor) => {
      const prev = grads.get(t);
      if (!prev) {
        grads.set(t, g);
        hold(g);
        return;
      }
      const s = add(prev, g);
      grads.set(t, s);
      hold(s);
      drop(prev);
      if (!uses.has(g)) {
        if (!g.kept && g !== prev) g.dispose();
      }
    };
    const s0 = seed ?? full(root.shape, 1, { backend: root.backend, dtype: root.dtype });
    if (seed) hold(seed), grads.set(root, seed), uses.set(seed, 1e9);
    else put(root, s0);

    const list = order(root);
    // A node shared by several outputs runs once, at the last of its outputs in the order: by then every consumer
    // of every output has contributed its gradient.
    const lastOf = new Map<Node, number>();
    list.forEach((t, i) => {
      if (t.node?.outputs) lastOf.set(t.node, i);
    });
    for (let idx = 0; idx < list.length; idx++) {
      const t = list[idx]!;
      const n = t.node;
      if (n?.outputs && n.backwardMulti) {
        if (lastOf.get(n) !== idx) continue;
        const dys = n.outputs.map((o) => grads.get(o) ?? null);
        for (const o of n.outputs) grads.delete(o);
        if (dys.every((d) => d === null)) continue;
        const gs = n.backwardMulti(dys);
        n.inputs.forEach((inp, i) => {
          const gi = gs[i];
          if (gi && inp.requiresGrad) put(inp, gi);
        });
        for (const d of dys) if (d) drop(d);
        continue;
      }
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (t.node) {
        const node = t.node;
        // hand a rule the gradient an input has gathered so far when nothing else holds it (not the seed, not kept,
        // one entry, no other view of its memory): its kernel can add into it in place
        const into = (i: number): Tensor | null => {
          const inp = node.inputs[i];
          const prev = inp ? grads.get(inp) : undefined;
          if (
            !inp ||
            !prev ||
            prev === seed ||
            prev === g ||
            prev.kept ||
            uses.get(prev) !== 1 ||
            prev.storage.refs !== 1
          )
            return null;
          if (prev.dtype !== inp.dtype || prev.backend !== inp.backend || !shapesEqual(prev.shape, inp.shape))
            return null;
          grads.delete(inp);
          uses.delete(prev);
          return prev;
        };
        const gs = node.backward(g, into);
        node.inputs.forEach((inp, i) => {
          const gi = gs[i];
          if (gi && inp.requiresGrad) put(inp, gi);
        });
        drop(g);
      } else {
        // a leaf: accumulate into .grad
        if (t.grad) {
          const s = keep(add(t.grad, g));
          t.grad.dispose();
          t.grad = s;
          drop(g);
        } else {
          if ((uses.get(g) ?? 0) > 1 || g === seed) {
            t.grad = keep(add(g, full([1], 0, { backend: g.backend, dtype: g.dtype })));
            drop(g);
          } else {
            uses.delete(g);
            t.grad = keep(g);
          }
        }
      }
    }
  });
}
