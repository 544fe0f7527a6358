/**
 * The command-line parser of commands whose options are a settings table (src/util/settings.ts): `llmts train`,
 * `llmts plan`, and the trainers to come. It splits argv into
 *
 *   --key=value | --key value        a setting (camelCase, kebab-case, snake_case or an alias; unknown keys are
 *                                    rejected with the closest one, wrong types with the expected type)
 *   --flag                           a true/false setting set to true (never takes the next word)
 *   --preset=NAME, --config=F.json   the preset and the JSON file layered under the command line
 *   the command's own flags          e.g. --resume[=dir], --report-only dir, --help / -h
 *   positionals                      everything else (for `train`: corpus inputs); `--` ends the options
 *
 * Commands with a few fixed options (generate, chat, tokenize, tokenizer) use commander instead (parse.ts).
 */
import fs from 'node:fs';
import { ConfigError } from '../util/errors.js';
import { kindName, type Settings, type SettingsTable } from '../util/settings.js';

/** How a command's own flag takes a value. */
export type OwnFlag =
  /** never (`--help`) */
  | 'none'
  /** always: `--flag=v` or `--flag v` */
  | 'value'
  /** optional: `--flag=v`, or `--flag v` when `v` exists on disk, else bare */
  | 'path?'
  /** true/false: bare `--flag` is 'true', `--flag=false` 'false'; never takes the next word */
  | 'bool';

/** What a command line holds. */
export interface CommandLine {
  preset?: string;
  file?: string;
  /** `--key=value` settings, in order, keys resolved to the table's names. */
  pairs: [string, string][];
  /** Positional arguments. */
  positionals: string[];
  /** The command's own flags that were given, with their value ('' when bare). */
  flags: Map<string, string>;
}

/** Split `argv` against a settings table and the command's own flags (`help` is always one). */
export function parseCommandLine<T extends SettingsTable>(
  argv: readonly string[],
  settings: Settings<T>,
  own: Record<string, OwnFlag> = {},
): CommandLine {
  const flags: Record<string, OwnFlag> = { help: 'none', ...own };
  const out: CommandLine = { pairs: [], positionals: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.positionals.push(a);
      continue;
    }
    if (a === '-h') {
      out.flags.set('help', '');
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const key = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    const next = argv[i + 1];
    const takeNext = () => {
      if (value === undefined && next !== undefined && !next.startsWith('--')) {
        value = next;
        i++;
      }
    };
    const ownKind = flags[key];
    if (ownKind !== undefined) {
      if (ownKind === 'value') takeNext();
      else if (ownKind === 'path?' && next !== undefined && !next.startsWith('-') && fs.existsSync(next)) takeNext();
      if (ownKind === 'value' && value === undefined) throw new ConfigError(key, `needs a value: --${key}=<value>`);
      if (ownKind === 'bool') {
        value ??= 'true';
        if (!['true', 'false', '1', '0', 'yes', 'no'].includes(value))
          throw new ConfigError(key, `expected true or false, got ${JSON.stringify(value)}`);
        value = ['true', '1', 'yes'].includes(value) ? 'true' : 'false';
      }
      out.flags.set(key, value ?? '');
      continue;
    }
    if (key === 'preset' || key === 'config') {
      takeNext();
      if (!value) throw new ConfigError(key, `needs a value: --${key}=${key === 'preset' ? 'NAME' : 'file.json'}`);
      if (key === 'preset') out.preset = value;
      else out.file = value;
      continue;
    }
    const k = settings.resolveKey(key);
    if (value === undefined) {
      if (settings.table[k]!.kind === 'bool') value = 'true';
      else {
        takeNext();
        if (value === undefined) throw new ConfigError(k, `needs a value: --${k}=<${kindName(settings.table[k]!)}>`);
      }
    }
    out.pairs.push([k, value]);
  }
  return out;
}
