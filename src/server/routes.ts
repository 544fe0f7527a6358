/**
 * The server's route interface: the OpenAI API (src/server/openai_*.ts), the feedback API (src/server/feedback_api.ts)
 * and the web app's static files are each a `Route`; the server tries them in order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** One request as a route sees it. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request URL, parsed against the server's own origin. */
  url: URL;
  /** The upper-case HTTP method. */
  method: string;
  /** The body parsed as JSON, bounded by the server's body limit: a bad body rejects with an HttpError (400 / 413). */
  json(): Promise<unknown>;
  /** Aborted when the client goes away (stop any generation for it). */
  signal: AbortSignal;
}

/** A route: resolves true when it handled the request (it has written the response), false to let the next one try. */
export type Route = (ctx: RouteContext) => Promise<boolean>;

/** Thrown by a route to answer with OpenAI's error object `{ error: { message, type, param, code } }` and this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
