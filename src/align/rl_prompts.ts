/**
 * Prompts for on-policy training (PPO, RLOO): TRL's prompt-only JSONL rows, `{"prompt": "text"}` (plain) or
 * `{"prompt": [{"role", "content"}, …]}` (conversational; the last message is the user's). A conversational prompt is
 * rendered with the model's chat template through its generation prompt (where `llmts chat` would start the reply);
 * a plain one is encoded as it is. Other fields of a row (a completion, say) are ignored and counted. A bad row is a
 * TrlRowError with file and line, or skipped and counted with badRows = 'skip'. The held-out split takes the last
 * prompts of the file(s), so the same files always split the same way.
 */
import fs from 'node:fs';
import type { ChatTemplate } from '../chat/template.js';
import { TrlRowError, type TrlMessage } from '../data/trl.js';
import { ConfigError, FileFormatError } from '../util/errors.js';

/** One prompt: its text (for logs and samples) and ids through the generation prompt. */
export interface RlPrompt {
  text: string;
  ids: number[];
  /** The conversation (a plain prompt is one user turn of its text): what a reward function receives. */
  messages?: TrlMessage[];
}

export interface ReadPromptsResult {
  prompts: RlPrompt[];
  /** Rows skipped as bad (badRows = 'skip'), prompts longer than the limit dropped. */
  skipped: number;
  dropped: number;
  form: 'plain' | 'conversational' | 'mixed';
}

function checkMessages(v: unknown[], field: string): TrlMessage[] {
  if (v.length === 0) throw new ConfigError(field, 'expected at least one message, got an empty conversation');
  return v.map((m, i) => {
    const o = m as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || Array.isArray(o))
      throw new ConfigError(`${field}[${i}]`, 'expected a {"role", "content"} message');
    if (o['role'] !== 'system' && o['role'] !== 'user' && o['role'] !== 'assistant')
      throw new ConfigError(
        `${field}[${i}].role`,
        `expected "system", "user" or "assistant", got ${JSON.stringify(o['role'])}`,
      );
    if (typeof o['content'] !== 'string')
      throw new ConfigError(`${field}[${i}].content`, `expected a string, got ${JSON.stringify(o['content'])}`);
    return { role: o['role'], content: o['content'] };
  });
}

/**
 * Read and encode prompt-only rows from `files`. `maxPromptLength`: longer prompts are dropped and counted (they
 * would leave no room for a reply).
 */
export function readPrompts(
  files: readonly string[],
  template: ChatTemplate,
  encode: (text: string) => number[],
  o: { badRows: 'error' | 'skip'; maxPromptLength: number; log?: (s: string) => void },
): ReadPromptsResult {
  const prompts: RlPrompt[] = [];
  const forms = new Set<'plain' | 'conversational'>();
  let skipped = 0,
    dropped = 0;
  const ignored = new Map<string, number>();
  for (const file of files) {
    if (!fs.existsSync(file)) throw new FileFormatError('E_FILE_MISSING', file, 'no such prompt file');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      try {
        let row: unknown;
        try {
          row = JSON.parse(line);
        } catch (e) {
          throw new ConfigError('', `not valid JSON (${(e as Error).message})`);
        }
        if (typeof row !== 'object' || row === null || Array.isArray(row))
          throw new ConfigError('', 'expected a JSON object {"prompt": …}');
        const p = (row as Record<string, unknown>)['prompt'];
        let text: string;
        let messages: TrlMessage[];
        if (typeof p === 'string') {
          if (!p) throw new ConfigError('prompt', 'empty');
          text = p;
          messages = [{ role: 'user', content: p }];
          forms.add('plain');
        } else if (Array.isArray(p)) {
          const ms = checkMessages(p, 'prompt');
          text = template.render(ms, { addGenerationPrompt: true });
          messages = ms;
          forms.add('conversational');
        } else
          throw new ConfigError(
            'prompt',
            `missing or not a prompt: expected a string or a list of messages, got ${JSON.stringify(p) ?? 'nothing'}`,
          );
        const ids = encode(text);
        if (!ids.length) throw new ConfigError('prompt', 'encodes to no tokens');
        if (ids.length > o.maxPromptLength) {
          dropped++;
          return;
        }
        for (const k of Object.keys(row)) if (k !== 'prompt') ignored.set(k, (ignored.get(k) ?? 0) + 1);
        prompts.push({ text, ids, messages });
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        if (o.badRows === 'error') throw new TrlRowError(file, i + 1, e.field, e.message.replace(/^[^:]*: /, ''));
        skipped++;
      }
    });
  }
  if (ignored.size)
    o.log?.(
      `note: fields other than "prompt" ignored: ${[...ignored].map(([k, n]) => `"${k}" (${n} row${n === 1 ? '' : 's'})`).join(', ')}`,
    );
  if (skipped) o.log?.(`warning: ${skipped} bad prompt row${skipped === 1 ? '' : 's'} skipped (badRows=skip)`);
  if (dropped)
    o.log?.(
      `warning: ${dropped} prompt${dropped === 1 ? '' : 's'} longer than ${o.maxPromptLength} tokens dropped (no room for a reply)`,
    );
  return {
    prompts,
    skipped,
    dropped,
    form: forms.size === 2 ? 'mixed' : forms.has('conversational') ? 'conversational' : 'plain',
  };
}
