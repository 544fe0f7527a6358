/**
 * `llmts train`: pretrain a model. With no arguments it trains the small default model on the embedded corpus in a
 * few minutes (what `npm start` runs), then shows what it learned.
 *
 *   llmts train [corpus files, folders, globs, .jsonl …] [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts train --resume[=runs/NAME]        continue a run exactly where it stopped
 *   llmts train --report-only runs/NAME     (re)write runs/NAME/report.html and exit
 *
 * The settings are the table in src/pretrain/settings.ts; the command line is split by args.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildConfig, parseOverrides } from '../pretrain/config.js';
import { PRESETS } from '../pretrain/presets.js';
import { pretrain } from '../pretrain/pretrain.js';
import { cacheDirOf, TRAIN_SETTINGS, type TrainConfig } from '../pretrain/settings.js';
import { getBackend } from '../backend/registry.js';
import { formatDuration } from '../train/progress.js';
import { writeReport } from '../train/report.js';
import { ConfigError, TrainingDivergedError } from '../util/errors.js';
import { makeDirSync } from '../util/fs.js';
import { parseCommandLine, type CommandLine, type OwnFlag } from './args.js';
import { llmtsCommand } from './invocation.js';
import { onStdoutClosed } from './stdout.js';

const OWN: Record<string, OwnFlag> = { resume: 'path?', 'report-only': 'value' };

/** The command line of `llmts train` / `llmts plan`, split against the settings table. */
export function parseTrainArgs(argv: readonly string[], own: Record<string, OwnFlag> = OWN): CommandLine {
  return parseCommandLine(argv, TRAIN_SETTINGS, own);
}

/** The config of a parsed command line (positionals become `input` unless --input is given). */
export function configFromCommandLine(cl: CommandLine): TrainConfig {
  const overrides = parseOverrides(cl.pairs);
  if (cl.positionals.length && !overrides.input) overrides.input = cl.positionals;
  return buildConfig({ ...(cl.preset ? { preset: cl.preset } : {}), ...(cl.file ? { file: cl.file } : {}), overrides });
}

function help(): string {
  const presets = Object.entries(PRESETS)
    .map(([k, v]) => `  ${k.padEnd(17)} ${v.help}`)
    .join('\n');
  return `usage: llmts train [corpus …] [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts train --resume[=runs/NAME] [--maxSteps=N …]
       llmts train --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Corpus: text files, folders (read recursively), glob patterns ('data/**/*.txt') or JSONL files with a "text"
field. Without one, the embedded State of the Union addresses (1790-2018) are used.

Presets (--preset=NAME; the default is 'tiny'):
${presets}

Settings (--key=value or --key value; a bare --flag sets a true/false setting to true; nanoGPT names such as
--n_layer, --max_iters, --learning_rate work too):
${TRAIN_SETTINGS.describe()}

Steps count from 1: "step N" (console, metrics.jsonl, evaluations, checkpoints) is the state after N optimizer steps.
Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export async function main(argv: string[]): Promise<number> {
  const cl = parseTrainArgs(argv);
  if (cl.flags.has('help')) {
    console.log(help());
    return 0;
  }
  if (cl.flags.has('report-only')) {
    console.log(`report: ${writeReport(cl.flags.get('report-only')!)}`);
    return 0;
  }
  // `--report runs/NAME` once meant "rewrite that run's report"; now --report is the true/false setting, and a run
  // folder as a corpus input would train on the run's own files.
  const report = cl.pairs.find(([k]) => k === 'report');
  const runDir = cl.positionals.find((p) => fs.existsSync(path.join(p, 'metrics.jsonl')));
  if (report && runDir)
    throw new ConfigError(
      'report',
      `'${runDir}' is a run folder; rewrite its report with: llmts train --report-only ${runDir}`,
    );

  let r: Awaited<ReturnType<typeof pretrain>>;
  const fresh = cl.flags.has('resume') ? null : configFromCommandLine(cl);
  const outDir = fresh?.outDir ?? null;
  const before = new Set(outDir && fs.existsSync(outDir) ? fs.readdirSync(outDir) : []);
  if (fresh) for (const d of [fresh.outDir, cacheDirOf(fresh)]) makeDirSync(d); // an unwritable path fails here, named
  /** A run that failed before writing anything leaves no empty folder behind. */
  const removeEmptyRun = () => {
    if (!outDir || !fs.existsSync(outDir)) return;
    for (const n of fs.readdirSync(outDir)) {
      const d = path.join(outDir, n);
      if (!before.has(n) && fs.statSync(d).isDirectory() && fs.readdirSync(d).length === 0) fs.rmdirSync(d);
    }
  };
  // stdout closed (`| head`): stop as on Ctrl-C once the loop runs (a checkpoint is written), else exit quietly
  const off = onStdoutClosed(() => {
    if (process.listenerCount('SIGINT') > 0) {
      process.emit('SIGINT');
      return true;
    }
    removeEmptyRun();
    return false;
  });
  try {
    r = cl.flags.has('resume')
      ? await pretrain({ resume: cl.flags.get('resume') ?? '', overrides: parseOverrides(cl.pairs) })
      : await pretrain({ config: configFromCommandLine(cl) });
  } catch (e) {
    removeEmptyRun();
    // a diverged run still gets its report (from metrics.jsonl and the last good checkpoint)
    if (e instanceof TrainingDivergedError && e.runDir && fresh?.report !== false)
      console.error(`report: ${writeReport(e.runDir)}`);
    throw e;
  } finally {
    off();
    getBackend().dispose(); // worker threads of the wasm backend
  }

  const out: string[] = [''];
  const why = r.reason === 'done' ? 'finished' : r.reason === 'time-limit' ? 'stopped at the time limit' : 'stopped';
  out.push(
    `Training ${why} after ${r.steps} steps (${formatDuration(r.seconds)} of training)${r.finalValLoss !== null ? `; validation loss ${r.finalValLoss.toFixed(4)}${r.finalValStep !== r.steps ? ` (at step ${r.finalValStep})` : ''}` : ''}.`,
  );
  if (r.samples.length) {
    out.push('', 'What it writes now:');
    for (const s of r.samples)
      out.push(`  ┌ ${JSON.stringify(s.prompt)}`, ...`${s.prompt}${s.text}`.split('\n').map((l) => `  │ ${l}`), '  └');
  }
  out.push('', `checkpoint (a Hugging Face folder): ${r.checkpointDir}`);
  if (r.reportPath) out.push(`report:     ${r.reportPath}  (open it in a browser; works offline)`);
  out.push(`metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`);
  const llmts = llmtsCommand();
  out.push('', 'Next:');
  out.push(`  ${llmts} chat ${r.checkpointDir}            talk to it`);
  out.push(
    `  ${llmts} generate ${r.checkpointDir} "${(r.config.samplePrompts.find((p) => p.trim() && !/["\n]/.test(p)) ?? 'The').trim()}"  continue a prompt`,
  );
  if (r.reason !== 'done') out.push(`  ${llmts} train --resume=${r.runDir}   continue training`);
  console.log(out.join('\n'));
  return 0;
}
