/**
 * A chat session: a model, a tokenizer, a chat template and a conversation. `reply(text)` adds the user's message,
 * fits the history to the context window (dropping the oldest turns, reported in `dropped`), streams the assistant's
 * reply, and appends it to the history when it is done (also when it is cut short by an abort: what was shown
 * is what the model said). Used by `llmts chat` and usable by a server.
 *
 * Seeds: the session has one base seed (given or fresh); reply k samples with seed (base + k) mod 2^32, so a whole
 * session with a given seed and the same inputs is repeatable.
 *
 * The session keeps its KV cache between replies (a PromptCache, src/generate/prompt_cache.ts): each turn prefills
 * only what follows the part of the history the last turn already computed, not the whole conversation. Free it
 * with dispose(). Pass `promptCache: false` to prefill every turn from scratch.
 */
import { stream, freshSeed, type FinishReason, type StreamEvent } from '../generate/engine.js';
import type { DecoderCache, DecoderModel, TextCodec } from '../generate/interfaces.js';
import { resolveSamplerOptions, type SamplerOptions } from '../generate/sampler.js';
import { PromptCache, type TruncatableCache } from '../generate/prompt_cache.js';
import { ConfigError } from '../util/errors.js';
import { Conversation, type FitResult } from './conversation.js';
import type { ChatMessage, ChatTemplate } from './template.js';
import type { SpeculativeOptions } from '../generate/speculative.js';

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
  /** Keep the KV cache between replies (default true, where the model's cache can be cut back). */
  promptCache?: boolean;
  /** Speculative decoding of every reply (src/generate/speculative.ts): the same replies, sooner where drafts hold. */
  speculative?: SpeculativeOptions;
}

export interface ReplyStream extends AsyncIterable<StreamEvent> {
  /** Messages dropped from the history to make this reply fit. */
  readonly dropped: ChatMessage[];
  /** Prompt tokens whose keys/values were reused from the last reply (known once the first event arrives). */
  readonly reusedTokens: number;
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
  /** The KV cache kept between replies, or null (promptCache: false, or a model whose cache cannot be cut back). */
  readonly promptCache: PromptCache | null = null;

  constructor(
    readonly model: DecoderModel<C>,
    readonly codec: TextCodec,
    readonly options: ChatSessionOptions,
  ) {
    this.conversation = new Conversation({ system: options.system ?? null });
    this.sampler = resolveSamplerOptions(options.sampler ?? {});
    this.maxTokens = options.maxTokens ?? 256;
    if (!Number.isInteger(this.maxTokens) || this.maxTokens < 1)
      throw new ConfigError('maxTokens', `expected an integer ≥ 1, got ${String(this.maxTokens)}`);
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
    if (options.promptCache !== false) {
      const probe = model.newCache(1, 1);
      const truncatable = typeof (probe as Partial<TruncatableCache>).truncate === 'function';
      probe.reset();
      if (truncatable) this.promptCache = new PromptCache(model as unknown as DecoderModel<TruncatableCache>);
    }
  }

  /** Free the KV cache kept between replies (the session stays usable). */
  dispose(): void {
    this.promptCache?.dispose();
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
      fit = conv.fit(
        this.options.template,
        (t) => this.codec.encode(t),
        this.window,
        this.reserve,
        this.codec.encodePlain?.bind(this.codec),
      );
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
      ...(this.promptCache ? { promptCache: this.promptCache } : {}),
      ...(this.options.speculative ? { speculative: this.options.speculative } : {}),
    });
    let text = '';
    const pc = this.promptCache;
    let reused = 0;
    const out: ReplyStream = {
      dropped: fit.dropped,
      get reusedTokens() {
        return reused;
      },
      seed,
      promptTokens: fit.ids.length,
      get text() {
        return text;
      },
      finishReason: null,
      async *[Symbol.asyncIterator]() {
        try {
          for await (const ev of s) {
            if (pc) reused = pc.lastReused;
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
