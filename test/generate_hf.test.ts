// Generation with the real model on the Hugging Face fixtures (data-driven: every sub-folder of test/fixtures/hf
// with a reference.json holding greedy_prompt / greedy_output is a case): greedy ids equal transformers' greedy
// `generate`, and sampling at temperature 1 is repeatable with a seed and varies across seeds.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/hf/folder.js';
import { generate } from '../src/generate/engine.js';
import { fixtureDirs, itFindsFixtures, testBackends } from './helpers.js';

interface Reference {
  input_ids?: number[][];
  greedy_prompt?: number[][];
  greedy_output?: number[][];
}

const cases = fixtureDirs().filter((d) => {
  const f = path.join(d, 'reference.json');
  if (!fs.existsSync(f)) return false;
  const r = JSON.parse(fs.readFileSync(f, 'utf8')) as Reference;
  return Array.isArray(r.greedy_prompt) && Array.isArray(r.greedy_output);
});

function eosIds(eos: number | number[] | null, vocab: number): number[] {
  const list = eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  return list.filter((x) => x >= 0 && x < vocab);
}

const all = await testBackends();

itFindsFixtures(cases.length, 'Hugging Face fixture folders with greedy references');

describe.each(all.map((b) => [b.name, b] as const))(
  'generation on the Hugging Face fixtures, %s backend',
  (_b, backend) => {
    describe.each(cases.map((d) => [path.basename(d), d] as const))('%s', (_name, dir) => {
      const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Required<Reference>;

      it('greedy ids equal transformers generate(do_sample=False)', async () => {
        const model = await loadModel(dir, { backend });
        const stopTokens = eosIds(model.config.eosTokenId, model.config.vocabSize);
        for (let r = 0; r < ref.greedy_prompt.length; r++) {
          const prompt = ref.greedy_prompt[r]!;
          const want = ref.greedy_output[r]!;
          const res = await generate(model, [prompt], {
            temperature: 0,
            maxTokens: want.length - prompt.length,
            stopTokens,
          });
          const c = res.choices[0]!;
          expect([
            ...prompt,
            ...c.ids,
            ...(c.stopped_by && 'token' in c.stopped_by ? [c.stopped_by.token] : []),
          ]).toEqual(want);
        }
      });

      it('a batch of equal-length prompts gives each row the tokens it gets alone (greedy and sampled)', async () => {
        const model = await loadModel(dir, { backend });
        const P = ref.greedy_prompt[0]!.length;
        const prompts = [ref.greedy_prompt[0]!, ...(ref.input_ids ?? []).map((r) => r.slice(0, P))];
        for (const o of [{ temperature: 0 }, { temperature: 1, seed: 5 }]) {
          const batched = await generate(model, prompts, { ...o, maxTokens: 10 });
          const alone = await generate(model, prompts, { ...o, maxTokens: 10, batch: false });
          expect(batched.choices.map((c) => c.ids)).toEqual(alone.choices.map((c) => c.ids));
          for (let i = 0; i < prompts.length; i++)
            for (let t = 0; t < batched.choices[i]!.ids.length; t++)
              expect(batched.choices[i]!.logprobs.content[t]!.logprob).toBeCloseTo(
                alone.choices[i]!.logprobs.content[t]!.logprob,
                4,
              );
        }
      });

      it('same seed → same tokens twice; different seeds → different tokens (temperature 1)', async () => {
        const model = await loadModel(dir, { backend });
        const prompt = ref.greedy_prompt[0]!;
        const run = async (seed: number) =>
          (await generate(model, [prompt], { temperature: 1, maxTokens: 12, seed })).choices[0]!.ids;
        const a = await run(1),
          b = await run(1),
          c = await run(2);
        expect(a).toEqual(b);
        expect(a).not.toEqual(c);
      });
    });
  },
);
