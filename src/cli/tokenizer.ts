/**
 * `llmts tokenizer`: train a tokenizer on text files, or describe one.
 *
 *   llmts tokenizer train corpus.txt more/ --vocab-size 8192 --out ./tok [--pattern gpt2|cl100k|llama3]
 *                         [--special '<|endoftext|>' '<|im_start|>' '<|im_end|>'] [--type bpe|char]
 *                         [--min-frequency 2] [--max-bytes N] [--json]
 *   llmts tokenizer info ./tok | gpt2 [--json]
 *
 * Inputs: text files, folders (their .txt/.md/.jsonl files, recursively) and .jsonl files (the `text` field of
 * each line); each file or line is one document. The output folder gets tokenizer.json + tokenizer_config.json
 * (Hugging Face format; the first special token is the bos/eos token).
 */
import { Command, Option } from 'commander';
import { parseCommand } from './parse.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkNotEmpty, readTextFile } from '../data/corpus.js';
import {
  CharTokenizer,
  loadTokenizer,
  parsePatternName,
  saveTokenizer,
  trainBpeWithStats,
  Tokenizer,
  type TextTokenizer,
} from '../tokenizer/index.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { SpmTokenizer } from '../tokenizer/spm_tokenizer.js';

const TEXT_EXT = new Set(['.txt', '.md', '.jsonl', '.text']);

function intFlag(flag: string, min: number): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isInteger(x) || x < min)
      throw new ConfigError(flag, `expected an integer ≥ ${min}, got '${v}'`);
    return x;
  };
}

/** Files named on the command line, folders expanded (sorted, so the document order is stable). */
export function expandInputs(inputs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string, top: boolean): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new FileFormatError('E_FILE_MISSING', p, 'input file or folder not found');
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) {
        if (name.startsWith('.')) continue;
        const q = path.join(p, name);
        if (fs.statSync(q).isDirectory() || TEXT_EXT.has(path.extname(name).toLowerCase())) walk(q, false);
      }
    } else if (top || TEXT_EXT.has(path.extname(p).toLowerCase())) {
      out.push(p);
    }
  };
  for (const i of inputs) walk(i, true);
  return out;
}

/** Documents of the input files (a .jsonl line's `text` field, or a whole file), up to `maxBytes` characters. */
export function readDocuments(files: readonly string[], maxBytes = Infinity): string[] {
  const docs: string[] = [];
  let n = 0;
  for (const f of files) {
    if (n >= maxBytes) break;
    // the same checks as `llmts train`: binary files refused, invalid UTF-8 counted
    const text = f.toLowerCase().endsWith('.jsonl')
      ? fs.readFileSync(f, 'utf8')
      : readTextFile(f, 0.01, false, (file, n) =>
          console.error(
            `warning: ${file}: ${n} bytes are not valid UTF-8 and were read as U+FFFD (is it Latin-1? convert it with iconv -f latin1 -t utf-8)`,
          ),
        )!;
    const parts: string[] = [];
    if (f.toLowerCase().endsWith('.jsonl')) {
      text.split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch (e) {
          throw new FileFormatError('E_JSON', f, `line ${i + 1} is not JSON: ${(e as Error).message}`, `line ${i + 1}`);
        }
        const t = (obj as { text?: unknown }).text;
        if (typeof t !== 'string')
          throw new FileFormatError('E_DATASET', f, 'expected a string field "text"', `line ${i + 1}.text`);
        parts.push(t);
      });
    } else {
      parts.push(text);
    }
    for (const p of parts) {
      if (n >= maxBytes) break;
      const d = n + p.length > maxBytes ? p.slice(0, maxBytes - n) : p;
      docs.push(d);
      n += d.length;
    }
  }
  return docs;
}

/** A summary of a tokenizer (what `info` prints). */
export function describeTokenizer(tok: TextTokenizer): Record<string, unknown> {
  const c = tok.config;
  const info: Record<string, unknown> = {
    type: tok.kind,
    vocab_size: tok.vocabSize,
    special_tokens: Object.fromEntries(tok.specialTokens),
    bos_token: c.bosToken ?? null,
    eos_token: c.eosToken ?? null,
    pad_token: c.padToken ?? null,
    model_max_length: c.modelMaxLength ?? null,
    chat_template: c.chatTemplate !== undefined,
  };
  if (tok instanceof Tokenizer) {
    info.merges = tok.model.mergeCount;
    info.pattern = tok.patternName ?? tok.splitPatterns;
    info.ignore_merges = tok.model.ignoreMerges;
    info.add_prefix_space = tok.addPrefixSpace;
    const longest = [...Array(tok.model.tokenBytes.length).keys()]
      .filter((i) => tok.model.tokenBytes[i])
      .sort((a, b) => tok.model.tokenBytes[b]!.length - tok.model.tokenBytes[a]!.length || a - b)
      .slice(0, 5);
    info.longest_tokens = longest.map((i) => tok.tokenText(i));
  }
  if (tok instanceof SpmTokenizer) {
    info.style = 'sentencepiece';
    info.merges = tok.merges.length;
    info.byte_fallback = tok.byteFallback;
    info.normalizer = tok.steps.map((s) =>
      s.kind === 'unicode'
        ? s.form
        : s.kind === 'prepend'
          ? `prepend ${s.text}`
          : s.kind === 'replace'
            ? `replace ${JSON.stringify(s.from)} → ${JSON.stringify(s.to)}`
            : `metaspace (${s.scheme})`,
    );
    const longest = tok.pieces
      .map((p, i) => [p, i] as const)
      .filter(([p]) => p !== undefined)
      .sort((a, b) => [...b[0]!].length - [...a[0]!].length || a[1] - b[1])
      .slice(0, 5);
    info.longest_tokens = longest.map(([, i]) => tok.tokenText(i));
  }
  if (tok instanceof CharTokenizer) info.characters = tok.chars.join('');
  return info;
}

