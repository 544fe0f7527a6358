/**
 * The command line shared by `llmts reward`, `llmts dpo` and `llmts kto` (reward.ts, dpo.ts, kto.ts hold their
 * help text):
 *
 *   llmts <cmd> <model-dir> <prefs.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts <cmd> --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts <cmd> --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import path from 'node:path';
import type { PrefConfig, PrefOptions, PrefResult } from '../align/pref_run.js';
import { getBackend } from '../backend/registry.js';
import { formatDuration } from '../train/progress.js';
import { writeReport } from '../train/report.js';
import { TrainingDivergedError } from '../util/errors.js';
import { makeDirSync } from '../util/fs.js';
import type { Settings, SettingsTable, Values } from '../util/settings.js';
import { parseCommandLine, type OwnFlag } from './args.js';
import { llmtsCommand } from './invocation.js';
import { onStdoutClosed } from './stdout.js';

const OWN: Record<string, OwnFlag> = { resume: 'path?', 'report-only': 'value' };

export interface PrefCommand<T extends SettingsTable> {
  command: 'reward' | 'dpo' | 'kto';
  settings: Settings<T>;
  help: () => string;
  build: (o: { preset?: string; file?: string; overrides?: Partial<Values<T>> }) => Values<T>;
  run: (o: PrefOptions<Values<T> & PrefConfig>) => Promise<PrefResult<Values<T>>>;
  /** The closing lines: what the checkpoint is and what to do next. */
  next: (r: PrefResult<Values<T>>, llmts: string) => string[];
  done: string;
}

/** The presets of a table as --help lines. */
export function presetLines(presets: Record<string, { help: string }>): string {
  return Object.entries(presets)
    .map(([k, v]) => `  ${k.padEnd(8)} ${v.help}`)
    .join('\n');
}

export async function prefMain<T extends SettingsTable>(spec: PrefCommand<T>, argv: string[]): Promise<number> {
  const cl = parseCommandLine(argv, spec.settings, OWN);
  if (cl.flags.has('help')) {
    console.log(spec.help());
    return 0;
  }
  if (cl.flags.has('report-only')) {
    console.log(
      `report: ${writeReport(cl.flags.get('report-only')!, { title: `llmts ${spec.command} run: ${path.basename(path.resolve(cl.flags.get('report-only')!))}` })}`,
    );
    return 0;
  }
  const overrides = spec.settings.fromPairs(cl.pairs) as Partial<Values<T>> & Partial<PrefConfig>;
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
      }) as Values<T> & PrefConfig);
  if (config) makeDirSync(config.outDir); // an unwritable path fails here, named
  const off = onStdoutClosed(() => {
    if (process.listenerCount('SIGINT') > 0) {
      process.emit('SIGINT');
      return true;
    }
    return false;
  });
  let r: PrefResult<Values<T>>;
  try {
    r = config
      ? await spec.run({ config })
      : await spec.run({
          resume: cl.flags.get('resume') ?? '',
          overrides: overrides as Partial<Values<T> & PrefConfig>,
        });
  } catch (e) {
    if (e instanceof TrainingDivergedError && e.runDir && config?.report !== false)
      console.error(`report: ${writeReport(e.runDir)}`);
    throw e;
  } finally {
    off();
    getBackend().dispose();
  }
  const why = r.reason === 'done' ? 'finished' : r.reason === 'time-limit' ? 'stopped at the time limit' : 'stopped';
  const ev = r.finalEval;
  const acc = ev ? (ev['eval_accuracy'] ?? ev['eval_rewards/accuracies']) : undefined;
  // KTO has no pairs, so no accuracy: its held-out rewards/margins says how far apart the two kinds moved
  const margin = spec.command === 'kto' && ev ? ev['eval_rewards/margins'] : undefined;
  const llmts = llmtsCommand();
  const out = [
    '',
    `${spec.done} ${why} after ${r.steps} of ${r.maxSteps} steps (${formatDuration(r.seconds)} of training)${ev ? `; eval loss ${Number(ev['eval_loss']).toFixed(4)}` : ''}${acc !== undefined ? `, held-out accuracy ${(acc * 100).toFixed(1)} %` : ''}${margin !== undefined ? `, held-out reward margin ${margin.toFixed(4)} (desirable − undesirable)` : ''}.`,
    '',
    ...spec.next(r, llmts),
    ...(r.reportPath ? [`report:     ${r.reportPath}  (open it in a browser; works offline)`] : []),
    `metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`,
    ...(r.reason !== 'done' ? ['', `Continue: ${llmts} ${spec.command} --resume=${r.runDir}`] : []),
  ];
  console.log(out.join('\n'));
  return 0;
}
