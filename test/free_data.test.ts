/**
 * freeData (src/tensor/tensor.ts): an intermediate's memory given back before its scope ends, its tensors and
 * autograd nodes kept — and the model's use of it (src/model/model.ts: a projection's output once the residual add
 * has it, while the tape records).
 *  - tensor level (wasm: memory is reused there): the bytes leave the heap at once, for every view of the storage;
 *    any later read or kernel throws E_FREED (never reused memory); the scope's end frees nothing twice; backward
 *    through a freed intermediate gives the gradients it gives without freeing, bit for bit; a rule that does read
 *    the freed tensor throws E_FREED.
 *  - model level: a GPT-2 and a Llama training forward hold exactly 2·C floats a token and layer less after the
 *    forward than the same forward with freeing off (a `capture`, which turns it off), the loss and every gradient
 *    bit for bit equal — also with dropout (its output freed too);
 *  - takeData: the loss's backward over its own logits (crossEntropy gradInPlace, as model.loss runs it) gives the
 *    gradients of a separate dlogits buffer bit for bit, and the logits read E_FREED afterwards.
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
import { freeData, tensor, tidy } from '../src/tensor/tensor.js';
import { Rng } from '../src/util/rng.js';
import { smallModelConfig } from './helpers.js';

let be: WasmBackend;
beforeAll(async () => {
  be = await createWasmBackend({ threads: 1 });
});
afterAll(() => be.dispose());

const rand = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.random() * 2 - 1);
};

describe('freeData', () => {
  it('gives the bytes back at once, for every view; later reads throw E_FREED; the scope frees nothing twice', async () => {
    const before = be.memory().inUse;
    tidy(() => {
      const a = tensor(rand(64 * 32, 1), [64, 32], { backend: be });
      const y = O.mul(a, a); // 64·32 floats
      const v = O.reshape(y, [32, 64]); // a view of the same storage
      const held = be.memory().inUse;
      freeData(v);
      expect(held - be.memory().inUse).toBeGreaterThanOrEqual(64 * 32 * 4);
      freeData(y); // idempotent
      expect(() => y.dataSync()).toThrow(/memory was given back \(freeData\) after its last use/);
      expect(() => O.add(v, v)).toThrow(/was given back \(freeData\) after its last use/);
      // the other tensors are untouched
      expect(a.dataSync().length).toBe(64 * 32);
      return null;
    });
    expect(be.memory().inUse).toBe(before);
  });

  it('backward through a freed intermediate: the same gradients, bit for bit; a rule that reads it throws E_FREED', async () => {
    const run = (free: 'none' | 'proj' | 'wrong') =>
      tidy(() => {
        const x = tensor(rand(8 * 16, 2), [8, 16], { backend: be, requiresGrad: true });
        const w = tensor(rand(24 * 16, 3), [24, 16], { backend: be, requiresGrad: true });
        const b = tensor(rand(24, 4), [24], { backend: be, requiresGrad: true });
        const r = tensor(rand(8 * 24, 5), [8, 24], { backend: be, requiresGrad: true });
        const h = O.gelu(x); // read by the matmul's rule (its input)
        const proj = O.reshape(O.linear(h, w, b), [8, 24]);
        const out = O.add(r, proj);
        if (free === 'proj') freeData(proj);
        if (free === 'wrong') freeData(h);
        const l = O.sum(O.mul(out, out));
        backward(l);
        return [l, x, w, b, r].map((t) => Array.from((t === l ? t : t.grad!).dataSync()));
      });
    const want = run('none');
    expect(run('proj')).toEqual(want);
    expect(() => run('wrong')).toThrow(/was given back \(freeData\) after its last use/);
  });
});

const cfg = (family: 'gpt2' | 'llama', dropout: number): ModelConfig =>
  smallModelConfig(family, { intermediateSize: family === 'llama' ? 80 : 128, dropout });

describe('the model gives back its projection outputs while the tape records', () => {
  for (const [family, dropout] of [
    ['gpt2', 0],
    ['llama', 0],
    ['gpt2', 0.1],
  ] as const) {
    it(`${family}${dropout ? `, dropout ${dropout}` : ''}: 2·C floats a token and layer less held, every gradient equal`, () => {
      // ref counts its bytes exactly (wasm's heap rounds blocks); wasm reuses freed memory at once
      const saved = check(getBackend('ref'), family, dropout);
      const per = 2 * 16 * 32 * 4 * 3 * 2 * (dropout > 0 ? 2 : 1); // B·T·C floats, twice a layer (and the dropout's)
      expect(saved).toBe(per);
      expect(check(be, family, dropout)).toBeGreaterThan(0);
    });
  }
});

/** A training forward and backward with and without the early free on `on`: losses and gradients equal; bytes saved. */
function check(be: Backend, family: 'gpt2' | 'llama', dropout: number): number {
  const c = cfg(family, dropout);
  const model = initModel(c, new Rng(9), { backend: be });
  const [B, T] = [2, 16];
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 13 + 5) % c.vocabSize);
  const targets = shiftTargets(ids, B, T);
  const step = (early: boolean) =>
    tidy(() => {
      const base = be.memory().inUse;
      // a capture turns the early free off (its tensors stay readable); residual captures add no memory
      const l = model.loss(ids, targets, B, T, {
        training: true,
        dropoutSeed: 7,
        recompute: false, // the MLP activation kept in both: only the projections' outputs differ
        ...(early ? {} : { capture: { residual: [] } }),
      });
      const held = be.memory().inUse - base;
      backward(l);
      const grads = [...model.params.values()].map((p) => Array.from(p.grad!.dataSync()));
      for (const p of model.params.values()) {
        p.grad!.dispose();
        p.grad = null;
      }
      return { held, loss: l.dataSync()[0]!, grads };
    });
  const on = step(true),
    off = step(false);
  expect(on.loss).toBe(off.loss);
  expect(on.grads).toEqual(off.grads);
  for (const p of model.params.values()) p.dispose();
  return off.held - on.held;
}

