// Speculative decoding (src/generate/speculative.ts, the verify rounds of src/generate/engine.ts): with any drafter
// (prompt lookup, a draft model, a perfect oracle, one that is always wrong, one that returns garbage) the tokens are
// those of the same seed without one: exactly on a scripted model (logits independent of how they were batched), to
// float32 rounding on real Llama and GPT-2 models on every test backend. A right draft saves target forwards; the
// KV cache is cut back past a wrong one; grammars, stop strings, token budgets, the window and prompt caching all hold.
import { describe, expect, it } from 'vitest';
import { generate, stream, type Choice, type GenerateOptions } from '../src/generate/engine.js';
import { PromptCache } from '../src/generate/prompt_cache.js';
import {
  DraftModel,
  DraftSchedule,
  lookupDraft,
  PromptLookup,
  type Drafter,
  type DraftSession,
} from '../src/generate/speculative.js';
import { jsonSchemaGrammar } from '../src/generate/grammar/json_schema.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { ByteTokenizer, FakeCache, type FakeModel, randomBigramModel } from './generate_fakes.js';
import { countForwards, smallModelConfig, testBackends } from './helpers.js';

const backends = await testBackends();

/** A fake cache that can be cut back, as KVCache can for one row. */
class CutCache extends FakeCache {
  truncate(n: number): void {
    if (n < 0 || n > this.length) throw new Error(`truncate ${n} of ${this.length}`);
    this.rows[0]!.length = n;
  }
}

/** randomBigramModel with a cache that can be cut back. */
function cutBigram(V = 64, seed = 5): FakeModel {
  const m = randomBigramModel(V, 512, seed);
  m.newCache = (batch: number, maxLen?: number) => {
    const c = new CutCache(batch, maxLen);
    m.caches.push(c);
    return c;
  };
  return m;
}

/** A drafter that proposes `pick(context, n)` and records what it was asked. */
function scripted(pick: (context: readonly number[], n: number) => readonly number[]): Drafter & { asked: number[] } {
  const asked: number[] = [];
  let disposed = 0;
  return {
    asked,
    session(): DraftSession {
      return {
        draft: (c, n) => {
          asked.push(n);
          return pick(c, n);
        },
        dispose: () => void disposed++,
      };
    },
    get disposed() {
      return disposed;
    },
  } as Drafter & { asked: number[] };
}

const same = (a: Choice, b: Choice, tol = 0) => {
  expect(a.ids).toEqual(b.ids);
  expect(a.text).toBe(b.text);
  expect(a.finish_reason).toBe(b.finish_reason);
  expect(a.stopped_by).toEqual(b.stopped_by);
  a.logprobs.content.forEach((e, i) => {
    const o = b.logprobs.content[i]!;
    expect(Math.abs(e.logprob - o.logprob)).toBeLessThanOrEqual(tol + 1e-6);
    expect(Math.abs(e.prob - o.prob)).toBeLessThanOrEqual(tol + 1e-6);
  });
};

