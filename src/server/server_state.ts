/**
 * What the OpenAI routes share: the served model, the queue that gives requests their turns (generations in parallel
 * slots, their decode steps batched), the prompt caches, the
 * limits of a request, and the server's counters. Built once by createServer (./server.ts).
 */
import type { ChatMessage } from '../chat/template.js';
import type { FinishReason } from '../generate/engine.js';
import type { ResolvedSamplerOptions } from '../generate/sampler.js';
import type { PromptCachePool } from './cache_pool.js';
import type { RequestLimits } from './openai_params.js';
import type { StepBatcher } from '../generate/step_batcher.js';
import type { GenerationQueue } from './queue.js';
import type { ReplyLinker } from './reply_link.js';
import type { ServedModel } from './served_model.js';
import type { ReasoningFormat } from './reasoning.js';

export interface ServerLimits extends RequestLimits {
  /** Wall time of one request's generation, in ms: past it a reply ends with finish_reason 'length'. */
  timeoutMs: number;
  /** Prompt tokens per prefill forward (0: the whole prompt at once); the other slots step between the chunks. */
  prefillChunk: number;
}

/** Running counts (GET /health shows them). */
export interface ServerCounters {
  /** Requests answered, any status. */
  requests: number;
  /** Tokens generated (stop tokens included), across requests. */
  tokens: number;
  /** Generations stopped because their client went away. */
  cancelled: number;
}

/**
 * A chat completion that was answered in full (not one whose client went away): what a feedback store keeps per
 * assistant message — the conversation, the weights' fingerprint, the sampler settings, each choice's seed, text and
 * per-token log-probabilities.
 */
export interface ChatCompletionRecord {
  id: string;
  created: number;
  model: string;
  /** The served weights' `system_fingerprint`. */
  fingerprint: string;
  /** The request's messages (system first when there is one). */
  messages: ChatMessage[];
  sampler: ResolvedSamplerOptions;
  maxTokens: number;
  stop: string[];
  choices: {
    index: number;
    seed: number;
    text: string;
    finishReason: FinishReason;
    /** The generated tokens (the stop token aside) and the model's log-probability of each. */
    tokens: { id: number; logprob: number }[];
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ServerState {
  served: ServedModel;
  queue: GenerationQueue;
  /** Shares the decode steps of the generations running in the queue's slots. */
  batcher: StepBatcher;
  pool: PromptCachePool;
  limits: ServerLimits;
  counters: ServerCounters;
  /** Called after each chat completion answered in full (a store of conversations hooks in here). */
  onChatCompletion: ((r: ChatCompletionRecord) => void | Promise<void>) | null;
  /** The feedback store's link for chat completions that carry `llmts` (./reply_link.ts); null: not recorded. */
  replyLinker: ReplyLinker | null;
  /** How chat replies of thinking models come back (./reasoning.ts). */
  reasoningFormat: ReasoningFormat;
  /** Server errors (a hook that threw). */
  log: (line: string) => void;
}
