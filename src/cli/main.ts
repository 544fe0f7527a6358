/**
 * `llmts` command line: one command with subcommands. Each subcommand lives in its own file in this folder and
 * exports `main(argv: string[]): Promise<number>` (the exit code). Errors that are ours (LlmtsError) print one
 * clear line; anything else is a bug and prints its stack.
 */
import { LlmtsError } from '../util/errors.js';
import { lineBreakIfOpen, trackStdoutLine } from './stdout_line.js';
import { handleClosedStdout } from './stdout.js';

const COMMANDS: Record<string, { file: string; help: string }> = {
  train: { file: './train.js', help: 'pretrain a model on a corpus (default: the embedded corpus)' },
  sft: { file: './sft.js', help: 'fine-tune a model on conversations or prompt/completion pairs (TRL JSONL)' },
  reward: { file: './reward.js', help: 'train a reward model on preference pairs (TRL JSONL)' },
  dpo: { file: './dpo.js', help: 'align a fine-tuned model to preference pairs with DPO (TRL JSONL)' },
  rate: { file: './rate.js', help: 'rate sampled replies with a rater module; write feedback as TRL JSONL' },
  align: {
    file: './align.js',
    help: "alignment tasks: a task's data (llmts align data …) and the whole proof (llmts align verify …)",
  },
  kto: { file: './kto.js', help: 'align a fine-tuned model to unpaired thumbs up / down with KTO (TRL JSONL)' },
  ppo: { file: './ppo.js', help: 'align a fine-tuned model to a reward model with PPO and a KL leash' },
  rloo: { file: './rloo.js', help: 'align a fine-tuned model to a reward function with RLOO (k replies per prompt)' },
  grpo: {
    file: './grpo.js',
    help: 'align a fine-tuned model to a reward function with GRPO (group-relative advantages, per-token clipping)',
  },
  plan: { file: './plan.js', help: 'print parameters, FLOPs, memory and expected time of a training config' },
  generate: { file: './generate.js', help: 'continue a prompt with a model' },
  chat: { file: './chat.js', help: 'chat with a model in the terminal' },
  serve: { file: './serve.js', help: "serve a model with OpenAI's API and a chat page (HTTP)" },
  tokenizer: { file: './tokenizer.js', help: 'train or inspect a tokenizer (llmts tokenizer train …)' },
  tokenize: { file: './tokenize.js', help: 'print the token ids and pieces of a text' },
  eval: {
    file: './eval.js',
    help: "multiple-choice accuracy by log-likelihood (lm-evaluation-harness's acc and acc_norm)",
  },
  perplexity: {
    file: './perplexity.js',
    help: 'score a text with a model: perplexity, nats per token, bits per byte (sliding windows)',
  },
  embed: { file: './embed.js', help: 'embed texts with a model: vectors as JSON lines, or their cosine similarities' },
  inspect: { file: './inspect.js', help: 'look inside a model on a text: attention maps and the logit lens (HTML)' },
  export: { file: './export.js', help: 'write a model as a GGUF file (llama.cpp, ollama, LM Studio)' },
  feedback: { file: './feedback.js', help: 'export the feedback store as TRL JSONL, or count it (stats)' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(11)} ${v.help}`);
  return `usage: llmts <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'llmts <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 1;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`llmts: unknown command '${cmd}'\n\n${usage()}`);
    return 2;
  }
  handleClosedStdout();
  trackStdoutLine();
  try {
    const mod = (await import(entry.file)) as { main(argv: string[]): Promise<number> };
    return await mod.main(rest);
  } catch (e) {
    if (e instanceof LlmtsError) {
      console.error(`${lineBreakIfOpen()}llmts ${cmd}: ${e.message}`);
      return 1;
    }
    const sys = systemErrorLine(e);
    if (sys) {
      console.error(`${lineBreakIfOpen()}llmts ${cmd}: ${sys}`);
      return 1;
    }
    throw e;
  }
}

/** What the file system said, on one line: a path we cannot write (ENOTDIR, EACCES, EROFS, ENOSPC …) is bad input. */
const SYSTEM_CODES: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'is a folder, not a file',
  EEXIST: 'already exists',
  ENOENT: 'no such file or folder',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  ELOOP: 'too many symbolic links',
};

export function systemErrorLine(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const x = e as NodeJS.ErrnoException & { dest?: string };
  const why = x.code ? SYSTEM_CODES[x.code] : undefined;
  if (!why) return null;
  const where = x.path ? ` ${x.path}${x.dest ? ` → ${x.dest}` : ''}` : '';
  const writing =
    ['ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT'].includes(x.code!) ||
    ['mkdir', 'rename', 'write'].includes(x.syscall ?? '');
  return `cannot ${x.syscall ?? 'access'}${where}: ${why} (${x.code})${writing ? '. Choose a path you can write to' : ''}.`;
}
