// Structured output on `llmts serve` through the official `openai` client: response_format json_schema and
// json_object, llama-server's json_schema and grammar (GBNF) fields, streamed and not, on a tiny random model that
// knows nothing of JSON — the replies must still parse and satisfy the schema (checked with Ajv). Bad schemas and
// grammars are 400s naming the field.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../src/cli/serve.js';
import { createServer, type LlmServer } from '../src/server/server.js';
import { makeTinyModel } from './sft_helpers.js';

let dir: string;
let server: LlmServer;
let client: OpenAI;
let url: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-structured-'));
  await makeTinyModel(dir, { context: 512 });
  const served = await loadServedModel(dir, { backend: 'ref', modelName: 'tiny' });
  server = createServer({ served, port: 0, maxTokens: 300 });
  url = await server.listen();
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const SCHEMA = {
  type: 'object',
  properties: {
    color: { enum: ['red', 'green', 'blue'] },
    count: { type: 'integer', minimum: 0 },
    ok: { type: 'boolean' },
    note: { type: ['string', 'null'], maxLength: 6 },
  },
  required: ['color', 'count', 'ok', 'note'],
  additionalProperties: false,
};
const MESSAGES = [{ role: 'user' as const, content: 'color red' }];

describe('structured output through the openai client', () => {
  const validate = new Ajv({ strict: false }).compile(SCHEMA);

  it('response_format json_schema: every reply is JSON the schema accepts, streamed or not', async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const r = await client.chat.completions.create({
        model: 'tiny',
        messages: MESSAGES,
        seed,
        max_tokens: 250,
        response_format: { type: 'json_schema', json_schema: { name: 'reply', schema: SCHEMA, strict: true } },
      });
      const text = r.choices[0]!.message.content!;
      expect(r.choices[0]!.finish_reason).toBe('stop');
      expect({ text, ok: validate(JSON.parse(text)) }).toEqual({ text, ok: true });
      // the same request streamed gives the same text
      const s = await client.chat.completions.create({
        model: 'tiny',
        messages: MESSAGES,
        seed,
        max_tokens: 250,
        stream: true,
        response_format: { type: 'json_schema', json_schema: { name: 'reply', schema: SCHEMA, strict: true } },
      });
      let streamed = '';
      for await (const ch of s) streamed += ch.choices[0]?.delta.content ?? '';
      expect(streamed).toBe(text);
    }
  });

  it('response_format json_object gives a JSON object; /v1/completions takes a GBNF grammar', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      seed: 5,
      max_tokens: 250,
      temperature: 0.7,
      response_format: { type: 'json_object' },
    });
    const c = r.choices[0]!;
    if (c.finish_reason === 'stop') {
      const v = JSON.parse(c.message.content!) as unknown;
      expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
    } else expect(c.message.content!.startsWith('{')).toBe(true); // cut by max_tokens: still a prefix of one
    const body = {
      model: 'tiny',
      prompt: 'color',
      max_tokens: 40,
      seed: 2,
      grammar: 'root ::= ("red" | "green" | "blue") (", " ("red" | "green" | "blue")){0,2} "."',
    };
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const j = (await res.json()) as { choices: { text: string; finish_reason: string }[] };
    expect(j.choices[0]!.text).toMatch(/^(red|green|blue)(, (red|green|blue)){0,2}\.$/);
    expect(j.choices[0]!.finish_reason).toBe('stop');
  });

  it('llama-server json_schema on chat, and the same schema twice reuses its compiled grammar', async () => {
    for (const seed of [11, 12]) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: MESSAGES, seed, max_tokens: 250, json_schema: SCHEMA }),
      });
      const j = (await res.json()) as { choices: { message: { content: string } }[] };
      expect(validate(JSON.parse(j.choices[0]!.message.content))).toBe(true);
    }
  });

  it('answers a schema or grammar it cannot compile with a 400 naming the field', async () => {
    const bad = async (extra: Record<string, unknown>, param: string, msg: RegExp) => {
      const e = await client.chat.completions.create({ model: 'tiny', messages: MESSAGES, ...extra } as never).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(OpenAI.BadRequestError);
      expect((e as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
      expect((e as Error).message).toMatch(msg);
    };
    await bad(
      {
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } },
        },
      },
      'response_format',
      /response_format\.json_schema\.schema\.uniqueItems: the keyword "uniqueItems" is not supported/,
    );
    await bad(
      { response_format: { type: 'yaml' } },
      'response_format.type',
      /expected text, json_object or json_schema/,
    );
    await bad({ grammar: 'root ::= "a" | ' + '(' }, 'grammar', /grammar:1:/);
    await bad({ grammar: 'root ::= x' }, 'grammar', /undefined rule "x"/);
    await bad(
      { grammar: 'root ::= "a"', response_format: { type: 'json_object' } },
      'grammar',
      /give at most one of response_format, grammar/,
    );
  });
});
