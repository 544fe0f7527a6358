// The fused decode path (issue 17): rope_qkv and swiglu_fused give exactly what the split-then-rope / split-then-swiglu
// ops give, on each backend; a KV-cached Llama decode step with fused linears (fuseModel, or q8 quantisation) issues
// 11 kernel calls per layer + 3 (embedding, final norm, head) where the plain float32 model issues 17 per layer
// (rope_qkv_cache: q/k rotated and k/v appended in one); and a left-padded batch decodes alike fused and plain.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { fuseModel, quantizeModel } from '../src/model/quantize.js';
import * as O from '../src/tensor/ops.js';
import { noGrad, tensor, tidy, type Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { testBackends } from './helpers.js';

const all = await testBackends();

const values = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

describe.each(all.map((b) => [b.name, b] as const))('fused decode kernels, %s backend', (_n, backend) => {
  it('rope_qkv equals split + rope (q, k) + the v slice, bit for bit (GQA, offset, padded rows)', () => {
    const rng = new Rng(3);
    for (const [B, T, H, Hkv, D, off, rowStart] of [
      [1, 1, 6, 6, 48, 9, undefined],
      [2, 3, 4, 2, 16, 0, [0, 1]],
    ] as const) {
      const W = (H + 2 * Hkv) * D;
      const x = tensor(values(rng, B * T * W), [B, T, W], { backend });
      const rs = rowStart ? [...rowStart] : undefined;
      const got = noGrad(() => O.ropeQKV(x, H, Hkv, 10000, off, rs).map((t) => Array.from(t.dataSync())));
      const [q, k, v] = O.split(x, [H * D, Hkv * D, Hkv * D], -1) as [Tensor, Tensor, Tensor];
      const want = [
        O.rope(O.reshape(q, [B, T, H, D]), 10000, off, rs),
        O.rope(O.reshape(k, [B, T, Hkv, D]), 10000, off, rs),
        v,
      ].map((t) => Array.from(t.dataSync()));
      expect(got).toEqual(want);
    }
  });

  it('swiglu_fused equals swiglu of the split halves, bit for bit', () => {
    const rng = new Rng(4);
    for (const shape of [
      [1, 1, 2 * 768],
      [3, 2, 2 * 37],
    ]) {
      const gu = tensor(
        values(
          rng,
          shape.reduce((a, b) => a * b),
        ),
        shape,
        { backend },
      );
      const F = shape[2]! / 2;
      const [g, u] = O.split(gu, [F, F], -1) as [Tensor, Tensor];
      expect(Array.from(O.swigluFused(gu).dataSync())).toEqual(Array.from(O.swiglu(g, u).dataSync()));
      // Gemma's GeGLU alike: gelu of the gate times the up half
      expect(Array.from(O.gegluFused(gu).dataSync())).toEqual(Array.from(O.mul(O.gelu(g), u).dataSync()));
    }
  });

  it('a decode step: 17 kernel calls per layer + 3 plain, 11 fused (f32 and q8); a padded batch decodes alike', async () => {
    const cfg: ModelConfig = {
      family: 'llama',
      vocabSize: 64,
      hiddenSize: 64,
      numLayers: 3,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 96,
      maxPositions: 16,
      normEps: 1e-5,
      ropeTheta: 10000,
      tieWordEmbeddings: true,
      attentionBias: false,
      attentionOutBias: false,
      mlpBias: false,
      dropout: 0,
      bosTokenId: null,
      eosTokenId: null,
      padTokenId: null,
    };
    const model = initModel(cfg, new Rng(1), { backend });
    const callsPerStep = (): { calls: number; names: string[] } => {
      const cache = model.newCache(1);
      noGrad(() => tidy(() => model.forward(Int32Array.of(1, 2, 3), 1, 3, { cache }).dataSync()));
      const names: string[] = [];
      const b = backend as Backend & { run: Backend['run'] };
      const run = b.run;
      b.run = (name, i, o, a) => (names.push(name), run.call(b, name, i, o, a));
      try {
        noGrad(() => tidy(() => model.forward(Int32Array.of(4), 1, 1, { cache }).dataSync()));
      } finally {
        b.run = run;
      }
      return { calls: names.length, names };
    };
    // two rows, the second left-padded by 2: prefill then 3 steps, every step's logits
    const batch = (): number[] => {
      const cache = model.newCache(2, 16, [0, 2]);
      const out: number[] = [];
      out.push(
        ...noGrad(() => tidy(() => model.forward(Int32Array.of(5, 6, 7, 8, 0, 0, 9, 10), 2, 4, { cache }).dataSync())),
      );
      for (const ids of [Int32Array.of(11, 12), Int32Array.of(13, 14), Int32Array.of(15, 16)])
        out.push(...noGrad(() => tidy(() => model.forward(ids, 2, 1, { cache }).dataSync())));
      return out;
    };
    expect(callsPerStep().calls).toBe(17 * 3 + 3);
    const plain = batch();
    await fuseModel(model);
    const fused = callsPerStep();
    expect(fused.calls).toBe(11 * 3 + 3);
    expect(fused.names.filter((n) => n === 'slice' || n === 'write_at' || n === 'rope')).toEqual([]);
    expect(batch()).toEqual(plain);
    await quantizeModel(model, 'q8');
    expect(callsPerStep().calls).toBe(11 * 3 + 3);
  });
});
