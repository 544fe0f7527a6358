/**
 * A conversation: an optional system prompt and the user/assistant turns so far, rendered through a chat template
 * into token ids, and fitted to the model's context window.
 *
 * Fitting: while the rendered prompt plus `reserve` tokens of room for the reply does not fit the window, drop the
 * oldest non-system message (then any assistant messages left at the front, so the history still starts with a
 * user turn, as strict templates require). The system prompt and the newest message are never dropped; if even they
 * do not fit, that is a ContextOverflowError. Dropped messages are removed from the history and reported, so the
 * caller can tell the user.
 */
import { ConfigError, ContextOverflowError, SpecialTokenError } from '../util/errors.js';
import type { ChatMessage, ChatTemplate, Role } from './template.js';

export interface FitResult {
  /** Prompt token ids (ending with the assistant generation prompt). */
  ids: number[];
  /** The rendered prompt text. */
  text: string;
  /** Messages dropped by this call, oldest first. */
  dropped: ChatMessage[];
}

/** The on-disk form (`/save`): plain JSON. */
export interface ConversationJson {
  system: string | null;
  messages: ChatMessage[];
}

export class Conversation {
  system: string | null;
  messages: ChatMessage[] = [];

  constructor(opts: { system?: string | null; messages?: readonly ChatMessage[] } = {}) {
    this.system = opts.system ?? null;
    if (opts.messages) for (const m of opts.messages) this.add(m.role, m.content, m);
  }

  /** Add a message; `extra` carries an assistant's tool calls or a tool message's call id. */
  add(role: Role, content: string, extra: Pick<ChatMessage, 'tool_calls' | 'tool_call_id'> = {}): void {
    if (role === 'system') {
      this.system = content;
      return;
    }
    if (role !== 'user' && role !== 'assistant' && role !== 'tool')
      throw new ConfigError('role', `expected system, user, assistant or tool, got ${JSON.stringify(role)}`);
    if (typeof content !== 'string') throw new ConfigError('content', 'expected a string');
    const m: ChatMessage = { role, content };
    if (role === 'assistant' && extra.tool_calls?.length) m.tool_calls = extra.tool_calls;
    if (role === 'tool' && extra.tool_call_id !== undefined) m.tool_call_id = extra.tool_call_id;
    this.messages.push(m);
  }

  addUser(content: string): void {
    this.add('user', content);
  }

  addAssistant(content: string): void {
    this.add('assistant', content);
  }

  /** Forget the turns (the system prompt stays). */
  reset(): void {
    this.messages = [];
  }

  /** System message (if any) followed by the turns. */
  all(): ChatMessage[] {
    return this.system !== null && this.system !== ''
      ? [{ role: 'system', content: this.system }, ...this.messages]
      : [...this.messages];
  }

  toJSON(): ConversationJson {
    return { system: this.system, messages: this.messages.map((m) => ({ ...m })) };
  }

  static fromJSON(j: unknown): Conversation {
    const o = j as Partial<ConversationJson>;
    if (!o || typeof o !== 'object' || !Array.isArray(o.messages))
      throw new ConfigError('messages', 'expected { system, messages: [...] }');
    return new Conversation({ system: typeof o.system === 'string' ? o.system : null, messages: o.messages });
  }

  /**
   * Render with the generation prompt and encode. With `encodePlain`, the template's own text (role markers) is
   * encoded with special tokens honoured but every message's content as plain text, so nobody can inject a role
   * marker by typing it: the template is rendered with a placeholder for each content, and the pieces are encoded
   * separately. If a template transforms contents so that the placeholders do not survive, a content that holds
   * special-token text is refused (SpecialTokenError) instead.
   */
  encode(
    template: ChatTemplate,
    encode: (text: string) => number[],
    encodePlain?: (text: string) => number[],
  ): { ids: number[]; text: string } {
    const msgs = this.all();
    const text = template.render(msgs, { addGenerationPrompt: true });
    if (!encodePlain) return { ids: encode(text), text };
    // empty contents get no placeholder (a template may test a content's truth, e.g. an assistant's tool-call turn)
    const marks = msgs.map((m, i) => (m.content === '' ? '' : `\uE000${i}\uE001`));
    let rest = template.render(
      msgs.map((m, i) => ({ ...m, content: marks[i]! })),
      { addGenerationPrompt: true },
    );
    const ids: number[] = [];
    let rebuilt = '';
    let ok = true;
    for (let i = 0; i < msgs.length && ok; i++) {
      if (marks[i] === '') continue;
      const k = rest.indexOf(marks[i]!);
      if (k < 0) ok = false;
      else {
        for (const x of encode(rest.slice(0, k))) ids.push(x); // loops, not push(...): a pasted file can be 1M tokens
        for (const x of encodePlain(msgs[i]!.content)) ids.push(x);
        rebuilt += rest.slice(0, k) + msgs[i]!.content;
        rest = rest.slice(k + marks[i]!.length);
      }
    }
    // the pieces must add up to the real rendering (a template may transform contents, e.g. `| trim`)
    if (ok && !rest.includes('\uE000') && rebuilt + rest === text) {
      for (const x of encode(rest)) ids.push(x);
      return { ids, text };
    }
    for (const m of msgs) {
      const a = encode(m.content),
        b = encodePlain(m.content);
      if (a.length !== b.length || a.some((x, j) => x !== b[j])) {
        const tok = a.find((x) => !b.includes(x));
        throw new SpecialTokenError(`(token id ${tok})`, 0);
      }
    }
    return { ids: encode(text), text };
  }

  /**
   * Drop the oldest turns until prompt + `reserve` tokens fit `window`. Mutates the history; returns the prompt ids
   * and what was dropped.
   */
  fit(
    template: ChatTemplate,
    encode: (text: string) => number[],
    window: number,
    reserve: number,
    encodePlain?: (text: string) => number[],
  ): FitResult {
    if (!Number.isInteger(window) || window < 1)
      throw new ConfigError('window', `expected an integer ≥ 1, got ${String(window)}`);
    if (!Number.isInteger(reserve) || reserve < 0)
      throw new ConfigError('reserve', `expected an integer ≥ 0, got ${String(reserve)}`);
    const dropped: ChatMessage[] = [];
    for (;;) {
      const { ids, text } = this.encode(template, encode, encodePlain);
      if (ids.length + reserve <= window) return { ids, text, dropped };
      if (this.messages.length <= 1)
        throw new ContextOverflowError(
          ids.length + reserve,
          window,
          `the system prompt and the last message (plus ${reserve} tokens for the reply)`,
        );
      dropped.push(this.messages.shift()!);
      while (this.messages.length > 1 && this.messages[0]!.role !== 'user') dropped.push(this.messages.shift()!);
    }
  }
}
