/**
 * Chat templates: how a list of messages becomes the one text the model continues.
 *
 *  - ChatML (the default, used by Qwen, SmolLM, many fine-tunes):
 *        <|im_start|>system\nYou are…<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
 *    The markers are special tokens where the tokenizer has them (one id each), plain text otherwise.
 *  - A model's own Jinja `chat_template` from `tokenizer_config.json`, rendered with @huggingface/jinja with the same
 *    variables transformers' `apply_chat_template` passes: messages, bos_token, eos_token, add_generation_prompt.
 *
 * A template also says how an assistant turn ends (its stop strings), so the generator knows when the reply is over.
 */
import { Template } from '@huggingface/jinja';
import { ConfigError, FileFormatError } from '../util/errors.js';
import type { ToolDefinition } from './tools.js';

export type Role = 'system' | 'user' | 'assistant' | 'tool';

/** A tool call in an assistant message (OpenAI's shape; `arguments` as JSON text). */
export interface MessageToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  content: string;
  /** An assistant message's tool calls (./tools.ts). */
  tool_calls?: readonly MessageToolCall[];
  /** A tool message: which call it answers. */
  tool_call_id?: string;
}

export interface RenderOptions {
  /** End with the header of an assistant turn, so the model's continuation is the reply (default true). */
  addGenerationPrompt?: boolean;
  /**
   * More variables for a Jinja template, as transformers' `apply_chat_template(**kwargs)` and vLLM's
   * `chat_template_kwargs` pass them (Qwen3: `enable_thinking: false`). They cannot replace messages,
   * add_generation_prompt, bos_token or eos_token (TEMPLATE_RESERVED); ChatML and the transcript ignore them.
   */
  kwargs?: Readonly<Record<string, unknown>>;
  /** Tools on offer (OpenAI's definitions), passed to a Jinja template as `tools`; ChatML shows them Hermes-style. */
  tools?: readonly ToolDefinition[];
}

/** The variables a template's render sets itself. */
export const TEMPLATE_RESERVED = ['messages', 'add_generation_prompt', 'bos_token', 'eos_token'] as const;

/** `template` with `kwargs` passed to every render (checked: no reserved name). */
export function withTemplateKwargs(template: ChatTemplate, kwargs: Readonly<Record<string, unknown>>): ChatTemplate {
  const reserved = TEMPLATE_RESERVED.find((k) => Object.hasOwn(kwargs, k));
  if (reserved)
    throw new ConfigError('chat_template_kwargs', `'${reserved}' is set by the template's caller, not a kwarg`);
  return {
    ...template,
    render: (messages, opts = {}) => template.render(messages, { ...opts, kwargs: { ...opts.kwargs, ...kwargs } }),
  };
}

export interface ChatTemplate {
  /** 'chatml' or 'jinja'. */
  readonly kind: string;
  /** Messages → prompt text. */
  render(messages: readonly ChatMessage[], opts?: RenderOptions): string;
  /** Texts that end an assistant turn (special-token spellings such as '<|im_end|>'; map them to ids where they are tokens). */
  readonly stopStrings: readonly string[];
  /** The Jinja source of a 'jinja' template (a server's /tokenizer_info hands it out). */
  readonly text?: string;
}

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';

function checkMessages(messages: readonly ChatMessage[]): void {
  messages.forEach((m, i) => {
    if (!m || typeof m.content !== 'string') throw new ConfigError(`messages[${i}].content`, 'expected a string');
    if (m.role !== 'system' && m.role !== 'user' && m.role !== 'assistant' && m.role !== 'tool')
      throw new ConfigError(
        `messages[${i}].role`,
        `expected system, user, assistant or tool, got ${JSON.stringify(m.role)}`,
      );
  });
}

/** `{"name": …, "arguments": …}` of a call, its arguments parsed when they are JSON text (templates write them with tojson). */
function callForTemplate(c: MessageToolCall): { name: string; arguments: unknown } {
  let args: unknown = c.function.arguments;
  try {
    args = JSON.parse(c.function.arguments) as unknown;
  } catch {
    // not JSON: passed on as the text it is
  }
  return { name: c.function.name, arguments: args };
}

