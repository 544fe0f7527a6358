/**
 * Whether a tokenizer's owner puts a BOS token before a text, as Hugging Face's tokenizer does when it encodes one:
 * tokenizer_config.json's `add_bos_token` when it says (true or false), else a tokenizer.json `post_processor` of type
 * TemplateProcessing (alone or in a Sequence) whose single-text template begins with a special token — Llama 3's
 * `<|begin_of_text|>`, which has no add_bos_token in its config. `encode` itself never adds it; the commands that
 * score or continue raw text (generate, completions, perplexity, eval, inspect) put it first.
 */
import type { TextTokenizer } from './types.js';

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The id of the special token a TemplateProcessing puts first (or last), if it puts one there. */
function templateEnd(pp: unknown, end: 'first' | 'last'): number | undefined {
  if (!isObj(pp)) return undefined;
  if (pp['type'] === 'Sequence' && Array.isArray(pp['processors'])) {
    for (const p of pp['processors']) {
      const id = templateEnd(p, end);
      if (id !== undefined) return id;
    }
    return undefined;
  }
  if (pp['type'] !== 'TemplateProcessing' || !Array.isArray(pp['single'])) return undefined;
  const first = (end === 'first' ? pp['single'][0] : pp['single'][pp['single'].length - 1]) as unknown;
  if (!isObj(first) || !isObj(first['SpecialToken'])) return undefined;
  const name = first['SpecialToken']['id'];
  const specials = pp['special_tokens'];
  const ids = isObj(specials) && typeof name === 'string' && isObj(specials[name]) ? specials[name]['ids'] : undefined;
  return Array.isArray(ids) && ids.length === 1 && Number.isInteger(ids[0]) ? (ids[0] as number) : undefined;
}

/** The BOS id to put before a text, or undefined (see the top of this file). */
export function leadingBos(tok: TextTokenizer): number | undefined {
  const said = tok.config.extra?.['add_bos_token'];
  if (said === false) return undefined;
  if (said === true) return tok.bosId;
  const id = templateEnd((tok as { postProcessor?: unknown }).postProcessor, 'first');
  return id !== undefined && id >= 0 && id < tok.vocabSize ? id : undefined;
}

/**
 * The EOS id Hugging Face's tokenizer puts after a text, or undefined: tokenizer_config.json's `add_eos_token` when
 * it says, else a TemplateProcessing whose single-text template ends with a special token (Qwen3-Embedding's
 * `$A <|endoftext|>`). Embeddings pool over exactly these ids (src/server/openai_embeddings.ts).
 */
export function trailingEos(tok: TextTokenizer): number | undefined {
  const said = tok.config.extra?.['add_eos_token'];
  if (said === false) return undefined;
  if (said === true) return tok.eosId;
  const id = templateEnd((tok as { postProcessor?: unknown }).postProcessor, 'last');
  return id !== undefined && id >= 0 && id < tok.vocabSize ? id : undefined;
}
