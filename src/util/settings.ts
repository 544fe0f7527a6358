/**
 * Typed settings tables: each setting of a command is declared once (type, default, help line, range, aliases), and
 * everything else derives from that one declaration: the TypeScript type of the settings object (`Values<T>`), the
 * defaults, the `--help` lines, converting strings from the command line and values from a JSON file, and range
 * checks. nanoGPT's `configurator.py` does the same with Python globals; minGPT's `CfgNode` with a dict.
 *
 *   const S = defineSettings({
 *     ...group('optimisation', {
 *       lr: float(1e-3, 'Peak learning rate.', { gt: 0, aliases: ['learning_rate'] }),
 *       schedule: oneOf(['cosine', 'constant'], 'cosine', 'Learning-rate schedule.'),
 *     }),
 *   });
 *   type Config = Values<typeof S.table>;      // { lr: number; schedule: 'cosine' | 'constant' }
 *
 * A command's own table is usually the loop's tables (src/train/settings.ts) spread together with its own settings,
 * so `sft`, `reward`, `ppo` and `dpo` share the loop's names, defaults and checks with `train`.
 *
 * Keys are camelCase; kebab-case (`--batch-size`) and snake_case (`--batch_size`) spellings of a key are accepted, and
 * the aliases a setting lists. Unknown keys are rejected with the closest known key.
 */
import fs from 'node:fs';
import { ConfigError } from './errors.js';

interface Common {
  /** One line for --help. */
  help: string;
  /** Other names accepted for this setting (nanoGPT's `n_layer`, `max_iters`, …). */
  aliases?: readonly string[];
  /** Heading this setting is listed under in --help. */
  group?: string;
}
interface Range {
  min?: number;
  max?: number;
  /** Strict lower bound (the value must be > gt). */
  gt?: number;
}
export interface NumberSetting extends Common, Range {
  kind: 'int' | 'float';
  default: number;
}
export interface BoolSetting extends Common {
  kind: 'bool';
  default: boolean;
}
export interface StringSetting extends Common {
  kind: 'string';
  default: string;
}
export interface StringsSetting extends Common {
  kind: 'strings';
  default: readonly string[];
}
export interface NumbersSetting extends Common {
  kind: 'numbers';
  default: readonly number[];
}
export interface EnumSetting<V extends string = string> extends Common {
  kind: 'enum';
  values: readonly V[];
  default: V;
}
export type Setting = NumberSetting | BoolSetting | StringSetting | StringsSetting | NumbersSetting | EnumSetting;
export type SettingsTable = Record<string, Setting>;

/** The value type of one setting. */
export type ValueOf<S> =
  S extends EnumSetting<infer V>
    ? V
    : S extends NumberSetting
      ? number
      : S extends BoolSetting
        ? boolean
        : S extends StringsSetting
          ? string[]
          : S extends NumbersSetting
            ? number[]
            : S extends StringSetting
              ? string
              : never;
/** The settings object a table describes. */
export type Values<T extends SettingsTable> = { -readonly [K in keyof T]: ValueOf<T[K]> };

type Opts = Range & { aliases?: readonly string[] };
/** An integer setting. */
export const int = (dflt: number, help: string, o: Opts = {}): NumberSetting => ({
  kind: 'int',
  default: dflt,
  help,
  ...o,
});
/** A number setting. */
export const float = (dflt: number, help: string, o: Opts = {}): NumberSetting => ({
  kind: 'float',
  default: dflt,
  help,
  ...o,
});
/** A true/false setting (a bare `--flag` means true). */
export const bool = (dflt: boolean, help: string, o: { aliases?: readonly string[] } = {}): BoolSetting => ({
  kind: 'bool',
  default: dflt,
  help,
  ...o,
});
/** A string setting. */
export const str = (dflt: string, help: string, o: { aliases?: readonly string[] } = {}): StringSetting => ({
  kind: 'string',
  default: dflt,
  help,
  ...o,
});
/** A list of strings (`a,b` or a JSON array on the command line). */
export const strings = (
  dflt: readonly string[],
  help: string,
  o: { aliases?: readonly string[] } = {},
): StringsSetting => ({ kind: 'strings', default: dflt, help, ...o });
/** A list of finite numbers ("1,0.5" on the command line, [1, 0.5] in a file). */
export const numbers = (
  dflt: readonly number[],
  help: string,
  o: { aliases?: readonly string[] } = {},
): NumbersSetting => ({ kind: 'numbers', default: dflt, help, ...o });
/** One of a fixed set of strings. */
export function oneOf<const V extends string>(
  values: readonly V[],
  dflt: NoInfer<V>,
  help: string,
  o: { aliases?: readonly string[] } = {},
): EnumSetting<V> {
  return { kind: 'enum', values, default: dflt, help, ...o };
}
/** Mark every setting of `t` as listed under `title` in --help. */
export function group<T extends SettingsTable>(title: string, t: T): T {
  return Object.fromEntries(Object.entries(t).map(([k, s]) => [k, { ...s, group: title }])) as T;
}

