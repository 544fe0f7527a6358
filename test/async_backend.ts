/**
 * A test backend shaped like a GPU, and the template for a WebGPU backend. It has no `readSync`: kernels and writes
 * are encoded into a command list that runs only when something needs results (a read, a sync, a host step), and
 * reads are asynchronous. It implements six kernels (fill, copy, scale, neg, exp, add); everything else runs on ref
 * through `enqueueHost` (src/backend/dispatch.ts), ordered by src/backend/host_queue.ts. Importing this file
 * registers it as 'async-test', so the conformance suite picks it up.
 *
 * For WebGPU: Buf.data becomes a GPUBuffer, `encode` records into a GPUCommandEncoder, `flush` is queue.submit, the
 * read is copyBufferToBuffer + mapAsync. The queue, the validation and the fallback stay as they are.
 */
import type { Attrs, Backend, DeviceBuffer, DType, HostArray, HostIO, View } from '../src/backend/backend.js';
import { hostArray } from '../src/backend/backend.js';
import { HostStepQueue } from '../src/backend/host_queue.js';
import { registerBackend } from '../src/backend/registry.js';
import { validateKernelCall } from '../src/backend/validate.js';
import { RefBackend, type RefBuffer } from '../src/backend/ref/backend.js';
import { BackendError } from '../src/util/errors.js';

class Buf implements DeviceBuffer {
  readonly backend = 'async-test';
  freed = false;
  constructor(
    readonly length: number,
    readonly dtype: DType,
    public data: HostArray | null,
  ) {}
}

interface DevView {
  data: HostArray;
  shape: readonly number[];
}
type Kernel = (i: DevView[], o: DevView[], a: Attrs) => void;

const unary =
  (f: (x: number) => number): Kernel =>
  (i, o) => {
    const x = i[0]!.data,
      y = o[0]!.data;
    for (let k = 0; k < y.length; k++) y[k] = f(x[k]!);
  };

/** out = a + b with NumPy broadcasting (strides 0 along broadcast axes). */
const add: Kernel = (i, o) => {
  const os = o[0]!.shape,
    r = os.length,
    out = o[0]!.data;
  const strides = (s: readonly number[]) => {
    const st = new Array<number>(r).fill(0);
    for (let k = s.length - 1, acc = 1; k >= 0; k--) {
      st[r - s.length + k] = s[k] === 1 ? 0 : acc;
      acc *= s[k]!;
    }
    return st;
  };
  const sa = strides(i[0]!.shape),
    sb = strides(i[1]!.shape),
    A = i[0]!.data,
    B = i[1]!.data;
  for (let n = 0; n < out.length; n++) {
    let ia = 0,
      ib = 0;
    for (let k = r - 1, rem = n; k >= 0; k--) {
      const idx = rem % os[k]!;
      rem = (rem - idx) / os[k]!;
      ia += idx * sa[k]!;
      ib += idx * sb[k]!;
    }
    out[n] = A[ia]! + B[ib]!;
  }
};

/** The kernels this backend has, and the input dtypes each takes. */
const KERNELS: Record<string, { dtypes: readonly DType[]; run: Kernel }> = {
  fill: { dtypes: [], run: (_i, o, a) => void o[0]!.data.fill(a['value'] as number) },
  copy: { dtypes: ['f32', 'i32'], run: unary((x) => x) },
  scale: {
    dtypes: ['f32'],
    run: (i, o, a) => unary((x) => (a['alpha'] as number) * x + ((a['beta'] as number | undefined) ?? 0))(i, o, a),
  },
  neg: { dtypes: ['f32'], run: unary((x) => -x) },
  exp: { dtypes: ['f32'], run: unary(Math.exp) },
  add: { dtypes: ['f32'], run: add },
};

export interface AsyncTestOptions {
  /**
   * Every kernel ref has (f32 and i32), each run by ref's own code as an encoded command, instead of six native
   * kernels and host steps: then the backend computes exactly what ref computes (the same fused paths are chosen,
   * the same arithmetic runs), and only its reads differ — asynchronous, no readSync (test/staged_loss.test.ts).
   */
  allKernels?: boolean;
}

const refBackend = new RefBackend();

export class AsyncTestBackend implements Backend {
  readonly name = 'async-test';
  constructor(private readonly opts: AsyncTestOptions = {}) {}
  readonly dtypes: readonly DType[] = ['f32', 'i32'];
  /** Native kernel calls and host steps so far (tests check both paths ran). */
  readonly counts = { native: 0, hostSteps: 0 };
  private readonly queue = new HostStepQueue();
  /** Encoded, not yet executed device commands (a GPU's command buffer). */
  private commands: (() => void)[] = [];
  private inUse = 0;
  private peak = 0;
  private readonly io: HostIO = {
    read: async (buf) => this.download(buf),
    // inside a step the buffer may already be marked freed by a later dispose: its release is queued after the step
    write: (buf, data, offset) => {
      this.flush();
      this.upload(buf as Buf, data, offset ?? 0);
    },
  };

