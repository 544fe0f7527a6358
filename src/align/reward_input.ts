/**
 * What a reward model reads for a sampled reply (PPO, RLOO with a reward model, best-of-n): the reply's ids decoded
 * to text — its stop token left out — and encoded again exactly as the reward trainer encodes a preference row
 * (pref_data.ts `splitReply`: the chat template around prompt and reply, the end-of-turn marker after it; a plain
 * prompt: prompt + reply + EOS).
 *
 * Scoring the sampled ids as they are shows the reward model sequences it never met in training, and its score head
 * reads the last token:
 * - a reply that stopped on EOS ends in EOS, where every training reply ended in the template's end-of-turn marker;
 * - a reply cut at the length limit ends in an ordinary token, with no end marker at all;
 * - bytes of invalid UTF-8 are byte tokens in the sample but U+FFFD in the text the rater saw, and so in the
 *   feedback file the reward model learned from ("�" is 3 other tokens);
 * - a sampled split of a word need not be the tokenizer's own (BPE encodes each text one way).
 * Measured on sotu-desk (issue 11, seed 1): see the align verify notes in verify_settings.ts.
 *
 * The reply is scored as text, so a reward model could even use another tokenizer; here it is the policy's (the
 * trainers require one vocabulary).
 */
import type { ChatTemplate } from '../chat/template.js';
import type { TrlMessage } from '../data/trl.js';
import type { TextTokenizer } from '../tokenizer/index.js';
import { ConfigError } from '../util/errors.js';
import { splitReply } from './pref_data.js';

/** The prompt as the trainers read it: its conversation, or its plain text. */
export interface RewardPrompt {
  text: string;
  messages?: TrlMessage[] | undefined;
}

/** Encodes sampled replies for a reward model (see the header). */
export class RewardInput {
  private readonly stops: Set<number>;
  private readonly codec: { encode: (t: string) => number[]; eosId: number | undefined };

  /**
   * `maxLength`: the reward model's context window. A re-encoded reply can be longer than the sampled one (an end
   * marker added to a reply cut at the limit, "�" as 3 tokens): then the reply is cut to fit, its end marker kept.
   */
  constructor(
    private readonly tok: TextTokenizer,
    private readonly template: ChatTemplate,
    stopTokens: readonly number[],
    private readonly maxLength = Number.POSITIVE_INFINITY,
  ) {
    this.stops = new Set(stopTokens);
    this.codec = { encode: (t) => tok.encode(t, { allowed: 'all' }), eosId: tok.eosId };
  }

  /** The text of a sampled reply: its ids decoded, a final stop token left out. */
  text(reply: readonly number[]): string {
    const n = reply.length;
    return this.tok.decode(n && this.stops.has(reply[n - 1]!) ? reply.slice(0, -1) : [...reply]);
  }

  /**
   * Prompt + reply ids for the reward model. `promptIds` (the prompt as sampled) is used as it is when the reply
   * cannot be rendered (a template that drops an empty reply): then the sampled reply ids follow it.
   */
  ids(prompt: RewardPrompt, promptIds: readonly number[], reply: readonly number[]): number[] {
    const text = this.text(reply);
    try {
      const s = prompt.messages
        ? splitReply(prompt.messages, [{ role: 'assistant', content: text }], this.template, this.codec, 'reply')
        : splitReply(prompt.text, text, this.template, this.codec, 'reply');
      const room = this.maxLength - s.prompt.length;
      if (s.completion.length <= room) return [...s.prompt, ...s.completion];
      if (room < 1) return [...promptIds, ...reply].slice(0, this.maxLength);
      return [...s.prompt, ...s.completion.slice(0, room - 1), s.completion[s.completion.length - 1]!];
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return [...promptIds, ...reply];
    }
  }
}
