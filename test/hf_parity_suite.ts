/**
 * The Hugging Face parity checks on one backend (./hf_parity.test.ts says what they check; the tolerances are the
 * fixtures' README's): one describe block, so a backend made elsewhere (WebGPU in Node, ./webgpu_node.test.ts)
 * runs the same checks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { readSafetensors } from '../src/formats/safetensors.js';
import { loadModel } from '../src/model/hf/folder.js';
import { shiftTargets } from '../src/model/model.js';
import { backward } from '../src/tensor/autograd.js';
import { tidy } from '../src/tensor/tensor.js';
import { AdamW } from '../src/optim/adamw.js';
import { fixtureDirs, itFindsFixtures, relErr } from './helpers.js';

interface Reference {
  input_ids: number[][];
  loss: number;
  greedy_prompt?: number[][];
  greedy_output?: number[][];
  adamw?: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
}

/** Every parity check, on every fixture folder, on `backend` (labelled `name`). */
export function describeHfParity(name: string, backend: Backend): void {
  const dirs = fixtureDirs();
  describe(`Hugging Face parity on ${name}`, () => {
    itFindsFixtures(dirs.length);
    describe.each(dirs.map((d) => [path.basename(d), d]))('%s', (_n, dir) => {
      const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Reference;
      const has = (f: string) => fs.existsSync(path.join(dir, f));
      const B = ref.input_ids.length,
        T = ref.input_ids[0]!.length;
      const ids = Int32Array.from(ref.input_ids.flat());

      it('logits match', async (ctx) => {
        if (!has('reference_logits.safetensors')) ctx.skip('this fixture has no reference_logits.safetensors');
        const model = await loadModel(dir, { backend });
        const want = (await readSafetensors(path.join(dir, 'reference_logits.safetensors'))).tensors.get('logits')!;
        const logits = tidy(() => model.forward(ids, B, T));
        expect(logits.shape).toEqual(want.shape);
        expect(relErr(await logits.data(), want.data)).toBeLessThan(1e-5);
      });

      it('greedy generation ids match (KV-cached decoding)', async (ctx) => {
        if (!ref.greedy_prompt || !ref.greedy_output)
          return ctx.skip('this fixture has no greedy_prompt / greedy_output in reference.json');
        const model = await loadModel(dir, { backend });
        for (let r = 0; r < ref.greedy_prompt.length; r++) {
          const prompt = ref.greedy_prompt[r]!,
            want = ref.greedy_output[r]!;
          const cache = model.newCache(1);
          const out = [...prompt];
          let next = Int32Array.from(prompt);
          while (out.length < want.length) {
            const logits = tidy(() => model.forward(next, 1, next.length, { cache, lastOnly: true }));
            const row = (await logits.data()) as Float32Array;
            logits.dispose();
            let best = 0;
            for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
            out.push(best);
            next = Int32Array.of(best);
          }
          cache.dispose();
          expect(out).toEqual(want);
        }
      });

      /** The model after one forward and backward pass on the reference ids (so every parameter has a gradient). */
      async function backwardOnce() {
        const model = await loadModel(dir, { backend });
        const targets = shiftTargets(ids, B, T);
        const loss = tidy(() => {
          const l = model.loss(ids, targets, B, T);
          backward(l);
          return l;
        });
        return { model, loss };
      }

      it('loss matches', async () => {
        const { loss } = await backwardOnce();
        expect(Math.abs((await loss.item()) - ref.loss) / Math.abs(ref.loss)).toBeLessThan(1e-5);
      });

      it('every gradient matches', async (ctx) => {
        if (!has('reference_grads.safetensors')) ctx.skip('this fixture has no reference_grads.safetensors');
        const { model } = await backwardOnce();
        const grads = (await readSafetensors(path.join(dir, 'reference_grads.safetensors'))).tensors;
        for (const [name, p] of model.params) {
          const want = grads.get(name);
          expect(want, `reference gradient for ${name}`).toBeDefined();
          const e = relErr(await p.grad!.data(), want!.data);
          expect(e, `gradient of ${name}`).toBeLessThan(1e-4);
        }
      });

      it('one AdamW step matches', async (ctx) => {
        if (!has('reference_adamw_step.safetensors') || !has('reference_grads.safetensors') || !ref.adamw) {
          ctx.skip(
            'this fixture has no reference_adamw_step.safetensors, reference_grads.safetensors or adamw settings',
          );
        }
        const { model } = await backwardOnce();
        // The fixture's step starts from the reference gradients ("from the gradients above"): feed exactly those,
        // so this checks the optimizer itself. (With our own gradients the first step amplifies float32 noise in
        // near-zero gradients: Adam's first update is ≈ lr·sign(g).)
        const grads = (await readSafetensors(path.join(dir, 'reference_grads.safetensors'))).tensors;
        for (const [name, p] of model.params) p.backend.write(p.grad!.buf, grads.get(name)!.data as Float32Array);
        const a = ref.adamw!;
        const opt = new AdamW(model.params, { lr: a.lr, betas: a.betas, eps: a.eps, weightDecay: a.weight_decay });
        opt.step();
        const after = (await readSafetensors(path.join(dir, 'reference_adamw_step.safetensors'))).tensors;
        for (const [name, p] of model.params) {
          const e = relErr(await p.data(), after.get(name)!.data);
          expect(e, `parameter ${name} after AdamW`).toBeLessThan(1e-5);
        }
      });
    });
  });
}
