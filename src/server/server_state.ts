/**
 * What the OpenAI routes share: the served model, the queue that runs requests one at a time, the prompt caches, the
 * limits of a request, and the server's counters. Built once by createServer (./server.ts).
 */
import type { PromptCachePool } from './cache_pool.js';
import type { RequestLimits } from './openai_params.js';
import type { GenerationQueue } from './queue.js';
import type { ServedModel } from './served_model.js';

export interface ServerLimits extends RequestLimits {
  /** Wall time of one request's generation, in ms: past it a reply ends with finish_reason 'length'. */
  timeoutMs: number;
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

export interface ServerState {
  served: ServedModel;
  queue: GenerationQueue;
  pool: PromptCachePool;
  limits: ServerLimits;
  counters: ServerCounters;
}
