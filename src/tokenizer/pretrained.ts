/**
 * Tokenizers available by name, built from files that npm packages ship (no download):
 *  - 'gpt2': GPT-2's 50,257-token byte-level BPE (<|endoftext|> = 50256), from js-tiktoken's bundled ranks
 *    (`js-tiktoken/ranks/gpt2`, a runtime dependency). (gpt-3-encoder, a dev dependency, only checks it in tests.)
 *  - 'cl100k_base' (GPT-4, GPT-3.5) and 'o200k_base' (GPT-4o): from js-tiktoken's bundled ranks and patterns;
 *    merges are recovered from the ranks (tiktoken_files.ts), which takes a second or two.
 */
import { ConfigError, UnsupportedError } from '../util/errors.js';
import type { PatternName } from './patterns.js';
import { parseJsTiktokenRanks, specFromRanks } from './tiktoken_files.js';
import { Tokenizer, type BpeTokenizerSpec } from './tokenizer.js';
import type { TokenizerConfig } from './types.js';

export const PRETRAINED_NAMES = ['gpt2', 'cl100k_base', 'o200k_base'] as const;
export type PretrainedName = (typeof PRETRAINED_NAMES)[number];

export function isPretrainedName(name: string): name is PretrainedName {
  return (PRETRAINED_NAMES as readonly string[]).includes(name);
}

interface JsTiktokenBundle {
  pat_str: string;
  bpe_ranks: string;
  special_tokens: Record<string, number>;
}

/** Specs built from js-tiktoken ranks, by name: each load gets its own Tokenizer, sharing the read-only bytes. */
const specCache = new Map<string, BpeTokenizerSpec>();

/** A tiktoken encoding from js-tiktoken's bundled ranks (`js-tiktoken/ranks/<name>`). */
export async function fromJsTiktoken(
  name: 'gpt2' | 'cl100k_base' | 'o200k_base',
  config: TokenizerConfig = {},
): Promise<Tokenizer> {
  const cached = specCache.get(name);
  if (cached) return new Tokenizer({ ...cached, config: structuredClone(config) });
  let mod: { default: JsTiktokenBundle };
  switch (name) {
    case 'gpt2':
      mod = (await import('js-tiktoken/ranks/gpt2')) as { default: JsTiktokenBundle };
      break;
    case 'cl100k_base':
      mod = (await import('js-tiktoken/ranks/cl100k_base')) as { default: JsTiktokenBundle };
      break;
    case 'o200k_base':
      mod = (await import('js-tiktoken/ranks/o200k_base')) as { default: JsTiktokenBundle };
      break;
  }
  const b = mod.default;
  const file = `js-tiktoken/ranks/${name}`;
  // cl100k's bundled pattern is the JavaScript spelling of our 'cl100k' pattern (same splits; tested)
  const pattern: PatternName | { patterns: string[] } =
    name === 'gpt2' ? 'gpt2' : name === 'cl100k_base' ? 'cl100k' : { patterns: [b.pat_str] };
  const spec = specFromRanks(parseJsTiktokenRanks(b.bpe_ranks, file), {
    pattern,
    specialTokens: b.special_tokens,
    file,
  });
  specCache.set(name, spec);
  return new Tokenizer({ ...spec, config: structuredClone(config) });
}

/** GPT-2's tokenizer_config.json values (Hugging Face `gpt2`). */
export function gpt2Config(): TokenizerConfig {
  return { bosToken: '<|endoftext|>', eosToken: '<|endoftext|>', unkToken: '<|endoftext|>', modelMaxLength: 1024 };
}

/** GPT-2 from js-tiktoken's bundled ranks. */
export async function gpt2FromJsTiktoken(): Promise<Tokenizer> {
  return fromJsTiktoken('gpt2', gpt2Config());
}

/** A tokenizer by name ('gpt2', 'cl100k_base', 'o200k_base'). */
export async function loadPretrained(name: string): Promise<Tokenizer> {
  if (!isPretrainedName(name)) {
    throw new ConfigError(
      'tokenizer',
      `no built-in tokenizer named ${JSON.stringify(name)} (have: ${PRETRAINED_NAMES.join(', ')})`,
    );
  }
  try {
    return name === 'gpt2'
      ? await gpt2FromJsTiktoken()
      : await fromJsTiktoken(name, { eosToken: '<|endoftext|>', bosToken: '<|endoftext|>' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
  throw new UnsupportedError(
    `the '${name}' tokenizer needs the npm package js-tiktoken installed (a dependency of llmts)`,
  );
}
