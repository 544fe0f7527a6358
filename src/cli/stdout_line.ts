/**
 * Whether stdout's last write ended a line, so that an error message printed after streamed text (a prompt echoed by
 * `llmts generate`, a reply cut short) starts on a line of its own instead of being glued to that text.
 */
let atStart = true;
let installed = false;

/** Start watching process.stdout's writes (once). */
export function trackStdoutLine(): void {
  if (installed) return;
  installed = true;
  const write = process.stdout.write.bind(process.stdout) as (...a: unknown[]) => boolean;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const s =
      typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('latin1') : '';
    if (s.length) atStart = s.endsWith('\n');
    return write(chunk, ...rest);
  }) as typeof process.stdout.write;
}

/** '\n' when stdout's last write left a line open, else ''. */
export function lineBreakIfOpen(): string {
  return atStart ? '' : '\n';
}
