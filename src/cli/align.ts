/**
 * `llmts align`: the alignment tasks and, to come, the whole proof (`align verify`).
 *
 *   llmts align data --task sotu-desk|arithmetic|shakespeare-turns --split train|heldout --kind prompts|sft [-o FILE]
 *
 * prompts: TRL prompt-only rows `{"prompt": [messages…]}` (conversations ending with a user turn); sft: the train
 * prompts' demonstrations as `{"messages": …}` rows (held-out prompts have none: they are for evaluation only).
 * Written to stdout unless -o names a file (atomically).
 *
 *   llmts align verify --task NAME [--oracle FILE] [--seed S] [--json] [--out DIR] [--quick]
 *
 * The whole proof (src/align/verify.ts): SFT (cached) → replies → the rater's feedback file → reward model → PPO →
 * DPO → held-out win rates against SFT, with the controls; verify.json and report.html in the output folder
 * (default runs/align-verify/TASK-sSEED[-quick]); --json prints the figures as one JSON object on stdout.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { getTask, TASKS, taskDemonstrations, taskPrompts } from '../align/tasks/index.js';
import { raterFile, TASK_SPLITS, type TaskSplit } from '../align/tasks/task.js';
import { alignVerify } from '../align/verify.js';
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

interface VerifyFlags {
  task: string;
  oracle?: string;
  seed: string;
  json?: boolean;
  out?: string;
  quick?: boolean;
}

async function verify(f: VerifyFlags): Promise<number> {
  const task = getTask(f.task, '--task');
  const seed = Number(f.seed);
  if (!Number.isInteger(seed) || seed < 0)
    throw new ConfigError('--seed', `expected a whole number ≥ 0, got ${f.seed}`);
  const out = f.out ?? path.join('runs', 'align-verify', `${task.name}-s${seed}${f.quick ? '-quick' : ''}`);
  const r = await alignVerify({
    task,
    oracle: f.oracle ?? raterFile(task.name),
    seed,
    out,
    ...(f.quick ? { quick: true } : {}),
  });
  const x = r.figures;
  if (f.json) process.stdout.write(`${JSON.stringify(x)}\n`);
  else {
    const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
    console.log(
      [
        `align verify: ${x.task}, rater ${x.oracle}, seed ${x.seed} (${x.mode}): ${x.pairs} pairs, ${x.heldout_prompts} held-out prompts`,
        `  RM accuracy ${pct(x.rm_accuracy)} · PPO win ${pct(x.ppo_win_rate)} (CI low ${pct(x.ppo_win_rate_ci_low)}, KL ${x.ppo_kl.toFixed(3)}) · DPO win ${pct(x.dpo_win_rate)} (KL ${x.dpo_kl.toFixed(3)}) · best-of-n ${pct(x.bon_win_rate)}`,
        `  controls: A/A ${pct(x.aa_win_rate)} · flipped RM ${pct(x.shuffled_rm_accuracy)} · flipped PPO ${pct(x.shuffled_ppo_win_rate)} · distinct ${x.distinct_ratio.toFixed(3)} (SFT ${x.distinct_ratio_sft.toFixed(3)}) · EOS ${pct(x.eos_rate)}`,
        `  wall ${x.wall_s} s (${Object.entries(x.seconds)
          .map(([k, v]) => `${k} ${v} s`)
          .join(', ')})`,
        `  ${r.jsonPath}`,
        `  ${r.reportPath}`,
      ].join('\n'),
    );
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts align').description('alignment tasks and the alignment proof').exitOverride();
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
  program
    .command('verify')
    .description(
      'the alignment proof on a tiny model: SFT → rated replies → reward model → PPO → DPO → held-out win rates and controls',
    )
    .addOption(new Option('--task <name>', 'the task').choices(Object.keys(TASKS)).makeOptionMandatory())
    .option('--oracle <file>', "the rater module (default: the task's public rater, raters/TASK.mjs)")
    .option('--seed <n>', 'the seed of every random draw', '1')
    .option('--json', 'print the figures as one JSON object on stdout')
    .option('--out <dir>', 'output folder (default runs/align-verify/TASK-sSEED)')
    .option('--quick', 'the QUICK settings (a smoke run; the figures mean nothing)')
    .action(async (flags: VerifyFlags) => {
      code = await verify(flags);
    });
  program.commands.forEach((c) => c.exitOverride());
  return (await parseCommand(program, argv)) ?? code;
}