/** Messages as a Jinja template reads them: tool calls with their arguments as objects (as transformers passes them). */
function templateMessages(messages: readonly ChatMessage[]): Record<string, unknown>[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content,
    ...(m.tool_calls?.length
      ? {
          tool_calls: m.tool_calls.map((c) => ({
            ...(c.id !== undefined ? { id: c.id } : {}),
            type: 'function',
            function: callForTemplate(c),
          })),
        }
      : {}),
    ...(m.tool_call_id !== undefined ? { tool_call_id: m.tool_call_id } : {}),
  }));
}

/** The system text that shows tools to a ChatML model, Hermes-style (the layout of Qwen2.5's template). */
export function hermesToolsPrompt(tools: readonly ToolDefinition[]): string {
  return (
    '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
    'You are provided with function signatures within <tools></tools> XML tags:\n<tools>' +
    tools.map((t) => `\n${JSON.stringify(t)}`).join('') +
    '\n</tools>\n\nFor each function call, return a json object with function name and arguments within ' +
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
  );
}

/** The default ChatML template. */
export function chatmlTemplate(): ChatTemplate {
  return {
    kind: 'chatml',
    stopStrings: [IM_END],
    render(messages, opts = {}) {
      checkMessages(messages);
      let s = '';
      const tools = opts.tools?.length ? hermesToolsPrompt(opts.tools) : null;
      if (tools && messages[0]?.role !== 'system') s += `${IM_START}system\n${tools}${IM_END}\n`;
      messages.forEach((m, i) => {
        if (m.role === 'tool') {
          // tool results: one user turn of <tool_response> blocks (Qwen2.5's layout)
          if (messages[i - 1]?.role !== 'tool') s += `${IM_START}user`;
          s += `\n<tool_response>\n${m.content}\n</tool_response>`;
          if (messages[i + 1]?.role !== 'tool') s += `${IM_END}\n`;
          return;
        }
        let body = m.content;
        if (m.role === 'system' && i === 0 && tools) body = `${body}\n\n${tools}`;
        if (m.role === 'assistant' && m.tool_calls?.length)
          for (const c of m.tool_calls) body += `\n<tool_call>\n${JSON.stringify(callForTemplate(c))}\n</tool_call>`;
        s += `${IM_START}${m.role}\n${body}${IM_END}\n`;
      });
      if (opts.addGenerationPrompt ?? true) s += `${IM_START}assistant\n`;
      return s;
    },
  };
}

/**
 * A plain-text transcript for base models that were never taught chat markers (no chat_template, no
 * `<|im_start|>` token): "System text\n\nUser: …\nAssistant: …\n". Rendering ChatML as plain text to such a model
 * reads as the end of a document, so it would often answer nothing; a transcript is text it can continue.
 */
export function transcriptTemplate(): ChatTemplate {
  return {
    kind: 'transcript',
    stopStrings: ['\nUser:', '\nuser:'],
    render(messages, opts = {}) {
      checkMessages(messages);
      if (opts.tools?.length || messages.some((m) => m.role === 'tool'))
        throw new ConfigError('tools', 'a plain transcript has no way to show tools; give the model a chat template');
      let s = '';
      for (const m of messages)
        s += m.role === 'system' ? `${m.content}\n\n` : `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}\n`;
      if (opts.addGenerationPrompt ?? true) s += 'Assistant:';
      return s;
    },
  };
}

/** Markers that end a turn in common chat templates; those that appear in a template's source become stop strings. */
const END_OF_TURN_MARKERS = [
  '<|im_end|>',
  '<|eot_id|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '</s>',
  '<|end_of_text|>',
];

export interface JinjaTemplateOptions {
  bosToken?: string;
  eosToken?: string;
  /** Further variables passed to the template. */
  extra?: Record<string, unknown>;
  /** Where the template came from, for error messages. */
  source?: string;
}

