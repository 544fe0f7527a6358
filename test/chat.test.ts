// Chat templates (ChatML and real-world Jinja templates) and fitting a conversation to the context window.
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  chatmlTemplate,
  jinjaTemplate,
  loadChatTemplate,
  templateFromTokenizerConfig,
  type ChatMessage,
} from '../src/chat/template.js';
import { Conversation } from '../src/chat/conversation.js';
import { ContextOverflowError, FileFormatError } from '../src/util/errors.js';

const MSGS: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: '2+2?' },
];

// The Llama-3 instruct template, as in Meta-Llama-3-8B-Instruct's tokenizer_config.json.
const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

// The Qwen2 instruct template (default system prompt when none is given).
const QWEN2 =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A Mistral/Llama-2 style template that insists on alternating roles.
const STRICT =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}";

describe('chat templates', () => {
  it('ChatML renders each message between <|im_start|>role\\n and <|im_end|>\\n, plus the generation prompt', () => {
    const t = chatmlTemplate();
    const want =
      MSGS.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
    expect(t.render(MSGS)).toBe(want);
    expect(t.render(MSGS, { addGenerationPrompt: false })).toBe(want.slice(0, -'<|im_start|>assistant\n'.length));
    expect(t.stopStrings).toEqual(['<|im_end|>']);
  });

  it('renders a Llama-3 Jinja template with bos_token and the generation prompt', () => {
    const t = jinjaTemplate(LLAMA3, { bosToken: '<|begin_of_text|>', eosToken: '<|end_of_text|>' });
    const want =
      '<|begin_of_text|>' +
      MSGS.map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content.trim()}<|eot_id|>`).join('') +
      '<|start_header_id|>assistant<|end_header_id|>\n\n';
    expect(t.render(MSGS)).toBe(want);
    expect(t.stopStrings).toContain('<|eot_id|>');
    expect(t.stopStrings).toContain('<|end_of_text|>');
  });

  it('renders a Qwen2 template from a tokenizer_config.json object (AddedToken-style eos)', () => {
    const t = templateFromTokenizerConfig({
      chat_template: QWEN2,
      eos_token: { content: '<|im_end|>', special: true },
      bos_token: null,
    })!;
    const noSys = MSGS.slice(1);
    const want =
      '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' +
      noSys.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') +
      '<|im_start|>assistant\n';
    expect(t.render(noSys)).toBe(want);
    expect(t.stopStrings).toEqual(['<|im_end|>']);
  });

  it('named-template lists pick "default"; no chat_template → null', () => {
    const t = templateFromTokenizerConfig({
      chat_template: [
        { name: 'tool_use', template: 'X' },
        { name: 'default', template: 'D{{ messages|length }}' },
      ],
    })!;
    expect(t.render(MSGS)).toBe('D4');
    expect(templateFromTokenizerConfig({})).toBeNull();
  });

  it('a template that raises, or does not parse, is a FileFormatError', () => {
    const t = jinjaTemplate(STRICT, { bosToken: '<s>', eosToken: '</s>' });
    expect(t.render(MSGS.slice(1))).toBe('<s>[INST] Hi there [/INST]Hello!</s>[INST] 2+2? [/INST]');
    expect(() => t.render([MSGS[1]!, MSGS[1]!])).toThrow(FileFormatError);
    expect(() => jinjaTemplate('{% for x in %}')).toThrow(FileFormatError);
  });

  it('loadChatTemplate reads tokenizer_config.json, else falls back to ChatML', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-chat-'));
    try {
      expect((await loadChatTemplate(dir)).kind).toBe('chatml');
      fs.writeFileSync(
        path.join(dir, 'tokenizer_config.json'),
        JSON.stringify({ chat_template: LLAMA3, bos_token: '<|begin_of_text|>' }),
      );
      const t = await loadChatTemplate(dir);
      expect(t.kind).toBe('jinja');
      expect(t.render([{ role: 'user', content: 'x' }])).toMatch(/^<\|begin_of_text\|><\|start_header_id\|>user/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('conversation', () => {
  // one "token" per character keeps the arithmetic visible
  const enc = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);
  const t = chatmlTemplate();
  const len = (msgs: ChatMessage[]) => t.render(msgs).length;

  it('renders system + turns and round-trips through JSON', () => {
    const c = new Conversation({ system: 'Be brief.' });
    c.addUser('Hi there');
    c.addAssistant('Hello!');
    c.addUser('2+2?');
    expect(c.encode(t, enc).text).toBe(t.render(MSGS));
    const back = Conversation.fromJSON(JSON.parse(JSON.stringify(c)));
    expect(back.all()).toEqual(MSGS);
  });

  it('keeps everything when it fits', () => {
    const c = new Conversation({ system: 'Be brief.', messages: MSGS.slice(1) });
    const r = c.fit(t, enc, len(MSGS) + 10, 10);
    expect(r.dropped).toEqual([]);
    expect(r.ids.length).toBe(len(MSGS));
  });

  it('drops the oldest turns (never the system prompt or the newest message) and reports them', () => {
    const turns: ChatMessage[] = [];
    for (let i = 0; i < 6; i++)
      turns.push({ role: 'user', content: `question ${i}` }, { role: 'assistant', content: `answer ${i}` });
    turns.push({ role: 'user', content: 'last question' });
    const sys: ChatMessage = { role: 'system', content: 'sys' };
    const reserve = 20;
    // window fits system + the last 3 messages (answer 5 would leave an assistant turn first, so 2 user-first pairs is
    // the expected cut): compute what fits by the rule itself
    const window = len([sys, ...turns.slice(-5)]) + reserve; // exactly fits: question 4, answer 4, question 5, answer 5, last
    const c = new Conversation({ system: 'sys', messages: turns });
    const r = c.fit(t, enc, window, reserve);
    expect(r.dropped).toEqual(turns.slice(0, 8));
    expect(c.messages).toEqual(turns.slice(8));
    expect(c.system).toBe('sys');
    expect(r.ids.length + reserve).toBeLessThanOrEqual(window);
    // one token less: the next pair goes too
    const c2 = new Conversation({ system: 'sys', messages: turns });
    const r2 = c2.fit(t, enc, window - 1, reserve);
    expect(r2.dropped).toEqual(turns.slice(0, 10));
    expect(c2.messages[0]!.role).toBe('user');
  });

  it('ContextOverflowError when even the system prompt and the last message do not fit', () => {
    const c = new Conversation({ system: 'a long system prompt', messages: [{ role: 'user', content: 'hello' }] });
    expect(() => c.fit(t, enc, 30, 10)).toThrow(ContextOverflowError);
  });
});

describe('chat session (scripted model)', async () => {
  const { ChatSession } = await import('../src/chat/session.js');
  const { ByteTokenizer, scriptedModel, bytesOf } = await import('./generate_fakes.js');
  // ids 256.. are specials: 256 <|im_start|>, 257 <|im_end|>
  const tok = new ByteTokenizer({ 256: '<|im_start|>', 257: '<|im_end|>' });
  const specialId = (s: string) => (({ '<|im_start|>': 256, '<|im_end|>': 257 }) as Record<string, number>)[s];

  it('ends the reply at the template end-of-turn token and records it in the history', async () => {
    const m = scriptedModel([...bytesOf('Hi!'), 257, 65, 65], 300, 512);
    const s = new ChatSession(m, tok, { template: chatmlTemplate(), specialId, seed: 1, sampler: { temperature: 0 } });
    const r = s.reply('hello');
    let shown = '';
    for await (const ev of r) shown += ev.text;
    expect(shown).toBe('Hi!');
    expect(r.finishReason).toBe('stop');
    expect(s.conversation.messages).toEqual([
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hi!' },
    ]);
  });

  it('without the special token, the end-of-turn text is a stop string', async () => {
    const m = scriptedModel(bytesOf('Yes<|im_end|>more'), 300, 512);
    const s = new ChatSession(m, tok, { template: chatmlTemplate(), seed: 1, sampler: { temperature: 0 } });
    const r = s.reply('q');
    for await (const _ of r) void _;
    expect(r.text).toBe('Yes');
  });

  it('consecutive replies use consecutive seeds from the base seed', async () => {
    const m = scriptedModel([257], 300, 512);
    const s = new ChatSession(m, tok, { template: chatmlTemplate(), specialId, seed: 41 });
    const a = s.reply('a');
    for await (const _ of a) void _;
    const b = s.reply('b');
    for await (const _ of b) void _;
    expect([a.seed, b.seed]).toEqual([41, 42]);
    expect(s.conversation.messages.map((x) => x.content)).toEqual(['a', '', 'b', '']); // each reply: the end-of-turn token at once
  });
});
