/**
 * Perplexity (src/model/perplexity.ts, `llmts perplexity`): on the Hugging Face fixtures the mean negative
 * log-likelihood is transformers' own loss on the same ids; the sliding windows score what transformers' recipe
 * scores, each token with the context it says (checked against one forward per token); the command prints the same
 * numbers, bits per byte over the scored tokens' bytes, and names bad input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, getBackend } from '../src/backend/registry.js';
import { main } from '../src/cli/main.js';
import { fromHfConfig } from '../src/model/hf/config.js';
import { loadModel, saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { perplexity, perplexityWindows } from '../src/model/perplexity.js';
import { noGrad, tidy } from '../src/tensor/tensor.js';
import { loadTokenizer, saveTokenizer } from '../src/tokenizer/io.js';
import { leadingBos } from '../src/tokenizer/leading_bos.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { trainBpe } from '../src/tokenizer/trainer.js';
import { ConfigError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { HF_FIXTURES, SHAKESPEARE } from './helpers.js';
import { llama3StyleTokenizer } from './tokenizer_fixtures.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-ppl-'));
beforeAll(async () => {
  await initBackend('ref');
});
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

const tinyLlama = () =>
  initModel(
    fromHfConfig(
      {
        model_type: 'llama',
        vocab_size: 300,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 64,
      },
      'tiny',
    ),
    new Rng(5),
    { std: 0.2, backend: getBackend('ref') },
  );

/** −log p(ids[g] | ids[begin … g − 1]) by one forward over exactly that prefix (float64 log-softmax). */
async function nllGiven(model: CausalLM, ids: number[], begin: number, g: number): Promise<number> {
  const prefix = Int32Array.from(ids.slice(begin, g));
  const t = tidy(() => noGrad(() => model.forward(prefix, 1, prefix.length, { lastOnly: true })));
  const row = (await t.data()) as Float32Array;
  t.dispose();
  let mx = -Infinity;
  for (const x of row) mx = Math.max(mx, x);
  let s = 0;
  for (const x of row) s += Math.exp(x - mx);
  return -(row[ids[g]!]! - mx - Math.log(s));
}

describe('perplexity', () => {
  for (const name of ['gpt2-tiny', 'llama-tiny'])
    it(`${name}: the mean NLL is transformers' loss on the fixture's ids (reference.json)`, async () => {
      const dir = path.join(HF_FIXTURES, name);
      const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as {
        input_ids: number[][];
        loss: number;
      };
      const model = await loadModel(dir, { backend: getBackend('ref') });
      let nll = 0,
        tokens = 0;
      for (const row of ref.input_ids) {
        const r = await perplexity(model, row, { context: row.length, stride: row.length - 1 });
        expect(r.windows).toBe(1);
        nll += r.nll;
        tokens += r.tokens;
      }
      expect(tokens).toBe(ref.input_ids.length * (ref.input_ids[0]!.length - 1));
      expect(Math.abs(nll / tokens - ref.loss) / ref.loss).toBeLessThan(1e-5);
    });

  it("sliding windows: every token scored once, with the context transformers' recipe gives it (one forward per token)", async () => {
    const model = tinyLlama();
    const rng = new Rng(9);
    const ids = Array.from({ length: 37 }, () => rng.int(300));
    for (const [context, stride] of [
      [16, 5],
      [16, 16],
      [8, 3],
    ] as const) {
      const windows = perplexityWindows(ids.length, context, stride);
      // the brute force: each scored token from the start of its window
      let want = 0,
        n = 0;
      for (const w of windows)
        for (let g = w.from; g < w.end; g++) {
          want += await nllGiven(model, ids, w.begin, g);
          n++;
        }
      for (const batchSize of [1, 3]) {
        const r = await perplexity(model, ids, { context, stride, batchSize });
        expect(r.tokens).toBe(n);
        expect(Math.abs(r.nll - want) / want, `context ${context}, stride ${stride}, batch ${batchSize}`).toBeLessThan(
          1e-5,
        );
        expect(Math.abs(r.perplexity / Math.exp(want / n) - 1)).toBeLessThan(1e-5);
      }
      // stride < context: every token after the first exactly once; = context: a window's first token unscored
      expect(n).toBe(stride < context ? ids.length - 1 : ids.length - windows.length);
      if (stride < context)
        for (const [i, w] of windows.entries()) {
          expect(w.from).toBe(i === 0 ? 1 : windows[i - 1]!.end);
          if (i > 0) expect(w.from - w.begin).toBeGreaterThanOrEqual(context - stride); // context each token sees
        }
    }
  });

  it('refuses settings it cannot honour, naming them', async () => {
    const model = tinyLlama();
    const ids = [1, 2, 3, 4, 5];
    await expect(perplexity(model, ids, { context: 65 })).rejects.toThrow(/context.*2 … 64/);
    await expect(perplexity(model, ids, { context: 8, stride: 9 })).rejects.toThrow(/stride.*1 … 8/);
    await expect(perplexity(model, ids, { stride: 0 })).rejects.toThrow(ConfigError);
    await expect(perplexity(model, [7], {})).rejects.toThrow(/at least 2 tokens/);
    await expect(perplexity(model, [1, 300], {})).rejects.toThrow(/token id 300 at 1 is outside the vocabulary/);
  });
});

