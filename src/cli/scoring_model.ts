/**
 * The model of a command that scores text (`perplexity`, `eval`): a model folder, a run folder's checkpoint/ or a
 * .gguf file, loaded for inference with its tokenizer (a named error without one) and the BOS its tokenizer puts
 * before a text (../tokenizer/leading_bos.ts).
 */
import type { BackendName } from '../backend/registry.js';
import { isGgufPath } from '../model/gguf/file.js';
import type { QuantizeFlag } from './quantize_flag.js';
import { leadingBos } from '../tokenizer/leading_bos.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { ConfigError } from '../util/errors.js';
import { type Loaded, loadForGeneration } from './generate.js';
import { modelFolderOf } from './inspect.js';

export interface ScoringModel {
  /** The folder (or .gguf file) loaded. */
  dir: string;
  loaded: Loaded;
  tok: TextTokenizer;
  bos: number | undefined;
}

/** Load `modelArg` for scoring `what` (named in the error when there is no tokenizer to encode it). */
export async function loadScoringModel(
  modelArg: string,
  f: { backend: 'auto' | BackendName; threads?: number; quantize?: QuantizeFlag },
  what: string,
): Promise<ScoringModel> {
  const dir = isGgufPath(modelArg) ? modelArg : modelFolderOf(modelArg);
  const loaded = await loadForGeneration(dir, f);
  if (!loaded.tokenizer)
    throw new ConfigError('model', `${dir} has no tokenizer (tokenizer.json), so ${what} cannot be encoded`);
  return { dir, loaded, tok: loaded.tokenizer, bos: leadingBos(loaded.tokenizer) };
}
