/**
 * Server-sent events as the OpenAI API streams them: `data: <JSON>\n\n` per chunk, ending with `data: [DONE]\n\n`.
 * Writes wait for the socket to drain (a slow client slows its own generation instead of filling memory), and give
 * up when the client has gone (the route's signal aborts).
 */
import type { ServerResponse } from 'node:http';

/** Send the event-stream headers (status 200). */
export function startSse(res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
}

/**
 * Write one event; resolves when the socket can take more, or at once when `signal` has aborted (the client has
 * gone, or the request's time is up: the event is then buffered, not waited for).
 */
export function sendSse(res: ServerResponse, data: unknown, signal: AbortSignal): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  if (res.write(`data: ${JSON.stringify(data)}\n\n`) || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** End the stream the OpenAI way. */
export function endSse(res: ServerResponse): void {
  if (!res.destroyed) res.end('data: [DONE]\n\n');
}