describe('lookupDraft', () => {
  it('drafts what followed the most recent earlier occurrence of the longest matching n-gram', () => {
    //           0  1  2  3  4  5  6  7  8  9
    const ctx = [5, 6, 7, 8, 1, 6, 7, 9, 2, 6, 7];
    // the 3-gram [2, 6, 7] never occurred before; [6, 7] did, most recently at 5 (followed by 9, 2, 6, 7)
    expect(lookupDraft(ctx, 3)).toEqual([9, 2, 6]);
    expect(lookupDraft(ctx, 10)).toEqual([9, 2, 6, 7, 9, 2, 6, 7, 9, 2]); // runs on into its own guesses
    expect(lookupDraft([1, 2, 3, 1, 2], 2)).toEqual([3, 1]);
    // a longer n-gram wins over a more recent shorter one
    expect(lookupDraft([4, 1, 2, 8, 3, 2, 9, 4, 1, 2], 1, 3)).toEqual([8]);
    expect(lookupDraft([4, 1, 2, 8, 3, 2, 9, 4, 1, 2], 1, 1)).toEqual([9]);
    // a repeating token drafts itself on and on
    expect(lookupDraft([3, 3], 4)).toEqual([3, 3, 3, 3]);
    expect(lookupDraft([1, 2, 3], 4)).toEqual([]);
    expect(lookupDraft([7], 4)).toEqual([]);
    expect(lookupDraft([1, 2, 3, 1, 2], 2, 3, 3)).toEqual([]); // minNgram 3: [3, 1, 2] never occurred before
  });

  it('DraftSchedule: +2 after a full hit, −1 after a miss, and pauses 1, 2, 4 … 16 tokens after misses at 1', () => {
    const s = new DraftSchedule(4);
    const seen: number[] = [];
    const round = (accepted: (k: number) => number) => {
      const k = s.next();
      seen.push(k);
      if (k > 0) s.update(accepted(k), k);
    };
    for (let i = 0; i < 40; i++) round(() => 0);
    const pauses = seen.join(' ').split(/ ?[1-9] ?/);
    expect(seen.slice(0, 5)).toEqual([4, 3, 2, 1, 0]);
    expect(pauses.filter((p) => p).map((p) => p.split(' ').length)).toEqual([1, 2, 4, 8, 16]);
    seen.length = 0;
    for (let i = 0; i < 20; i++) round((k) => k); // hits: the pause runs out, then 1, 3, 4, 4, …
    expect(seen.slice(-4)).toEqual([1, 3, 4, 4]);
    expect(seen.slice(0, -4).every((k) => k === 0)).toBe(true);
    round(() => 1); // a partial hit: −1, no pause
    round(() => 0); // a miss at 3: −1, no pause
    expect([s.next(), s.next()]).toEqual([2, 2]);
  });

  it('refuses bad settings by name', () => {
    expect(() => new PromptLookup({ minNgram: 0 })).toThrow(/minNgram/);
    expect(() => new PromptLookup({ maxNgram: 1, minNgram: 2 })).toThrow(/maxNgram/);
    expect(() => new DraftModel(cutBigram() as never, { pMin: 2 })).toThrow(/pMin/);
  });
});

