/**
 * Writing responses: JSON bodies, and errors in OpenAI's error object `{ error: { message, type, param, code } }`
 * with their status. An error after an event stream has started goes out as one more event (`data: {"error": …}`,
 * as the OpenAI API streams errors) and ends the stream. Our own named errors that come from a request's content
 * (a prompt too long, special-token text in a message, a template that refuses the messages) are 400s.
 */
import type { ServerResponse } from 'node:http';
import { ConfigError, ContextOverflowError, FileFormatError, LlmtsError, SpecialTokenError } from '../util/errors.js';
import { HttpError } from './routes.js';

/** Answer with a JSON body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** The HttpError an error answers as: itself, a request-content error as 400, anything else as 500. */
export function asHttpError(e: unknown, param: string | null = null): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ContextOverflowError)
    return new HttpError(400, e.message, 'invalid_request_error', param, 'context_length_exceeded');
  if (e instanceof SpecialTokenError) return new HttpError(400, e.message, 'invalid_request_error', param);
  if (e instanceof FileFormatError && e.code === 'E_TEMPLATE')
    return new HttpError(400, e.message, 'invalid_request_error', param);
  if (e instanceof ConfigError) return new HttpError(400, e.message, 'invalid_request_error', e.field);
  if (e instanceof LlmtsError) return new HttpError(500, e.message, 'server_error', null, e.code);
  return new HttpError(500, 'internal server error (see the server log)', 'server_error');
}

/** OpenAI's error body. */
export function errorBody(e: HttpError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Answer with an error: a JSON error, or one last event on a stream that has started. */
export function sendError(res: ServerResponse, e: HttpError): void {
  if (res.destroyed || res.writableEnded) return;
  if (res.headersSent) {
    res.end(`data: ${JSON.stringify(errorBody(e))}\n\n`);
    return;
  }
  const headers: Record<string, string> = {};
  if (e.status === 429 || e.status === 503) headers['Retry-After'] = '1';
  if (e.status === 413) headers['Connection'] = 'close';
  sendJson(res, e.status, errorBody(e), headers);
}
