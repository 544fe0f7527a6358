/**
 * Tool calling's text side (src/chat/tools.ts): each format's calls parsed out of a reply, a streamed reply releasing
 * exactly the parsed text however it is cut into pieces, and the grammar of a required call accepting well-formed
 * calls whose arguments match the tool's schema (and nothing else).
 */
import { describe, expect, it } from 'vitest';
import {
  checkTools,
  parseToolCalls,
  type ToolDefinition,
  ToolCallStream,
  type ToolFormat,
  toolCallGrammar,
  toolFormatOf,
} from '../src/chat/tools.js';
import { compileGrammar, GrammarMatcher } from '../src/generate/grammar/index.js';

const TOOLS: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } },
        required: ['city'],
        additionalProperties: false,
      },
    },
  },
  { type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } },
];

describe('parsing calls out of a reply', () => {
  it('hermes: every <tool_call> block, the text around them kept', () => {
    const r = parseToolCalls(
      'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>',
      'hermes',
    );
    expect(r.calls).toEqual([
      { name: 'get_weather', arguments: '{"city":"Paris"}' },
      { name: 'now', arguments: '{}' },
    ]);
    expect(r.content).toBe('Let me check.\n');
    // not a call: the text is left whole
    expect(parseToolCalls('<tool_call>\n{"nam": 1}\n</tool_call>', 'hermes')).toEqual({
      content: '<tool_call>\n{"nam": 1}\n</tool_call>',
      calls: [],
    });
    expect(parseToolCalls('no calls here', 'hermes')).toEqual({ content: 'no calls here', calls: [] });
  });

  it('llama3: the whole reply as JSON calls (parameters), after an optional <|python_tag|>', () => {
    expect(parseToolCalls(' {"name": "get_weather", "parameters": {"city": "Oslo", "unit": "c"}}', 'llama3')).toEqual({
      content: '',
      calls: [{ name: 'get_weather', arguments: '{"city":"Oslo","unit":"c"}' }],
    });
    expect(
      parseToolCalls('<|python_tag|>{"name": "now", "parameters": {}}; {"name": "now", "parameters": {}}', 'llama3')
        .calls,
    ).toHaveLength(2);
    expect(parseToolCalls('{"a": 1} is JSON', 'llama3')).toEqual({ content: '{"a": 1} is JSON', calls: [] });
  });

  it('mistral: [TOOL_CALLS] and a list; arguments given as a string stay as they are', () => {
    expect(
      parseToolCalls(
        '[TOOL_CALLS][{"name": "now", "arguments": "{}"}, {"name": "get_weather", "arguments": {"city": "Rome"}}]',
        'mistral',
      ).calls,
    ).toEqual([
      { name: 'now', arguments: '{}' },
      { name: 'get_weather', arguments: '{"city":"Rome"}' },
    ]);
  });

  it('chooses the format from the template text', () => {
    expect(toolFormatOf(null)).toBe('hermes');
    expect(toolFormatOf('{{ "<tool_call>" }}')).toBe('hermes');
    expect(toolFormatOf('{{ "[TOOL_CALLS]" }}')).toBe('mistral');
    expect(toolFormatOf("{%- if message.role == 'ipython' %}{{ '<|python_tag|>' }}")).toBe('llama3');
    expect(toolFormatOf('{{ messages }}')).toBeNull();
  });
});

describe('a streamed reply', () => {
  const replies: [ToolFormat, string][] = [
    ['hermes', 'Sure <tool_call>\n{"name": "now", "arguments": {}}\n</tool_call> done'],
    ['hermes', 'a < b and <tool_ca is not a call'],
    ['hermes', '<tool_call>{"broken"'],
    ['mistral', 'x [TOOL_CALLS][{"name": "now", "arguments": {}}]'],
    ['llama3', '  {"name": "now", "parameters": {}}'],
    ['llama3', '<|python_tag|>{"name": "now", "parameters": {}}'],
    ['llama3', '<|pyt is text'],
    ['llama3', 'plain {"name": 1}'],
  ];
  it('releases exactly the parsed text, cut anywhere, and the same calls', () => {
    for (const [format, reply] of replies) {
      const want = parseToolCalls(reply, format);
      for (const step of [1, 2, 3, 7, 100]) {
        const s = new ToolCallStream(format);
        let shown = '';
        for (let i = 0; i < reply.length; i += step) shown += s.push(reply.slice(i, i + step));
        const e = s.end();
        expect({ reply, step, text: shown + e.text, calls: e.calls }).toEqual({
          reply,
          step,
          text: want.content,
          calls: want.calls,
        });
      }
    }
  });
});

