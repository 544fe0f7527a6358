/**
 * `llmts align`: the alignment tasks and, to come, the whole proof (`align verify`).
 *
 *   llmts align data --task sotu-desk|arithmetic|shakespeare-turns --split train|heldout --kind prompts|sft [-o FILE]
 *
 * prompts: TRL prompt-only rows `{"prompt": [messages…]}` (conversations ending with a user turn); sft: the train
 * prompts' demonstrations as `{"messages": …}` rows (held-out prompts have none: they are for evaluation only).
 * Written to stdout unless -o names a file (atomically).
 */
import { Command, Option } from 'commander';
import { getTask, TASKS, taskDemonstrations, taskPrompts } from '../align/tasks/index.js';
import { TASK_SPLITS, type TaskSplit } from '../align/tasks/task.js';
import { formatTrlJsonl, writeTrlDataset } from '../data/trl.js';
import { ConfigError } from '../util/errors.js';
import { writeFileAtomicSync } from '../util/fs.js';
import { parseCommand } from './parse.js';

interface DataFlags {
  task: string;
  split: TaskSplit;
  kind: 'prompts' | 'sft';
  output?: string;
}

function data(f: DataFlags): number {
  const task = getTask(f.task, '--task');
  let n: number;
  if (f.kind === 'sft') {
    if (f.split !== 'train')
      throw new ConfigError(
        '--split',
        'held-out prompts have no demonstrations (they are for evaluation only); use --split train',
      );
    const rows = taskDemonstrations(task);
    n = rows.length;
    if (f.output) writeTrlDataset(f.output, rows);
    else process.stdout.write(formatTrlJsonl(rows));
  } else {
    const prompts = taskPrompts(task, f.split);
    n = prompts.length;
    const text = prompts.map((p) => JSON.stringify({ prompt: p }) + '\n').join('');
    if (f.output) writeFileAtomicSync(f.output, text);
    else process.stdout.write(text);
  }
  process.stderr.write(
    `align data: ${task.name}, ${f.split} split: ${n} ${f.kind === 'sft' ? 'demonstrations' : 'prompts'}${f.output ? ` → ${f.output}` : ''}\n`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts align')
    .description('alignment tasks (and, to come, the alignment proof)')
    .exitOverride();
  program
    .command('data')
    .description("write a task's prompts or SFT demonstrations as TRL JSONL")
    .addOption(new Option('--task <name>', 'the task').choices(Object.keys(TASKS)).makeOptionMandatory())
    .addOption(
      new Option('--split <split>', 'train: for the trainers; heldout: for evaluation only')
        .choices(TASK_SPLITS)
        .default('train'),
    )
    .addOption(
      new Option('--kind <kind>', 'prompts: {"prompt"} rows; sft: {"messages"} demonstrations (train split)')
        .choices(['prompts', 'sft'])
        .default('prompts'),
    )
    .option('-o, --output <file>', 'write here (atomically) instead of stdout')
    .action((flags: DataFlags) => {
      code = data(flags);
    });
  program.commands.forEach((c) => c.exitOverride());
  return (await parseCommand(program, argv)) ?? code;
}
