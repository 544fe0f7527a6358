/**
 * `llmts train`: pretrain a model. With no arguments it trains the small default model on the embedded corpus in a
 * few minutes (what `npm start` runs), then shows what it learned.
 *
 *   llmts train [corpus files, folders, globs, .jsonl …] [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts train --resume[=runs/NAME]        continue a run exactly where it stopped
 *   llmts train --report runs/NAME          (re)write runs/NAME/report.html and exit
 */
import path from 'node:path';
import { configFromCommandLine, describeFields, parseCommandLine, parseOverrides, PRESETS } from '../train/config.js';
import { pretrain } from '../train/pretrain.js';
import { getBackend } from '../backend/registry.js';
import { writeReport } from '../train/report.js';
import { TrainingDivergedError } from '../util/errors.js';
import { makeDirSync } from '../util/fs.js';
import { onStdoutClosed } from './stdout.js';
import fs from 'node:fs';

const OWN = ['resume', 'report', 'help'];

function help(): string {
  const presets = Object.entries(PRESETS)
    .map(([k, v]) => `  ${k.padEnd(17)} ${v.help}`)
    .join('\n');
  return `usage: llmts train [corpus …] [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts train --resume[=runs/NAME] [--maxSteps=N …]
       llmts train --report runs/NAME

Corpus: text files, folders (read recursively), glob patterns ('data/**/*.txt') or JSONL files with a "text"
field. Without one, the embedded State of the Union addresses (1790-2018) are used.

Presets (--preset=NAME; the default is 'tiny'):
${presets}

Settings (--key=value; nanoGPT names such as --n_layer, --max_iters, --learning_rate work too):
${describeFields()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export async function main(argv: string[]): Promise<number> {
  const cl = parseCommandLine(argv, OWN);
  if (cl.flags.has('help')) {
    console.log(help());
    return 0;
  }
  if (cl.flags.has('report')) {
    const dir = cl.flags.get('report') || cl.positionals[0];
    if (!dir) {
      console.error('llmts train --report: give the run folder, e.g. --report runs/NAME');
      return 2;
    }
    console.log(`report: ${writeReport(dir)}`);
    return 0;
  }
  let r: Awaited<ReturnType<typeof pretrain>>;
  const fresh = cl.flags.has('resume') ? null : configFromCommandLine(cl);
  const outDir = fresh?.outDir ?? null;
  if (fresh) for (const d of [fresh.outDir, fresh.cacheDir]) makeDirSync(d); // an unwritable path fails here, named
  const before = new Set(outDir ? fs.readdirSync(outDir) : []);
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
    if (e instanceof TrainingDivergedError && e.runDir) console.error(`report: ${writeReport(e.runDir)}`);
    throw e;
  } finally {
    off();
    getBackend().dispose(); // worker threads of the wasm backend
  }

  const out: string[] = [''];
  const why = r.reason === 'done' ? 'finished' : r.reason === 'time-limit' ? 'stopped at the time limit' : 'stopped';
  out.push(`Training ${why} after ${r.steps} steps in ${Math.round(r.seconds)} s${r.finalValLoss !== null ? `; validation loss ${r.finalValLoss.toFixed(4)}${r.finalValStep !== r.steps ? ` (at step ${r.finalValStep})` : ''}` : ''}.`);
  if (r.samples.length) {
    out.push('', 'What it writes now:');
    for (const s of r.samples) out.push(`  ┌ ${JSON.stringify(s.prompt)}`, ...`${s.prompt}${s.text}`.split('\n').map((l) => `  │ ${l}`), '  └');
  }
  out.push('', `checkpoint (a Hugging Face folder): ${r.checkpointDir}`);
  if (r.reportPath) out.push(`report:     ${r.reportPath}  (open it in a browser; works offline)`);
  out.push(`metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`);
  out.push('', 'Next:');
  out.push(`  llmts chat ${r.checkpointDir}            talk to it`);
  out.push(`  llmts generate ${r.checkpointDir} "${(r.config.samplePrompts.find((p) => p.trim() && !/["\n]/.test(p)) ?? 'The').trim()}"  continue a prompt`);
  if (r.reason !== 'done') out.push(`  llmts train --resume=${r.runDir}   continue training`);
  console.log(out.join('\n'));
  return 0;
}
