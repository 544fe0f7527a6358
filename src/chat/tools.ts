/**
 * Tool (function) calling: OpenAI's tool definitions and calls, and the ways models write calls in their replies.
 *
 * A model learns one way to write a call from its chat template, which also shows it the tools (the template gets
 * them as `tools`, as transformers' `apply_chat_template(tools=…)` passes them). Three formats are read, chosen from
 * the template's own text as llama.cpp's chat parser chooses:
 *   hermes   <tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>, one block per call   (Qwen2.5/3, Hermes, SmolLM3,
 *            and the ChatML template this package renders without a Jinja one)
 *   llama3   {"name": …, "parameters": {…}} as the whole reply, optionally after <|python_tag|>, calls apart by ';'
 *            (Llama 3.1–3.3's JSON tool calling)
 *   mistral  [TOOL_CALLS][{"name": …, "arguments": {…}}, …]                                  (Mistral's v3 templates)
 * `parseToolCalls` splits a reply into its text and its calls; `toolCallGrammar` is the grammar of a reply that must
 * call a tool (tool_choice "required" or a named function), so the call is well-formed and its arguments match the
 * tool's JSON Schema; `ToolCallStream` releases a streamed reply's text and holds back what may be a call.
 */
import { type Expr, type Grammar, GrammarError, lit, ref, rep, seq } from '../generate/grammar/grammar.js';
import { jsonSchemaGrammar } from '../generate/grammar/json_schema.js';
import { ConfigError } from '../util/errors.js';

/** One tool as OpenAI's API defines it. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

/** A call the model made: the function's name and its arguments as JSON text (OpenAI's `tool_calls[i].function`). */
export interface ParsedToolCall {
  name: string;
  arguments: string;
}

export type ToolFormat = 'hermes' | 'llama3' | 'mistral';

/** Which way a chat template has its model write calls; null if it shows no tools (a Jinja template without them). */
export function toolFormatOf(templateSource: string | null): ToolFormat | null {
  if (templateSource === null) return 'hermes'; // the ChatML template rendered here
  if (templateSource.includes('<tool_call>')) return 'hermes';
  if (templateSource.includes('[TOOL_CALLS]')) return 'mistral';
  if (
    templateSource.includes('<|python_tag|>') ||
    (templateSource.includes('ipython') && templateSource.includes('tools'))
  )
    return 'llama3';
  return null;
}

/** Check a request's tools: names unique, of OpenAI's characters; parameters an object schema. */
export function checkTools(tools: unknown, field = 'tools'): ToolDefinition[] {
  if (!Array.isArray(tools)) throw new ConfigError(field, 'expected a list of tools');
  const seen = new Set<string>();
  return tools.map((t: unknown, i) => {
    const o = t as { type?: unknown; function?: { name?: unknown; parameters?: unknown; description?: unknown } };
    if (!o || typeof o !== 'object' || o.type !== 'function' || typeof o.function !== 'object' || o.function === null)
      throw new ConfigError(`${field}[${i}]`, 'expected { "type": "function", "function": { "name", … } }');
    const name = o.function.name;
    if (typeof name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(name))
      throw new ConfigError(`${field}[${i}].function.name`, 'expected a-z, A-Z, 0-9, _ or -, at most 64 characters');
    if (seen.has(name)) throw new ConfigError(`${field}[${i}].function.name`, `the name "${name}" is used twice`);
    seen.add(name);
    const p = o.function.parameters;
    if (p !== undefined && (typeof p !== 'object' || p === null || Array.isArray(p)))
      throw new ConfigError(`${field}[${i}].function.parameters`, 'expected a JSON Schema object');
    if (o.function.description !== undefined && typeof o.function.description !== 'string')
      throw new ConfigError(`${field}[${i}].function.description`, 'expected a string');
    return o as ToolDefinition;
  });
}

/** The first JSON value of `s` from `at` (an object or array), and where it ends; null if none parses there. */
function jsonAt(s: string, at: number): { value: unknown; end: number } | null {
  const open = s[at];
  if (open !== '{' && open !== '[') return null;
  let depth = 0,
    inStr = false;
  for (let i = at; i < s.length; i++) {
    const c = s[i]!;
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (--depth === 0) {
        try {
          return { value: JSON.parse(s.slice(at, i + 1)) as unknown, end: i + 1 };
        } catch {
          return null;
        }
      }
    }
  }
  return null;
}

/** {name, arguments|parameters} → a call; null if it is not one. */
function callOf(v: unknown): ParsedToolCall | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string') return null;
  const args = o.arguments ?? o.parameters;
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
    if (typeof args !== 'string') return null;
    return { name: o.name, arguments: args }; // already JSON text
  }
  return { name: o.name, arguments: JSON.stringify(args ?? {}) };
}

/**
 * A reply split into its text and its tool calls. The text is what comes before the first call, then whatever
 * follows the calls (trimmed); a block that does not parse as a call ends the parsing and stays in the text (the
 * model wrote something else), so nothing it wrote is lost.
 */
