/**
 * `llmts sft`: supervised fine-tuning of a pretrained model on TRL-format JSONL (src/align/sft.ts).
 *
 *   llmts sft <model-dir> <data.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts sft --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts sft --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 *
 * The settings are the table in src/align/sft_settings.ts; the command line is split by args.ts.
 */
import path from 'node:path';
import { sft } from '../align/sft.js';
import { buildSftConfig, SFT_PRESETS, SFT_SETTINGS } from '../align/sft_settings.js';
import { getBackend } from '../backend/registry.js';
import { formatDuration } from '../train/progress.js';
import { writeReport } from '../train/report.js';
import { TrainingDivergedError } from '../util/errors.js';
import { makeDirSync } from '../util/fs.js';
import { parseCommandLine, type OwnFlag } from './args.js';
import { llmtsCommand } from './invocation.js';
import { onStdoutClosed } from './stdout.js';

const OWN: Record<string, OwnFlag> = { resume: 'path?', 'report-only': 'value' };

function help(): string {
  const presets = Object.entries(SFT_PRESETS)
    .map(([k, v]) => `  ${k.padEnd(8)} ${v.help}`)
    .join('\n');
  return `usage: llmts sft <model-dir> <data.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts sft --resume[=runs/NAME] [--maxSteps=N …]
       llmts sft --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Fine-tunes a pretrained model (a Hugging Face folder with config.json, model.safetensors and tokenizer.json, e.g.
a checkpoint of 'llmts train') on TRL-format JSONL, one JSON object per line:
  {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
  {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}
  {"prompt": "The capital of France is", "completion": " Paris."}
  {"text": "plain text to continue"}
Conversations are rendered with the model's chat template (ChatML when it has none); the loss counts only the
assistant replies (their text and the end-of-turn token) or the completion (+ EOS): --completionOnly=false counts
every token. Roles are system, user and assistant. A bad row stops the run naming file and line (--badRows=skip
skips and counts it); examples longer than maxLength are truncated and counted. Batches pad to their longest example.

metrics.jsonl carries TRL's names: loss, learning_rate, grad_norm, epoch, num_tokens, mean_token_accuracy, and
eval_loss, eval_mean_token_accuracy on the held-out rows (--evalData, else the last evalFraction of the rows).
The checkpoint (runs/NAME/checkpoint) is a Hugging Face folder with the tokenizer and the chat template it was
tuned with: 'llmts chat runs/NAME/checkpoint' talks to it.

Presets (--preset=NAME):
${presets}

Settings (--key=value or --key value; TRL names such as --learning_rate, --num_train_epochs, --max_length work too):
${SFT_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export async function main(argv: string[]): Promise<number> {
  const cl = parseCommandLine(argv, SFT_SETTINGS, OWN);
  if (cl.flags.has('help')) {
    console.log(help());
    return 0;
  }
  if (cl.flags.has('report-only')) {
    console.log(
      `report: ${writeReport(cl.flags.get('report-only')!, { title: `llmts sft run: ${path.basename(path.resolve(cl.flags.get('report-only')!))}` })}`,
    );
    return 0;
  }
  const overrides = SFT_SETTINGS.fromPairs(cl.pairs);
  const resume = cl.flags.has('resume');
  const pos = [...cl.positionals];
  if (!resume) {
    if (!overrides.model && pos.length) overrides.model = pos.shift()!;
    if (!overrides.data && pos.length) overrides.data = pos;
  }
  const config = resume
    ? null
    : buildSftConfig({ ...(cl.preset ? { preset: cl.preset } : {}), ...(cl.file ? { file: cl.file } : {}), overrides });
  if (config) makeDirSync(config.outDir); // an unwritable path fails here, named
  const off = onStdoutClosed(() => {
    if (process.listenerCount('SIGINT') > 0) {
      process.emit('SIGINT');
      return true;
    }
    return false;
  });
  let r: Awaited<ReturnType<typeof sft>>;
  try {
    r = config ? await sft({ config }) : await sft({ resume: cl.flags.get('resume') ?? '', overrides });
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
    `Fine-tuning ${why} after ${r.steps} of ${r.maxSteps} steps (${formatDuration(r.seconds)} of training)${r.finalEvalLoss !== null ? `; eval loss ${r.finalEvalLoss.toFixed(4)}` : ''}.`,
    '',
    `checkpoint (a Hugging Face folder): ${r.checkpointDir}`,
    ...(r.reportPath ? [`report:     ${r.reportPath}  (open it in a browser; works offline)`] : []),
    `metrics:    ${path.join(r.runDir, 'metrics.jsonl')}`,
    '',
    'Next:',
    `  ${llmts} chat ${r.checkpointDir}            talk to it`,
    ...(r.reason !== 'done' ? [`  ${llmts} sft --resume=${r.runDir}   continue fine-tuning`] : []),
  ];
  console.log(out.join('\n'));
  return 0;
}
