// Prompt caching across calls (src/generate/prompt_cache.ts): a second call whose prompt starts with the first
// call's prompt and reply prefills only the rest, cut back to the common prefix when the prompts diverge, and gives
// the tokens and log-probabilities of an uncached run (to float32 rounding); a chat session reuses each turn's
// history. Real Llama and GPT-2 models (random weights) on every test backend.
import { describe, expect, it } from 'vitest';
import { ChatSession } from '../src/chat/session.js';
import { chatmlTemplate } from '../src/chat/template.js';
import { generate } from '../src/generate/engine.js';
import { PromptCache } from '../src/generate/prompt_cache.js';
import type { ModelConfig } from '../src/model/config.js';
import { initModel } from '../src/model/init.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { ByteTokenizer } from './generate_fakes.js';
import { countForwards, testBackends } from './helpers.js';

const backends = await testBackends();

function config(family: 'llama' | 'gpt2'): ModelConfig {
  return {
    family,
    vocabSize: 300,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: family === 'llama' ? 2 : 4,
    headDim: 16,
    intermediateSize: family === 'llama' ? 96 : 256,
    maxPositions: 256,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: family === 'gpt2',
    attentionOutBias: family === 'gpt2',
    mlpBias: family === 'gpt2',
    dropout: 0,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
}

describe.each(backends.map((b) => [b.name, b] as const))('prompt cache on %s', (_n, backend) => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: reuses the common prefix, prefills the rest, same tokens as without`, async () => {
      const model = initModel(config(family), new Rng(5), { backend, std: 0.3 });
      const T = countForwards(model);
      const pc = new PromptCache(model);
      const opts = { temperature: 0, maxTokens: 6, topLogprobs: 1 };
      const plain = async (p: number[]) => (await generate(model, [p], opts)).choices[0]!;
      const cached = async (p: number[]) => (await generate(model, [p], { ...opts, promptCache: pc })).choices[0]!;
      const same = (a: Awaited<ReturnType<typeof plain>>, b: Awaited<ReturnType<typeof plain>>) => {
        expect(a.ids).toEqual(b.ids);
        a.logprobs.content.forEach((e, i) =>
          expect(Math.abs(e.logprob - b.logprobs.content[i]!.logprob)).toBeLessThan(1e-4),
        );
      };
      const p1 = [11, 42, 7, 99, 3, 250, 18, 64, 5, 77];
      const r1 = await cached(p1);
      expect(pc.lastReused).toBe(0);
      expect(pc.ids).toEqual([...p1, ...r1.ids.slice(0, -1)]); // the last token was never fed back
      // the next turn: the whole of the last one, then new tokens
      const p2 = [...p1, ...r1.ids, 120, 121, 122];
      T.length = 0;
      const r2 = await cached(p2);
      const reused = p1.length + r1.ids.length - 1;
      expect(pc.lastReused).toBe(reused);
      expect(T[0]).toBe(p2.length - reused); // the prefill ran on the new tokens only
      same(r2, await plain(p2));
      // a prompt that leaves the cached ids at position 4: cut back to 4
      const p3 = [...p1.slice(0, 4), 1, 2, 3];
      T.length = 0;
      const r3 = await cached(p3);
      expect(pc.lastReused).toBe(4);
      expect(T[0]).toBe(p3.length - 4);
      same(r3, await plain(p3));
      // the same prompt again: everything but its last token is reused
      await cached(p3);
      expect(pc.lastReused).toBe(p3.length - 1);
      pc.dispose();
      expect(pc.ids).toEqual([]);
      for (const t of model.params.values()) t.dispose();
    });
  }

  it('a stream left early keeps the cache consistent with the ids it holds', async () => {
    const model = initModel(config('llama'), new Rng(6), { backend, std: 0.3 });
    const pc = new PromptCache(model);
    const tok = new ByteTokenizer({});
    const { stream } = await import('../src/generate/engine.js');
    const p = [5, 6, 7, 8, 9];
    let n = 0;
    for await (const _ of stream(model, tok, p, { temperature: 0, maxTokens: 20, promptCache: pc }))
      if (++n === 3) break;
    expect(pc.ids.length).toBe(p.length + 2); // three tokens seen, two of them fed back before the consumer left
    const next = [...pc.ids, 40, 41];
    const a = (await generate(model, [next], { temperature: 0, maxTokens: 5, promptCache: pc })).choices[0]!;
    expect(pc.lastReused).toBe(p.length + 2);
    const b = (await generate(model, [next], { temperature: 0, maxTokens: 5 })).choices[0]!;
    expect(a.ids).toEqual(b.ids);
    pc.dispose();
    for (const t of model.params.values()) t.dispose();
  });

  it('a chat session prefills each turn after the history the last turn computed', async () => {
    const tok = new ByteTokenizer({ 256: '<|im_start|>', 257: '<|im_end|>' });
    const specialId = (s: string) => (({ '<|im_start|>': 256, '<|im_end|>': 257 }) as Record<string, number>)[s];
    const model = initModel(config('llama'), new Rng(7), { backend, std: 0.3 });
    const replies: string[][] = [];
    for (const promptCache of [true, false]) {
      const s = new ChatSession(model, tok, {
        template: chatmlTemplate(),
        specialId,
        seed: 3,
        sampler: { temperature: 0 },
        maxTokens: 8,
        promptCache,
      });
      expect(s.promptCache !== null).toBe(promptCache);
      const texts: string[] = [];
      const reused: number[] = [];
      for (const msg of ['hello', 'and then?', 'ok']) {
        const r = s.reply(msg);
        for await (const _ of r) void _;
        texts.push(r.text);
        reused.push(r.reusedTokens);
      }
      replies.push(texts);
      if (promptCache) {
        expect(reused[0]).toBe(0);
        expect(reused[1]).toBeGreaterThan(10); // the system-less history of turn 1: its prompt and reply
        expect(reused[2]).toBeGreaterThan(reused[1]!);
      } else expect(reused).toEqual([0, 0, 0]);
      s.dispose();
    }
    expect(replies[0]).toEqual(replies[1]);
    for (const t of model.params.values()) t.dispose();
  });

  it('a stream left early frees its KV cache (no prompt cache) or keeps it (prompt cache) and frees it on dispose', async () => {
    const model = initModel(config('gpt2'), new Rng(9), { backend });
    const tok = new ByteTokenizer({});
    const { stream } = await import('../src/generate/engine.js');
    const before = backend.memory().inUse;
    const leave = async (o: object) => {
      for await (const _ of stream(model, tok, [1, 2, 3], { temperature: 0, maxTokens: 50, ...o })) break;
    };
    await leave({});
    expect(backend.memory().inUse).toBe(before);
    const pc = new PromptCache(model);
    await leave({ promptCache: pc });
    expect(backend.memory().inUse).toBeGreaterThan(before);
    pc.dispose();
    expect(backend.memory().inUse).toBe(before);
    for (const t of model.params.values()) t.dispose();
  });

  it('starts with room for 512 positions and grows with the prompts, keeping what it cached', async () => {
    const model = initModel({ ...config('llama'), maxPositions: 2048 }, new Rng(10), { backend, std: 0.3 });
    const pc = new PromptCache(model);
    const T = countForwards(model);
    const p1 = Array.from({ length: 300 }, (_, i) => (i * 13 + 1) % 300);
    const r1 = (await generate(model, [p1], { temperature: 0, maxTokens: 4, promptCache: pc })).choices[0]!;
    expect(pc.room).toBe(512);
    const p2 = [...p1, ...r1.ids, ...Array.from({ length: 400 }, (_, i) => (i * 7 + 3) % 300)]; // 704 tokens
    T.length = 0;
    const r2 = (await generate(model, [p2], { temperature: 0, maxTokens: 4, promptCache: pc })).choices[0]!;
    expect(pc.room).toBe(1024); // grown (×2), the 303 cached positions copied over
    expect(pc.lastReused).toBe(p1.length + r1.ids.length - 1);
    expect(T[0]).toBe(p2.length - pc.lastReused);
    const plain = (await generate(model, [p2], { temperature: 0, maxTokens: 4 })).choices[0]!;
    expect(r2.ids).toEqual(plain.ids);
    r2.logprobs.content.forEach((e, i) =>
      expect(Math.abs(e.logprob - plain.logprobs.content[i]!.logprob)).toBeLessThan(1e-4),
    );
    pc.dispose();
    for (const t of model.params.values()) t.dispose();
  });

  it('serves one prompt per call', async () => {
    const model = initModel(config('llama'), new Rng(8), { backend });
    const pc = new PromptCache(model);
    await expect(
      generate(
        model,
        [
          [1, 2],
          [3, 4],
        ],
        { promptCache: pc },
      ),
    ).rejects.toThrow(ConfigError);
    for (const t of model.params.values()) t.dispose();
  });
});
