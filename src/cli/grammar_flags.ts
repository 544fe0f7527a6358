/**
 * Constrained-output flags, spelled as llama.cpp's CLI spells them: `--grammar <gbnf>`, `--grammar-file <file>`,
 * `--json-schema <json>`, `--json-schema-file <file>` (at most one). The result is a grammar for the engine's
 * `grammar` option (src/generate/grammar); a file that cannot be read, JSON that does not parse, or a schema or
 * grammar that cannot be compiled is an error naming the flag (and the file).
 */
import fs from 'node:fs';
import { type Command, Option } from 'commander';
import { type Grammar, jsonSchemaGrammar, parseGbnf } from '../generate/grammar/index.js';
import { ConfigError } from '../util/errors.js';

export interface GrammarFlags {
  grammar?: string;
  grammarFile?: string;
  jsonSchema?: string;
  jsonSchemaFile?: string;
}

/** Add the four flags to a command. */
export function addGrammarFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--grammar <gbnf>', 'constrain the output to a llama.cpp GBNF grammar (its text)'))
    .addOption(new Option('--grammar-file <file>', 'constrain the output to the GBNF grammar in this file'))
    .addOption(new Option('--json-schema <json>', 'constrain the output to JSON that this JSON Schema accepts'))
    .addOption(
      new Option('--json-schema-file <file>', 'constrain the output to JSON that the schema in this file accepts'),
    );
}

function readText(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(flag, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function parseSchema(flag: string, text: string, file?: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(flag, `the schema is not JSON: ${(e as Error).message}`, file);
  }
}

/** The grammar the flags ask for, or undefined. */
export function grammarFromFlags(f: GrammarFlags): Grammar | undefined {
  const given = (['grammar', 'grammarFile', 'jsonSchema', 'jsonSchemaFile'] as const).filter((k) => f[k] !== undefined);
  const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (given.length > 1) throw new ConfigError(flag(given[1]!), `give only one of ${given.map(flag).join(', ')}`);
  if (f.grammar !== undefined) return parseGbnf(f.grammar, '--grammar');
  if (f.grammarFile !== undefined) return parseGbnf(readText('--grammar-file', f.grammarFile), f.grammarFile);
  if (f.jsonSchema !== undefined) return jsonSchemaGrammar(parseSchema('--json-schema', f.jsonSchema), '--json-schema');
  if (f.jsonSchemaFile !== undefined) {
    const file = f.jsonSchemaFile;
    return jsonSchemaGrammar(parseSchema('--json-schema-file', readText('--json-schema-file', file), file), file);
  }
  return undefined;
}
