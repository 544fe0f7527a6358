/**
 * `llmts feedback`: the feedback store (src/feedback) from the command line.
 *
 *   llmts feedback export --db feedback.db --type sft|preference|kto|ranking [-o FILE] [--rater NAME]
 *   llmts feedback stats  --db feedback.db [--json]
 *
 * `export` writes TRL JSONL (conversational form) that `llmts sft`, `reward` and `dpo` read; to FILE atomically, or
 * to stdout without -o; what the rows came from goes to stderr. The rules (corrections, ties, both-bad, a rater's
 * later judgment replacing an earlier one) are in src/feedback/export.ts and the README. `stats` counts
 * conversations, messages and judgments by kind, rater and checkpoint. Neither creates a database.
 */
import { Command, Option } from 'commander';
import { formatTrlJsonl, writeTrlDataset } from '../data/trl.js';
import { FeedbackInputError } from '../feedback/errors.js';
import { EXPORT_TYPES, exportFeedback, type ExportType } from '../feedback/export.js';
import { feedbackStats, formatStats } from '../feedback/stats.js';
import { FeedbackStore } from '../feedback/store.js';
import { parseCommand } from './parse.js';

function open(db: string): FeedbackStore {
  return FeedbackStore.open(db, { create: false });
}

async function exportCommand(f: { db: string; type: ExportType; output?: string; rater?: string }): Promise<number> {
  const store = open(f.db);
  try {
    const r = exportFeedback(store, f.type, f.rater === undefined ? {} : { rater: f.rater });
    const from = Object.entries(r.counts)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    if (!r.rows.length)
      throw new FeedbackInputError(
        'E_FEEDBACK_EMPTY',
        '--type',
        `no ${f.type} rows in ${f.db}${f.rater === undefined ? '' : ` from rater ${JSON.stringify(f.rater)}`}${from ? ` (${from})` : ''}; 'llmts feedback stats --db ${f.db}' shows what it holds`,
      );
    if (f.output === undefined) process.stdout.write(formatTrlJsonl(r.rows));
    else writeTrlDataset(f.output, r.rows);
    console.error(`${r.rows.length} ${f.type} rows${f.output === undefined ? '' : ` → ${f.output}`} (from ${from})`);
    return 0;
  } finally {
    store.close();
  }
}

async function statsCommand(f: { db: string; json?: boolean }): Promise<number> {
  const store = open(f.db);
  try {
    const s = feedbackStats(store);
    if (f.json) console.log(JSON.stringify(s));
    else for (const line of formatStats(s, f.db)) console.log(line);
    return 0;
  } finally {
    store.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts feedback')
    .description('export or count the feedback store (conversations and judgments of model replies)')
    .exitOverride();
  program
    .command('export')
    .description('write the judgments as TRL JSONL for llmts sft / reward / dpo')
    .requiredOption('--db <file>', 'the feedback database (SQLite)')
    .addOption(
      new Option(
        '--type <type>',
        'sft: corrected conversations; preference: chosen/rejected pairs; kto: thumbs as labels; ranking: rankings',
      )
        .choices(EXPORT_TYPES)
        .makeOptionMandatory(),
    )
    .option('-o, --output <file>', 'write here (atomically) instead of stdout')
    .option('--rater <name>', "only this rater's judgments (a name, or oracle:<name>)")
    .action(async (flags: { db: string; type: ExportType; output?: string; rater?: string }) => {
      code = await exportCommand(flags);
    });
  program
    .command('stats')
    .description('count conversations, messages and judgments by kind, rater and checkpoint')
    .requiredOption('--db <file>', 'the feedback database (SQLite)')
    .option('--json', 'print one JSON object')
    .action(async (flags: { db: string; json?: boolean }) => {
      code = await statsCommand(flags);
    });
  program.commands.forEach((c) => c.exitOverride());
  return (await parseCommand(program, argv)) ?? code;
}
