// Speculative decoding where users reach it: OpenAI's Predicted Outputs (`prediction`) on `llmts serve` through the
// official `openai` client, a server that drafts every reply (--lookup, --model-draft), and the CLI flags of
// `llmts generate`. The replies must be those of plain decoding for the same seed; a prediction the reply follows is
// mostly accepted, an unrelated one mostly rejected; bad input is a named error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as generateMain } from '../src/cli/generate.js';
import { loadServedModel } from '../src/cli/serve.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { sourceDraft, PredictedText } from '../src/generate/speculative.js';
import { saveTokenizer, trainBpe } from '../src/tokenizer/index.js';
import { ConfigError } from '../src/util/errors.js';
import { captureOutput } from './helpers.js';
import { makeTinyModel } from './sft_helpers.js';

let tmp: string;
let dir: string;
let draftDir: string;
let otherTokDir: string;
const servers: LlmServer[] = [];

async function serve(over: Parameters<typeof loadServedModel>[1] = { backend: 'ref' }): Promise<OpenAI> {
  const served = await loadServedModel(dir, { modelName: 'tiny', ...over });
  const server = createServer({ served, port: 0, maxTokens: 300 });
  servers.push(server);
  const url = await server.listen();
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-prediction-'));
  dir = path.join(tmp, 'model');
  draftDir = path.join(tmp, 'draft');
  otherTokDir = path.join(tmp, 'other');
  await makeTinyModel(dir, { context: 512, nLayer: 2 });
  await makeTinyModel(draftDir, { context: 512, nLayer: 1, nEmbd: 16 });
  // the same weights with a tokenizer trained on other text: refused as a draft model
  await makeTinyModel(otherTokDir, { context: 512, nLayer: 1, nEmbd: 16 });
  const words = Array.from({ length: 4000 }, (_, i) =>
    String.fromCharCode(97 + ((i * 7919) % 23), 98 + ((i * 31) % 19)),
  );
  const tok = trainBpe([words.join(' ')], {
    vocabSize: 300,
    specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
  });
  await saveTokenizer(tok, otherTokDir);
});

