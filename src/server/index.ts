/** The OpenAI-compatible server: createServer, the served model, the route interface the feedback API and app use. */
export { createServer, type LlmServer, type ServerOptions } from './server.js';
export { chatStops, type ServedModel } from './served_model.js';
export { HttpError, type Route, type RouteContext } from './routes.js';
export { GenerationQueue, type QueueOptions, type QueueStats } from './queue.js';
export { PromptCachePool } from './cache_pool.js';
export type { ChatCompletionRecord, ServerCounters } from './server_state.js';
export { sendJson, sendError, errorBody } from './respond.js';
