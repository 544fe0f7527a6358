/**
 * A tokenizer from the contents of Hugging Face files held in memory: `tokenizer.json` (text or parsed object) and,
 * optionally, `tokenizer_config.json`. No file access, so it works in a browser (fetch the files, pass the text);
 * loading a folder from disk is ./io.ts's `loadTokenizer`.
 *
 *   const tok = tokenizerFromJson(await (await fetch('/model/tokenizer.json')).text());
 */
import { FileFormatError } from '../util/errors.js';
import { fromTokenizerConfigJson, fromTokenizerJson } from './hf_json.js';
import type { CharTokenizer } from './char_tokenizer.js';
import type { SpmTokenizer } from './spm_tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

function parsed(json: unknown, file: string): unknown {
  if (typeof json !== 'string') return json;
  try {
    return JSON.parse(json) as unknown;
  } catch (e) {
    throw new FileFormatError('E_TOKENIZER_FILE', file, `not valid JSON: ${(e as Error).message}`);
  }
}

/** `tokenizerJson`: tokenizer.json's text or parsed object; `tokenizerConfig`: the same for tokenizer_config.json. */
export function tokenizerFromJson(
  tokenizerJson: unknown,
  tokenizerConfig?: unknown,
): Tokenizer | SpmTokenizer | CharTokenizer {
  const config =
    tokenizerConfig === undefined ? {} : fromTokenizerConfigJson(parsed(tokenizerConfig, 'tokenizer_config.json'));
  return fromTokenizerJson(parsed(tokenizerJson, 'tokenizer.json'), 'tokenizer.json', config);
}
