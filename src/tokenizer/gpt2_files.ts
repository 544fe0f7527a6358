/**
 * GPT-2's original tokenizer files: `vocab.json` (encoder.json: byte-level token string → id) and `merges.txt`
 * (vocab.bpe: a `#version` line, then one merge "left right" per line in priority order), as openai/gpt-2 and
 * Hugging Face ship them. A vocab entry that is neither a single byte nor the result of a merge (GPT-2's
 * `<|endoftext|>`) can never come out of BPE, so it becomes a special token.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { FileFormatError } from '../util/errors.js';
import { readJsonFile } from '../util/fs.js';
import { byteLevelToBytes, decodeUtf8 } from './bytes.js';
import type { PatternName } from './patterns.js';
import { Tokenizer, type BpeTokenizerSpec } from './tokenizer.js';
import type { SpecialToken, TokenizerConfig } from './types.js';

export interface Gpt2FilesOptions {
  pattern?: PatternName;
  config?: TokenizerConfig;
  /** File names for error messages. */
  vocabFile?: string;
  mergesFile?: string;
}

/** Build a spec from a parsed vocab.json object and the text of merges.txt. */
export function specFromVocabAndMerges(
  vocab: unknown,
  mergesText: string,
  options: Gpt2FilesOptions = {},
): BpeTokenizerSpec {
  const vocabFile = options.vocabFile ?? 'vocab.json';
  const mergesFile = options.mergesFile ?? 'merges.txt';
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
    throw new FileFormatError(
      'E_TOKENIZER_FILE',
      vocabFile,
      'expected a JSON object mapping token strings to ids',
      'vocab',
    );
  }
  const tokenBytes: (Uint8Array | undefined)[] = [];
  const idOf = new Map<string, number>();
  const seenIds = new Set<number>();
  const raw: { id: number; key: string }[] = [];
  for (const [key, id] of Object.entries(vocab as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
      throw new FileFormatError(
        'E_TOKENIZER_FILE',
        vocabFile,
        `token ${JSON.stringify(key)} has id ${JSON.stringify(id)}; expected a non-negative integer`,
        `vocab[${JSON.stringify(key)}]`,
      );
    }
    if (seenIds.has(id)) {
      throw new FileFormatError(
        'E_TOKENIZER_FILE',
        vocabFile,
        `id ${id} is used by two tokens`,
        `vocab[${JSON.stringify(key)}]`,
      );
    }
    seenIds.add(id);
    idOf.set(key, id);
    raw.push({ id, key });
  }
  const specials: SpecialToken[] = [];
  const produced = new Set<number>();
  for (const { id, key } of raw) {
    const b = byteLevelToBytes(key);
    if (b === null || b.length === 0) specials.push({ id, content: key, special: true });
    else tokenBytes[id] = b;
  }
  const merges: [number, number][] = [];
  const lines = mergesText.split('\n');
  for (let ln = 0; ln < lines.length; ln++) {
    let line = lines[ln]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '' || (ln === 0 && line.startsWith('#version'))) continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new FileFormatError(
        'E_TOKENIZER_FILE',
        mergesFile,
        `expected "left right", got ${JSON.stringify(line)}`,
        `line ${ln + 1}`,
      );
    }
    const a = idOf.get(parts[0]);
    const b = idOf.get(parts[1]);
    const joined = idOf.get(parts[0] + parts[1]);
    if (a === undefined || b === undefined || joined === undefined) {
      const missing = a === undefined ? parts[0] : b === undefined ? parts[1] : parts[0] + parts[1];
      throw new FileFormatError(
        'E_TOKENIZER_FILE',
        mergesFile,
        `token ${JSON.stringify(missing)} is not in ${path.basename(vocabFile)}`,
        `line ${ln + 1}`,
      );
    }
    merges.push([a, b]);
    produced.add(joined);
  }
  // multi-byte vocab entries no merge produces cannot come out of BPE: they are added/special tokens
  const isSpecialId = new Set(specials.map((s) => s.id));
  for (const { id } of raw) {
    const b = tokenBytes[id];
    if (b && b.length > 1 && !produced.has(id) && !isSpecialId.has(id)) {
      specials.push({ id, content: decodeUtf8(b), special: true });
      tokenBytes[id] = undefined;
    }
  }
  specials.sort((x, y) => x.id - y.id);
  return {
    tokenBytes,
    merges,
    specialTokens: specials,
    pattern: options.pattern ?? 'gpt2',
    ...(options.config ? { config: options.config } : {}),
    fail: (field, message) => {
      throw new FileFormatError(
        'E_TOKENIZER_FILE',
        field.startsWith('model.merges') ? mergesFile : vocabFile,
        message,
        field,
      );
    },
  };
}

/** Import GPT-2-style `vocab.json` + `merges.txt` files. */
export async function importVocabAndMerges(
  vocabFile: string,
  mergesFile: string,
  options: Omit<Gpt2FilesOptions, 'vocabFile' | 'mergesFile'> = {},
): Promise<Tokenizer> {
  const vocab = await readJsonFile(vocabFile, 'a GPT-2 vocab.json (token string → id)');
  let mergesText: string;
  try {
    mergesText = await fsp.readFile(mergesFile, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(
      code === 'ENOENT' ? 'E_FILE_MISSING' : 'E_FILE_READ',
      mergesFile,
      `cannot read merges.txt: ${(e as Error).message}`,
    );
  }
  return new Tokenizer(specFromVocabAndMerges(vocab, mergesText, { ...options, vocabFile, mergesFile }));
}
