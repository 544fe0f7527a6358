// `llmts generate` and `llmts chat` end to end, in process: a fixture folder without a tokenizer (ids only) and a
// small random model saved with a byte-level tokenizer that has ChatML special tokens.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { main as generateMain } from '../src/cli/generate.js';
import { main as chatMain } from '../src/cli/chat.js';
import { getBackend } from '../src/backend/registry.js';
import { loadModel, saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import { trainBpe, saveTokenizer } from '../src/tokenizer/index.js';
import { generate } from '../src/generate/engine.js';
import { ConfigError, ContextOverflowError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import type { ModelConfig } from '../src/model/config.js';
import { captureOutput, fixtureDirs } from './helpers.js';

const fixture = fixtureDirs().find((d) => path.basename(d) === 'llama-tiny') ?? fixtureDirs()[0]!;
let tmp = '';
let withTok = '';

const run = captureOutput;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-gen-cli-'));
  withTok = path.join(tmp, 'model');
  const tok = trainBpe('', {
    vocabSize: 259,
    specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    config: { eosToken: '<|endoftext|>' },
  });
  const config: ModelConfig = {
    family: 'llama',
    vocabSize: 259,
    hiddenSize: 32,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 64,
    maxPositions: 128,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: false,
    attentionOutBias: false,
    mlpBias: false,
    dropout: 0,
    bosTokenId: null,
    eosTokenId: 256,
    padTokenId: null,
  };
  const model = initModel(config, new Rng(3), { std: 0.5, backend: getBackend('ref') });
  await saveModel(model, withTok);
  await saveTokenizer(tok, withTok);
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('llmts generate', () => {
  it('--prompt-ids --json on a folder without a tokenizer gives the same ids as the API', async () => {
    const r = await run(() =>
      generateMain([
        fixture,
        '--backend',
        'ref',
        '--prompt-ids',
        '1,2,3',
        '--json',
        '--temperature',
        '0',
        '--max-tokens',
        '6',
        '--top-logprobs',
        '2',
      ]),
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as {
      ids: number[];
      seed: number;
      finish_reason: string;
      logprobs: { content: { top_logprobs: unknown[] }[] };
    };
    const model = await loadModel(fixture, { backend: getBackend('ref') });
    const api = await generate(model, [[1, 2, 3]], { temperature: 0, maxTokens: 6 });
    expect(j.ids).toEqual(api.choices[0]!.ids);
    expect(typeof j.seed).toBe('number');
    expect(j.logprobs.content.length).toBe(j.ids.length);
    expect(j.logprobs.content[0]!.top_logprobs.length).toBe(2);
  });

  it('a text prompt for a folder without a tokenizer is a named error pointing to --prompt-ids', async () => {
    await expect(generateMain([fixture, 'hello'])).rejects.toSatisfy(
      (e: unknown) => e instanceof ConfigError && /--prompt-ids/.test(e.message),
    );
  });

  it('unknown flags and bad values are errors', async () => {
    const r = await run(() => generateMain([fixture, '--prompt-ids', '1', '--bogus']));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/unknown option/);
    await expect(generateMain([fixture, '--prompt-ids', '1', '--temperature', 'hot'])).rejects.toThrow(/--temperature/);
    await expect(generateMain([fixture, '--prompt-ids', '1', '--top-p', '0'])).rejects.toThrow(/topP/);
  });

  it('a prompt longer than the context window is a ContextOverflowError', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => i % 200).join(',');
    await expect(generateMain([fixture, '--backend', 'ref', '--prompt-ids', ids])).rejects.toBeInstanceOf(
      ContextOverflowError,
    );
  });

  it('streams text with a tokenizer; the same --seed repeats it; --show-probs annotates tokens', async () => {
    const a = await run(() =>
      generateMain([withTok, '--backend', 'ref', 'Hello', '--seed', '5', '--max-tokens', '12', '--json']),
    );
    const b = await run(() =>
      generateMain([withTok, '--backend', 'ref', 'Hello', '--seed', '5', '--max-tokens', '12', '--json']),
    );
    const ja = JSON.parse(a.out) as { text: string; seed: number; ids: number[] };
    expect(ja.seed).toBe(5);
    expect(JSON.parse(b.out)).toMatchObject({ text: ja.text, ids: ja.ids });
    const s = await run(() =>
      generateMain([withTok, '--backend', 'ref', 'Hello', '--seed', '5', '--max-tokens', '12']),
    );
    expect(s.code).toBe(0);
    expect(s.out.startsWith('Hello')).toBe(true);
    expect(s.err).toMatch(/seed 5/);
    const p = await run(() =>
      generateMain([
        withTok,
        '--backend',
        'ref',
        'Hello',
        '--seed',
        '5',
        '--max-tokens',
        '4',
        '--show-probs',
        '--top-logprobs',
        '2',
      ]),
    );
    expect(p.out).toMatch(/⟨\d\.\d\d⟩/);
    expect(p.err).toMatch(/alternatives/);
  });

  it('--json-schema / --grammar-file constrain the output; bad ones are errors naming the flag', async () => {
    const schema = {
      type: 'object',
      properties: { n: { type: 'integer' }, ok: { type: 'boolean' } },
      required: ['n', 'ok'],
    };
    const r = await run(() =>
      generateMain([
        withTok,
        'x',
        '--backend',
        'ref',
        '--json',
        '--seed',
        '3',
        '--max-tokens',
        '80',
        '--json-schema',
        JSON.stringify(schema),
      ]),
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { text: string; finish_reason: string; stopped_by: unknown };
    expect(j.finish_reason).toBe('stop');
    const v = JSON.parse(j.text) as { n: unknown; ok: unknown };
    expect(Number.isInteger(v.n) && typeof v.ok === 'boolean').toBe(true);
    const g = path.join(tmp, 'yes.gbnf');
    fs.writeFileSync(g, 'root ::= ("yes" | "no") "!"\n');
    const r2 = await run(() =>
      generateMain([withTok, 'x', '--backend', 'ref', '--json', '--seed', '1', '--grammar-file', g]),
    );
    expect(['yes!', 'no!']).toContain((JSON.parse(r2.out) as { text: string }).text);
    await expect(generateMain([withTok, 'x', '--grammar', 'root ::= "a', '--json'])).rejects.toThrow(/--grammar:1:10/);
    await expect(generateMain([withTok, 'x', '--json-schema', '{"type":'])).rejects.toThrow(
      /--json-schema: the schema is not JSON/,
    );
    await expect(generateMain([withTok, 'x', '--grammar-file', path.join(tmp, 'none.gbnf')])).rejects.toThrow(
      /--grammar-file: cannot read .*none\.gbnf: ENOENT/,
    );
    await expect(generateMain([withTok, 'x', '--grammar', 'root ::= "a"', '--json-schema', '{}'])).rejects.toThrow(
      /--json-schema: give only one of --grammar, --json-schema/,
    );
  });
});

describe('llmts chat', () => {
  it('runs a scripted session: replies, commands, dropping old turns, /save', async () => {
    const saved = path.join(tmp, 'chat.json');
    const lines = [
      'hi',
      '/temp 0',
      '/system be short',
      'tell me more about it please',
      '/probs',
      'ok',
      '/bogus',
      `/save ${saved}`,
      '/exit',
    ];
    const input = Readable.from(lines.map((l) => l + '\n'));
    const output = new PassThrough();
    let text = '';
    output.on('data', (c: Buffer) => (text += c.toString()));
    const code = await chatMain(
      [withTok, '--backend', 'ref', '--max-tokens', '24', '--seed', '1', '--context-length', '100'],
      { input, output },
    );
    expect(code).toBe(0);
    expect(text).toMatch(/chatml template, context 100 tokens, seed 1/);
    expect(text).toMatch(/\[temperature 0\]/);
    expect(text).toMatch(/\[system prompt set\]/);
    expect(text).toMatch(/\[dropped the \d+ oldest messages? to fit the 100-token context\]/);
    expect(text).toMatch(/unknown command \/bogus/);
    const doc = JSON.parse(fs.readFileSync(saved, 'utf8')) as {
      system: string;
      messages: { role: string }[];
      sampler: { temperature: number };
    };
    expect(doc.system).toBe('be short');
    expect(doc.sampler.temperature).toBe(0);
    expect(doc.messages.at(-1)!.role).toBe('assistant');
    expect(doc.messages.at(-2)).toEqual({ role: 'user', content: 'ok' });
  });

  it('--chat-template-kwargs takes a JSON object of template variables (a ChatML model ignores them)', async () => {
    const run = (kw: string) => {
      const output = new PassThrough();
      output.resume();
      return chatMain([withTok, '--backend', 'ref', '--max-tokens', '2', '--chat-template-kwargs', kw], {
        input: Readable.from(['hi\n', '/exit\n']),
        output,
      });
    };
    expect(await run('{"enable_thinking": false}')).toBe(0);
    await expect(run('[1]')).rejects.toThrow(/--chat-template-kwargs.*expected a JSON object/);
    await expect(run('{"messages": 1}')).rejects.toThrow(/'messages' is set by the template's caller/);
  });

  it('/save writes the whole conversation, also the turns dropped from the context window', async () => {
    const saved = path.join(tmp, 'chat-all.json');
    const users = ['hi', 'tell me more about it please', 'ok'];
    const input = Readable.from([...users, `/save ${saved}`, '/exit'].map((l) => l + '\n'));
    const output = new PassThrough();
    let text = '';
    output.on('data', (c: Buffer) => (text += c.toString()));
    expect(
      await chatMain([withTok, '--backend', 'ref', '--max-tokens', '24', '--seed', '1', '--context-length', '100'], {
        input,
        output,
      }),
    ).toBe(0);
    expect(text).toMatch(/\[dropped the \d+ oldest messages?/); // the context window lost turns …
    const doc = JSON.parse(fs.readFileSync(saved, 'utf8')) as { messages: { role: string; content: string }[] };
    expect(doc.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']); // … the file did not
    expect(doc.messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(users);
    expect(text).toMatch(/\[saved 6 messages/);
  });

  it('Ctrl-C at the prompt cancels the line instead of leaving; twice in a row leaves', async () => {
    // A terminal: readline turns the ^C byte into its SIGINT event.
    const input = Object.assign(new PassThrough(), { isTTY: true });
    const output = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
    let text = '';
    output.on('data', (c: Buffer) => (text += c.toString()));
    const done = chatMain([withTok, '--backend', 'ref', '--max-tokens', '3', '--seed', '1'], { input, output });
    const until = async (re: RegExp) => {
      for (let i = 0; i < 500 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 10));
      expect(text).toMatch(re);
    };
    await until(/\/help for commands/);
    input.write('half a line\x03'); // Ctrl-C: the line is dropped, the chat goes on
    await until(/Ctrl-C again/);
    input.write('/temp 0.5\r');
    await until(/\[temperature 0\.5\]/);
    // (had the line been kept, '/temp 0.5' would have been part of a message 'half a line/temp 0.5')
    input.write('\x03\x03'); // twice in a row: leave
    expect(await done).toBe(0);
  });
});
