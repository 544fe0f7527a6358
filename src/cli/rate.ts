/**
 * `llmts rate`: rate sampled replies with a rater module run in its own process, and write the feedback as TRL
 * JSONL — the only thing the trainers read (issue 11).
 *
 *   llmts rate --oracle raters/sotu-desk.mjs samples.jsonl [-o feedback.jsonl] [--type ranking|preference|kto]
 *              [--seed S] [--threshold X] [--timeout SECONDS]
 *
 * samples.jsonl: `{"prompt": [messages…], "completions": [replies…], "finish_reasons"?: ["stop"|"length", …]}`.
 * The feedback goes to stdout unless -o names a file (written atomically); progress and the summary go to stderr.
 */
import { Command, Option } from 'commander';
import { OracleProcess } from '../align/oracle_process.js';
import { FEEDBACK_TYPES, type FeedbackType, rateSamples, readSamples } from '../align/rate.js';
import { formatTrlJsonl, writeTrlDataset } from '../data/trl.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { parseCommand } from './parse.js';

interface RateFlags {
  oracle: string;
  output?: string;
  type: FeedbackType;
  seed: number;
  threshold?: number;
  timeout: number;
}

function numberFlag(flag: string, integer: boolean): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x)))
      throw new ConfigError(flag, `expected ${integer ? 'an integer' : 'a number'}, got '${v}'`);
    return x;
  };
}

async function rate(samplesFile: string, f: RateFlags): Promise<number> {
  const samples = readSamples(samplesFile);
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const progress = (done: number, total: number) => {
    if (tty) process.stderr.write(`\rrate: ${done}/${total} prompts`);
    else if (done === total || done - lastLine >= Math.max(1, Math.ceil(total / 10))) {
      lastLine = done;
      process.stderr.write(`rate: ${done}/${total} prompts\n`);
    }
  };
  const oracle = await OracleProcess.start(f.oracle, { seed: f.seed }, { timeoutMs: f.timeout * 1000 });
  let res: Awaited<ReturnType<typeof rateSamples>>;
  try {
    res = await rateSamples(oracle, samples, {
      type: f.type,
      onProgress: progress,
      ...(f.threshold !== undefined ? { threshold: f.threshold } : {}),
    });
  } finally {
    if (tty) process.stderr.write('\n');
    await oracle.close();
  }
  const what = { ranking: 'ranked prompts', preference: 'preference pairs', kto: 'labelled replies' }[f.type];
  const skippedWhat = {
    ranking: 'prompts whose replies all scored the same',
    preference: 'tied pairs',
    kto: 'replies at the threshold',
  }[f.type];
  if (!res.rows.length)
    throw new FileFormatError(
      'E_NO_FEEDBACK',
      samplesFile,
      `the rater gave no ${what}: all ${res.skipped} were ${skippedWhat}; nothing to write`,
    );
  if (f.output) writeTrlDataset(f.output, res.rows);
  else process.stdout.write(formatTrlJsonl(res.rows));
  const s = (performance.now() - t0) / 1000;
  process.stderr.write(
    `rate: ${oracle.name}: ${res.prompts} prompts, ${res.replies} replies (mean score ${res.meanScore.toFixed(3)}) → ` +
      `${res.rows.length} ${what}${res.skipped ? ` (${res.skipped} ${skippedWhat} skipped)` : ''}` +
      `${res.disagreements ? `, ${res.disagreements} pairs where compare disagreed with the scores (margin 0)` : ''}` +
      `${f.output ? ` → ${f.output}` : ''} in ${s.toFixed(1)} s\n`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts rate')
    .description(
      'rate sampled replies with a rater module (run in its own process) and write the feedback as TRL JSONL',
    )
    .argument(
      '<samples>',
      'JSONL: {"prompt": [messages], "completions": [replies], "finish_reasons"?: ["stop"|"length"]}',
    )
    .requiredOption('--oracle <file>', 'the rater: an ES module exporting makeOracle(options) → {name, score, compare}')
    .option('-o, --output <file>', 'write the feedback here (atomically) instead of stdout')
    .addOption(
      new Option(
        '--type <type>',
        'ranking: replies by score; preference: pairs by compare, margin from scores; kto: thumbs',
      )
        .choices(FEEDBACK_TYPES)
        .default('ranking'),
    )
    .addOption(
      new Option('--seed <n>', "the rater's seed (options.seed)").argParser(numberFlag('--seed', true)).default(0),
    )
    .addOption(
      new Option('--threshold <x>', "kto: label = score > x (default: above the prompt's mean score)").argParser(
        numberFlag('--threshold', false),
      ),
    )
    .addOption(
      new Option('--timeout <s>', 'fail when the rater gives no answer for this many seconds (0: no limit)')
        .argParser(numberFlag('--timeout', false))
        .default(600),
    )
    .exitOverride()
    .action(async (samples: string, flags: RateFlags) => {
      code = await rate(samples, flags);
    });
  return (await parseCommand(program, argv)) ?? code;
}
