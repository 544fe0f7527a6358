/**
 * A tiny "pretrained" model folder for the SFT tests: a byte-level BPE with ChatML's special tokens trained on a few
 * sentences, and a randomly initialised 1-layer GPT-2 of its vocabulary, saved as a Hugging Face folder (no
 * chat_template: SFT uses ChatML). And a small conversational dataset whose replies follow from the prompt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getBackend } from '../src/backend/registry.js';
import { saveModel } from '../src/model/hf/folder.js';
import { initModel } from '../src/model/init.js';
import { DEFAULTS, toModelConfig } from '../src/pretrain/settings.js';
import { saveTokenizer, trainBpe } from '../src/tokenizer/index.js';
import { Rng } from '../src/util/rng.js';

export const COLORS = ['red', 'blue', 'green', 'black', 'white', 'pink'];

/** Conversations: the user names a colour, the assistant answers "I like <colour>." */
export function colorRows(
  n: number,
  seed = 5,
): { messages: { role: 'user' | 'assistant' | 'system'; content: string }[] }[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const c = COLORS[rng.int(COLORS.length)]!;
    return {
      messages: [
        { role: 'user' as const, content: `color ${c}` },
        { role: 'assistant' as const, content: `I like ${c}.` },
      ],
    };
  });
}

/** Write the tiny model folder into `dir`. */
export async function makeTinyModel(
  dir: string,
  o: { nLayer?: number; nEmbd?: number; context?: number } = {},
): Promise<void> {
  const text = colorRows(40)
    .map((r) => r.messages.map((m) => `${m.role}\n${m.content}`).join('\n'))
    .join('\n');
  const tok = trainBpe([text, text], {
    vocabSize: 300,
    specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    config: { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>' },
  });
  const cfg = toModelConfig(
    { ...DEFAULTS, nLayer: o.nLayer ?? 1, nHead: 2, nEmbd: o.nEmbd ?? 32, blockSize: o.context ?? 64 },
    tok.vocabSize,
    { bos: tok.eosId ?? null, eos: tok.eosId ?? null },
  );
  const model = initModel(cfg, new Rng(3), { backend: getBackend('ref') });
  fs.mkdirSync(dir, { recursive: true });
  await saveModel(model, dir);
  await saveTokenizer(tok, dir);
}

/** Write rows as JSONL. */
export function writeJsonl(file: string, rows: readonly unknown[]): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  return file;
}
