/**
 * A thinking model's reply split into its reasoning and its answer, as vLLM's and llama-server's reasoning parsers
 * return them (DeepSeek's format): `<think>…</think>` at the start of a reply (or a prompt that already opened it,
 * as DeepSeek-R1's template does) becomes `reasoning_content`, the rest `content` with its leading whitespace dropped.
 * A reply without the tag is all content; one cut off before `</think>` is all reasoning.
 *
 * One splitter serves streaming and whole replies (a whole reply is one push): text arrives in pieces, and a piece
 * that may be the start of a tag is held back until the next one decides it, so every chunking of a reply splits it
 * the same way.
 */

const OPEN = '<think>';
const CLOSE = '</think>';

/** The reasoning formats: 'none' (the reply as the model wrote it) or 'deepseek' (reasoning_content apart). */
export type ReasoningFormat = 'none' | 'deepseek';
export const REASONING_FORMATS: readonly ReasoningFormat[] = ['none', 'deepseek'];

export interface ReasoningPiece {
  reasoning: string;
  content: string;
}

/** The longest end of `s` that is a proper start of `tag` (text that may still become the tag). */
function heldTail(s: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) if (tag.startsWith(s.slice(s.length - n))) return n;
  return 0;
}

export class ReasoningSplitter {
  private state: 'start' | 'thinking' | 'after' | 'content';
  private held = '';

  /** `thinking`: the prompt already opened the block (its text ends with `<think>`). */
  constructor(thinking = false) {
    this.state = thinking ? 'thinking' : 'start';
  }

  /** The next piece of the reply → what can be emitted now. */
  push(text: string): ReasoningPiece {
    const out: ReasoningPiece = { reasoning: '', content: '' };
    let s = this.held + text;
    this.held = '';
    for (;;) {
      if (this.state === 'content') {
        out.content += s;
        return out;
      }
      if (this.state === 'start') {
        const t = s.trimStart();
        if (t.startsWith(OPEN)) {
          this.state = 'thinking';
          s = t.slice(OPEN.length);
          continue;
        }
        if (OPEN.startsWith(t)) {
          this.held = s; // whitespace, or the tag's first characters: undecided
          return out;
        }
        this.state = 'content';
        continue;
      }
      if (this.state === 'thinking') {
        const at = s.indexOf(CLOSE);
        if (at >= 0) {
          out.reasoning += s.slice(0, at);
          s = s.slice(at + CLOSE.length);
          this.state = 'after';
          continue;
        }
        const keep = heldTail(s, CLOSE);
        out.reasoning += s.slice(0, s.length - keep);
        this.held = s.slice(s.length - keep);
        return out;
      }
      // after the block: the answer starts at its first non-whitespace character
      const t = s.trimStart();
      if (t === '') return out;
      this.state = 'content';
      s = t;
    }
  }

  /** The end of the reply: what was held back. */
  end(): ReasoningPiece {
    const s = this.held;
    this.held = '';
    if (this.state === 'thinking') return { reasoning: s, content: '' };
    if (this.state === 'start') return { reasoning: '', content: s };
    return { reasoning: '', content: '' };
  }
}

/** A whole reply split (see the top of this file). */
export function splitReasoning(text: string, thinking = false): ReasoningPiece {
  const sp = new ReasoningSplitter(thinking);
  const a = sp.push(text),
    b = sp.end();
  return { reasoning: a.reasoning + b.reasoning, content: a.content + b.content };
}

/** Whether a rendered prompt's text leaves the model inside a thinking block (it ends with `<think>`). */
export function promptOpensThinking(promptTail: string): boolean {
  return promptTail.trimEnd().endsWith(OPEN);
}
