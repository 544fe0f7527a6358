/**
 * Constrained decoding against llama.cpp's own grammar sampler (node-llama-cpp 3.21.1's prebuilt CPU binary): the
 * same weights (a tiny Llama with GPT-2's vocabulary, random, exported to GGUF f32), the same prompt, greedy, the
 * same GBNF text — llama.cpp's example grammars among them. Under a grammar greedy decoding takes the most likely
 * token the grammar allows, so both must write the same tokens: this checks our GBNF reading, recognizer and
 * vocabulary masks against llama.cpp's on whatever paths a model that knows nothing takes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  getLlama,
  type Llama,
  type LlamaModel,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type Token,
} from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/backend/registry.js';
import { tokenizerCodec } from '../src/chat/codec.js';
import { generate } from '../src/generate/engine.js';
import { parseGbnf } from '../src/generate/grammar/gbnf.js';
import type { ModelConfig } from '../src/model/config.js';
import { saveGguf } from '../src/model/gguf/file.js';
import { initModel } from '../src/model/init.js';
import type { CausalLM } from '../src/model/model.js';
import { tokenizerToGguf } from '../src/tokenizer/gguf.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import type { TextTokenizer } from '../src/tokenizer/types.js';
import { Rng } from '../src/util/rng.js';
import { ARITHMETIC_GBNF, CHESS_GBNF, JSON_GBNF, LIST_GBNF } from './gbnf_fixtures.js';

const TOKENS = 40;
let dir: string;
let tok: TextTokenizer;
let ours: CausalLM;
let llama: Llama;
let theirs: LlamaModel;

beforeAll(async () => {
  tok = await loadTokenizer('gpt2');
  const V = tok.vocabSize;
  const config: ModelConfig = {
    family: 'llama',
    vocabSize: V,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 2,
    headDim: 32,
    intermediateSize: 128,
    maxPositions: 256,
    normEps: 1e-5,
    ropeTheta: 10000,
    tieWordEmbeddings: true,
    attentionBias: false,
    attentionOutBias: false,
    mlpBias: false,
    dropout: 0,
    bosTokenId: V - 1,
    eosTokenId: V - 1,
    padTokenId: null,
  };
  ours = initModel(config, new Rng(7), { std: 0.5, backend: getBackend('ref') });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-grammar-llamacpp-'));
  const file = path.join(dir, 'tiny.gguf');
  await saveGguf(ours, file, { type: 'f32', metadata: tokenizerToGguf(tok, V, { bos: V - 1, eos: V - 1 }) });
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  theirs = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
}, 120_000);

afterAll(async () => {
  await theirs?.dispose();
  await llama?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** llama.cpp's greedy ids under the grammar (its end-of-generation token left out, as our stop tokens are). */
async function llamaCppIds(gbnf: string, prompt: number[]): Promise<number[]> {
  const grammar = await llama.createGrammar({ grammar: gbnf });
  const ctx = await theirs.createContext({ contextSize: prompt.length + TOKENS + 8, threads: 1 });
  const ids: number[] = [];
  try {
    const state = new LlamaGrammarEvaluationState({ model: theirs, grammar });
    for await (const id of ctx
      .getSequence()
      .evaluate(prompt as Token[], { temperature: 0, grammarEvaluationState: state })) {
      if (theirs.isEogToken(id)) break;
      ids.push(id);
      if (ids.length >= TOKENS) break;
    }
  } finally {
    await ctx.dispose();
  }
  return ids;
}

async function ourIds(gbnf: string, prompt: number[]): Promise<number[]> {
  const r = await generate(ours, [prompt], {
    temperature: 0,
    maxTokens: TOKENS,
    tokenizer: tokenizerCodec(tok),
    stopTokens: [tok.eosId!],
    grammar: parseGbnf(gbnf),
  });
  return r.choices[0]!.ids;
}

describe('greedy decoding under a GBNF grammar equals llama.cpp’s', () => {
  const cases: [string, string, string][] = [
    ['json.gbnf', JSON_GBNF, 'Here is the JSON:'],
    ['arithmetic.gbnf', ARITHMETIC_GBNF, 'Sums:'],
    ['list.gbnf', LIST_GBNF, 'To do:'],
    ['chess.gbnf', CHESS_GBNF, 'The game went'],
    ['a choice, then free text', 'root ::= ("yes" | "no" | "maybe") ", because " [a-z ]{3,30} "."', 'Is it?'],
    ['digits and a bounded repeat', 'root ::= [1-9] [0-9]{0,5} ("," [0-9]{1,3})* ";"', 'n='],
  ];
  for (const [name, gbnf, text] of cases)
    it(name, async () => {
      const prompt = tok.encode(text);
      const want = await llamaCppIds(gbnf, prompt);
      const got = await ourIds(gbnf, prompt);
      expect(want.length).toBeGreaterThan(3);
      expect({ text: tok.decode(got), got }).toEqual({ text: tok.decode(want), got: want });
    }, 60_000);
});
