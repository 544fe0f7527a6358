/**
 * Multiple choice by log-likelihood (src/model/continuations.ts, src/align/eval/multiple_choice.ts, `llmts eval`):
 * the continuation scores are the model's own loss on each continuation (its cross-entropy kernel), the greedy flag
 * is the argmax's, a long context is cut from the left; pairs are encoded as lm-evaluation-harness encodes them; a
 * model fine-tuned on "color X → I like X." answers questions about it far above chance where its base is at chance.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodePair, evalMultipleChoice, readChoiceQuestions } from '../src/align/eval/multiple_choice.js';
import { getBackend, initBackend } from '../src/backend/registry.js';
import { chatmlTemplate } from '../src/chat/template.js';
import { main } from '../src/cli/main.js';
import { continuationLogprobs } from '../src/model/continuations.js';
import { fromHfConfig } from '../src/model/hf/config.js';
import { loadModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';
import { makeSftPolicy } from './ppo_helpers.js';
import { COLORS, writeJsonl } from './sft_helpers.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-mc-'));
beforeAll(async () => {
  await initBackend('ref');
});
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

const tiny = (): CausalLM =>
  initModel(
    fromHfConfig(
      {
        model_type: 'llama',
        vocab_size: 64,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 24,
      },
      'tiny',
    ),
    new Rng(4),
    { std: 0.3, backend: getBackend('ref') },
  );

/** log p(cont | ctx) from the model's loss (its cross-entropy kernel), not from the code under test. */
async function byLoss(model: CausalLM, ctx: number[], cont: number[]): Promise<number> {
  const ids = Int32Array.from([...ctx, ...cont]);
  const targets = new Int32Array(ids.length).fill(-100);
  cont.forEach((id, i) => (targets[ctx.length - 1 + i] = id));
  const l = tidy(() => noGrad(() => model.loss(ids, targets, 1, ids.length)));
  const v = await l.item();
  l.dispose();
  return -v * cont.length;
}

/** The model's greedy continuation of ctx, n tokens. */
async function greedy(model: CausalLM, ctx: number[], n: number): Promise<number[]> {
  const ids = [...ctx];
  for (let i = 0; i < n; i++) {
    const t = tidy(() => noGrad(() => model.forward(Int32Array.from(ids), 1, ids.length, { lastOnly: true })));
    const row = Array.from((await t.data()) as Float32Array);
    t.dispose();
    ids.push(row.indexOf(Math.max(...row)));
  }
  return ids.slice(ctx.length);
}

describe('continuation log-likelihoods', () => {
  it("are the model's loss on each continuation, batched or alone; greedy exactly for the argmax path", async () => {
    const model = tiny();
    const ctx = [3, 17, 40, 5, 9];
    const best = await greedy(model, ctx, 3);
    const conts = [best, [1], [7, 7, 7, 7], [best[0]!, (best[1]! + 1) % 64]];
    const got = await continuationLogprobs(model, ctx, conts);
    for (const [i, c] of conts.entries()) {
      expect(Math.abs(got[i]!.logprob - (await byLoss(model, ctx, c))), `continuation ${i}`).toBeLessThan(1e-4);
      const alone = (await continuationLogprobs(model, ctx, [c]))[0]!;
      expect(Math.abs(alone.logprob - got[i]!.logprob)).toBeLessThan(1e-5); // right padding changes nothing
      expect(got[i]!.tokens).toBe(c.length);
    }
    expect(got.map((g) => g.greedy)).toEqual([true, false, false, false]);
  });

  it('a context too long for the positions loses its oldest tokens; bad input is named', async () => {
    const model = tiny();
    const long = Array.from({ length: 30 }, (_, i) => (i * 7) % 64);
    const [cut] = await continuationLogprobs(model, long, [[1, 2, 3]]);
    const [same] = await continuationLogprobs(model, long.slice(-21), [[1, 2, 3]]);
    expect(cut!.logprob).toBe(same!.logprob);
    await expect(continuationLogprobs(model, [], [[1]])).rejects.toThrow(/needs at least one token/);
    await expect(continuationLogprobs(model, [1], [[]])).rejects.toThrow(/empty continuation/);
    await expect(continuationLogprobs(model, [1], [new Array(24).fill(1)])).rejects.toThrow(/leaves no room/);
    await expect(continuationLogprobs(model, [1], [[64]])).rejects.toThrow(/outside the vocabulary/);
  });

  it('pairs are encoded as the harness encodes them: trailing spaces move to the continuation', () => {
    const enc = (t: string) => Array.from(t, (ch) => ch.charCodeAt(0));
    expect(encodePair(enc, 'Q: 1+1= ', '2')).toEqual({ context: enc('Q: 1+1='), continuation: enc(' 2') });
    expect(encodePair(enc, 'a', 'b', 0)).toEqual({ context: [0, ...enc('a')], continuation: enc('b') });
  });
});