export function parseToolCalls(text: string, format: ToolFormat): { content: string; calls: ParsedToolCall[] } {
  const calls: ParsedToolCall[] = [];
  const ws = (t: string, j: number) => {
    while (j < t.length && /\s/.test(t[j]!)) j++;
    return j;
  };
  if (format === 'hermes') {
    const open = '<tool_call>',
      close = '</tool_call>';
    const first = text.indexOf(open);
    let i = first;
    while (i >= 0 && text.startsWith(open, i)) {
      const v = jsonAt(text, ws(text, i + open.length));
      const call = v ? callOf(v.value) : null;
      if (!v || !call) break;
      let e = ws(text, v.end);
      if (text.startsWith(close, e)) e += close.length;
      calls.push(call);
      i = ws(text, e);
    }
    if (calls.length === 0) return { content: text, calls };
    return { content: text.slice(0, first) + text.slice(i).trim(), calls };
  }
  if (format === 'mistral') {
    const k = text.indexOf('[TOOL_CALLS]');
    if (k < 0) return { content: text, calls };
    const v = jsonAt(text, ws(text, k + '[TOOL_CALLS]'.length));
    const list = v && Array.isArray(v.value) ? v.value.map((x) => callOf(x)) : null;
    if (!v || !list || list.length === 0 || list.some((c) => c === null)) return { content: text, calls };
    return { content: text.slice(0, k) + text.slice(v.end).trim(), calls: list as ParsedToolCall[] };
  }
  // llama3: the whole reply is one call or several apart by ';' (after an optional <|python_tag|>)
  let s = text.trimStart();
  if (s.startsWith('<|python_tag|>')) s = s.slice('<|python_tag|>'.length).trimStart();
  let at = 0;
  while (at < s.length) {
    const v = jsonAt(s, at);
    const call = v ? callOf(v.value) : null;
    if (!v || !call) return { content: text, calls: [] };
    calls.push(call);
    at = v.end;
    while (at < s.length && /[\s;]/.test(s[at]!)) at++;
  }
  return { content: calls.length ? '' : text, calls };
}

/**
 * The grammar of a reply that calls a tool: one call of one of `tools` (or of the one named), its arguments held to
 * the tool's parameter schema. GrammarError (naming the tool) where a schema cannot be compiled.
 */
export function toolCallGrammar(tools: readonly ToolDefinition[], format: ToolFormat, only?: string): Grammar {
  const chosen = only === undefined ? tools : tools.filter((t) => t.function.name === only);
  if (chosen.length === 0) throw new GrammarError('tool_choice', `no tool is named "${only}"`);
  const argsKey = format === 'llama3' ? 'parameters' : 'arguments';
  const schema = {
    anyOf: chosen.map((t) => ({
      type: 'object',
      properties: { name: { const: t.function.name }, [argsKey]: t.function.parameters ?? { type: 'object' } },
      required: ['name', argsKey],
      additionalProperties: false,
    })),
  };
  let g: Grammar;
  try {
    g = jsonSchemaGrammar(schema, 'tools');
  } catch (e) {
    if (e instanceof GrammarError) {
      const m = /^tools\.anyOf\[(\d+)\]\.properties\.(?:arguments|parameters)(.*)$/.exec(e.where);
      if (m) {
        const t = chosen[Number(m[1])]!;
        throw new GrammarError(
          `tools[${tools.indexOf(t)}].function.parameters${m[2]}`,
          e.message.slice(e.message.indexOf(': ') + 2),
        );
      }
    }
    throw e;
  }
  const rules = new Map(g.rules);
  rules.set('call', rules.get('root')!);
  let root: Expr;
  if (format === 'hermes') root = seq(lit('<tool_call>\n'), ref('call'), rep(lit('\n'), 0, 1), lit('</tool_call>'));
  else if (format === 'mistral') root = seq(lit('[TOOL_CALLS]['), ref('call'), lit(']'));
  else root = ref('call');
  rules.set('root', root);
  return { rules, root: 'root' };
}

/**
 * A streamed reply with tools on offer: text is released as it comes, except what may begin a call, which is held
 * until the reply ends and then parsed (a call's arguments come whole, in one delta, as llama-server sends them).
 * What it releases in all equals `parseToolCalls(reply).content`.
 */
export class ToolCallStream {
  private all = '';
  /** Characters of `all` released so far. */
  private shown = 0;
  private calling = false;
  constructor(private readonly format: ToolFormat) {}

  /** Text to show now. */
  push(text: string): string {
    this.all += text;
    if (this.calling) return '';
    const pending = this.all.slice(this.shown);
    if (this.format === 'llama3') {
      // a call is the whole reply: decided by its first non-space characters
      const t = pending.trimStart();
      if (this.shown === 0) {
        if (t === '' || '<|python_tag|>'.startsWith(t)) return ''; // undecided yet
        if (t.startsWith('{') || t.startsWith('<|python_tag|>')) {
          this.calling = true;
          return '';
        }
      }
      return this.release(pending.length);
    }
    const marker = this.format === 'hermes' ? '<tool_call>' : '[TOOL_CALLS]';
    const k = pending.indexOf(marker);
    if (k >= 0) {
      this.calling = true;
      return this.release(k);
    }
    // hold back a tail that may be the marker's beginning
    let keep = 0;
    for (let n = Math.min(marker.length - 1, pending.length); n > 0; n--)
      if (pending.endsWith(marker.slice(0, n))) {
        keep = n;
        break;
      }
    return this.release(pending.length - keep);
  }

  private release(n: number): string {
    const out = this.all.slice(this.shown, this.shown + n);
    this.shown += n;
    return out;
  }

  /** At the end: the text not yet released, and the calls. */
  end(): { text: string; calls: ParsedToolCall[] } {
    const p = this.calling ? parseToolCalls(this.all, this.format) : { content: this.all, calls: [] };
    const text = p.content.slice(this.shown);
    this.shown = this.all.length;
    return { text, calls: p.calls };
  }
}