describe('llmts perplexity', () => {
  let dir = '';
  let tok: Tokenizer;
  const text = fs.readFileSync(SHAKESPEARE, 'utf8').slice(50_000, 53_000);
  const textFile = path.join(TMP, 'held-out.txt');

  beforeAll(async () => {
    tok = trainBpe([fs.readFileSync(SHAKESPEARE, 'utf8').slice(0, 40_000)], { vocabSize: 300 });
    dir = path.join(TMP, 'model');
    await saveModel(tinyLlama(), dir);
    await saveTokenizer(tok, dir);
    fs.writeFileSync(textFile, text);
  }, 60_000);

  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const code = await main(['perplexity', ...args]);
      return { code, out: log.mock.calls.flat().join('\n'), err: error.mock.calls.flat().join('\n') };
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  }

  it('prints what the library computes, bits per byte over the scored bytes; --quantize q8 costs a little', async () => {
    const r = await cli([dir, textFile, '--json', '--backend', 'ref', '--context', '32', '--stride', '16']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as Record<string, number>;
    const ids = tok.encode(text);
    const lib = await perplexity(await loadModel(dir, { backend: getBackend('ref') }), ids, {
      context: 32,
      stride: 16,
    });
    expect(j['tokens']).toBe(ids.length - 1);
    expect(Math.abs(j['perplexity']! - lib.perplexity) / lib.perplexity).toBeLessThan(1e-5); // fused linears here
    const bytes = Buffer.byteLength(text) - tok.tokenBytes(ids[0]!).length;
    expect(j['bytes']).toBe(bytes);
    expect(j['bitsPerByte']).toBeCloseTo(j['nll']! / Math.LN2 / bytes, 10);
    expect(j).toMatchObject({ context: 32, stride: 16, quantize: null });

    const q = await cli([dir, textFile, '--json', '--backend', 'ref', '--context', '32', '--quantize', 'q8']);
    expect(q.code, q.err).toBe(0);
    const jq = JSON.parse(q.out) as Record<string, number>;
    expect(jq['quantize']).toBe('q8');
    expect(jq['perplexity']).not.toBe(j['perplexity']);
    expect(Math.abs(jq['perplexity']! - lib.perplexity) / lib.perplexity).toBeLessThan(0.02);

    // disjoint windows: a window's first token is not scored, nor are its bytes counted
    const d = await cli([dir, textFile, '--json', '--backend', 'ref', '--context', '32', '--stride', '32']);
    const jd = JSON.parse(d.out) as Record<string, number>;
    const firsts = perplexityWindows(ids.length, 32, 32).map((w) => w.begin);
    expect(jd['tokens']).toBe(ids.length - firsts.length);
    expect(jd['bytes']).toBe(Buffer.byteLength(text) - firsts.reduce((n, g) => n + tok.tokenBytes(ids[g]!).length, 0));

    const plain = await cli([dir, textFile, '--backend', 'ref', '--max-tokens', '200']);
    expect(plain.code, plain.err).toBe(0);
    expect(plain.out).toMatch(
      /^perplexity \d+\.\d{3} on 199 tokens of held-out\.txt \(context 64, stride 32, \d+ windows\)\n\d\.\d{4} nats\/token, \d+\.\d{4} bits\/byte/,
    );
  }, 60_000);

  it("a Llama 3 tokenizer's BOS (its TemplateProcessing post-processor, no add_bos_token) comes first: every text token is scored", async () => {
    const { tok: tok3, plain: withBos, bos: id } = llama3StyleTokenizer(40_000);
    expect(leadingBos(tok3)).toBe(id);
    expect(
      leadingBos(new Tokenizer({ ...tok3.toSpec(), config: { ...tok3.config, extra: { add_bos_token: false } } })),
    ).toBeUndefined();
    expect(leadingBos(withBos)).toBeUndefined(); // no post-processor, no add_bos_token
    const d3 = path.join(TMP, 'llama3-style');
    await saveModel(tinyLlama(), d3);
    await saveTokenizer(tok3, d3);
    expect(leadingBos(await loadTokenizer(d3))).toBe(id); // the post-processor survives tokenizer.json
    const r = await cli([d3, textFile, '--json', '--backend', 'ref']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as Record<string, number>;
    expect(j['tokens']).toBe(tok3.encode(text).length); // the BOS is context, every text token scored
    expect(j['bytes']).toBe(Buffer.byteLength(text));
  }, 60_000);

  it('names bad input in one line', async () => {
    const missing = await cli([dir, path.join(TMP, 'nope.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/llmts perplexity: .*nope\.txt.*no such file/);
    const empty = path.join(TMP, 'empty.txt');
    fs.writeFileSync(empty, '  \n');
    expect((await cli([dir, empty])).err).toMatch(/holds no text/);
    expect((await cli([dir, textFile, '--backend', 'ref', '--stride', '200'])).err).toMatch(/stride.*1 … 64/);
    expect((await cli([dir, textFile, '--context', 'abc'])).err).toMatch(/--context.*expected an integer/);
    expect((await cli([TMP, textFile])).err).toMatch(/no config\.json/);
  });
});
