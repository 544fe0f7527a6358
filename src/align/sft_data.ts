/**
 * SFT examples → token ids and a loss mask, as TRL's SFTTrainer with `assistant_only_loss` / `completion_only_loss`:
 *
 *   {"messages": [...]}                 the chat template renders the conversation; loss on every assistant turn
 *   {"prompt": [...], "completion": [...]}  the same, loss on the completion's assistant turns only
 *   {"prompt": "...", "completion": "..."}  prompt text + completion text + EOS; loss on the completion and EOS
 *   {"text": "..."}                      plain language modelling: loss on every token, + EOS
 *
 * An assistant turn's loss covers its content and the end-of-turn marker that closes it (`<|im_end|>` in ChatML,
 * `<|eot_id|>` in Llama 3, …: the template's first stop string after the content), not the header before it or
 * the newline after it. The mask is derived by rendering prefix by prefix, for assistant message i:
 *
 *   before  = render(messages[..i), add_generation_prompt = true)     ends where the reply starts
 *   through = render(messages[..i], add_generation_prompt = false)    ends after the reply's turn
 *
 * each a prefix of the full rendering, so [len(before), end of turn in through) is the reply's span in characters.
 * The rendering is cut at the span boundaries and each piece encoded (special tokens honoured, as transformers'
 * tokenizers do), so the prompt ends exactly where `llmts chat` ends it, at the generation prompt. A template that
 * does not render prefix by prefix is a ConfigError.
 */
import type { ChatMessage, ChatTemplate } from '../chat/template.js';
import type { LanguageModelingRow, PromptCompletionRow, TrlMessage } from '../data/trl.js';
import { ConfigError } from '../util/errors.js';

/** Loss target value of positions that do not count. */
export const IGNORE_INDEX = -100;

/** A row SFT trains on. */
export type SftRow = LanguageModelingRow | PromptCompletionRow;

/** What the encoder needs from a tokenizer. */
export interface SftCodec {
  /** Text → ids, special-token text honoured (the template's markers). */
  encode(text: string): number[];
  /** End-of-sequence id, appended to plain rows (none: nothing appended). */
  eosId?: number | undefined;
}

/** One tokenised example: ids and, per id, whether the loss counts it (an assistant / completion token). */
export interface SftExample {
  ids: number[];
  /** 1 where the token is a target of the loss. */
  mask: Uint8Array;
}

/** A conversation's rendering and the character spans that carry the loss. */
export interface RenderedConversation {
  text: string;
  spans: [number, number][];
}

/**
 * Render a conversation and find the spans of the assistant messages whose index passes `train`: each from where the
 * reply starts to the end of its end-of-turn marker (see the header).
 */
export function renderWithSpans(
  messages: readonly ChatMessage[],
  template: ChatTemplate,
  train: (i: number) => boolean,
): RenderedConversation {
  const text = template.render(messages, { addGenerationPrompt: false });
  const spans: [number, number][] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role !== 'assistant' || !train(i)) continue;
    const before = template.render(messages.slice(0, i), { addGenerationPrompt: true });
    const through = template.render(messages.slice(0, i + 1), { addGenerationPrompt: false });
    if (!through.startsWith(before) || !text.startsWith(through)) {
      throw new ConfigError(
        'chat_template',
        `the ${template.kind} template does not render conversations prefix by prefix (message ${i}: the rendering up to the reply is not a prefix of the whole), so the assistant tokens cannot be found`,
      );
    }
    const tail = through.slice(before.length);
    const at = m.content ? tail.indexOf(m.content) : 0;
    const afterContent = at >= 0 ? at + m.content.length : 0;
    let end = tail.length;
    let first = Infinity;
    for (const s of template.stopStrings) {
      const k = tail.indexOf(s, afterContent);
      if (k >= 0 && k < first) {
        first = k;
        end = k + s.length;
      }
    }
    if (end > 0) spans.push([before.length, before.length + end]);
  }
  return { text, spans };
}

/** Cut `text` at the span boundaries, encode each piece, and mark the ids of the spans. */
export function encodeSpans(text: string, spans: readonly [number, number][], codec: SftCodec): SftExample {
  const ids: number[] = [];
  const mask: number[] = [];
  let at = 0;
  const piece = (to: number, on: boolean) => {
    if (to <= at) return;
    for (const id of codec.encode(text.slice(at, to))) {
      ids.push(id);
      mask.push(on ? 1 : 0);
    }
    at = to;
  };
  for (const [s, e] of spans) {
    piece(s, false);
    piece(e, true);
  }
  piece(text.length, false);
  return { ids, mask: Uint8Array.from(mask) };
}

function toChat(ms: readonly TrlMessage[]): ChatMessage[] {
  return ms.map((m) => ({ role: m.role, content: m.content }));
}

/**
 * Encode one SFT row (see the header). Throws a ConfigError naming the field when the row has nothing to learn
 * from (a conversation without an assistant message).
 */
export function encodeSftRow(row: SftRow, template: ChatTemplate, codec: SftCodec): SftExample {
  const eos = codec.eosId !== undefined ? [codec.eosId] : [];
  if ('text' in row) {
    const ids = [...codec.encode(row.text), ...eos];
    return { ids, mask: new Uint8Array(ids.length).fill(1) };
  }
  if ('messages' in row) {
    if (!row.messages.some((m) => m.role === 'assistant'))
      throw new ConfigError('messages', 'no assistant message: nothing to train on');
    const r = renderWithSpans(toChat(row.messages), template, () => true);
    return encodeSpans(r.text, r.spans, codec);
  }
  if (typeof row.prompt === 'string' && typeof row.completion === 'string') {
    const p = codec.encode(row.prompt);
    const c = [...codec.encode(row.completion), ...eos];
    return { ids: [...p, ...c], mask: Uint8Array.from([...p.map(() => 0), ...c.map(() => 1)]) };
  }
  if (typeof row.prompt === 'string' || typeof row.completion === 'string')
    throw new ConfigError('completion', 'prompt and completion must both be text or both be message lists');
  const n = row.prompt.length;
  const msgs = toChat([...row.prompt, ...row.completion]);
  if (!row.completion.some((m) => m.role === 'assistant'))
    throw new ConfigError('completion', 'no assistant message in the completion: nothing to train on');
  const r = renderWithSpans(msgs, template, (i) => i >= n);
  return encodeSpans(r.text, r.spans, codec);
}

/**
 * Cut an example to at most `maxLength` tokens (TRL keeps the start). Returns null when no loss position is left
 * (a target needs a token before it, so the first token never counts).
 */
export function truncateExample(x: SftExample, maxLength: number): { example: SftExample | null; truncated: boolean } {
  const truncated = x.ids.length > maxLength;
  const ids = truncated ? x.ids.slice(0, maxLength) : x.ids;
  const mask = truncated ? x.mask.slice(0, maxLength) : x.mask;
  let targets = 0;
  for (let t = 1; t < ids.length; t++) targets += mask[t]!;
  return { example: targets > 0 ? { ids, mask } : null, truncated };
}

/** Model inputs and aligned targets of an example: inputs ids[0..L-1), targets[t] = ids[t+1] where masked in, else -100. */
export function inputsAndTargets(x: SftExample): { inputs: number[]; targets: number[] } {
  const L = x.ids.length;
  const inputs = x.ids.slice(0, L - 1);
  const targets = inputs.map((_, t) => (x.mask[t + 1] ? x.ids[t + 1]! : IGNORE_INDEX));
  return { inputs, targets };
}
