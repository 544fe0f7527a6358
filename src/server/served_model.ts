/**
 * The model a server serves: the loaded weights with their tokenizer (as the engine's TextCodec), chat template,
 * end-of-sequence ids and sampling defaults, under the name clients ask for. `llmts serve` builds one from a model
 * folder (src/cli/serve.ts); a program can build one from anything that satisfies the engine's interfaces.
 */
import type { ChatTemplate } from '../chat/template.js';
import type { DecoderModel, TextCodec } from '../generate/interfaces.js';
import type { SamplerOptions } from '../generate/sampler.js';
import type { SpeculativeOptions } from '../generate/speculative.js';
import type { Pooling } from '../model/embed.js';

export interface ServedModel {
  /** The id clients pass as `model` and GET /v1/models lists. */
  name: string;
  model: DecoderModel;
  /** How its linear weights are stored, in words (serve's startup line), e.g. "q4k (154 matrices, 5 of them q8), 0.64 GB". */
  weights?: string;
  /** Text ⇄ ids: `encode` honours special tokens (trusted text), `encodePlain` must not (message contents). */
  codec: TextCodec;
  /** Messages → prompt text (the model's Jinja chat_template, or ChatML / a transcript). */
  template: ChatTemplate;
  /** Token ids that end any generation (eos). */
  eosTokens: readonly number[];
  /** The id of a special token's text (to make the template's end-of-turn markers stop tokens), if it is one. */
  specialId(text: string): number | undefined;
  /** Sampler settings used where a request gives none (generation_config.json). */
  defaults: SamplerOptions;
  /** Prepended to a /v1/completions text prompt (tokenizers with add_bos_token), or null. */
  bosId: number | null;
  /** OpenAI's `system_fingerprint`: names these weights (e.g. from a hash of model.safetensors). */
  fingerprint: string;
  /** Unix seconds the model was loaded (GET /v1/models `created`). */
  created: number;
  /**
   * Speculative decoding for every request (`llmts serve --model-draft` / `--lookup`): the replies are the same, only
   * sooner where the drafts hold. A chat request's `prediction` drafts from its text instead.
   */
  speculative?: SpeculativeOptions;
  /**
   * How /v1/embeddings pools and frames a text (src/model/hf/pooling.ts; the tokenizer's BOS and appended EOS).
   * Absent: the last token, normalised, the text's ids alone.
   */
  embedding?: { pooling: Pooling; normalize: boolean; bos: number | null; eos: number | null };
}

/** How a chat reply ends: eos and the template's end-of-turn markers, as token ids where they are tokens, else text. */
export function chatStops(s: ServedModel): { tokens: number[]; strings: string[] } {
  const tokens = new Set(s.eosTokens);
  const strings: string[] = [];
  for (const m of s.template.stopStrings) {
    const id = s.specialId(m);
    if (id !== undefined) tokens.add(id);
    else strings.push(m);
  }
  return { tokens: [...tokens], strings };
}