interface TrainFlags {
  vocabSize?: number;
  out: string;
  pattern: string;
  special: string[] | false;
  type: 'bpe' | 'char';
  minFrequency: number;
  maxBytes?: number;
  json?: boolean;
}

async function train(inputs: string[], f: TrainFlags): Promise<number> {
  const files = expandInputs(inputs);
  if (files.length === 0) throw new ConfigError('files', `no text files found in ${inputs.join(', ')}`);
  const docs = readDocuments(files, f.maxBytes ?? Infinity);
  checkNotEmpty(docs, inputs.join(', '));
  const chars = docs.reduce((s, d) => s + d.length, 0);
  const specials = f.special === false ? [] : f.special.filter((s) => s !== '');
  const config = specials.length ? { bosToken: specials[0], eosToken: specials[0] } : {};
  const t0 = performance.now();
  let tok: TextTokenizer;
  let extra: Record<string, unknown> = {};
  if (f.type === 'char') {
    tok = CharTokenizer.fromText(docs.join('\n'), { specialTokens: specials, config });
  } else {
    if (f.vocabSize === undefined) throw new ConfigError('--vocab-size', 'required for --type bpe');
    const pattern = parsePatternName(f.pattern, '--pattern');
    const interactive = !f.json && process.stderr.isTTY;
    const { tokenizer, stats } = trainBpeWithStats(docs, {
      vocabSize: f.vocabSize,
      pattern,
      specialTokens: specials,
      minFrequency: f.minFrequency,
      config,
      ...(interactive ? { onProgress: (d: number, t: number) => process.stderr.write(`\rmerges ${d}/${t}`) } : {}),
    });
    if (interactive) process.stderr.write('\n');
    tok = tokenizer;
    extra = {
      pattern,
      merges: stats.merges,
      words: stats.words,
      distinct_words: stats.distinctWords,
      count_seconds: stats.countSeconds,
      merge_seconds: stats.mergeSeconds,
    };
  }
  const seconds = (performance.now() - t0) / 1000;
  await saveTokenizer(tok, f.out);
  // compression on (up to) the first MB of the corpus
  const sample = docs.join('\n').slice(0, 1_000_000);
  const ids = tok.encode(sample, { special: 'plain' });
  const bytes = Buffer.byteLength(sample, 'utf8');
  const result = {
    out: path.resolve(f.out),
    type: tok.kind,
    vocab_size: tok.vocabSize,
    files: files.length,
    documents: docs.length,
    characters: chars,
    seconds: Number(seconds.toFixed(3)),
    bytes_per_token: ids.length ? Number((bytes / ids.length).toFixed(3)) : null,
    ...extra,
  };
  if (f.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `trained a ${tok.kind === 'bpe' ? 'byte-level BPE' : 'character-level'} tokenizer: ${tok.vocabSize} ids in ${seconds.toFixed(2)} s`,
    );
    console.log(
      `  corpus: ${files.length} file(s), ${docs.length} document(s), ${(chars / 1e6).toFixed(2)} M characters`,
    );
    if (result.bytes_per_token !== null)
      console.log(`  ${result.bytes_per_token} bytes/token on the first ${(bytes / 1e6).toFixed(2)} MB`);
    console.log(`  saved to ${result.out} (tokenizer.json, tokenizer_config.json)`);
  }
  return 0;
}

async function info(dir: string, f: { json?: boolean }): Promise<number> {
  const tok = await loadTokenizer(dir);
  const d = describeTokenizer(tok);
  if (f.json) console.log(JSON.stringify(d));
  else
    for (const [k, v] of Object.entries(d))
      console.log(`${k.padEnd(18)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts tokenizer').description('train or inspect a tokenizer').exitOverride();
  program
    .command('train')
    .description('train a tokenizer on text files / folders / .jsonl and save it as tokenizer.json')
    .argument('<files...>', 'text files, folders, or .jsonl files (field "text")')
    .addOption(
      new Option('--vocab-size <n>', 'total vocabulary size (256 bytes + merges + special tokens)').argParser(
        intFlag('--vocab-size', 1),
      ),
    )
    .requiredOption('--out <dir>', 'output folder')
    .addOption(
      new Option('--pattern <name>', 'pre-tokenizer split pattern')
        .choices(['gpt2', 'cl100k', 'llama3'])
        .default('gpt2'),
    )
    .option('--special <tokens...>', 'special tokens (the first is bos/eos)', ['<|endoftext|>'])
    .option('--no-special', 'no special tokens')
    .addOption(new Option('--type <type>', 'tokenizer type').choices(['bpe', 'char']).default('bpe'))
    .addOption(
      new Option('--min-frequency <n>', 'stop when the best pair is rarer than this')
        .argParser(intFlag('--min-frequency', 1))
        .default(2),
    )
    .addOption(
      new Option('--max-bytes <n>', 'train on at most this many characters of the corpus').argParser(
        intFlag('--max-bytes', 1),
      ),
    )
    .option('--json', 'print one JSON object')
    .action(async (files: string[], flags: TrainFlags) => {
      code = await train(files, flags);
    });
  program
    .command('info')
    .description('describe a tokenizer folder (or gpt2)')
    .argument('<dir>', 'folder with tokenizer.json, or gpt2')
    .option('--json', 'print one JSON object')
    .action(async (dir: string, flags: { json?: boolean }) => {
      code = await info(dir, flags);
    });
  program.commands.forEach((c) => c.exitOverride());
  return (await parseCommand(program, argv)) ?? code;
}