describe('speculative decoding on a scripted model (exact)', () => {
  const V = 64;
  const prompt = [1, 2, 3, 4, 5, 1, 2, 3];
  const settings: [string, GenerateOptions][] = [
    ['greedy', { temperature: 0 }],
    ['temperature 1', { temperature: 1 }],
    [
      'top-k, top-p, penalties',
      { temperature: 0.8, topK: 20, topP: 0.9, repetitionPenalty: 1.3, presencePenalty: 0.4 },
    ],
    ['min-p, logprobs', { temperature: 1.2, minP: 0.05, topLogprobs: 3 }],
  ];

  it.each(settings)('%s: every drafter gives the plain run’s tokens, for every budget', async (_n, s) => {
    for (const seed of [1, 2, 3]) {
      const plainModel = cutBigram(V, seed);
      const plain = (maxTokens: number) => generate(plainModel, [prompt], { ...s, seed, maxTokens });
      const full = (await plain(40)).choices[0]!;
      const drafters: [string, Drafter][] = [
        ['lookup', new PromptLookup()],
        ['oracle', scripted((c, n) => full.ids.slice(c.length - prompt.length, c.length - prompt.length + n))],
        ['wrong', scripted((c, n) => Array.from({ length: n }, (_, i) => (c[c.length - 1]! + 7 * i + 1) % V))],
        ['garbage', scripted(() => [-1, 3.5, 1e9])],
        ['empty', scripted(() => [])],
        ['draft model', new DraftModel(cutBigram(V, seed + 100) as never, { pMin: 0 })],
      ];
      for (const [name, drafter] of drafters)
        for (const maxTokens of [1, 2, 3, 7, 40]) {
          const model = cutBigram(V, seed);
          const r = await generate(model, [prompt], { ...s, seed, maxTokens, speculative: { drafter, maxDraft: 5 } });
          const want = maxTokens === 40 ? full : (await plain(maxTokens)).choices[0]!;
          try {
            same(r.choices[0]!, want);
          } catch (e) {
            throw new Error(`${name}, seed ${seed}, maxTokens ${maxTokens}: ${(e as Error).message}`);
          }
          const d = r.choices[0]!.draft!;
          expect(d.accepted).toBeLessThanOrEqual(d.drafted);
          for (const c of model.calls.slice(1)) expect(c.T).toBeLessThanOrEqual(6); // 1 + maxDraft
          expect(model.caches.every((c) => c.resets === 1)).toBe(true); // freed
        }
    }
  });

  it('a perfect draft takes every drafted token and saves forwards; a wrong one takes none and cuts the cache back', async () => {
    const seed = 9;
    const opts = { temperature: 0.9, seed, maxTokens: 30 };
    const full = (await generate(cutBigram(V), [prompt], opts)).choices[0]!;
    const oracle = scripted((c, n) => full.ids.slice(c.length - prompt.length, c.length - prompt.length + n));
    const model = cutBigram(V);
    const r = (await generate(model, [prompt], { ...opts, speculative: { drafter: oracle, maxDraft: 4 } })).choices[0]!;
    same(r, full);
    expect(r.draft!.accepted).toBe(r.draft!.drafted);
    // 1 prefill, then rounds of 1 + 4 positions giving 5 tokens each, the last drafting 3 (the budget's end)
    expect(model.calls.map((c) => c.T)).toEqual([prompt.length, 5, 5, 5, 5, 5, 4]);
    expect(r.draft!.rounds).toBe(6);

    const wrong = scripted((c, n) => Array.from({ length: n }, () => (full.ids[c.length - prompt.length]! + 1) % V));
    const m2 = cutBigram(V);
    const cuts: number[] = [];
    const newCache = m2.newCache.bind(m2);
    m2.newCache = (b, maxLen) => {
      const c = newCache(b, maxLen) as CutCache;
      const t = c.truncate.bind(c);
      c.truncate = (n) => (cuts.push(c.length - n), t(n));
      return c;
    };
    const w = (await generate(m2, [prompt], { ...opts, speculative: { drafter: wrong, maxDraft: 4 } })).choices[0]!;
    same(w, full);
    expect(w.draft!.accepted).toBe(0);
    // the draft length backs off to 1 after misses: 4, 3, 2, 1, 1, …; each miss cuts every drafted position
    expect(wrong.asked.slice(0, 5)).toEqual([4, 3, 2, 1, 1]);
    expect(cuts.slice(0, 5)).toEqual([4, 3, 2, 1, 1]);
  });

  it('grammars, stop strings and the window hold under speculation', async () => {
    const tok = new ByteTokenizer();
    const m = () => cutBigram(256, 4);
    const g = jsonSchemaGrammar({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] });
    const p = Array.from(new TextEncoder().encode('say {"a": 12} twice: {"a": '));
    for (const seed of [1, 2, 3, 4]) {
      const base: GenerateOptions = { temperature: 1, seed, maxTokens: 24, tokenizer: tok };
      for (const o of [{ grammar: g }, { stop: ['e', '}'] }, { contextLength: p.length + 5 }] as GenerateOptions[]) {
        const plain = (await generate(m(), [p], { ...base, ...o })).choices[0]!;
        for (const drafter of [new PromptLookup(), scripted(() => p.slice(0, 8))]) {
          const r = (await generate(m(), [p], { ...base, ...o, speculative: { drafter } })).choices[0]!;
          same(r, plain);
        }
      }
    }
  });

  it('streams the same tokens, reports the draft counts, and frees the cache when left early', async () => {
    const tok = new ByteTokenizer();
    const p = Array.from(new TextEncoder().encode('abcabcabcabc'));
    const plain = (await generate(cutBigram(256, 2), [p], { temperature: 0, seed: 1, maxTokens: 20, tokenizer: tok }))
      .choices[0]!;
    const model = cutBigram(256, 2);
    const drafter = new DraftModel(cutBigram(256, 2) as never, { pMin: 0 });
    const s = stream(model, tok, p, { temperature: 0, seed: 1, maxTokens: 20, speculative: { drafter } });
    const ids: number[] = [];
    for await (const ev of s) ids.push(ev.id);
    expect(ids).toEqual(plain.ids);
    expect(s.draft!.accepted).toBe(s.draft!.drafted);
    // the same model drafting: two rounds of 8 drafted + 1 (tokens 2–19), the 20th decoded plainly (no room to draft)
    expect(s.draft).toEqual({ rounds: 2, drafted: 16, accepted: 16 });
    const m2 = cutBigram(256, 2);
    const oracle = scripted((c, n) => plain.ids.slice(c.length - p.length, c.length - p.length + n));
    const s2 = stream(m2, tok, p, { temperature: 0, seed: 1, maxTokens: 20, speculative: { drafter: oracle } });
    let n = 0;
    for await (const _ of s2) if (++n === 3) break; // leaves in the middle of a verified round
    expect(m2.caches[0]!.resets).toBe(1);
    expect((oracle as unknown as { disposed: number }).disposed).toBe(1);
  });

  it('refuses a bad drafter, a bad maxDraft and a cache that cannot be cut back, by name', async () => {
    const model = cutBigram(V);
    await expect(generate(model, [prompt], { speculative: { drafter: {} as Drafter } })).rejects.toThrow(
      /speculative\.drafter/,
    );
    await expect(
      generate(model, [prompt], { speculative: { drafter: new PromptLookup(), maxDraft: 0 } }),
    ).rejects.toThrow(ConfigError);
    const plainCache = randomBigramModel(V);
    await expect(
      generate(plainCache, [prompt], { maxTokens: 3, speculative: { drafter: new PromptLookup() } }),
    ).rejects.toThrow(/speculative.*cut back/);
    expect(plainCache.caches[0]!.resets).toBe(1);
  });

  it('decodes several prompts one at a time, each as it would alone', async () => {
    const prompts = [prompt, [9, 8, 7], [1, 1, 1, 1, 2]];
    const plain = await generate(cutBigram(V), prompts, { temperature: 1, seed: 5, maxTokens: 12 });
    const model = cutBigram(V);
    const r = await generate(model, prompts, {
      temperature: 1,
      seed: 5,
      maxTokens: 12,
      speculative: { drafter: new PromptLookup() },
    });
    r.choices.forEach((c, i) => same(c, plain.choices[i]!));
    expect(model.calls.every((c) => c.B === 1)).toBe(true);
  });
});

