/**
 * The MLP's activation recomputed in the backward instead of kept (src/tensor/recompute.ts, used by the model while
 * gradients are recorded; ForwardOptions.recompute false keeps it):
 *  - GPT-2 (GELU) and Llama (SwiGLU), with and without dropout, on ref and wasm: the loss and every gradient bit for
 *    bit those of keeping the activation;
 *  - on ref (which counts its bytes exactly): after the forward, exactly the activation's floats a token and layer
 *    less are held (GPT-2: 4·C; Llama: F);
 *  - an input that does not need a gradient gets none computed, and the weight's is still right.
 * Finite-difference checks of the op itself: test/gradcheck.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { getBackend } from '../src/backend/registry.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { shiftTargets } from '../src/model/model.js';
import { backward } from '../src/tensor/autograd.js';
import * as O from '../src/tensor/ops.js';
import { linearOfActivation } from '../src/tensor/recompute.js';
import { tensor, tidy } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { smallModelConfig } from './helpers.js';

let wasm: WasmBackend;
beforeAll(async () => {
  wasm = await createWasmBackend({ threads: 2 });
});
afterAll(() => wasm.dispose());

const cfg = (family: 'gpt2' | 'llama', dropout: number): ModelConfig =>
  smallModelConfig(family, { vocabSize: 80, intermediateSize: family === 'llama' ? 72 : 128, dropout });

/** Loss and gradients of one training step with `recompute`, and the bytes held after the forward. */
function step(be: Backend, c: ModelConfig, recompute: boolean) {
  const model = initModel(c, new Rng(21), { backend: be });
  const [B, T] = [2, 16];
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 31 + 7) % c.vocabSize);
  const out = tidy(() => {
    const base = be.memory().inUse;
    const l = model.loss(ids, shiftTargets(ids, B, T), B, T, { training: true, dropoutSeed: 3, recompute });
    const held = be.memory().inUse - base;
    backward(l);
    const grads = [...model.params.values()].map((p) => Array.from(p.grad!.dataSync()));
    return { loss: l.dataSync()[0]!, grads, held };
  });
  for (const p of model.params.values()) p.dispose();
  return out;
}

describe('the MLP activation recomputed in the backward', () => {
  for (const [family, dropout] of [
    ['gpt2', 0],
    ['llama', 0],
    ['gpt2', 0.1],
    ['llama', 0.1],
  ] as const)
    it(`${family}${dropout ? `, dropout ${dropout}` : ''}: the same loss and gradients, bit for bit; the activation not held`, () => {
      const c = cfg(family, dropout);
      for (const be of [getBackend('ref'), wasm] as Backend[]) {
        const kept = step(be, c, false),
          again = step(be, c, true);
        expect(again.loss).toBe(kept.loss);
        expect(again.grads).toEqual(kept.grads);
        if (be.name === 'ref') {
          const F = family === 'gpt2' ? 4 * c.hiddenSize : c.intermediateSize;
          expect(kept.held - again.held).toBe(2 * 16 * F * 4 * c.numLayers);
        }
      }
    });

  it('inputs that need no gradient get none; the weight’s gradient is still right', () => {
    const ref = getBackend('ref');
    const r = new Rng(2);
    const data = (n: number) => Float32Array.from({ length: n }, () => r.random() * 2 - 1);
    const [xd, wd] = [data(4 * 6), data(6 * 5)];
    const grad = (recomputed: boolean) =>
      tidy(() => {
        const x = tensor(xd, [4, 6], { backend: ref }); // no gradient wanted
        const w = tensor(wd, [6, 5], { backend: ref, requiresGrad: true });
        const y = recomputed
          ? linearOfActivation('gelu', [x], w, null, 'in_out')
          : O.linear(O.gelu(x), w, null, 'in_out');
        backward(O.sum(O.mul(y, y)));
        expect(x.grad).toBe(null);
        return Array.from(w.grad!.dataSync());
      });
    expect(grad(true)).toEqual(grad(false));
  });
});