describe("the loss's backward writes the logits' gradient over the logits", () => {
  for (const family of ['gpt2', 'llama'] as const)
    it(`${family}: the same gradients as a separate dlogits buffer, bit for bit; the logits then read E_FREED`, () => {
      const c = cfg(family, 0);
      const model = initModel(c, new Rng(11), { backend: be });
      const [B, T] = [2, 16];
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 17 + 3) % c.vocabSize);
      const targets = shiftTargets(ids, B, T);
      targets[5] = -100;
      const grads = (inPlace: boolean) =>
        tidy(() => {
          const logits = model.forward(ids, B, T, { training: true });
          const ce = O.crossEntropy(logits, O.ids(targets, [B * T], logits), -100, { gradInPlace: inPlace });
          const l = O.scale(O.sum(ce), 1 / (B * T - B - 1));
          backward(l);
          if (inPlace) expect(() => logits.dataSync()).toThrow(/handed to another tensor \(takeData\)/);
          else expect(logits.dataSync().length).toBe(B * T * c.vocabSize);
          const out = [...model.params.values()].map((p) => Array.from(p.grad!.dataSync()));
          for (const p of model.params.values()) {
            p.grad!.dispose();
            p.grad = null;
          }
          return { loss: l.dataSync()[0]!, out };
        });
      const separate = grads(false),
        over = grads(true);
      expect(over.loss).toBe(separate.loss);
      expect(over.out).toEqual(separate.out);
      // and model.loss (which takes this path) agrees with both
      const viaLoss = tidy(() => {
        const l = model.loss(ids, targets, B, T, { training: true });
        backward(l);
        const out = [...model.params.values()].map((p) => Array.from(p.grad!.dataSync()));
        for (const p of model.params.values()) {
          p.grad!.dispose();
          p.grad = null;
        }
        return { loss: l.dataSync()[0]!, out };
      });
      expect(viaLoss.loss).toBe(separate.loss);
      expect(viaLoss.out).toEqual(separate.out);
      for (const p of model.params.values()) p.dispose();
    });
});
