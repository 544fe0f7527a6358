/**
 * `llmts perplexity <model> <text-file>`: how well a model predicts a text, as llama.cpp's llama-perplexity and
 * transformers' perplexity guide measure it: the mean negative log-likelihood of every token given the ones before
 * it (sliding windows of --context tokens every --stride tokens: src/model/perplexity.ts), its exp (perplexity), and
 * bits per byte (tokenizer-independent: models with different vocabularies compare).
 *
 *   llmts perplexity runs/my-model held-out.txt
 *   llmts perplexity ./my-model held-out.txt --context 512 --stride 256 --quantize q8   # what q8 costs
 *   cat text.txt | llmts perplexity model.gguf - --json
 *
 * Read top to bottom: parse, validate, load (a model folder, a run folder's checkpoint/, or a .gguf), tokenize, score,
 * print.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { BACKEND_CHOICES } from '../backend/registry.js';
import { perplexity, perplexitySettings, perplexityWindows } from '../model/perplexity.js';
import { type QuantizeFlag, quantizeOption } from './quantize_flag.js';
import { describeWeights } from '../model/quantize.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { formatDuration } from '../train/progress.js';
import { numberFlag, parseOrExit } from './generate.js';
import { loadScoringModel } from './scoring_model.js';
import { readStdin } from './stdin.js';

interface PerplexityFlags {
  context?: number;
  stride?: number;
  batchSize: number;
  maxTokens: number;
  quantize?: QuantizeFlag;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
  json?: boolean;
}

/** The text of a file argument ('-': stdin), as a named error when it cannot be read. */
async function readText(file: string): Promise<string> {
  if (file === '-') return readStdin();
  if (!fs.existsSync(file))
    throw new FileFormatError('E_FILE_MISSING', file, 'no such file: give a text file to score');
  if (!fs.statSync(file).isFile()) throw new FileFormatError('E_NOT_A_FILE', file, 'is a folder, not a text file');
  return fs.readFileSync(file, 'utf8');
}

const int = (flag: string) => numberFlag(flag, { integer: true });

export async function main(argv: string[]): Promise<number> {
  // parse
  const program = new Command('llmts perplexity')
    .description(
      "score a text with a model: perplexity, nats per token and bits per byte, by sliding windows (transformers' recipe)",
    )
    .argument('<model>', 'a model folder, a run folder (its checkpoint/) or a .gguf file')
    .argument('<text-file>', "the text to score, or '-' to read it from stdin")
    .addOption(
      new Option('--context <n>', "tokens per window (default: the model's positions, at most 1024)").argParser(
        int('--context'),
      ),
    )
    .addOption(
      new Option(
        '--stride <n>',
        'tokens between window starts (default: half the context; = context: disjoint windows, faster, higher perplexity)',
      ).argParser(int('--stride')),
    )
    .addOption(new Option('--batch-size <n>', 'windows per forward').argParser(int('--batch-size')).default(4))
    .addOption(
      new Option('--max-tokens <n>', "score only the text's first n tokens (0 = all)")
        .argParser(int('--max-tokens'))
        .default(0),
    )
    .addOption(quantizeOption('score the model with its linear weights as (what quantising costs)'))
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(new Option('--threads <n>', 'worker threads of the wasm backend').argParser(int('--threads')))
    .option('--json', 'print one JSON object');
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [modelArg, fileArg] = program.processedArgs as [string, string];
  const f = program.opts<PerplexityFlags>();

  // validate before loading anything heavy
  if (f.batchSize < 1) throw new ConfigError('--batch-size', `expected an integer ≥ 1, got ${f.batchSize}`);
  if (f.maxTokens < 0) throw new ConfigError('--max-tokens', `expected an integer ≥ 0 (0 = all), got ${f.maxTokens}`);
  const text = await readText(fileArg);
  if (text.trim() === '') throw new ConfigError('text-file', `${fileArg === '-' ? 'stdin' : fileArg} holds no text`);

  // load, tokenize
  const { dir, loaded: L, tok, bos } = await loadScoringModel(modelArg, f, 'the text');
  let ids = [...(bos !== undefined ? [bos] : []), ...tok.encode(text, { special: 'plain' })];
  if (f.maxTokens > 0) ids = ids.slice(0, f.maxTokens);
  const settings = perplexitySettings(L.model, ids.length, {
    ...(f.context !== undefined ? { context: f.context } : {}),
    ...(f.stride !== undefined ? { stride: f.stride } : {}),
    batchSize: f.batchSize,
  });
  // bits per byte: over the bytes of the tokens scored (all of the text when a BOS token comes first and stride <
  // context)
  let bytes = 0;
  for (const w of perplexityWindows(ids.length, settings.context, settings.stride))
    for (let g = w.from; g < w.end; g++) bytes += tok.tokenBytes(ids[g]!).length;

  // score, with a bar on a terminal
  const bar =
    process.stderr.isTTY && !f.json
      ? new cliProgress.SingleBar(
          {
            format: ' {bar} {value}/{total} tokens | {tps} tok/s | ETA {etaS}',
            barsize: 24,
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  const t0 = performance.now();
  bar?.start(ids.length - 1, 0, { tps: '-', etaS: '?' });
  const r = await perplexity(L.model, ids, {
    ...settings,
    onProgress: (done, total) => {
      const s = (performance.now() - t0) / 1000;
      bar?.update(done, { tps: (done / s).toFixed(0), etaS: formatDuration(((total - done) * s) / done) });
    },
  });
  bar?.stop();
  const seconds = (performance.now() - t0) / 1000;
  const bitsPerByte = r.nll / Math.LN2 / bytes;

  // print
  const source = fileArg === '-' ? 'stdin' : path.basename(fileArg);
  if (f.json) {
    console.log(
      JSON.stringify({
        model: dir,
        text: fileArg,
        tokens: r.tokens,
        bytes,
        nll: r.nll,
        meanNll: r.meanNll,
        perplexity: r.perplexity,
        bitsPerByte,
        context: r.context,
        stride: r.stride,
        windows: r.windows,
        quantize: L.weights.kind === 'f32' ? null : L.weights.kind,
        weights: describeWeights(L.weights),
        seconds,
      }),
    );
    return 0;
  }
  console.log(
    `perplexity ${r.perplexity.toFixed(3)} on ${r.tokens.toLocaleString('en-US')} tokens of ${source} ` +
      `(context ${r.context}, stride ${r.stride}, ${r.windows} window${r.windows === 1 ? '' : 's'}${L.weights.kind !== 'f32' ? `, ${describeWeights(L.weights)} weights` : ''})`,
  );
  console.log(
    `${r.meanNll.toFixed(4)} nats/token, ${bitsPerByte.toFixed(4)} bits/byte (${bytes.toLocaleString('en-US')} bytes); ` +
      `${seconds.toFixed(1)} s, ${(r.tokens / seconds).toFixed(0)} tokens/s`,
  );
  return 0;
}