const config = (family: 'llama' | 'gpt2'): ModelConfig =>
  smallModelConfig(family, {
    vocabSize: 300,
    hiddenSize: 64,
    numLayers: 2,
    intermediateSize: family === 'llama' ? 96 : 256,
    maxPositions: 256,
    tieWordEmbeddings: true,
  });

describe.each(backends.map((b) => [b.name, b] as const))('speculative decoding of real models on %s', (_n, backend) => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: the model drafting for itself takes every greedy draft; lookup and another model give the same tokens`, async () => {
      const model = initModel(config(family), new Rng(5), { backend, std: 0.3 });
      const draftModel = initModel({ ...config(family), numLayers: 1 }, new Rng(6), { backend, std: 0.3 });
      const prompt = [11, 42, 7, 99, 3, 250, 18, 64, 5, 77, 11, 42, 7];
      const greedy = { temperature: 0, maxTokens: 40, topLogprobs: 2 };
      const plain = (await generate(model, [prompt], greedy)).choices[0]!;
      const T = countForwards(model);
      const drafter = new DraftModel(model, { pMin: 0 });
      const self = (await generate(model, [prompt], { ...greedy, speculative: { drafter } })).choices[0]!;
      same(self, plain, 1e-4);
      // the model's own greedy drafts all stand: 39 tokens after the first in rounds of up to 1 + 8
      expect(self.draft!.accepted).toBe(self.draft!.drafted);
      expect(self.draft!.rounds).toBe(5);
      // 4 rounds of 1 + 8 positions (37 tokens), the last of 1 + 2 (the budget's end)
      expect(T.filter((t) => t === 9).length).toBe(4);
      for (const drafter of [new PromptLookup(), new DraftModel(draftModel, { pMin: 0 })])
        for (const seed of [1, 2]) {
          const o = { temperature: 0.9, topP: 0.95, seed, maxTokens: 30 };
          const want = (await generate(model, [prompt], o)).choices[0]!;
          const got = (await generate(model, [prompt], { ...o, speculative: { drafter, maxDraft: 6 } })).choices[0]!;
          same(got, want, 1e-4);
        }
    });
  }

  it('keeps a prompt cache consistent: the next turn reuses what stands and gives the same tokens', async () => {
    const model = initModel(config('llama'), new Rng(7), { backend, std: 0.3 });
    const pc = new PromptCache(model);
    const opts = { temperature: 0.7, seed: 3, maxTokens: 16 };
    const spec = { speculative: { drafter: new DraftModel(model, { pMin: 0 }) } };
    const p1 = [5, 6, 7, 8, 5, 6, 7, 8];
    const r1 = (await generate(model, [p1], { ...opts, ...spec, promptCache: pc })).choices[0]!;
    same(r1, (await generate(model, [p1], opts)).choices[0]!, 1e-4);
    expect(pc.ids).toEqual([...p1, ...r1.ids.slice(0, -1)]); // no drafted position the row did not take
    const p2 = [...p1, ...r1.ids, 40, 41];
    const r2 = (await generate(model, [p2], { ...opts, ...spec, promptCache: pc })).choices[0]!;
    expect(pc.lastReused).toBe(p1.length + r1.ids.length - 1);
    same(r2, (await generate(model, [p2], opts)).choices[0]!, 1e-4);
    pc.dispose();
  });
});
