/**
 * A chat session: a model, a tokenizer, a chat template and a conversation. `reply(text)` adds the user's message,
 * fits the history to the context window (dropping the oldest turns, reported in `dropped`), streams the assistant's
 * reply, and appends it to the history when it is done (also when it is cut short by an abort: what was shown
 * is what the model said). Used by `llmts chat` and usable by a server.
 *
 * Seeds: the session has one base seed (given or fresh); reply k samples with seed (base + k) mod 2^32, so a whole
 * session with a given seed and the same inputs is repeatable.
 */
import { stream, freshSeed, type FinishReason, type StreamEvent } from '../generate/engine.js';
import type { DecoderCache, DecoderModel, TextCodec } from '../generate/interfaces.js';
import { resolveSamplerOptions, type SamplerOptions } from '../generate/sampler.js';
import { ConfigError } from '../util/errors.js';
import { Conversation, type FitResult } from './conversation.js';
import type { ChatMessage, ChatTemplate } from './template.js';

export interface ChatSessionOptions {
  template: ChatTemplate;
  system?: string | null;
  sampler?: SamplerOptions;
  /** Most tokens per reply (default 256); also the room kept free for the reply when fitting the history. */
  maxTokens?: number;
  /** Token ids that end a reply (eos); the template's end-of-turn special tokens are added. */
  stopTokens?: readonly number[];
  /** Ids of special-token texts, to turn the template's stop strings into stop token ids where they are tokens. */
  specialId?: (text: string) => number | undefined;
  /** Extra stop strings (besides the template's end of turn). */
  stop?: readonly string[];
  seed?: number;
  /** Context window (default: the model's maxPositions). */
  contextLength?: number;
}

export interface ReplyStream extends AsyncIterable<StreamEvent> {
  /** Messages dropped from the history to make this reply fit. */
  readonly dropped: ChatMessage[];
  readonly seed: number;
  readonly promptTokens: number;
  /** The reply text so far (complete when the iteration has ended). */
  readonly text: string;
  finishReason: FinishReason | null;
}

export class ChatSession<C extends DecoderCache = DecoderCache> {
  readonly conversation: Conversation;
  sampler: SamplerOptions;
  maxTokens: number;
  readonly baseSeed: number;
  private turn = 0;
  private readonly stopTokens: number[];
  private readonly stopStrings: string[];
  readonly window: number;

  constructor(
    readonly model: DecoderModel<C>,
    readonly codec: TextCodec,
    readonly options: ChatSessionOptions,
  ) {
    this.conversation = new Conversation({ system: options.system ?? null });
    this.sampler = resolveSamplerOptions(options.sampler ?? {});
    this.maxTokens = options.maxTokens ?? 256;
    if (!Number.isInteger(this.maxTokens) || this.maxTokens < 1) throw new ConfigError('maxTokens', `expected an integer ≥ 1, got ${String(this.maxTokens)}`);
    this.baseSeed = options.seed ?? freshSeed();
    this.window = Math.min(options.contextLength ?? Infinity, model.config.maxPositions);
    const ids = new Set(options.stopTokens ?? []);
    const strs: string[] = [...(options.stop ?? [])];
    for (const s of options.template.stopStrings) {
      const id = options.specialId?.(s);
      if (id !== undefined) ids.add(id);
      else strs.push(s);
    }
    this.stopTokens = [...ids];
    this.stopStrings = strs;
  }

  /** Change sampler settings (validated). */
  setSampler(s: SamplerOptions): void {
    this.sampler = resolveSamplerOptions({ ...this.sampler, ...s });
  }

  reset(): void {
    this.conversation.reset();
  }

  setSystem(text: string | null): void {
    this.conversation.system = text && text.length > 0 ? text : null;
  }

  /** Room kept for the reply when fitting: maxTokens, but at most half the window. */
  get reserve(): number {
    return Math.max(1, Math.min(this.maxTokens, Math.floor(this.window / 2)));
  }

  /** Add the user's message and stream the reply. */
  reply(userText: string, opts: { signal?: AbortSignal } = {}): ReplyStream {
    const conv = this.conversation;
    conv.addUser(userText);
    let fit: FitResult;
    try {
      fit = conv.fit(this.options.template, (t) => this.codec.encode(t), this.window, this.reserve, this.codec.encodePlain?.bind(this.codec));
    } catch (e) {
      conv.messages.pop(); // the message that did not fit is not kept
      throw e;
    }
    const seed = (this.baseSeed + this.turn++) >>> 0;
    const s = stream(this.model, this.codec, fit.ids, {
      ...this.sampler,
      maxTokens: this.maxTokens,
      stopTokens: this.stopTokens,
      stop: this.stopStrings,
      seed,
      contextLength: this.window,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let text = '';
    const out: ReplyStream = {
      dropped: fit.dropped,
      seed,
      promptTokens: fit.ids.length,
      get text() {
        return text;
      },
      finishReason: null,
      async *[Symbol.asyncIterator]() {
        try {
          for await (const ev of s) {
            text += ev.text;
            yield ev;
          }
          out.finishReason = s.finishReason;
        } finally {
          conv.addAssistant(text);
        }
      },
    };
    return out;
  }
}