  describe(): string {
    return this.opts.allKernels
      ? 'async-test (no readSync; every ref kernel, as commands)'
      : 'async-test (no readSync; 6 kernels, the rest on ref)';
  }

  alloc(length: number, dtype: DType): DeviceBuffer {
    this.inUse += length * 4;
    this.peak = Math.max(this.peak, this.inUse);
    return new Buf(length, dtype, hostArray(dtype, length));
  }

  free(buf: DeviceBuffer): void {
    const b = this.own(buf);
    b.freed = true;
    this.inUse -= b.length * 4;
    this.queue.device(() => this.commands.push(() => (b.data = null)));
  }

  write(buf: DeviceBuffer, data: HostArray, offset = 0): void {
    const b = this.own(buf);
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(
        'E_WRITE',
        `write of ${data.length} elements at ${offset} past the end of a buffer of ${b.length}`,
      );
    const copy = data.slice(); // the caller may reuse its array before the command runs
    this.queue.device(() => this.commands.push(() => this.upload(b, copy, offset)));
  }

  read(buf: DeviceBuffer): Promise<HostArray> {
    const b = this.own(buf);
    return this.queue.after(() => this.download(b));
  }

  supports(name: string, dtypes?: readonly DType[]): boolean {
    if (this.opts.allKernels)
      return refBackend.supports(name) && (!dtypes || dtypes.every((d) => this.dtypes.includes(d)));
    const k = KERNELS[name];
    return !!k && (!dtypes || name === 'fill' || dtypes.every((d) => k.dtypes.includes(d)));
  }

  run(name: string, inputs: readonly View[], outputs: readonly View[], attrs: Attrs = {}): void {
    if (this.opts.allKernels) {
      this.runOnRef(name, inputs, outputs, attrs);
      return;
    }
    const k = KERNELS[name];
    if (!k) throw new BackendError('E_KERNEL', `async-test backend has no kernel '${name}'`);
    validateKernelCall(name, inputs, outputs, attrs);
    this.counts.native++;
    const ins = inputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    const outs = outputs.map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    const view = (x: { b: Buf; shape: number[] }): DevView => {
      const n = x.shape.reduce((p, d) => p * d, 1);
      return { data: x.b.data!.subarray(0, n), shape: x.shape };
    };
    this.queue.device(() => this.commands.push(() => k.run(ins.map(view), outs.map(view), attrs)));
  }

  /** allKernels: ref's kernel on this backend's memory, encoded as a command (ref's views share the arrays). */
  private runOnRef(name: string, inputs: readonly View[], outputs: readonly View[], attrs: Attrs): void {
    validateKernelCall(name, inputs, outputs, attrs);
    this.counts.native++;
    const bufs = [...inputs, ...outputs].map((v) => ({ b: this.own(v.buf), shape: [...v.shape] }));
    this.queue.device(() =>
      this.commands.push(() => {
        const views = bufs.map(({ b, shape }): View => {
          const n = Math.max(
            1,
            shape.reduce((p, d) => p * d, 1),
          );
          const buf: RefBuffer = { backend: 'ref', length: n, dtype: b.dtype, data: b.data!.subarray(0, n) };
          return { buf, shape };
        });
        refBackend.run(name, views.slice(0, inputs.length), views.slice(inputs.length), attrs);
      }),
    );
  }

  enqueueHost(step: (io: HostIO) => Promise<void>): void {
    this.counts.hostSteps++;
    this.queue.host(() => step(this.io));
  }

  async sync(): Promise<void> {
    await this.queue.settled();
    this.flush();
  }

  memory(): { inUse: number; peak: number; limit: number } {
    return { inUse: this.inUse, peak: this.peak, limit: Number.POSITIVE_INFINITY };
  }

  dispose(): void {}

  /** Execute the encoded commands (a GPU's queue.submit). */
  private flush(): void {
    const cmds = this.commands;
    this.commands = [];
    for (const c of cmds) c();
  }

  /** Flush, then copy the buffer out a macrotask later (a GPU's mapAsync). */
  private async download(buf: DeviceBuffer): Promise<HostArray> {
    const b = buf as Buf;
    this.flush();
    await new Promise((r) => setTimeout(r, 0));
    if (!b.data) throw new BackendError('E_FREED', 'async-test backend: read of a freed buffer');
    return b.data.slice();
  }

  private upload(b: Buf, data: HostArray, offset: number): void {
    const d = b.data!;
    if (d.constructor === data.constructor) (d as Float32Array).set(data as Float32Array, offset);
    else for (let k = 0; k < data.length; k++) d[offset + k] = data[k]!;
  }

  private own(buf: DeviceBuffer): Buf {
    if (!(buf instanceof Buf))
      throw new BackendError('E_FOREIGN_BUFFER', `a ${buf.backend} buffer was passed to the async-test backend`);
    if (buf.freed) throw new BackendError('E_FREED', 'async-test backend: use of a freed buffer');
    return buf;
  }
}

registerBackend({
  name: 'async-test',
  create: async () => new AsyncTestBackend(),
  testConfigs: [{ label: 'async-test (no readSync, 6 kernels, the rest on ref)', opts: {} }],
});