afterAll(async () => {
  for (const s of servers) await s.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const MESSAGES = [{ role: 'user' as const, content: 'Rewrite: color red, count 3.' }];

describe('sourceDraft and PredictedText', () => {
  it('walks through the source in order from where the last draft left off', () => {
    //             0  1  2  3  4  5  6  7  8
    const source = [5, 6, 7, 9, 5, 6, 8, 1, 2];
    expect(sourceDraft(source, [5, 6], 2, 0)).toEqual({ draft: [7, 9], at: 2 });
    // past the cursor the later [5, 6] is taken
    expect(sourceDraft(source, [5, 6], 2, 3)).toEqual({ draft: [8, 1], at: 6 });
    // a longer match wins; nothing matching: no draft, the cursor stays
    expect(sourceDraft(source, [9, 5, 6], 3, 0)).toEqual({ draft: [8, 1, 2], at: 6 });
    expect(sourceDraft(source, [4], 3, 5)).toEqual({ draft: [], at: 5 });
    // the reply so far is all it looks at (never more tokens than it has)
    const s = new PredictedText([1, 2, 3, 4, 5]).session([9, 9, 1]);
    expect(s.draft([9, 9, 1, 1], 3)).toEqual([2, 3, 4]);
    expect(s.draft([9, 9, 1, 1, 2, 3, 4], 3)).toEqual([5]);
  });
});

describe('Predicted Outputs through the openai client', () => {
  it('a prediction the reply follows is taken; the reply is the plain one, streamed or not', async () => {
    const client = await serve();
    for (const seed of [1, 2]) {
      const base = { model: 'tiny', messages: MESSAGES, seed, max_tokens: 60, temperature: 0.7 };
      const plain = await client.chat.completions.create(base);
      const text = plain.choices[0]!.message.content!;
      expect(plain.usage!.completion_tokens_details).toBeUndefined();
      const r = await client.chat.completions.create({ ...base, prediction: { type: 'content', content: text } });
      expect(r.choices[0]!.message.content).toBe(text);
      const d = r.usage!.completion_tokens_details!;
      // a good part of the reply came from the prediction (not all: a random model's tokens, decoded and encoded
      // again, are not always the same tokens, so the predicted ids part from the reply's here and there)
      expect(d.accepted_prediction_tokens!).toBeGreaterThanOrEqual(0.25 * (r.usage!.completion_tokens - 1));
      // an unrelated prediction (text parts): the same reply, little of it taken
      const other = await client.chat.completions.create({
        ...base,
        prediction: {
          type: 'content',
          content: [
            { type: 'text', text: 'zzz qqq ' },
            { type: 'text', text: 'www' },
          ],
        },
      });
      expect(other.choices[0]!.message.content).toBe(text);
      expect(other.usage!.completion_tokens_details!.accepted_prediction_tokens!).toBeLessThan(
        d.accepted_prediction_tokens!,
      );
      // streamed: the same text, the counts in the final usage chunk
      const s = await client.chat.completions.create({
        ...base,
        prediction: { type: 'content', content: text },
        stream: true,
        stream_options: { include_usage: true },
      });
      let streamed = '';
      let usage: OpenAI.CompletionUsage | null | undefined = null;
      for await (const ch of s) {
        streamed += ch.choices[0]?.delta.content ?? '';
        if (ch.usage) usage = ch.usage;
      }
      expect(streamed).toBe(text);
      expect(usage!.completion_tokens_details).toEqual(d);
    }
  });

  it('a bad prediction is a 400 naming it', async () => {
    const client = await serve();
    const bad = async (prediction: unknown) => {
      const e = await client.chat.completions
        .create({ model: 'tiny', messages: MESSAGES, prediction } as never)
        .catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      return (e as InstanceType<typeof OpenAI.BadRequestError>).param;
    };
    expect(await bad({ type: 'text', content: 'x' })).toBe('prediction');
    expect(await bad({ type: 'content', content: 3 })).toBe('prediction');
    expect(await bad({ type: 'content', content: [{ type: 'image_url' }] })).toBe('prediction.content[0]');
  });

  it('a server that drafts every reply (--lookup, --model-draft) gives the plain replies', async () => {
    const plain = await serve();
    const lookup = await serve({ backend: 'ref', lookup: true, draftMax: 4 });
    const drafted = await serve({ backend: 'ref', modelDraft: draftDir, draftPMin: 0 });
    for (const seed of [3, 4]) {
      const base = { model: 'tiny', messages: MESSAGES, seed, max_tokens: 40 };
      const want = (await plain.chat.completions.create(base)).choices[0]!.message.content;
      for (const c of [lookup, drafted]) {
        const r = await c.chat.completions.create(base);
        expect(r.choices[0]!.message.content).toBe(want);
        expect(r.usage!.completion_tokens_details).toBeDefined();
      }
    }
  });
});

const run = captureOutput;

describe('llmts generate --lookup / --model-draft', () => {
  it('prints the plain run’s ids and the draft counts', async () => {
    const args = [dir, 'color red count', '--backend', 'ref', '--seed', '5', '--max-tokens', '40', '--json'];
    const plain = JSON.parse((await run(() => generateMain(args))).out);
    expect(plain.draft).toBeUndefined();
    for (const extra of [['--lookup'], ['--model-draft', draftDir, '--draft-p-min', '0', '--draft-max', '3']]) {
      const r = JSON.parse((await run(() => generateMain([...args, ...extra]))).out);
      expect(r.ids).toEqual(plain.ids);
      expect(r.draft.accepted).toBeLessThanOrEqual(r.draft.drafted);
      if (extra[0] === '--model-draft') expect(r.draft.drafted).toBeGreaterThan(0);
    }
    // streamed to the terminal: the counts on the summary line
    const t = await run(() =>
      generateMain([dir, 'color red count', '--backend', 'ref', '--seed', '5', '--max-tokens', '20', '--lookup']),
    );
    expect(t.err).toMatch(/\d+ of \d+ drafted tokens taken/);
  });

  it('refuses a draft model with another tokenizer, and settings without a drafter, by name', async () => {
    const g = (extra: string[]) => generateMain([dir, 'color', '--backend', 'ref', '--max-tokens', '4', ...extra]);
    const e = await g(['--model-draft', otherTokDir]).catch((x: unknown) => x);
    expect(String((e as Error).message)).toMatch(
      /tokenizer\.json: --model-draft: the draft model's tokenizer differs from the model's at id \d+ \(/,
    );
    await expect(g(['--draft-max', '4'])).rejects.toThrow(ConfigError);
    await expect(g(['--lookup', '--draft-p-min', '0.5'])).rejects.toThrow(/--draft-p-min/);
    await expect(g(['--lookup', '--model-draft', draftDir])).rejects.toThrow(/one drafter/);
    await expect(g(['--lookup', '--draft-max', '0'])).rejects.toThrow(/--draft-max/);
  });
});
