/**
 * `llmts eval <model> <questions.jsonl>`: multiple-choice accuracy by log-likelihood, as lm-evaluation-harness
 * scores HellaSwag, ARC or PIQA (src/align/eval/multiple_choice.ts), in process: acc and acc_norm with their 95 %
 * intervals and the chance level.
 *
 *   llmts eval runs/sft-…/checkpoint questions.jsonl
 *   llmts eval ./my-model hellaswag.jsonl --limit 200 --json
 *
 * Read top to bottom: parse, validate, load, score, print.
 */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { evalMultipleChoice, readChoiceQuestions } from '../align/eval/multiple_choice.js';
import { BACKEND_CHOICES } from '../backend/registry.js';
import { type QuantizeFlag, quantizeOption } from './quantize_flag.js';
import { ConfigError } from '../util/errors.js';
import { numberFlag, parseOrExit } from './generate.js';
import { loadScoringModel } from './scoring_model.js';

interface EvalFlags {
  limit: number;
  quantize?: QuantizeFlag;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
  json?: boolean;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export async function main(argv: string[]): Promise<number> {
  // parse
  const program = new Command('llmts eval')
    .description("multiple-choice accuracy by log-likelihood (lm-evaluation-harness's acc and acc_norm), in process")
    .argument('<model>', 'a model folder, a run folder (its checkpoint/) or a .gguf file')
    .argument('<questions>', 'JSONL rows {"context": "…", "choices": ["…", …], "answer": <index>}')
    .addOption(
      new Option('--limit <n>', 'score only the first n questions (0 = all)')
        .argParser(numberFlag('--limit', { integer: true }))
        .default(0),
    )
    .addOption(quantizeOption('score with the linear weights stored as'))
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(
      new Option('--threads <n>', 'worker threads of the wasm backend').argParser(
        numberFlag('--threads', { integer: true }),
      ),
    )
    .option('--json', "print one JSON object (with each question's log-likelihoods)");
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [modelArg, file] = program.processedArgs as [string, string];
  const f = program.opts<EvalFlags>();

  // validate
  if (f.limit < 0) throw new ConfigError('--limit', `expected an integer ≥ 0 (0 = all), got ${f.limit}`);
  let questions = readChoiceQuestions(file);
  if (f.limit > 0) questions = questions.slice(0, f.limit);

  // load
  const { dir, loaded: L, tok, bos } = await loadScoringModel(modelArg, f, 'the questions');

  // score
  const t0 = performance.now();
  const r = await evalMultipleChoice(L.model, (t) => tok.encode(t, { allowed: 'all' }), questions, {
    ...(bos !== undefined ? { bos } : {}),
    onProgress: (done, total) => {
      if (process.stderr.isTTY && !f.json) process.stderr.write(`\r${done}/${total} questions`);
    },
  });
  if (process.stderr.isTTY && !f.json) process.stderr.write('\r\x1b[K');
  const seconds = (performance.now() - t0) / 1000;

  // print
  if (f.json) {
    console.log(JSON.stringify({ model: dir, questions: file, ...r, seconds }));
    return 0;
  }
  const iv = (x: { low: number; high: number }) => `${pct(x.low)}–${pct(x.high)}`;
  console.log(
    `acc ${pct(r.acc)} (95% ${iv(r.accInterval)}), acc_norm ${pct(r.accNorm)} (95% ${iv(r.accNormInterval)}) ` +
      `on ${r.n} question${r.n === 1 ? '' : 's'} of ${path.basename(file)}; chance ${pct(r.chance)}; ${seconds.toFixed(1)} s`,
  );
  return 0;
}
