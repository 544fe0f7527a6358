/**
 * A toy arithmetic task for the RLOO tests, judged by the shipped O4 rater (raters/arithmetic.mjs): "What is N+0?"
 * for two-digit N, answered "N." The SFT demonstrations are right only half the time — the other half writes N's
 * digits reversed — so the SFT model samples the right answer about half the time, and a verifiable reward has
 * something to teach. Prompts with N mod 7 = 3 are held out (never trained on, by SFT or RLOO).
 * A tiny model (byte-level BPE, 2-layer GPT-2) is fine-tuned on the demonstrations from random weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadRewardFunction } from '../src/align/reward_fn.js';
import { readPrompts, type RlPrompt } from '../src/align/rl_prompts.js';
import type { RlooConfig } from '../src/align/rloo_settings.js';
import { stopTokensOf } from '../src/align/rl_data.js';
import { sft } from '../src/align/sft.js';
import { templateOf } from '../src/align/sft.js';
import { buildSftConfig } from '../src/align/sft_settings.js';
import { getBackend } from '../src/backend/registry.js';
import { sampleBatch } from '../src/generate/batch.js';
import { loadModel, saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import { DEFAULTS, toModelConfig } from '../src/pretrain/settings.js';
import { loadTokenizer, saveTokenizer, trainBpe } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';
import { quiet } from './ppo_helpers.js';
import { writeJsonl } from './sft_helpers.js';

export interface ToyArithmetic {
  sftDir: string;
  /** The O4 rater module (raters/arithmetic.mjs). */
  rater: string;
  /** RLOO's prompts (the train ones). */
  promptsFile: string;
  /** The held-out prompts, encoded for the SFT model. */
  heldout: RlPrompt[];
  stopTokens: number[];
  /** The RLOO settings of the end-to-end test (over the `tiny` preset). */
  rloo: Partial<RlooConfig>;
}

const question = (n: number) => [{ role: 'user' as const, content: `What is ${n}+0?` }];
const reversed = (n: number) => String(n).split('').reverse().join('');

/** Build the toy in `tmp`: tokenizer, base model, SFT checkpoint, prompt files. */
export async function makeToyArithmetic(
  tmp: string,
  sftSteps = 600,
  backend: 'ref' | 'wasm' = 'wasm',
): Promise<ToyArithmetic> {
  const ns = Array.from({ length: 90 }, (_, i) => i + 10).filter((n) => n % 11 !== 0); // no palindromes
  const train = ns.filter((n) => n % 7 !== 3),
    held = ns.filter((n) => n % 7 === 3);
  const rng = new Rng(7);
  const rows = train.flatMap((n) =>
    Array.from({ length: 6 }, () => ({
      messages: [...question(n), { role: 'assistant' as const, content: `${rng.random() < 0.5 ? n : reversed(n)}.` }],
    })),
  );
  rng.shuffle(rows);
  const text = rows.map((r) => r.messages.map((m) => `${m.role}\n${m.content}`).join('\n')).join('\n');
  const tok = trainBpe([text], {
    vocabSize: 259, // bytes and the specials, no merges: a digit is a token
    specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
  });
  const base = path.join(tmp, 'base');
  const cfg = toModelConfig({ ...DEFAULTS, nLayer: 2, nHead: 2, nEmbd: 48, blockSize: 48 }, tok.vocabSize, {
    bos: tok.eosId ?? null,
    eos: tok.eosId ?? null,
  });
  fs.mkdirSync(base, { recursive: true });
  await saveModel(initModel(cfg, new Rng(3), { backend: getBackend('ref') }), base);
  await saveTokenizer(tok, base);
  const sftData = writeJsonl(path.join(tmp, 'sft.jsonl'), rows);
  const s = await sft({
    ...quiet,
    config: buildSftConfig({
      preset: 'tiny',
      overrides: {
        model: base,
        data: [sftData],
        outDir: path.join(tmp, 'runs'),
        name: 'sft',
        backend,
        quiet: true,
        maxSteps: sftSteps,
        batchSize: 16,
        lr: 3e-3,
        minLr: 3e-4,
        epochs: 100,
      },
    }),
  });
  const promptsFile = writeJsonl(
    path.join(tmp, 'prompts.jsonl'),
    train.map((n) => ({ prompt: question(n) })),
  );
  const heldFile = writeJsonl(
    path.join(tmp, 'heldout.jsonl'),
    held.map((n) => ({ prompt: question(n) })),
  );
  const stok = await loadTokenizer(s.checkpointDir);
  const { template } = await templateOf(s.checkpointDir, stok);
  const encode = (t: string) => stok.encode(t, { allowed: 'all' });
  const heldout = readPrompts([heldFile], template, encode, { badRows: 'error', maxPromptLength: 47 }).prompts;
  return {
    sftDir: s.checkpointDir,
    rater: path.resolve('raters/arithmetic.mjs'),
    promptsFile,
    heldout,
    stopTokens: stopTokensOf(stok, template.stopStrings, encode),
    rloo: {
      rlooK: 4,
      batchSize: 32,
      miniBatchSize: 16,
      ppoEpochs: 4,
      totalEpisodes: 32 * 40,
      responseLength: 6,
      klCoef: 0.01,
      lr: 3e-4,
      minLr: 3e-4,
    },
  };
}

/** Exact match over the held-out prompts, `samples` replies each at temperature 1 (seeded). */
export async function exactMatchRate(toy: ToyArithmetic, dir: string, samples = 16): Promise<number> {
  const model = await loadModel(dir, { backend: getBackend('ref') });
  const tok = await loadTokenizer(dir);
  const reward = await loadRewardFunction(toy.rater);
  const items = toy.heldout.flatMap((p) => Array.from({ length: samples }, () => p));
  const out = await sampleBatch(
    model,
    items.map((p) => Int32Array.from(p.ids)),
    { maxTokens: 6, temperature: 1, stopTokens: toy.stopTokens, seed: 99, batchSize: 64 },
  );
  let right = 0;
  for (let i = 0; i < items.length; i++) {
    const ids = Array.from(out[i]!.ids).filter((id) => !toy.stopTokens.includes(id));
    right += await reward.score(items[i]!.messages!, tok.decode(ids));
  }
  return right / items.length;
}
