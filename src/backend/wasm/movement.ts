/**
 * The wasm backend's data-movement kernels (./assembly/movement.ts): transpose, slice, pad_slice, concat and the
 * in-place write_at (KV caches). All are strided copies (./core.ts `strided`), a plain 2-D transpose taking its own
 * blocked kernel.
 */
import { num, nums, prod, type WasmKernel } from './core.js';
import { rowStrides } from './layout.js';

export const MOVEMENT: Record<string, WasmKernel> = {
  transpose(be, i, o, a) {
    const x = i[0]!,
      out = o[0]!,
      perm = nums(a, 'perm');
    const sa = rowStrides(x.shape);
    be.strided(
      be.p(x),
      be.p(out),
      out.shape,
      perm.map((pk) => sa[pk]!),
      rowStrides(out.shape),
    );
  },
  slice(be, i, o, a) {
    const x = i[0]!,
      out = o[0]!,
      begin = nums(a, 'begin');
    const sa = rowStrides(x.shape);
    const off = begin.reduce((acc, b, k) => acc + b * sa[k]!, 0);
    be.strided(be.p(x) + off * 4, be.p(out), out.shape, sa, rowStrides(out.shape));
  },
  pad_slice(be, i, o, a) {
    const x = i[0]!,
      out = o[0]!,
      begin = nums(a, 'begin');
    const po = be.p(out);
    const n = prod(out.shape);
    be.range('fill32', n, n, 16, [po, 0]);
    const so = rowStrides(out.shape);
    const off = begin.reduce((acc, b, k) => acc + b * so[k]!, 0);
    be.strided(be.p(x), po + off * 4, x.shape, rowStrides(x.shape), so);
  },
  concat(be, i, o, a) {
    const out = o[0]!,
      r = out.shape.length;
    const axis = num(a, 'axis') < 0 ? num(a, 'axis') + r : num(a, 'axis');
    const so = rowStrides(out.shape);
    let pos = 0;
    const po = be.p(out);
    for (const x of i) {
      be.strided(be.p(x), po + pos * so[axis]! * 4, x.shape, rowStrides(x.shape), so);
      pos += x.shape[axis]!;
    }
  },
  write_at(be, i, o, a) {
    const x = i[0]!,
      out = o[0]!,
      n = prod(x.shape),
      off = num(a, 'offset'),
      blocks = num(a, 'blocks', 1),
      per = n / blocks,
      stride = num(a, 'blockStride', per);
    const ps = be.p(x),
      pd = be.p(out) + off * 4;
    be.refreshViews();
    // block j of the input to out[offset + j·blockStride …] (one block: the plain contiguous write)
    for (let j = 0; j < blocks; j++) be.u8.copyWithin(pd + j * stride * 4, ps + j * per * 4, ps + (j + 1) * per * 4);
  },
};
