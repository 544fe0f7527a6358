// OpenAI's logit_bias (GenerateOptions.logitBias): added to the chosen tokens' logits before penalties, filters and
// sampling, on the host also where the backend would sample on the device. −100 keeps a token out of a greedy and a
// sampled reply, +100 makes it the pick; the reported log-probabilities are the biased distribution's; the same
// through the server (both routes, through the `openai` client), with bad biases as 400s naming `logit_bias`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { generate } from '../src/generate/engine.js';
import { logSoftmax } from '../src/generate/sampler.js';
import { initModel } from '../src/model/init.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { randomBigramModel } from './generate_fakes.js';
import { captureOutput, smallModelConfig, testBackends } from './helpers.js';
import { main as generateMain } from '../src/cli/generate.js';
import { makeTinyModel } from './sft_helpers.js';

const backends = await testBackends();

describe('logitBias in the engine', () => {
  it('a scripted model: −100 bans the greedy pick, +100 forces a token; the log-probabilities are the biased ones', async () => {
    const model = randomBigramModel(64, 512, 3);
    const prompt = [1, 2, 3];
    const plain = (await generate(model, [prompt], { temperature: 0, maxTokens: 12, topLogprobs: 1 })).choices[0]!;
    const first = plain.ids[0]!;
    const banned = (
      await generate(model, [prompt], { temperature: 0, maxTokens: 12, logitBias: { [first]: -100 }, topLogprobs: 1 })
    ).choices[0]!;
    expect(banned.ids).not.toContain(first);
    // the greedy pick after the ban is the runner-up of the plain distribution
    const row = model.next([...prompt], prompt.length);
    const lp = logSoftmax(row);
    const second = [...lp.keys()].filter((i) => i !== first).sort((a, b) => lp[b]! - lp[a]!)[0]!;
    expect(banned.ids[0]).toBe(second);
    // reported: the biased distribution's log-probability
    const biased = Float32Array.from(row);
    biased[first] = biased[first]! - 100;
    expect(banned.logprobs.content[0]!.logprob).toBeCloseTo(logSoftmax(biased)[second]!, 5);
    // +100 on a token makes every sampled pick that token
    const forced = (
      await generate(model, [prompt], { temperature: 1, seed: 4, maxTokens: 8, logitBias: new Map([[17, 100]]) })
    ).choices[0]!;
    expect(forced.ids).toEqual(Array(8).fill(17));
    // sampled replies never contain a banned token
    const ban = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [i * 2, -100]));
    for (let seed = 1; seed <= 5; seed++) {
      const r = (await generate(model, [prompt], { temperature: 1.5, seed, maxTokens: 30, logitBias: ban }))
        .choices[0]!;
      expect(r.ids.every((id) => id % 2 === 1)).toBe(true);
    }
    await expect(generate(model, [prompt], { logitBias: { 64: 1 } })).rejects.toThrow(ConfigError);
    await expect(generate(model, [prompt], { logitBias: { 3: Number.NaN } })).rejects.toThrow(/logitBias/);
  });

  it.each(backends.map((b) => [b.name, b] as const))(
    'a real model on %s: the ban holds where sampling would run on the device',
    async (_n, backend) => {
      const model = initModel(smallModelConfig('llama', { vocabSize: 64, maxPositions: 64 }), new Rng(2), {
        backend,
        std: 0.5,
      });
      const prompt = [5, 6, 7];
      const plain = (await generate(model, [prompt], { temperature: 0, maxTokens: 10 })).choices[0]!;
      const ban = Object.fromEntries([...new Set(plain.ids)].map((id) => [id, -100]));
      const r = (await generate(model, [prompt], { temperature: 0, maxTokens: 10, logitBias: ban })).choices[0]!;
      expect(r.ids.some((id) => id in ban)).toBe(false);
      // batched rows too
      const rows = (
        await generate(model, [prompt, [9, 9, 9]], { temperature: 0.8, seed: 1, maxTokens: 10, logitBias: ban })
      ).choices;
      for (const c of rows) expect(c.ids.some((id) => id in ban)).toBe(false);
    },
  );
});

describe('logit_bias through the openai client', () => {
  let tmp: string;
  let server: LlmServer;
  let client: OpenAI;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-bias-'));
    await makeTinyModel(tmp, { context: 128 });
    server = createServer({ served: await loadServedModel(tmp, { backend: 'ref', modelName: 'tiny' }), port: 0 });
    client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('llmts generate --logit-bias (llama.cpp spelling, repeatable)', async () => {
    const args = [tmp, 'color red', '--backend', 'ref', '--temperature', '0', '--max-tokens', '8', '--json'];
    const plain = JSON.parse((await captureOutput(() => generateMain(args))).out) as { ids: number[] };
    const [a, b] = [...new Set(plain.ids)];
    const r = JSON.parse(
      (await captureOutput(() => generateMain([...args, '--logit-bias', `${a}-100`, '--logit-bias', `${b}-100`]))).out,
    ) as { ids: number[] };
    expect(r.ids).not.toContain(a);
    expect(r.ids).not.toContain(b);
    await expect(generateMain([...args, '--logit-bias', 'x+1'])).rejects.toThrow(/--logit-bias/);
  });

  it('bans and forces tokens on both routes; bad biases are 400s naming logit_bias', async () => {
    const msgs = [{ role: 'user' as const, content: 'color red' }];
    const plain = await client.chat.completions.create({
      model: 'tiny',
      messages: msgs,
      temperature: 0,
      max_tokens: 8,
      logprobs: true,
    });
    const ids = plain.choices[0]!.logprobs!.content!.map((c) => (c as unknown as { id: number }).id);
    const ban = Object.fromEntries(ids.map((id) => [String(id), -100]));
    const banned = await client.chat.completions.create({
      model: 'tiny',
      messages: msgs,
      temperature: 0,
      max_tokens: 8,
      logprobs: true,
      logit_bias: ban,
    });
    const got = banned.choices[0]!.logprobs!.content!.map((c) => (c as unknown as { id: number }).id);
    expect(got.some((id) => String(id) in ban)).toBe(false);
    const forced = await client.completions.create({
      model: 'tiny',
      prompt: 'count',
      max_tokens: 5,
      logit_bias: { '120': 100 },
      logprobs: 0,
    });
    expect(forced.choices[0]!.logprobs!.tokens!.length).toBe(5);
    expect(new Set(forced.choices[0]!.logprobs!.tokens)).toEqual(new Set([forced.choices[0]!.logprobs!.tokens![0]]));
    const bad = async (logit_bias: unknown) => {
      const e = await client.chat.completions
        .create({ model: 'tiny', messages: msgs, logit_bias } as never)
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      return (e as InstanceType<typeof OpenAI.BadRequestError>).param;
    };
    expect(await bad({ '5': 101 })).toBe('logit_bias');
    expect(await bad({ '999999': 1 })).toBe('logit_bias');
    expect(await bad({ x: 1 })).toBe('logit_bias');
    expect(await bad([1, 2])).toBe('logit_bias');
  });
});
