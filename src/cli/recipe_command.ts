/**
 * The command line of the trainers that start from a model folder and data files: `llmts sft` (sft.ts), `llmts reward`, `llmts dpo`,
 * `llmts kto` (pref_command.ts), `llmts ppo`, `llmts rloo` and `llmts grpo` (rl_command.ts); each command file holds its help text
 * and what its closing lines say:
 *
 *   llmts <cmd> <model-dir> <data.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts <cmd> --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts <cmd> --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 *
 * The first positional is the model, the rest the data (unless --model / --data give them). Ctrl-C, or stdout
 * closing (`llmts ppo … | head`), finishes the current step and writes a checkpoint; a run that diverged still gets
 * its report.
 */
import path from 'node:path';
import { getBackend } from '../backend/registry.js';
import { formatDuration } from '../train/progress.js';
import type { RecipeOptions, RecipeResult } from '../train/recipe.js';
import { writeReport } from '../train/report.js';
import { TrainingDivergedError } from '../util/errors.js';
import { makeDirSync } from '../util/fs.js';
import type { Settings, SettingsTable, Values } from '../util/settings.js';
import { parseCommandLine, type OwnFlag } from './args.js';
import { llmtsCommand } from './invocation.js';
import { onStdoutClosed } from './stdout.js';

const OWN: Record<string, OwnFlag> = { resume: 'path?', 'report-only': 'value' };

/** The settings every such command has. */
export interface RecipeCommandConfig {
  model: string;
  data: string[];
  outDir: string;
  report: boolean;
}

export interface RecipeCommand<T extends SettingsTable, R extends RecipeResult<Values<T>> & { maxSteps: number }> {
  command: 'sft' | 'reward' | 'dpo' | 'kto' | 'ppo' | 'rloo' | 'grpo';
  settings: Settings<T>;
  help: () => string;
  build: (o: { preset?: string; file?: string; overrides?: Partial<Values<T>> }) => Values<T>;
  run: (o: RecipeOptions<Values<T>>) => Promise<R>;
  /** The algorithm's name, first word of the closing line ('DPO'). */
  done: string;
  /** What the closing line says after the steps and the training time ('; eval loss 0.6931'), or ''. */
  outcome: (r: R) => string;
  /** The closing lines after it: what the checkpoint is and what to do next. */
  next: (r: R, llmts: string) => string[];
}

/** The presets of a table as --help lines. */
export function presetLines(presets: Record<string, { help: string }>): string {
  return Object.entries(presets)
    .map(([k, v]) => `  ${k.padEnd(8)} ${v.help}`)
    .join('\n');
}

/** The closing lines of a trainer whose checkpoint is a causal LM: where it is, and how to talk to it. */
export function chatNext(r: { checkpointDir: string }, llmts: string): string[] {
  return [
    `checkpoint (a Hugging Face folder): ${r.checkpointDir}`,
    '',
    `Next: ${llmts} chat ${r.checkpointDir}    talk to it`,
    '',
  ];
}

export async function recipeMain<T extends SettingsTable, R extends RecipeResult<Values<T>> & { maxSteps: number }>(
  spec: RecipeCommand<T, R>,
  argv: string[],
): Promise<number> {
  const cl = parseCommandLine(argv, spec.settings, OWN);
  if (cl.flags.has('help')) {
    console.log(spec.help());
    return 0;
  }
  if (cl.flags.has('report-only')) {
    const dir = cl.flags.get('report-only')!;
    console.log(
      `report: ${writeReport(dir, { title: `llmts ${spec.command} run: ${path.basename(path.resolve(dir))}` })}`,
    );
    return 0;
  }
  const overrides = spec.settings.fromPairs(cl.pairs) as Partial<Values<T>> & Partial<RecipeCommandConfig>;
  const resume = cl.flags.has('resume');
  const pos = [...cl.positionals];
  if (!resume) {
    if (!overrides.model && pos.length) overrides.model = pos.shift()!;
    if (!overrides.data && pos.length) overrides.data = pos;
  }
  const config = resume
    ? null
    : (spec.build({
        ...(cl.preset ? { preset: cl.preset } : {}),
        ...(cl.file ? { file: cl.file } : {}),
        overrides,
      }) as Values<T> & RecipeCommandConfig);
  if (config) makeDirSync(config.outDir); // an unwritable path fails here, named
  const off = onStdoutClosed(() => {
    if (process.listenerCount('SIGINT') > 0) {
      process.emit('SIGINT');
      return true;
    }
    return false;
  });
  let r: R;
  try {
    r = config ? await spec.run({ config }) : await spec.run({ resume: cl.flags.get('resume') ?? '', overrides });
  } catch (e) {
    if (e instanceof TrainingDivergedError && e.runDir && config?.report !== false)
      console.error(`report: ${writeReport(e.runDir)}`);
    throw e;
  } finally {
    off();
    getBackend().dispose();
  }
  const why = r.reason === 'done' ? 'finished' : r.reason === 'time-limit' ? 'stopped at the time limit' : 'stopped';
  const llmts = llmtsCommand();
  const out = [
    '',
    `${spec.done} ${why} after ${r.steps} of ${r.maxSteps} steps (${formatDuration(r.seconds)} of training)${spec.outcome(r)}.`,
    '',
    ...spec.next(r, llmts),
    ...(r.reportPath ? [`report:     ${r.reportPath}  (open it in a browser; works offline)`] : []),
    `metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`,
    ...(r.reason !== 'done' ? ['', `Continue: ${llmts} ${spec.command} --resume=${r.runDir}`] : []),
  ];
  console.log(out.join('\n'));
  return 0;
}