/** A Jinja chat template (Hugging Face `chat_template`). */
export function jinjaTemplate(text: string, o: JinjaTemplateOptions = {}): ChatTemplate {
  const where = o.source ?? 'chat_template';
  let tpl: Template;
  try {
    tpl = new Template(text);
  } catch (e) {
    throw new FileFormatError(
      'E_TEMPLATE',
      where,
      `chat_template does not parse as Jinja: ${(e as Error).message}`,
      'chat_template',
    );
  }
  const stops = new Set<string>();
  if (o.eosToken) stops.add(o.eosToken);
  for (const m of END_OF_TURN_MARKERS) if (text.includes(m)) stops.add(m);
  return {
    kind: 'jinja',
    text,
    stopStrings: [...stops],
    render(messages, opts = {}) {
      checkMessages(messages);
      try {
        return tpl.render({
          ...o.extra,
          ...opts.kwargs,
          messages: templateMessages(messages),
          ...(opts.tools?.length ? { tools: opts.tools } : {}),
          bos_token: o.bosToken ?? '',
          eos_token: o.eosToken ?? '',
          add_generation_prompt: opts.addGenerationPrompt ?? true,
        });
      } catch (e) {
        throw new FileFormatError(
          'E_TEMPLATE',
          where,
          `chat_template failed to render: ${(e as Error).message}`,
          'chat_template',
        );
      }
    },
  };
}

/** `bos_token` / `eos_token` in tokenizer_config.json: a string or an AddedToken object { content }. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}

/**
 * The template a tokenizer_config.json object describes: its `chat_template` (a string, or a list of
 * { name, template } where 'default' is taken), or null when it has none.
 */
export function templateFromTokenizerConfig(
  cfg: Record<string, unknown>,
  file = 'tokenizer_config.json',
): ChatTemplate | null {
  let t = cfg['chat_template'];
  if (t === undefined || t === null) return null;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const d = named.find((x) => x && x.name === 'default') ?? named[0];
    t = d?.template;
  }
  if (typeof t !== 'string')
    throw new FileFormatError(
      'E_TEMPLATE',
      file,
      'chat_template must be a string or a list of { name, template }',
      'chat_template',
    );
  const o: JinjaTemplateOptions = { source: file };
  const bos = tokenText(cfg['bos_token']);
  const eos = tokenText(cfg['eos_token']);
  if (bos !== undefined) o.bosToken = bos;
  if (eos !== undefined) o.eosToken = eos;
  return jinjaTemplate(t, o);
}

/**
 * The chat template of a model folder: the Jinja `chat_template` of its tokenizer_config.json (or of a separate
 * chat_template.jinja, as newer transformers write), else `fallback()` (ChatML by default). Node only: file access is
 * imported on call, so this module stays importable in a browser (src/browser.ts).
 */
export async function loadChatTemplate(
  dir: string,
  fallback: () => ChatTemplate = chatmlTemplate,
): Promise<ChatTemplate> {
  if (dir.toLowerCase().endsWith('.gguf')) {
    // a GGUF file: tokenizer.chat_template and the special tokens of its tokenizer metadata
    const { loadTokenizer } = await import(/* node-only */ '../tokenizer/io.js');
    const c = (await loadTokenizer(dir)).config;
    const cfg = { chat_template: c.chatTemplate, bos_token: c.bosToken, eos_token: c.eosToken };
    return templateFromTokenizerConfig(cfg, `${dir} [tokenizer.chat_template]`) ?? fallback();
  }
  const path = await import('node:path');
  const { isFile, readJsonFile } = await import(/* node-only */ '../util/fs.js');
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  let cfg: Record<string, unknown> = {};
  if (await isFile(cfgFile))
    cfg = (await readJsonFile(cfgFile, 'a tokenizer config (JSON object)')) as Record<string, unknown>;
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  if (cfg['chat_template'] === undefined && (await isFile(jinjaFile))) {
    const { readFile } = await import('node:fs/promises');
    cfg = { ...cfg, chat_template: await readFile(jinjaFile, 'utf8') };
    return templateFromTokenizerConfig(cfg, jinjaFile) ?? fallback();
  }
  return templateFromTokenizerConfig(cfg, cfgFile) ?? fallback();
}