describe('the grammar of a required call', () => {
  const ok = (format: ToolFormat, text: string, only?: string): boolean => {
    const m = new GrammarMatcher(compileGrammar(toolCallGrammar(TOOLS, format, only)));
    return m.acceptString(text) && m.isAccepting();
  };
  it('accepts a well-formed call with schema-valid arguments, in each format', () => {
    expect(
      ok('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>'),
    ).toBe(true);
    expect(ok('hermes', '<tool_call>\n{"name": "now", "arguments": {}}</tool_call>')).toBe(true);
    expect(ok('llama3', '{"name": "get_weather", "parameters": {"city": "Oslo"}}')).toBe(true);
    expect(ok('mistral', '[TOOL_CALLS][{"name": "now", "arguments": {}}]')).toBe(true);
  });
  it('rejects other names, bad arguments, and a named choice’s other tools', () => {
    expect(ok('hermes', '<tool_call>\n{"name": "rm", "arguments": {}}\n</tool_call>')).toBe(false);
    expect(ok('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"unit": "c"}}\n</tool_call>')).toBe(false);
    expect(
      ok('hermes', '<tool_call>\n{"name": "get_weather", "arguments": {"city": "P", "unit": "k"}}\n</tool_call>'),
    ).toBe(false);
    expect(ok('llama3', '{"name": "now", "parameters": {}}', 'get_weather')).toBe(false);
    expect(ok('llama3', '{"name": "get_weather", "parameters": {"city": "x"}}', 'get_weather')).toBe(true);
    expect(() => toolCallGrammar(TOOLS, 'hermes', 'nope')).toThrow(/tool_choice: no tool is named "nope"/);
  });
  it('names the tool whose schema cannot be compiled', () => {
    const bad: ToolDefinition[] = [
      TOOLS[1]!,
      {
        type: 'function',
        function: {
          name: 'f',
          parameters: { type: 'object', properties: { a: { type: 'string', pattern: '(?=x)' } } },
        },
      },
    ];
    expect(() => toolCallGrammar(bad, 'hermes')).toThrow(/tools\[1\]\.function\.parameters\.properties\.a\.pattern: /);
  });
  it('checks tool definitions by field', () => {
    expect(() => checkTools([{ type: 'function', function: { name: 'a b' } }])).toThrow(/tools\[0\]\.function\.name/);
    expect(() => checkTools([TOOLS[1], TOOLS[1]])).toThrow(/the name "now" is used twice/);
    expect(() => checkTools([{ type: 'code' }])).toThrow(/tools\[0\]: expected/);
  });
});

describe('the ChatML template with tools', () => {
  it('shows the tools Hermes-style, an assistant’s calls as <tool_call> blocks, results as one user turn', async () => {
    const { chatmlTemplate } = await import('../src/chat/template.js');
    const t = chatmlTemplate();
    const text = t.render(
      [
        { role: 'user', content: 'hi' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ type: 'function', function: { name: 'now', arguments: '{}' } }],
        },
        { role: 'tool', content: '12:00', tool_call_id: 'a' },
        { role: 'tool', content: 'UTC', tool_call_id: 'b' },
      ],
      { tools: [TOOLS[1]!] },
    );
    expect(text).toBe(
      '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
        'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
        '{"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}\n</tools>\n\n' +
        'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nhi<|im_end|>\n' +
        '<|im_start|>assistant\n\n<tool_call>\n{"name":"now","arguments":{}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n12:00\n</tool_response>\n<tool_response>\nUTC\n</tool_response><|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
    // what the model writes back in that format parses
    expect(
      parseToolCalls('<tool_call>\n{"name":"now","arguments":{}}\n</tool_call>', toolFormatOf(null)!).calls,
    ).toEqual([{ name: 'now', arguments: '{}' }]);
  });
});

// After Llama 3.1's chat template (Meta's tokenizer_config.json): JSON tool calls with "parameters", tools in the
// first user message, tool results under the ipython header
const LLAMA31 = String.raw`{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
`;

describe("a Llama 3.1-style template's tools", () => {
  it('renders the tools, a call and its result; its format is llama3, and what the model writes back parses', async () => {
    const { jinjaTemplate } = await import('../src/chat/template.js');
    expect(toolFormatOf(LLAMA31)).toBe('llama3');
    const t = jinjaTemplate(LLAMA31, { bosToken: '<|begin_of_text|>' });
    const text = t.render(
      [
        { role: 'user', content: 'weather in Paris?' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "c"}' } },
          ],
        },
        { role: 'tool', content: '22 degrees', tool_call_id: 'a' },
      ],
      { tools: TOOLS },
    );
    expect(
      text.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n'),
    ).toBe(true);
    expect(text).toContain(
      'Do not use variables.\n\n{\n    "type": "function",\n    "function": {\n        "name": "get_weather",',
    );
    expect(text).toContain('\n\nweather in Paris?<|eot_id|>');
    expect(text).toContain(
      '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}<|eot_id|>',
    );
    expect(
      text.endsWith(
        '<|start_header_id|>ipython<|end_header_id|>\n\n"22 degrees"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
      ),
    ).toBe(true);
    expect(
      parseToolCalls('{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "f"}}', 'llama3').calls,
    ).toEqual([{ name: 'get_weather', arguments: '{"city":"Oslo","unit":"f"}' }]);
  });
});
