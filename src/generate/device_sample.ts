/**
 * Sampling where the logits live: the `sample` kernel (src/backend/kernels.ts) run on the model's logits tensor, so
 * a decode step reads back one id and two numbers per row instead of V logits, and the sampler's float64 passes
 * over the vocabulary run as backend code (WebAssembly on the wasm backend) instead of JavaScript.
 *
 * The kernel is the JavaScript sampler's own row arithmetic (src/backend/sampling.ts), ported operation for
 * operation, so with the same uniform number it draws the same id: a seed gives the same tokens either way. It
 * applies the penalties (from each row's token counts) and reports the top alternatives (topLogprobs ≤ 20), so every
 * sampler setting runs there. Probabilities come back rounded to float32.
 */
import { Tensor } from '../tensor/tensor.js';
import { apply } from '../tensor/record.js';
import { noGrad } from '../tensor/tensor.js';
import type { LogitsTensor } from './interfaces.js';
import type { ResolvedSamplerOptions, SampleResult } from './sampler.js';
import { penaltiesOn } from '../backend/sampling.js';

/** The logits as a Tensor whose backend runs `sample` natively, or null (test doubles, backends without it). */
export function sampleTarget(t: LogitsTensor): Tensor | null {
  return t instanceof Tensor && t.dtype === 'f32' && t.backend.supports('sample') ? t : null;
}

/**
 * Sample every row of logits (…, V) with one uniform number per row (`u[n]`, ignored at temperature 0) and, when a
 * penalty is set, each row's token counts (`counts[n]`: id → occurrences in its penalty window). Frees nothing: the
 * caller owns `logits`.
 */
export async function sampleOnDevice(
  logits: Tensor,
  o: ResolvedSamplerOptions,
  u: readonly number[],
  counts?: readonly ReadonlyMap<number, number>[],
): Promise<SampleResult[]> {
  const N = u.length,
    K = o.topLogprobs;
  let pen = {};
  if (counts && penaltiesOn(o) && counts.some((c) => c.size > 0)) {
    // every row's (id, count) pairs in one flat array; row n's are flat[countOffsets[n] .. countOffsets[n + 1])
    const flat: number[] = [],
      countOffsets: number[] = [0];
    for (const c of counts) {
      for (const [id, k] of c) flat.push(id, k);
      countOffsets.push(flat.length);
    }
    pen = {
      counts: flat,
      countOffsets,
      repetitionPenalty: o.repetitionPenalty,
      frequencyPenalty: o.frequencyPenalty,
      presencePenalty: o.presencePenalty,
    };
  }
  const outs = noGrad(() =>
    apply(
      'sample',
      'sample',
      [logits],
      [
        [N],
        [N, 2],
        ...(K > 0
          ? [
              [N, K],
              [N, K],
            ]
          : []),
      ],
      {
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        minP: o.minP,
        u,
        ...(K > 0 ? { topN: K } : {}),
        ...pen,
      },
      ['i32', 'f32', 'i32', 'f32'],
    ),
  );
  try {
    const id = await outs[0]!.data();
    const pr = await outs[1]!.data();
    const topIds = K > 0 ? await outs[2]!.data() : null,
      topLps = K > 0 ? await outs[3]!.data() : null;
    const out: SampleResult[] = new Array(N);
    for (let n = 0; n < N; n++) {
      const top: { id: number; logprob: number }[] = [];
      for (let k = 0; k < K; k++)
        if (topIds![n * K + k]! >= 0) top.push({ id: topIds![n * K + k]!, logprob: topLps![n * K + k]! });
      out[n] = { id: id[n]!, prob: pr[2 * n]!, logprob: pr[2 * n + 1]!, top };
    }
    return out;
  } finally {
    for (const t of outs) t!.dispose();
  }
}
