/**
 * `llmts embed <model> [text...]`: one embedding per text (src/model/embed.ts), pooled as the model says (its
 * sentence-transformers modules or GGUF pooling_type, else the last token) unless --pooling says otherwise, framed as
 * its tokenizer frames a text (BOS, appended EOS), unit length unless --no-normalize (or the model's sentence-
 * transformers modules have no Normalize).
 *
 *   llmts embed ./Qwen3-Embedding-0.6B "a cat sat" "a dog sat" --similarity    # the cosine of every pair
 *   cat sentences.txt | llmts embed model.gguf --dimensions 256 > vectors.jsonl  # one text per line, JSON lines out
 *
 * Output: one JSON line per text, `{ "index", "tokens", "embedding" }`; with --similarity a table of cosine
 * similarities instead (the vectors normalised for it).
 */
import { Command, Option } from 'commander';
import { BACKEND_CHOICES } from '../backend/registry.js';
import { embed, frameIds, POOLINGS, type Pooling } from '../model/embed.js';
import { readPooling } from '../model/hf/pooling.js';
import { type QuantizeFlag, quantizeOption } from './quantize_flag.js';
import { trailingEos } from '../tokenizer/leading_bos.js';
import { ConfigError } from '../util/errors.js';
import { numberFlag, parseOrExit } from './generate.js';
import { loadScoringModel } from './scoring_model.js';
import { readStdin } from './stdin.js';

interface EmbedFlags {
  pooling?: Pooling;
  dimensions?: number;
  normalize: boolean;
  similarity?: boolean;
  quantize?: QuantizeFlag;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
}

export async function main(argv: string[]): Promise<number> {
  // parse
  const program = new Command('llmts embed')
    .description('embed texts with a model: one vector per text (JSON lines), or their cosine similarities')
    .argument('<model>', 'a model folder, a run folder (its checkpoint/) or a .gguf file')
    .argument('[text...]', "texts to embed; none (or '-'): one text per line from stdin")
    .addOption(
      new Option('--pooling <kind>', "how token states become one vector (default: the model's, else last)").choices(
        POOLINGS,
      ),
    )
    .addOption(
      new Option('--dimensions <d>', 'keep the first d components (Matryoshka models)').argParser(
        numberFlag('--dimensions', { integer: true }),
      ),
    )
    .option('--no-normalize', "keep the vectors as pooled (default: unit length, unless the model's modules say not)")
    .option('--similarity', 'print the cosine similarity of every pair of texts instead of the vectors')
    .addOption(quantizeOption('the linear weights'))
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(
      new Option('--threads <n>', 'worker threads of the wasm backend').argParser(
        numberFlag('--threads', { integer: true }),
      ),
    );
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [modelArg, args] = program.processedArgs as [string, string[]];
  const f = program.opts<EmbedFlags>();

  // the texts, checked before loading anything heavy
  const fromStdin = args.length === 0 || (args.length === 1 && args[0] === '-');
  const texts = fromStdin ? (await readStdin()).split(/\r?\n/).filter((l) => l.trim() !== '') : args;
  if (texts.length === 0) throw new ConfigError('text', 'no text to embed: give texts, or lines on stdin');
  texts.forEach((t, i) => {
    if (t === '') throw new ConfigError(`text[${i}]`, 'an empty text has nothing to embed');
  });
  if (f.similarity && texts.length < 2) throw new ConfigError('--similarity', 'needs two texts or more');

  // load, tokenize, embed
  const { dir, loaded: L, tok, bos } = await loadScoringModel(modelArg, f, 'the texts');
  const pool = await readPooling(dir);
  const frame = { bos: bos ?? null, eos: trailingEos(tok) ?? null };
  const rows = texts.map((t) => frameIds(tok.encode(t, { special: 'plain' }), frame));
  const vectors = await embed(L.model, rows, {
    pooling: f.pooling ?? pool.pooling,
    normalize: f.similarity || (f.normalize && pool.normalize),
    ...(f.dimensions !== undefined ? { dimensions: f.dimensions } : {}),
  });

  // print
  if (f.similarity) {
    const w = Math.max(...texts.map((t) => Math.min(t.length, 24)), 4);
    const cut = (t: string) => (t.length > 24 ? `${t.slice(0, 23)}…` : t).padEnd(w);
    process.stdout.write(`${''.padEnd(w)}  ${texts.map((_, j) => `#${j}`.padStart(6)).join(' ')}\n`);
    vectors.forEach((a, i) => {
      const cells = vectors.map((b) => {
        let dot = 0;
        for (let k = 0; k < a.length; k++) dot += a[k]! * b[k]!;
        return dot.toFixed(3).padStart(6);
      });
      process.stdout.write(`${cut(texts[i]!)}  ${cells.join(' ')}   #${i}\n`);
    });
    return 0;
  }
  vectors.forEach((v, index) =>
    process.stdout.write(`${JSON.stringify({ index, tokens: rows[index]!.length, embedding: Array.from(v) })}\n`),
  );
  return 0;
}
