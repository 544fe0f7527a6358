/**
 * Closing stdout ends a command quietly: `llmts train … | head -1` or `llmts generate … | head -c 5` must not print
 * `Error: write EPIPE` / "Unhandled 'error' event". When stdout (or stderr) is closed under us, further writes are
 * dropped and the command either stops gracefully (a handler registered with `onStdoutClosed` returns true: e.g.
 * training finishes its step and writes a checkpoint, as on Ctrl-C) or the process exits with code 0.
 */

type Handler = () => boolean;
const handlers: Handler[] = [];
let closed = false;

/** Run `h` when stdout closes; return true if it stops the command itself (else the process exits at once). */
export function onStdoutClosed(h: Handler): () => void {
  handlers.push(h);
  return () => {
    const i = handlers.indexOf(h);
    if (i >= 0) handlers.splice(i, 1);
  };
}

/** True once stdout was found closed. */
export function stdoutClosed(): boolean {
  return closed;
}

function drop(stream: NodeJS.WriteStream): void {
  stream.write = ((_chunk: unknown, enc?: unknown, cb?: unknown) => {
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  }) as typeof stream.write;
}

function closedUnderUs(stream: NodeJS.WriteStream): void {
  drop(stream);
  if (closed) return;
  closed = true;
  let handled = false;
  for (const h of [...handlers]) if (h()) handled = true;
  if (!handled) process.exit(0);
}

/** Install the handlers (once, from the CLI entry point). */
export function handleClosedStdout(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') closedUnderUs(s);
      else throw e;
    });
  }
}
