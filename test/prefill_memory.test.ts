/**
 * An inference forward over several positions (a prompt's prefill) holds one layer's temporaries at a time
 * (src/model/model.ts: each layer in its own scope when no gradient is recorded and nothing is captured):
 *  - the logits are bit for bit those of the same forward with every temporary kept to the end (a `capture` turns
 *    the scopes off), for GPT-2 and Llama, without a cache and as a KV-cached prefill followed by decode steps (the
 *    cache written inside the scopes is the same);
 *  - the memory held above the weights does not grow with the number of layers (it does, by a layer's temporaries
 *    a layer, when they are all kept).
 */
import { describe, expect, it } from 'vitest';
import { createWasmBackend } from '../src/backend/wasm/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { smallModelConfig } from './helpers.js';

const cfg = (family: 'gpt2' | 'llama', L: number): ModelConfig =>
  smallModelConfig(family, { hiddenSize: 64, vocabSize: 128, numLayers: L, maxPositions: 128 });

const T = 96;
const ids = Int32Array.from({ length: 2 * T }, (_, i) => (i * 29 + 3) % 128);

/** Logits of a prefill (B = 2) then 3 cached decode steps, and the bytes held above the weights at the peak. */
async function run(family: 'gpt2' | 'llama', L: number, keepAll: boolean, cached: boolean) {
  const be = await createWasmBackend({ threads: 1 });
  try {
    const model = initModel(cfg(family, L), new Rng(4), { backend: be });
    const base = be.memory().inUse;
    const capture = keepAll ? { capture: { residual: [] } } : {};
    const logits: number[][] = [];
    noGrad(() => {
      const cache = cached ? model.newCache(2, T + 8) : undefined;
      logits.push(
        Array.from(
          tidy(() => model.forward(ids, 2, T, { ...capture, ...(cache ? { cache } : {}) })).dataSync() as Float32Array,
        ),
      );
      if (cache) {
        for (let s = 0; s < 3; s++)
          logits.push(Array.from(tidy(() => model.forward(Int32Array.of(s + 5, s + 9), 2, 1, { cache })).dataSync()));
        cache.dispose();
      }
    });
    return { logits, held: be.memory().peak - base };
  } finally {
    be.dispose();
  }
}

describe('a prefill holds one layer’s temporaries at a time', () => {
  for (const family of ['gpt2', 'llama'] as const)
    for (const cached of [false, true])
      it(`${family}${cached ? ', KV-cached prefill and decode' : ''}: the same logits; memory flat in the number of layers`, async () => {
        const [s2, s6, k2, k6] = [
          await run(family, 2, false, cached),
          await run(family, 6, false, cached),
          await run(family, 2, true, cached),
          await run(family, 6, true, cached),
        ];
        expect(s2.logits).toEqual(k2.logits);
        expect(s6.logits).toEqual(k6.logits);
        const perLayerKept = (k6.held - k2.held) / 4;
        // kept: every layer's temporaries (well over 8·C floats a token: qkv, attention, MLP)
        expect(perLayerKept).toBeGreaterThan(8 * 64 * 2 * T * 4);
        // scoped: four more layers cost less than a tenth of one kept layer (the cache grows, the temporaries do not)
        const cacheLayer = cached ? 2 * 2 * (T + 8) * cfg(family, 2).numKvHeads * 16 * 4 : 0;
        expect(s6.held - s2.held - 4 * cacheLayer).toBeLessThan(0.1 * perLayerKept);
      });
});
