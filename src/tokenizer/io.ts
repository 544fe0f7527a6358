/**
 * Loading and saving tokenizers on disk.
 *  - `loadTokenizer('gpt2')`: GPT-2's tokenizer from npm package files (pretrained.ts).
 *  - `loadTokenizer(dir)`: a Hugging Face folder: `tokenizer.json` (+ `tokenizer_config.json` if present), or
 *    GPT-2-style `vocab.json` + `merges.txt`. A path to a tokenizer.json file works too.
 *  - `loadTokenizer('model.gguf')`: the tokenizer in a GGUF file's metadata (./gguf.ts).
 *  - `saveTokenizer(tok, dir)`: writes `tokenizer.json` and `tokenizer_config.json` into `dir` (created if needed;
 *    other files there are left alone), each atomically (temp file + rename).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { FileFormatError } from '../util/errors.js';
import { isFile, makeDirSync, readJsonFile, writeFileAtomic } from '../util/fs.js';
import type { CharTokenizer } from './char_tokenizer.js';
import { readGgufHeader } from '../formats/gguf_file.js';
import { importVocabAndMerges } from './gpt2_files.js';
import { tokenizerFromGguf } from './gguf.js';
import {
  fromTokenizerConfigJson,
  fromTokenizerJson,
  toTokenizerConfigJson,
  toTokenizerJson,
  type WriteOptions,
} from './hf_json.js';
import { isPretrainedName, loadPretrained } from './pretrained.js';
import type { SpmTokenizer } from './spm_tokenizer.js';
import type { Tokenizer } from './tokenizer.js';
import type { TextTokenizer } from './types.js';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** Load a tokenizer by name ('gpt2') or from a folder (or a tokenizer.json path). */
export async function loadTokenizer(dirOrName: string): Promise<Tokenizer | SpmTokenizer | CharTokenizer> {
  if (isPretrainedName(dirOrName) && !(await exists(dirOrName))) return loadPretrained(dirOrName);
  if (dirOrName.toLowerCase().endsWith('.gguf') && (await isFile(dirOrName)))
    return tokenizerFromGguf(await readGgufHeader(dirOrName));
  let dir = dirOrName;
  let tokFile = path.join(dir, TOKENIZER_FILE);
  if (await isFile(dirOrName)) {
    dir = path.dirname(dirOrName);
    tokFile = dirOrName;
  }
  const cfgFile = path.join(dir, TOKENIZER_CONFIG_FILE);
  const config = (await isFile(cfgFile))
    ? fromTokenizerConfigJson(await readJsonFile(cfgFile, 'a Hugging Face tokenizer_config.json'), cfgFile)
    : {};
  if (await isFile(tokFile)) {
    const json = await readJsonFile(tokFile, 'a Hugging Face tokenizer.json');
    return fromTokenizerJson(json, tokFile, config);
  }
  const vocabFile = path.join(dir, 'vocab.json');
  const mergesFile = path.join(dir, 'merges.txt');
  if ((await isFile(vocabFile)) && (await isFile(mergesFile)))
    return importVocabAndMerges(vocabFile, mergesFile, { config });
  throw new FileFormatError(
    'E_FILE_MISSING',
    tokFile,
    `no tokenizer here: expected ${TOKENIZER_FILE} (or vocab.json + merges.txt) in ${dir}, or a built-in name (gpt2)`,
  );
}

/** Write `tokenizer.json` and `tokenizer_config.json` into `dir`. */
export async function saveTokenizer(tok: TextTokenizer, dir: string, options: WriteOptions = {}): Promise<void> {
  makeDirSync(dir); // not fsp.mkdir recursive: it spins on /proc/nope
  const json = toTokenizerJson(tok, options);
  await writeFileAtomic(path.join(dir, TOKENIZER_FILE), JSON.stringify(json));
  const cfg = toTokenizerConfigJson(tok as TextTokenizer);
  await writeFileAtomic(path.join(dir, TOKENIZER_CONFIG_FILE), JSON.stringify(cfg, null, 2) + '\n');
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch {
    return false;
  }
}
