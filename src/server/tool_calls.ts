/**
 * Tool calling on the chat route: the request's `tools` and `tool_choice` read and checked, the template they go
 * through, the grammar a required call is held to, and the reply's calls in OpenAI's shape (src/chat/tools.ts does
 * the formats).
 *
 *   tool_choice "none" (or no tools): a plain reply, the tools not shown
 *   "auto" (the default with tools): the model's template shows the tools; calls in its reply are parsed out, and
 *     the call is held to the tools' schemas from its marker on by a lazy grammar (free text until <tool_call>,
 *     [TOOL_CALLS], or a '{' that begins a Llama 3 reply; llama.cpp's lazy grammars)
 *   "required" / { type: "function", function: { name } }: the reply is held to a call (of that tool), its arguments
 *     to the tool's parameter schema (src/generate/grammar)
 * A template that shows no tools (a Jinja chat_template without a known call format, or a plain transcript) is a
 * 400 on `tools`, as is tool or call text holding special-token text (a client must not forge a turn marker).
 */
import { randomBytes } from 'node:crypto';
import {
  checkTools,
  type ParsedToolCall,
  type ToolDefinition,
  toolCallGrammar,
  type ToolFormat,
  toolFormatOf,
} from '../chat/tools.js';
import type { ChatTemplate } from '../chat/template.js';
import type { TokenGrammar } from '../generate/grammar/constraint.js';
import { ConfigError } from '../util/errors.js';
import { badParam, type Body } from './openai_params.js';
import type { ServedModel } from './served_model.js';
import { servedGrammar } from './structured_output.js';

export const TOOL_FIELDS = ['tools', 'tool_choice'];

/** The tools of a request, when the reply may call them. */
export interface ToolUse {
  tools: ToolDefinition[];
  format: ToolFormat;
  /** The template with the tools passed to every render. */
  template: ChatTemplate;
  /** The grammar of a required call, or null ("auto"). */
  grammar: TokenGrammar | null;
  /** "auto": the lazy grammar of the calls the reply may make, or null (no marker, or a schema it cannot hold). */
  lazy: TokenGrammar | null;
}

/** Refuse text a client sent that encodes to special tokens (a forged turn marker), naming the field. */
export function checkPlain(served: ServedModel, text: string, field: string): void {
  const plain = served.codec.encodePlain;
  if (!plain) return;
  const a = served.codec.encode(text),
    b = plain.call(served.codec, text);
  if (a.length !== b.length || a.some((x, i) => x !== b[i]))
    throw badParam(field, `'${field}' holds the text of a special token (a chat-template marker); it cannot be sent`);
}

/** The request's tool use, or null (no tools, or tool_choice "none"). */
export function readToolUse(b: Body, served: ServedModel, template: ChatTemplate): ToolUse | null {
  const raw = b.get('tools');
  const choice = b.get('tool_choice');
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
    if (choice !== undefined && choice !== 'none' && choice !== 'auto')
      throw badParam('tool_choice', "'tool_choice' names a tool, but no tools were given");
    return null;
  }
  let tools: ToolDefinition[];
  try {
    tools = checkTools(raw);
  } catch (e) {
    if (e instanceof ConfigError) throw badParam(e.field, e.message.slice(e.field.length + 2));
    throw e;
  }
  let only: string | undefined;
  let required = false;
  if (choice === 'none') return null;
  if (choice === 'required') required = true;
  else if (choice !== undefined && choice !== 'auto') {
    const name = (choice as { type?: unknown; function?: { name?: unknown } } | null)?.function?.name;
    if ((choice as { type?: unknown }).type !== 'function' || typeof name !== 'string')
      throw badParam(
        'tool_choice',
        `Invalid 'tool_choice': expected none, auto, required or { "type": "function", "function": { "name" } }`,
      );
    if (!tools.some((t) => t.function.name === name))
      throw badParam('tool_choice', `Invalid 'tool_choice': no tool is named "${name}"`);
    only = name;
    required = true;
  }
  if (template.kind === 'transcript')
    throw badParam('tools', 'this model has no chat template, so it has no way to see tools or call them');
  const format = toolFormatOf(template.kind === 'jinja' ? (template.text ?? '') : null);
  if (!format)
    throw badParam(
      'tools',
      "this model's chat template shows no tools (none of the call formats <tool_call>, [TOOL_CALLS], <|python_tag|> is in it)",
    );
  checkPlain(served, JSON.stringify(tools), 'tools');
  const withTools: ChatTemplate = { ...template, render: (m, o = {}) => template.render(m, { ...o, tools }) };
  const grammar = required
    ? servedGrammar(
        served,
        `tools:${format}:${only ?? ''}:${JSON.stringify(tools)}`,
        () => toolCallGrammar(tools, format, only),
        'tools',
      )
    : null;
  let lazy: TokenGrammar | null = null;
  // Llama 3's call is the whole reply, a JSON object: its trigger is a '{' that comes first
  const trigger = format === 'hermes' ? '<tool_call>' : format === 'mistral' ? '[TOOL_CALLS]' : '{';
  if (!required)
    try {
      lazy = servedGrammar(
        served,
        `lazy:${format}:${JSON.stringify(tools)}`,
        () => toolCallGrammar(tools, format),
        'tools',
        { trigger, atStart: format === 'llama3' },
      );
    } catch {
      lazy = null; // a schema the grammar cannot hold: the calls are parsed, not held
    }
  return { tools, format, template: withTools, grammar, lazy };
}

/** A call id as OpenAI writes them. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

/** Parsed calls in OpenAI's shape. */
export function toolCallsOf(calls: readonly ParsedToolCall[]) {
  return calls.map((c) => ({
    id: toolCallId(),
    type: 'function' as const,
    function: { name: c.name, arguments: c.arguments },
  }));
}
