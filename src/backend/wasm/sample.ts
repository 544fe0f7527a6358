/**
 * The wasm backend's sample kernel (./assembly/sample.ts): one token per row, the port of ref's float64 sampler
 * (../sampling.ts), with the penalties applied to a copy of the row by the shared `penalizeRow` and the top
 * alternatives reported when asked.
 */
import { BackendError } from '../../util/errors.js';
import { checkSampleArgs, EXP_TABLE, penalizeRow, rowPenaltyPairs, sampleAttrs } from '../sampling.js';
import { prod, type WasmKernel } from './core.js';

export const SAMPLE: Record<string, WasmKernel> = {
  sample(be, i, o, a) {
    const x = i[0]!,
      V = x.shape[x.shape.length - 1] ?? 0,
      N = V > 0 ? prod(x.shape) / V : 0;
    const { o: opts, u, topN, penalties } = sampleAttrs(a);
    checkSampleArgs(N, V, opts, u);
    const pti = topN > 0 ? be.p(o[2]!) : 0,
      ptl = topN > 0 ? be.p(o[3]!) : 0;
    if (typeof be.fns.sample_row !== 'function')
      throw new BackendError(
        'E_KERNEL',
        'wasm backend: build/kernels-*.wasm predates the sample kernel; rebuild them (npm run build:wasm)',
      );
    be.ensureScratch(be.fns.sample_scratch_bytes(V) as unknown as number);
    if (be.expTablePtr === 0) {
      be.expTablePtr = be.heap.alloc(EXP_TABLE.byteLength);
      be.refreshViews();
      new Float64Array(be.mem.buffer, be.expTablePtr, EXP_TABLE.length).set(EXP_TABLE);
    }
    const px = be.p(x),
      pi = be.p(o[0]!),
      pp = be.p(o[1]!);
    for (let n = 0; n < N; n++) {
      const row = px + 4 * n * V;
      let src = row;
      const pairs = rowPenaltyPairs(penalties, n);
      if (pairs) {
        // the penalised copy (ref's penalizeRow, the same JavaScript) in a buffer kept for it
        if (!be.penaltyRow || be.penaltyRow.length < V) {
          if (be.penaltyRow) be.free(be.penaltyRow);
          be.penaltyRow = be.alloc(V, 'f32');
        }
        src = be.penaltyRow.ptr;
        be.refreshViews();
        be.f32.copyWithin(src >>> 2, row >>> 2, (row >>> 2) + V);
        penalizeRow(be.f32.subarray(src >>> 2, (src >>> 2) + V), pairs, penalties!.settings);
      }
      be.fns.sample_row(
        src,
        V,
        opts.temperature,
        opts.topK,
        opts.topP,
        opts.minP,
        u[n]!,
        be.expTablePtr,
        pi + 4 * n,
        pp + 8 * n,
        be.scratch[0]!,
        topN,
        pti + 4 * n * topN,
        ptl + 4 * n * topN,
        row,
      );
    }
  },
};
