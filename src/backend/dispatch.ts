/**
 * Run one kernel on a backend, or on `ref` when the backend does not support it: the only way the tensor layer (and
 * the conformance suite) calls kernels, so a new backend can start with no kernels at all and grow.
 *
 * Fallback, by what the backend can do (see docs/BACKENDS.md):
 * - `readSync` (CPU): copy the inputs (and the outputs the kernel reads) to ref, run there, write the outputs back,
 *   all before returning.
 * - `enqueueHost` (GPU): the same as a host step queued after the work already enqueued and before any later work,
 *   reading with `await`; the call itself returns at once. The call is validated first, so a bad call fails here.
 * - neither: BackendError E_KERNEL.
 */
import type { Attrs, Backend, DType, HostArray, HostIO, View } from './backend.js';
import { getBackend } from './registry.js';
import { outputsRead, validateKernelCall } from './validate.js';
import { BackendError } from '../util/errors.js';

function dtypesOf(views: readonly View[]): DType[] {
  const d = new Array<DType>(views.length);
  for (let k = 0; k < views.length; k++) d[k] = views[k]!.buf.dtype;
  return d;
}

function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Run kernel `name` on `backend` natively when it supports it for these input dtypes, else on ref. */
export function runKernel(
  backend: Backend,
  name: string,
  inputs: readonly View[],
  outputs: readonly View[],
  attrs?: Attrs,
): void {
  if (backend.supports(name, dtypesOf(inputs))) backend.run(name, inputs, outputs, attrs);
  else runOnRef(backend, name, inputs, outputs, attrs);
}

/** Whether `backend` runs `name` natively or can fall back to ref for it. */
export function canRun(backend: Backend, name: string, dtypes?: readonly DType[]): boolean {
  return backend.supports(name, dtypes) || (canFallBack(backend) && getBackend('ref').supports(name));
}

/** Whether kernels a backend lacks can run on ref (it reads synchronously, or takes host steps). */
export function canFallBack(backend: Backend): boolean {
  return backend.name !== 'ref' && (!!backend.readSync || !!backend.enqueueHost);
}

/** Run on ref through host copies: synchronously (readSync) or as a queued host step (enqueueHost). */
function runOnRef(
  backend: Backend,
  name: string,
  inputs: readonly View[],
  outputs: readonly View[],
  attrs: Attrs | undefined,
): void {
  const ref = getBackend('ref');
  if (!canFallBack(backend) || !ref.supports(name)) {
    throw new BackendError(
      'E_KERNEL',
      `backend ${backend.name} has no kernel '${name}' and cannot fall back to ref (it has neither readSync nor enqueueHost)`,
    );
  }
  validateKernelCall(name, inputs, outputs, attrs);
  const reads = outputsRead(name, outputs.length, attrs);
  const readSync = backend.readSync;
  if (readSync) {
    const host: HostIO = {
      read: () => Promise.reject(new Error('unused')),
      write: (b, d, o) => backend.write(b, d, o),
    };
    hostStep(ref, name, inputs, outputs, attrs, reads, (b) => readSync.call(backend, b), host);
    return;
  }
  // copy the views now: the caller may reuse its arrays before the step runs
  const ins = inputs.map((v) => ({ buf: v.buf, shape: [...v.shape] }));
  const outs = outputs.map((v) => ({ buf: v.buf, shape: [...v.shape] }));
  const at = attrs ? { ...attrs } : undefined;
  backend.enqueueHost!(async (io) => {
    const data = new Map<View, HostArray>();
    for (const v of [...ins, ...outs.filter((_, k) => reads[k])]) data.set(v, await io.read(v.buf));
    hostStep(ref, name, ins, outs, at, reads, (_b, v) => data.get(v)!, io);
  });
}

/** ref.run on copies of the views (data from `get`), then the outputs written back through `io`. */
function hostStep(
  ref: Backend,
  name: string,
  inputs: readonly View[],
  outputs: readonly View[],
  attrs: Attrs | undefined,
  reads: readonly boolean[],
  get: (buf: View['buf'], v: View) => HostArray,
  io: HostIO,
): void {
  const bufs: View['buf'][] = [];
  try {
    const copy = (v: View, fill: boolean): View => {
      const n = size(v.shape),
        b = ref.alloc(n, v.buf.dtype);
      bufs.push(b);
      if (fill && n > 0) ref.write(b, get(v.buf, v).subarray(0, n));
      return { buf: b, shape: v.shape };
    };
    const ins = inputs.map((v) => copy(v, true)),
      outs = outputs.map((v, k) => copy(v, reads[k]!));
    ref.run(name, ins, outs, attrs);
    outs.forEach((o, k) => {
      if (size(o.shape) > 0) io.write(outputs[k]!.buf, ref.readSync!(o.buf));
    });
  } finally {
    for (const b of bufs) ref.free(b);
  }
}