describe('multiple choice', () => {
  let sftDir = '';
  let questions = '';
  beforeAll(async () => {
    sftDir = await makeSftPolicy(TMP, 60);
    // how a reply begins after "color X": the fine-tuned model's replies all begin "I like" (a tiny model trained this
    // briefly learns the form, not yet the copying), against two phrases drawn from the same words
    const rng = new Rng(11);
    const pool = ['color', 'red.', 'You like', 'I color', 'like I', 'blue like', 'user', 'green.', 'I I', 'like.'];
    const rows = Array.from({ length: 30 }, (_, i) => {
      const wrong = [...pool];
      rng.shuffle(wrong);
      const choices = ['I like', wrong[0]!, wrong[1]!];
      rng.shuffle(choices);
      const context = chatmlTemplate().render([{ role: 'user', content: `color ${COLORS[i % COLORS.length]}` }]);
      return { context, choices, answer: choices.indexOf('I like') };
    });
    questions = writeJsonl(path.join(TMP, 'replies.jsonl'), rows);
  }, 120_000);

  it('a fine-tuned model picks the reply it was taught far above chance, its base does not; each pick is the argmax', async () => {
    const qs = readChoiceQuestions(questions);
    const tok = await loadTokenizer(sftDir);
    const enc = (t: string) => tok.encode(t, { allowed: 'all' });
    const tuned = await evalMultipleChoice(await loadModel(sftDir, { backend: getBackend('ref') }), enc, qs);
    const base = await evalMultipleChoice(
      await loadModel(path.join(TMP, 'base'), { backend: getBackend('ref') }),
      enc,
      qs,
    );
    console.log(
      `replies: fine-tuned acc ${tuned.acc.toFixed(3)}, base ${base.acc.toFixed(3)}, chance ${tuned.chance.toFixed(3)}`,
    );
    expect(tuned.chance).toBeCloseTo(1 / 3, 10);
    expect(tuned.acc).toBeGreaterThan(0.9);
    expect(tuned.accInterval.low).toBeGreaterThan(tuned.chance);
    expect(base.acc).toBeLessThan(tuned.acc - 0.3);
    for (const [i, r] of tuned.results.entries()) {
      expect(r.pick).toBe(r.logprobs.indexOf(Math.max(...r.logprobs)));
      const perChar = r.logprobs.map((lp, j) => lp / qs[i]!.choices[j]!.length);
      expect(r.pickNorm).toBe(perChar.indexOf(Math.max(...perChar)));
    }
  }, 60_000);

  it('llmts eval prints acc and acc_norm with intervals, or JSON; bad rows are named by line and field', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await main(['eval', sftDir, questions, '--backend', 'ref', '--limit', '12'])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(
        /^acc \d+\.\d% \(95% \d+\.\d%–\d+\.\d%\), acc_norm \d+\.\d% \(95% .*\) on 12 questions of replies\.jsonl; chance 33\.3%/,
      );
      log.mockClear();
      expect(await main(['eval', sftDir, questions, '--backend', 'ref', '--json', '--limit', '12'])).toBe(0);
      const j = JSON.parse(log.mock.calls.flat().join('')) as { n: number; acc: number; results: unknown[] };
      expect(j.n).toBe(12);
      expect(j.results.length).toBe(12);
      // the contexts' template markers are read as the special tokens they are (as the harness's tokenizer reads them):
      // the library's scores with that encoding
      const tok = await loadTokenizer(sftDir);
      const lib = await evalMultipleChoice(
        await loadModel(sftDir, { backend: getBackend('ref') }),
        (t) => tok.encode(t, { allowed: 'all' }),
        readChoiceQuestions(questions).slice(0, 12),
      );
      (j.results as { logprobs: number[] }[]).forEach((r, i) =>
        r.logprobs.forEach((lp, k) => expect(Math.abs(lp - lib.results[i]!.logprobs[k]!)).toBeLessThan(1e-3)),
      );
      const bad = path.join(TMP, 'bad.jsonl');
      fs.writeFileSync(
        bad,
        '{"context": "a", "choices": ["x", "y"], "answer": 0}\n{"context": "b", "choices": ["x"], "answer": 0}\n',
      );
      expect(await main(['eval', sftDir, bad])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(
        /bad\.jsonl \[line 2\]: choices: expected a list of at least two/,
      );
      fs.writeFileSync(bad, '{"query": "a", "endings": ["x", "y"], "label": "2"}\n');
      expect(await main(['eval', sftDir, bad])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(/label: expected the right choice's index in 0 … 1, got "2"/);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  }, 60_000);
});
