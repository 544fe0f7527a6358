/**
 * `llmts tokenize`: show how a tokenizer cuts a text: each token's id and piece, the token count, and bytes per
 * token.
 *
 *   llmts tokenize "Hello world" --tokenizer gpt2
 *   cat file.txt | llmts tokenize - --tokenizer ./tok --json
 *   llmts tokenize --file notes.md --tokenizer gpt2 --count
 *
 * Special-token text in the input is refused by default (`--special plain` encodes it as text, `--special allow`
 * honours it). A piece that is part of a character (byte-level BPE splits some characters) prints as its bytes,
 * e.g. <e6 9d>.
 */
import { Command, Option } from 'commander';
import { parseCommand } from './parse.js';
import * as fs from 'node:fs';
import { loadTokenizer, type EncodeOptions, type TextTokenizer } from '../tokenizer/index.js';
import { ConfigError, FileFormatError, SpecialTokenError } from '../util/errors.js';
import { sniffText } from '../data/corpus.js';
import { tokenPiece } from '../chat/codec.js';
import { readStdin } from './stdin.js';

/** How a token shows: its text if its bytes are whole UTF-8, else its bytes in hex. */
export function pieceOf(tok: TextTokenizer, id: number): string {
  return tokenPiece(tok.tokenBytes(id));
}

interface Flags {
  tokenizer: string;
  file?: string;
  json?: boolean;
  count?: boolean;
  special: 'refuse' | 'plain' | 'allow';
}

async function run(textArg: string | undefined, f: Flags): Promise<number> {
  let text: string;
  let fileBytes: number | undefined;
  if (f.file !== undefined) {
    if (textArg !== undefined) throw new ConfigError('--file', 'give either a text argument or --file, not both');
    let raw: Buffer;
    try {
      raw = fs.readFileSync(f.file);
    } catch (e) {
      throw new FileFormatError('E_FILE_MISSING', f.file, `cannot read: ${(e as Error).message}`);
    }
    const s = sniffText(raw);
    text = s.text;
    fileBytes = raw.length;
    const replaced = Math.round(s.invalidRatio * s.text.length);
    if (replaced > 0)
      console.error(
        `warning: ${f.file}: ${replaced} bytes are not valid UTF-8 and were read as U+FFFD${s.nul ? ` (and ${s.nul} NUL bytes: is it a binary file?)` : ''}`,
      );
  } else if (textArg === undefined || textArg === '-') {
    text = await readStdin();
  } else {
    text = textArg;
  }
  const tok = await loadTokenizer(f.tokenizer);
  const opts: EncodeOptions = f.special === 'allow' ? { allowed: 'all' } : { special: f.special };
  const t0 = performance.now();
  let ids: number[];
  try {
    ids = tok.encode(text, opts);
  } catch (e) {
    if (e instanceof SpecialTokenError) {
      throw new ConfigError(
        '--special',
        `the text contains the special token ${JSON.stringify(e.token)} (index ${e.index}); use --special plain to encode it as text, or --special allow to honour it`,
      );
    }
    throw e;
  }
  const ms = performance.now() - t0;
  const bytes = fileBytes ?? Buffer.byteLength(text, 'utf8'); // the file's own size, not that of its U+FFFD-decoded text
  const bpt = ids.length ? bytes / ids.length : 0;
  if (f.json) {
    const out: Record<string, unknown> = {
      tokens: ids.length,
      bytes,
      characters: text.length,
      bytes_per_token: Number(bpt.toFixed(4)),
      encode_ms: Number(ms.toFixed(3)),
    };
    if (!f.count) {
      out.ids = ids;
      out.pieces = ids.map((id) => pieceOf(tok, id));
    }
    console.log(JSON.stringify(out));
    return 0;
  }
  if (!f.count) {
    let max = 0; // no spread of input-sized arrays: Math.max(...ids) overflows the stack past ~100k ids
    for (const id of ids) if (id > max) max = id;
    const w = String(max).length;
    const lines = ids.map(
      (id) => `${String(id).padStart(w)}  ${JSON.stringify(pieceOf(tok, id))}${tok.isSpecial(id) ? '  (special)' : ''}`,
    );
    console.log(lines.join('\n'));
    console.log(`ids: ${JSON.stringify(ids)}`);
  }
  console.log(
    `${ids.length} tokens, ${bytes} bytes, ${bpt.toFixed(2)} bytes/token (${tok.kind}, vocab ${tok.vocabSize})`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('llmts tokenize')
    .description('print the token ids and pieces of a text')
    .argument('[text]', "text to tokenize; '-' or nothing reads stdin")
    .option('--tokenizer <name|dir>', 'gpt2, cl100k_base, o200k_base, or a folder with tokenizer.json', 'gpt2')
    .option('--file <path>', 'read the text from a file')
    .option('--json', 'print one JSON object: ids, pieces, tokens, bytes, bytes_per_token')
    .option('--count', 'print only the counts')
    .addOption(
      new Option(
        '--special <policy>',
        'special-token text in the input: refuse, plain (as text), allow (as special ids)',
      )
        .choices(['refuse', 'plain', 'allow'])
        .default('refuse'),
    )
    .exitOverride()
    .action(async (text: string | undefined, flags: Flags) => {
      code = await run(text, flags);
    });
  return (await parseCommand(program, argv)) ?? code;
}
