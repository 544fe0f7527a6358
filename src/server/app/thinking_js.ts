/**
 * The page's reading of a thinking model's reply (/app/thinking.js): `<think>…</think>` apart from the answer, so the
 * reply shows its answer with the thinking folded above it. The same rule as the server's `reasoning_format: deepseek`
 * splitter (../reasoning.ts) applied to a whole text: before `</think>` is reasoning (a leading `<think>` dropped:
 * templates that open the tag in the prompt leave it out), after it the answer with its leading whitespace dropped; a
 * reply that opens `<think>` and never closes it (cut off, or still thinking) is all reasoning. The function is plain
 * JavaScript, served as its own source, so Node's tests and the page run the same code.
 */

/** A reply's reasoning (null: none) and its answer. */
export function splitThinking(text: string): { reasoning: string | null; answer: string } {
  const open = '<think>';
  const close = '</think>';
  const at = text.indexOf(close);
  const lead = text.length - text.trimStart().length;
  const opened = text.startsWith(open, lead);
  if (at < 0)
    return opened ? { reasoning: text.slice(lead + open.length), answer: '' } : { reasoning: null, answer: text };
  const reasoning = opened && lead + open.length <= at ? text.slice(lead + open.length, at) : text.slice(0, at);
  return { reasoning, answer: text.slice(at + close.length).trimStart() };
}

export const THINKING_JS = `// A thinking model's reply: <think>…</think> apart from the answer (src/server/app/thinking_js.ts).
export ${splitThinking.toString()}
`;
