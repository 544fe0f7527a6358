/**
 * The webgpu backend's parallel reductions over rows (src/backend/webgpu/colsum.ts and embedding_backward's id
 * classes) on outputs that already hold something: without `accumulate` they must overwrite it, with it add to it —
 * the conformance suite starts from fresh (zeroed) buffers, where a kernel that forgot to clear would still pass.
 * Against ref, at the conformance tolerance. Skipped where Node finds no WebGPU adapter (as ./webgpu_node.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Attrs, Backend, HostArray } from '../src/backend/backend.js';
import { runKernel } from '../src/backend/dispatch.js';
import { Rng } from '../src/util/rng.js';
import { ref64, worst } from './conformance_cases.js';
import { webgpuMaker } from './webgpu_backend.js';

const gpu = webgpuMaker('webgpu reductions');
const be = await gpu.make();

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Run `kernel` on `backend` with inputs `ins` and the output starting as `init`; the output read back. */
async function run(
  backend: Backend,
  f64: boolean,
  kernel: string,
  ins: { data: HostArray; shape: number[] }[],
  out: { init: Float32Array; shape: number[] },
  attrs: Attrs,
): Promise<HostArray> {
  const conv = (d: HostArray) => (d instanceof Int32Array ? d : f64 ? Float64Array.from(d) : Float32Array.from(d));
  const iv = ins.map(({ data, shape }) => {
    const b = backend.alloc(numel(shape), data instanceof Int32Array ? 'i32' : f64 ? 'f64' : 'f32');
    backend.write(b, conv(data));
    return { buf: b, shape };
  });
  const ob = backend.alloc(numel(out.shape), f64 ? 'f64' : 'f32');
  backend.write(ob, conv(out.init));
  runKernel(backend, kernel, iv, [{ buf: ob, shape: out.shape }], attrs);
  const r = await backend.read(ob);
  for (const v of iv) backend.free(v.buf);
  backend.free(ob);
  return r;
}

const rng = new Rng(11);
const normal = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

describe('webgpu row reductions onto outputs that hold something', () => {
  const cases: [string, string, { data: HostArray; shape: number[] }[], number[], Attrs][] = [
    ['sum_to [700, 40] → [1, 40] (two passes)', 'sum_to', [{ data: normal(700 * 40), shape: [700, 40] }], [1, 40], {}],
    [
      'embedding_backward V 900 C 100 (id classes < V)',
      'embedding_backward',
      [
        { data: normal(400 * 100), shape: [400, 100] },
        { data: Int32Array.from({ length: 400 }, (_, i) => (i * 37) % 900), shape: [400] },
      ],
      [900, 100],
      {},
    ],
    [
      'embedding_backward accumulate',
      'embedding_backward',
      [
        { data: normal(300 * 100), shape: [300, 100] },
        { data: Int32Array.from({ length: 300 }, (_, i) => (i * 11) % 900), shape: [300] },
      ],
      [900, 100],
      { accumulate: true },
    ],
  ];
  it.for(cases)('%s', async ([, kernel, ins, outShape, attrs], ctx) => {
    if (!be) return ctx.skip(gpu.why);
    const init = Float32Array.from({ length: numel(outShape) }, (_, i) => 1000 + (i % 17));
    const want = await run(ref64, true, kernel, ins, { init, shape: outShape }, attrs);
    const got = await run(be, false, kernel, ins, { init, shape: outShape }, attrs);
    const w = worst(got, want, false);
    expect(w.ratio, `at ${w.at}: ${got[w.at]} vs ${want[w.at]}`).toBeLessThanOrEqual(1);
  });
});