/** "an integer", "one of 'a', 'b'", … */
export function kindName(s: Setting): string {
  if (s.kind === 'enum') return `one of ${s.values.map((k) => `'${k}'`).join(', ')}`;
  return {
    int: 'an integer',
    float: 'a number',
    bool: 'true or false',
    string: 'a string',
    strings: 'a list of strings',
    numbers: 'a list of numbers',
  }[s.kind];
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** The closest of `keys` to `key` (case-insensitive edit distance). */
export function closestKey(key: string, keys: readonly string[]): string {
  let best = keys[0] ?? '',
    bestD = Infinity;
  const k = key.toLowerCase();
  for (const c of keys) {
    const d = editDistance(k, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** A settings table with the operations every command needs. */
export class Settings<T extends SettingsTable> {
  readonly keys: readonly (keyof T & string)[];
  private readonly aliases = new Map<string, keyof T & string>();

  /** `command` names the command in messages ('llmts train'). */
  constructor(
    readonly table: T,
    readonly command: string,
  ) {
    this.keys = Object.keys(table);
    for (const k of this.keys) for (const a of table[k]!.aliases ?? []) this.aliases.set(a, k);
  }

  /** A fresh object of the defaults. */
  defaults(): Values<T> {
    const out: Record<string, unknown> = {};
    for (const k of this.keys) {
      const d = this.table[k]!.default;
      out[k] = Array.isArray(d) ? [...(d as string[])] : d;
    }
    return out as Values<T>;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.table, key);
  }

  /** Map a user-written key (camelCase, kebab-case, snake_case, alias) to a key, or throw with the closest one. */
  resolveKey(raw: string, file?: string): keyof T & string {
    if (this.has(raw)) return raw as keyof T & string;
    const a = this.aliases.get(raw);
    if (a) return a;
    const camel = raw.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (this.has(camel)) return camel as keyof T & string;
    const s = closestKey(raw, [...this.keys, ...this.aliases.keys()]);
    throw new ConfigError(
      raw,
      `unknown setting. Did you mean '${this.aliases.get(s) ?? s}'? ('${this.command} --help' lists them all)`,
      file,
    );
  }

  /**
   * Convert a value (a string from the command line, or a JSON value from a file when `json`) to the setting's type,
   * or throw a ConfigError naming the key and the expected type. Ranges are checked by `checkRanges`.
   */
  coerce<K extends keyof T & string>(key: K, value: unknown, file?: string, json = false): ValueOf<T[K]> {
    const s = this.table[key]!;
    const bad = (): never => {
      throw new ConfigError(key, `expected ${kindName(s)}, got ${JSON.stringify(value)}`, file);
    };
    const v = ((): unknown => {
      switch (s.kind) {
        case 'enum':
          return typeof value === 'string' && (s.values as readonly string[]).includes(value) ? value : bad();
        case 'int':
        case 'float': {
          let n: number;
          if (typeof value === 'number') n = value;
          else if (typeof value === 'string' && !json && NUMBER.test(value.trim().replace(/_/g, '')))
            n = Number(value.trim().replace(/_/g, ''));
          else return bad();
          if (!Number.isFinite(n) || (s.kind === 'int' && !Number.isInteger(n))) bad();
          return n;
        }
        case 'bool':
          if (typeof value === 'boolean') return value;
          if (json) return bad();
          if (value === 'true' || value === '1' || value === 'yes') return true;
          if (value === 'false' || value === '0' || value === 'no') return false;
          return bad();
        case 'string':
          return typeof value === 'string' ? value : bad();
        case 'numbers': {
          const ok = (a: unknown[]) => a.every((x) => typeof x === 'number' && Number.isFinite(x));
          if (Array.isArray(value)) return ok(value) ? value : bad();
          if (typeof value !== 'string' || json) return bad();
          const t = value.trim();
          if (t === '' || t === '[]') return [];
          const parts = t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1).split(',') : t.split(',');
          if (!parts.every((x) => NUMBER.test(x.trim().replace(/_/g, '')))) return bad();
          const a = parts.map((x) => Number(x.trim().replace(/_/g, '')));
          return ok(a) ? a : bad();
        }
        case 'strings':
          if (Array.isArray(value) && value.every((x) => typeof x === 'string')) return value;
          if (typeof value === 'string' && json) return value === '' ? [] : [value]; // one item, as a list
          if (typeof value === 'string' && !json) {
            if (value.trim().startsWith('[')) {
              try {
                const a = JSON.parse(value) as unknown;
                if (Array.isArray(a) && a.every((x) => typeof x === 'string')) return a;
              } catch {
                /* fall through */
              }
              return bad();
            }
            return value === '' ? [] : value.split(',');
          }
          return bad();
      }
    })();
    return v as ValueOf<T[K]>;
  }

  /** Settings from `key=value` string pairs (the command line). */
  fromPairs(pairs: ReadonlyArray<readonly [string, string]>): Partial<Values<T>> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of pairs) {
      const key = this.resolveKey(k);
      out[key] = this.coerce(key, v);
    }
    return out as Partial<Values<T>>;
  }

  /**
   * Read a JSON file holding an object of settings (same names as the command line). Keys in `skip` (such as
   * 'preset'), '$schema' and keys starting with '//' (comments) are left out of `values` and returned raw in `extra`.
   */
  readFile(file: string, skip: readonly string[] = []): { values: Partial<Values<T>>; extra: Record<string, unknown> } {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError('config', `cannot read '${file}' as JSON: ${(e as Error).message}`);
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw new ConfigError('config', `'${file}' must hold a JSON object of settings`);
    const values: Record<string, unknown> = {};
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (skip.includes(k) || k === '$schema' || k.startsWith('//')) {
        extra[k] = v;
        continue;
      }
      const key = this.resolveKey(k, file);
      values[key] = this.coerce(key, v, file, true);
    }
    return { values: values as Partial<Values<T>>, extra };
  }

  /** Type and range of every setting of `c`; throws the first ConfigError found. */
  checkRanges(c: Values<T>): Values<T> {
    for (const key of this.keys) {
      const s = this.table[key]!;
      const v = c[key];
      this.coerce(key, v, undefined, true);
      if (typeof v === 'number' && (s.kind === 'int' || s.kind === 'float')) {
        if (s.gt !== undefined && !(v > s.gt)) throw new ConfigError(key, `must be > ${s.gt}, got ${v}`);
        if (s.min !== undefined && v < s.min) throw new ConfigError(key, `must be ≥ ${s.min}, got ${v}`);
        if (s.max !== undefined && v > s.max) throw new ConfigError(key, `must be ≤ ${s.max}, got ${v}`);
      }
    }
    return c;
  }

  /** The --help lines: a heading per group, then `--key=<type>  help (default …)` per setting. */
  describe(): string {
    const out: string[] = [];
    let last: string | undefined;
    for (const k of this.keys) {
      const s = this.table[k]!;
      if (s.group !== last && s.group) out.push(`  ${s.group}:`);
      last = s.group;
      const type = kindName(s).replace(/^an? /, '');
      const alias = s.aliases?.length ? ` [also --${s.aliases.join(', --')}]` : '';
      out.push(`    --${k}=<${type}>  ${s.help} (default ${JSON.stringify(s.default)})${alias}`);
    }
    return out.join('\n');
  }
}

/** Build the operations of a settings table; `command` is named in messages ('llmts train'). */
export function defineSettings<T extends SettingsTable>(table: T, command: string): Settings<T> {
  return new Settings(table, command);
}
