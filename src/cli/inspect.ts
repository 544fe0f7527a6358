/**
 * `llmts inspect <model-dir|run-dir> "text" -o inspect.html`: look inside a model on one text. Writes ONE offline
 * HTML page (src/inspect/page.ts): attention maps per layer and head, the logit lens (each layer's next-token guess),
 * and the last position's next-token distribution under temperature / top-k / top-p controls.
 *
 *   llmts inspect runs/shakespeare-char "ROMEO:" -o inspect.html
 *   llmts inspect ./my-model "The river bank was" --topk 10 --temperature 0.8 --top-p 0.9
 *   echo "text" | llmts inspect ./my-model - -o page.html
 *
 * Read top to bottom: parse, validate, load (the model folder, or a run folder's checkpoint/), inspect, write.
 */
import { BACKEND_CHOICES } from '../backend/registry.js';
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspectText } from '../inspect/inspect.js';
import { inspectionHtml } from '../inspect/page.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { loadForGeneration, numberFlag, parseOrExit, samplerFromFlags } from './generate.js';
import { leadingBos } from '../tokenizer/leading_bos.js';
import { readStdin } from './stdin.js';

interface InspectFlags {
  output: string;
  topk: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  backend: (typeof BACKEND_CHOICES)[number];
  threads?: number;
}

/** The model folder of a path: the folder itself when it holds config.json, a run folder's checkpoint/ otherwise. */
export function modelFolderOf(dir: string): string {
  if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  const ck = path.join(dir, 'checkpoint');
  if (fs.existsSync(path.join(ck, 'config.json'))) return ck;
  throw new FileFormatError(
    'E_FILE_MISSING',
    dir,
    'no config.json here or in checkpoint/: expected a model folder (config.json, model.safetensors, tokenizer.json) or a run folder',
  );
}

export async function main(argv: string[]): Promise<number> {
  // parse
  const program = new Command('llmts inspect')
    .description(
      'look inside a model on a text: write one offline HTML page with attention maps, the logit lens and the next-token distribution',
    )
    .argument('<model-dir|run-dir>', 'a model folder (config.json, model.safetensors, tokenizer.json) or a run folder')
    .argument('<text>', "the text to look at, or '-' to read it from stdin")
    .option('-o, --output <file>', 'the HTML page to write', 'inspect.html')
    .addOption(
      new Option('--topk <n>', 'tokens listed per logit-lens cell (1..50)')
        .argParser(numberFlag('--topk', { integer: true }))
        .default(5),
    )
    .addOption(
      new Option(
        '--temperature <t>',
        "the sampling controls' starting temperature (default: generation_config.json, else 1)",
      ).argParser(numberFlag('--temperature')),
    )
    .addOption(
      new Option('--top-k <k>', 'their starting top-k (0 = off)').argParser(numberFlag('--top-k', { integer: true })),
    )
    .addOption(new Option('--top-p <p>', 'their starting top-p (1 = off)').argParser(numberFlag('--top-p')))
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto'))
    .addOption(
      new Option('--threads <n>', 'worker threads of the wasm backend').argParser(
        numberFlag('--threads', { integer: true }),
      ),
    );
  const code = parseOrExit(program, argv);
  if (code !== null) return code;
  const [dirArg, textArg] = program.processedArgs as [string, string];
  const f = program.opts<InspectFlags>();

  // validate before loading anything heavy
  if (f.topk < 1 || f.topk > 50) throw new ConfigError('--topk', `expected an integer in 1..50, got ${f.topk}`);
  if (f.temperature !== undefined && !(f.temperature >= 0 && f.temperature <= 2))
    throw new ConfigError('--temperature', `expected a number in 0..2 (the page's slider), got ${f.temperature}`);
  if (f.topK !== undefined && f.topK < 0) throw new ConfigError('--top-k', `expected an integer ≥ 0, got ${f.topK}`);
  if (f.topP !== undefined && !(f.topP > 0 && f.topP <= 1))
    throw new ConfigError('--top-p', `expected a number in (0, 1], got ${f.topP}`);
  const text = textArg === '-' ? (await readStdin()).replace(/\r?\n$/, '') : textArg;
  if (text === '') throw new ConfigError('text', 'the text is empty: give some text to look at');
  const dir = modelFolderOf(dirArg);

  // load
  const L = await loadForGeneration(dir, f);
  if (!L.codec)
    throw new ConfigError('text', `${dir} has no tokenizer (tokenizer.json), so the text cannot be encoded`);
  const tok = L.tokenizer!;
  const bos = leadingBos(tok);

  // inspect, write
  const t0 = Date.now();
  const ins = await inspectText(L.model, L.codec, text, {
    topk: f.topk,
    residual: false,
    specials: 'all', // typed by the person running the command, as `llmts generate`
    ...(bos !== undefined ? { bos } : {}),
  });
  const s = samplerFromFlags(f, L.defaults);
  const html = inspectionHtml(ins, {
    title: `Inside ${path.basename(path.resolve(dirArg))}`,
    source: dir,
    text,
    sampling: { temperature: Math.min(2, s.temperature ?? 1), topK: s.topK ?? 0, topP: s.topP ?? 1 },
  });
  await writeFileAtomic(f.output, html);
  const T = ins.ids.length;
  const last = ins.lens[ins.lens.length - 1]!;
  const top = Array.from({ length: ins.topk }, (_, j) => {
    const i = (T - 1) * ins.topk + j;
    return `${JSON.stringify(ins.vocab.get(last.ids[i]!))} ${(last.probs[i]! * 100).toFixed(1)}%`;
  });
  console.log(
    `${T} token${T === 1 ? '' : 's'}, ${ins.numLayers} layers × ${ins.numHeads} heads, in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  console.log(`next token: ${top.join(', ')}`);
  console.log(
    `wrote ${f.output} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB; open it in a browser, works offline)`,
  );
  return 0;
}
