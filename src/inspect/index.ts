/**
 * Seeing inside a model: captured attention and residual stream, the logit lens (./inspect.ts), and the offline page
 * of `llmts inspect` (./page.ts, its script ./page_client.ts).
 */
export * from './inspect.js';
export * from './page.js';
export type { PageData } from './page_client.js';
