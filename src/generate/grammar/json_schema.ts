/**
 * JSON Schema → grammar, for structured output (OpenAI's `response_format: json_schema`, llama-server's
 * `json_schema`): the text generated under it is JSON that the schema accepts, by construction.
 *
 * Layout follows llama.cpp's json-schema-to-grammar: every value may be followed by a little whitespace (one space,
 * or one or two newlines and up to 20 spaces/tabs of indent), never before the first value; numbers have at most
 * 16 digits before the point, 16 after it and 16 in the exponent, so a model cannot run on in digits.
 *
 * Supported: type (one or a list), enum, const, anyOf / oneOf (both as "one of these shapes"), allOf of one schema,
 * $ref to anywhere in the document (#, #/$defs/…, #/definitions/…; recursion works), boolean schemas;
 *   object: properties (written in the order they are declared), required, additionalProperties (absent or false:
 *     none; true or a schema: any further keys, after the declared ones);
 *   array: items, prefixItems (a tuple), minItems, maxItems;
 *   string: minLength, maxLength (in characters; an escape is one), format date, time, date-time, uuid, pattern
 *     (ECMA-262 regular expressions without lookaround or backreferences: ./regex.ts);
 *   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum (./int_range.ts); number: minimum 0.
 * Annotations (title, description, default, examples, $schema, $id, $comment, deprecated, readOnly, writeOnly) are
 * ignored; any other keyword (bounds on non-integers, multipleOf, not, if, patternProperties, …) is a GrammarError
 * naming it and where it is, rather than output the schema would reject.
 */
import { intRange, MAX_INT_DIGITS } from './int_range.js';
import { regexExpr } from './regex.js';
import {
  alt,
  byteSet,
  chars,
  empty,
  type Expr,
  type Grammar,
  GrammarError,
  lit,
  opt,
  ref,
  rep,
  seq,
  star,
  utf8NonAscii,
} from './grammar.js';

type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  '$schema',
  '$id',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$defs',
  'definitions',
]);
const KNOWN = new Set([
  ...ANNOTATIONS,
  'type',
  'enum',
  'const',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'format',
  'pattern',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
]);
const FORMATS = ['date', 'time', 'date-time', 'uuid'];

/** The shared rules: whitespace, strings, numbers, any JSON value. */
function baseRules(rules: Map<string, Expr>): void {
  const digit = byteSet([[0x30, 0x39]]);
  const hex = chars('0123456789abcdefABCDEF');
  rules.set('ws', opt(alt(lit(' '), seq(rep(lit('\n'), 1, 2), rep(chars(' \t'), 0, 20)))));
  rules.set(
    'char',
    alt(
      byteSet([
        [0x20, 0x21],
        [0x23, 0x5b],
        [0x5d, 0x7f],
      ]),
      utf8NonAscii(),
      seq(lit('\\'), alt(chars('"\\/bfnrt'), seq(lit('u'), rep(hex, 4, 4)))),
    ),
  );
  rules.set('string', seq(lit('"'), star(ref('char')), lit('"'), ref('ws')));
  rules.set('integral', alt(lit('0'), seq(byteSet([[0x31, 0x39]]), rep(digit, 0, 15))));
  rules.set('fraction', seq(lit('.'), rep(digit, 1, 16)));
  rules.set('exponent', seq(chars('eE'), opt(chars('+-')), ref('integral')));
  rules.set('number', seq(opt(lit('-')), ref('integral'), opt(ref('fraction')), opt(ref('exponent')), ref('ws')));
  rules.set('integer', seq(opt(lit('-')), ref('integral'), ref('ws')));
  rules.set('boolean', seq(alt(lit('true'), lit('false')), ref('ws')));
  rules.set('null', seq(lit('null'), ref('ws')));
  const member = seq(ref('string'), lit(':'), ref('ws'), ref('value'));
  rules.set(
    'object',
    seq(lit('{'), ref('ws'), opt(seq(member, star(seq(lit(','), ref('ws'), member)))), lit('}'), ref('ws')),
  );
  rules.set(
    'array',
    seq(lit('['), ref('ws'), opt(seq(ref('value'), star(seq(lit(','), ref('ws'), ref('value'))))), lit(']'), ref('ws')),
  );
  rules.set('value', alt(ref('object'), ref('array'), ref('string'), ref('number'), ref('boolean'), ref('null')));
}

/** A grammar for any JSON object (OpenAI's `response_format: { type: "json_object" }`). */
export function jsonObjectGrammar(): Grammar {
  const rules = new Map<string, Expr>();
  baseRules(rules);
  rules.set('root', ref('object'));
  return { rules, root: 'root' };
}

/** A grammar for any JSON value. */
export function jsonValueGrammar(): Grammar {
  const rules = new Map<string, Expr>();
  baseRules(rules);
  rules.set('root', ref('value'));
  return { rules, root: 'root' };
}

/**
 * A grammar for the JSON texts a schema accepts.
 * @param schema  the JSON Schema (an object or a boolean)
 * @param where   how errors name the schema (e.g. 'response_format.json_schema.schema')
 */
export function jsonSchemaGrammar(schema: unknown, where = 'schema'): Grammar {
  const rules = new Map<string, Expr>();
  baseRules(rules);
  const c = new SchemaCompiler(schema, rules, where);
  rules.set('root', c.visit(schema, where, '#'));
  return { rules, root: 'root' };
}

class SchemaCompiler {
  /** $ref pointer → rule name (created before its body, so recursion refers to it). */
  private readonly refRules = new Map<string, string>();
  private n = 0;
  constructor(
    private readonly doc: unknown,
    private readonly rules: Map<string, Expr>,
    private readonly where: string,
  ) {}

  private fail(path: string, msg: string): never {
    throw new GrammarError(path, msg);
  }

  private rule(base: string, e: Expr): Expr {
    const name = `${base}-${this.n++}`;
    this.rules.set(name, e);
    return ref(name);
  }

  /** The grammar of one (sub)schema. `path` names it in errors; `pointer` is its JSON pointer. */
  visit(s: unknown, path: string, pointer: string): Expr {
    if (s === true) return ref('value');
    if (s === false) this.fail(path, 'the schema `false` accepts nothing');
    if (typeof s !== 'object' || s === null || Array.isArray(s))
      this.fail(path, `expected a schema (an object or a boolean), got ${JSON.stringify(s)}`);
    const o = s as Schema;
    for (const k of Object.keys(o))
      if (!KNOWN.has(k))
        this.fail(
          `${path}.${k}`,
          `the keyword "${k}" is not supported for constrained output (supported: ${[...KNOWN].filter((x) => !ANNOTATIONS.has(x)).join(', ')})`,
        );
    if (o.$ref !== undefined) return this.ref(o.$ref, `${path}.$ref`);
    if (o.const !== undefined) return seq(lit(JSON.stringify(o.const)), ref('ws'));
    if (o.enum !== undefined) {
      if (!Array.isArray(o.enum) || o.enum.length === 0)
        this.fail(`${path}.enum`, 'expected a non-empty list of values');
      return seq(alt(...(o.enum as unknown[]).map((v) => lit(JSON.stringify(v)))), ref('ws'));
    }
    for (const k of ['anyOf', 'oneOf'] as const)
      if (o[k] !== undefined) {
        const list = o[k];
        if (!Array.isArray(list) || list.length === 0)
          this.fail(`${path}.${k}`, 'expected a non-empty list of schemas');
        const rest = { ...o };
        delete rest[k];
        const base = Object.keys(rest).some((x) => !ANNOTATIONS.has(x)) ? rest : null;
        return alt(
          ...(list as unknown[]).map((sub, i) =>
            this.visit(base ? { ...base, ...(sub as Schema) } : sub, `${path}.${k}[${i}]`, `${pointer}/${k}/${i}`),
          ),
        );
      }
    if (o.allOf !== undefined) {
      const list = o.allOf;
      if (!Array.isArray(list) || list.length !== 1)
        this.fail(`${path}.allOf`, 'only an allOf of exactly one schema is supported');
      const rest = { ...o };
      delete rest.allOf;
      return this.visit({ ...rest, ...(list[0] as Schema) }, `${path}.allOf[0]`, `${pointer}/allOf/0`);
    }
    let type = o.type;
    if (type === undefined) {
      if (o.properties !== undefined || o.additionalProperties !== undefined || o.required !== undefined)
        type = 'object';
      else if (o.items !== undefined || o.prefixItems !== undefined) type = 'array';
      else if (
        o.minLength !== undefined ||
        o.maxLength !== undefined ||
        o.format !== undefined ||
        o.pattern !== undefined
      )
        type = 'string';
      else return ref('value');
    }
    if (Array.isArray(type)) {
      if (type.length === 0) this.fail(`${path}.type`, 'expected at least one type');
      return alt(...type.map((t, i) => this.typed(o, String(t), `${path}.type[${i}]`, path, pointer)));
    }
    return this.typed(o, type, `${path}.type`, path, pointer);
  }

  private typed(o: Schema, type: unknown, typePath: string, path: string, pointer: string): Expr {
    switch (type) {
      case 'object':
        return this.object(o, path, pointer);
      case 'array':
        return this.array(o, path, pointer);
      case 'string':
        return this.string(o, path);
      case 'number':
      case 'integer':
        return this.number(o, type, path);
      case 'boolean':
        return ref('boolean');
      case 'null':
        return ref('null');
      default:
        this.fail(
          typePath,
          `unknown type ${JSON.stringify(type)} (expected object, array, string, number, integer, boolean or null)`,
        );
    }
  }

  private ref(target: unknown, path: string): Expr {
    if (typeof target !== 'string' || !target.startsWith('#'))
      this.fail(path, `only references inside the schema ("#/…") are supported, got ${JSON.stringify(target)}`);
    const existing = this.refRules.get(target);
    if (existing) return ref(existing);
    const name = `ref-${this.n++}`;
    this.refRules.set(target, name);
    let node: unknown = this.doc;
    for (const raw of target.slice(1).split('/').slice(1)) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (typeof node !== 'object' || node === null || !(key in (node as Schema)))
        this.fail(path, `the reference ${target} points at nothing in the schema`);
      node = (node as Schema)[key];
    }
    this.rules.set(name, this.visit(node, `${this.where}${target.slice(1).replace(/\//g, '.')}`, target));
    return ref(name);
  }

  private object(o: Schema, path: string, pointer: string): Expr {
    const props = (o.properties ?? {}) as Record<string, unknown>;
    if (typeof props !== 'object' || props === null || Array.isArray(props))
      this.fail(`${path}.properties`, 'expected an object of property schemas');
    const required = new Set<string>();
    if (o.required !== undefined) {
      if (!Array.isArray(o.required) || o.required.some((r) => typeof r !== 'string'))
        this.fail(`${path}.required`, 'expected a list of property names');
      for (const r of o.required as string[]) {
        if (!(r in props)) this.fail(`${path}.required`, `"${r}" is required but not among the properties`);
        required.add(r);
      }
    }
    const names = Object.keys(props);
    // additional properties: none unless asked for (absent with no properties: any object)
    const ap = o.additionalProperties;
    let extra: Expr | null = null;
    if (ap === true || (ap === undefined && names.length === 0)) extra = ref('value');
    else if (ap !== undefined && ap !== false)
      extra = this.visit(ap, `${path}.additionalProperties`, `${pointer}/additionalProperties`);
    const kv = names.map((k) =>
      seq(
        lit(JSON.stringify(k)),
        ref('ws'),
        lit(':'),
        ref('ws'),
        this.visit(props[k], `${path}.properties.${k}`, `${pointer}/properties/${k}`),
      ),
    );
    const extraKv = extra ? this.rule('kv', seq(ref('string'), lit(':'), ref('ws'), extra)) : null;
    const comma = seq(lit(','), ref('ws'));
    // tail(i, after): the members from the i-th declared property on, `after` = some member already written
    const memo = new Map<string, Expr>();
    const tail = (i: number, after: boolean): Expr => {
      const key = `${i},${after}`;
      const m = memo.get(key);
      if (m) return m;
      let e: Expr;
      if (i === names.length) {
        if (!extraKv) e = empty();
        else e = after ? star(seq(comma, extraKv)) : opt(seq(extraKv, star(seq(comma, extraKv))));
      } else {
        const here = seq(...(after ? [comma] : []), kv[i]!, tail(i + 1, true));
        e = required.has(names[i]!) ? here : alt(here, tail(i + 1, after));
      }
      const r = this.rule('obj', e);
      memo.set(key, r);
      return r;
    };
    return seq(lit('{'), ref('ws'), tail(0, false), lit('}'), ref('ws'));
  }

  /** A count's bounds (minItems/maxItems, minLength/maxLength): integers ≥ 0, min ≤ max; absent: 0 and ∞. */
  private bounds(o: Schema, lo: string, hi: string, path: string): { min: number; max: number } {
    const get = (k: string): number | undefined => {
      const v = o[k];
      if (v === undefined) return undefined;
      if (!Number.isInteger(v) || (v as number) < 0)
        this.fail(`${path}.${k}`, `expected an integer ≥ 0, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const min = get(lo) ?? 0;
    const max = get(hi) ?? Infinity;
    if (max < min) this.fail(`${path}.${hi}`, `${hi} ${max} is below ${lo} ${min}`);
    return { min, max };
  }

  private array(o: Schema, path: string, pointer: string): Expr {
    const { min, max } = this.bounds(o, 'minItems', 'maxItems', path);
    const comma = seq(lit(','), ref('ws'));
    const open = seq(lit('['), ref('ws'));
    const close = seq(lit(']'), ref('ws'));
    if (o.prefixItems !== undefined) {
      const pre = o.prefixItems;
      if (!Array.isArray(pre) || pre.length === 0)
        this.fail(`${path}.prefixItems`, 'expected a non-empty list of schemas');
      if (o.minItems !== undefined || o.maxItems !== undefined)
        this.fail(`${path}.prefixItems`, 'minItems and maxItems with prefixItems are not supported');
      const parts = (pre as unknown[]).map((p, i) =>
        this.visit(p, `${path}.prefixItems[${i}]`, `${pointer}/prefixItems/${i}`),
      );
      const body: Expr[] = [];
      parts.forEach((p, i) => body.push(...(i > 0 ? [comma] : []), p));
      const items = o.items;
      if (items !== undefined && items !== false)
        body.push(star(seq(comma, this.visit(items, `${path}.items`, `${pointer}/items`))));
      return seq(open, ...body, close);
    }
    const item = this.rule(
      'item',
      o.items === undefined ? ref('value') : this.visit(o.items, `${path}.items`, `${pointer}/items`),
    );
    if (max === 0) return seq(open, close);
    const more = rep(seq(comma, item), Math.max(0, min - 1), max - 1);
    const list = seq(item, more);
    return seq(open, min === 0 ? opt(list) : list, close);
  }

  private string(o: Schema, path: string): Expr {
    if (o.pattern !== undefined) {
      if (typeof o.pattern !== 'string') this.fail(`${path}.pattern`, 'expected a regular expression (a string)');
      for (const k of ['format', 'minLength', 'maxLength'])
        if (o[k] !== undefined)
          this.fail(`${path}.pattern`, `pattern with ${k} is not supported (write the length into the pattern)`);
      return seq(lit('"'), regexExpr(o.pattern, `${path}.pattern`), lit('"'), ref('ws'));
    }
    if (o.format !== undefined) {
      if (!FORMATS.includes(o.format as string))
        this.fail(
          `${path}.format`,
          `the format ${JSON.stringify(o.format)} is not supported (supported: ${FORMATS.join(', ')})`,
        );
      if (o.minLength !== undefined || o.maxLength !== undefined)
        this.fail(`${path}.format`, 'minLength/maxLength with a format are not supported');
      return seq(lit('"'), this.format(o.format as string), lit('"'), ref('ws'));
    }
    const { min, max } = this.bounds(o, 'minLength', 'maxLength', path);
    if (min === 0 && max === Infinity) return ref('string');
    return seq(lit('"'), rep(ref('char'), min, max), lit('"'), ref('ws'));
  }

  private format(f: string): Expr {
    const d = byteSet([[0x30, 0x39]]);
    const n = (k: number): Expr => rep(d, k, k);
    const date = seq(
      n(4),
      lit('-'),
      alt(seq(lit('0'), byteSet([[0x31, 0x39]])), seq(lit('1'), chars('012'))),
      lit('-'),
      alt(seq(lit('0'), byteSet([[0x31, 0x39]])), seq(chars('12'), d), seq(lit('3'), chars('01'))),
    );
    const time = seq(
      alt(seq(chars('01'), d), seq(lit('2'), chars('0123'))),
      lit(':'),
      seq(byteSet([[0x30, 0x35]]), d),
      lit(':'),
      seq(byteSet([[0x30, 0x35]]), d),
      opt(seq(lit('.'), rep(d, 1, 9))),
      alt(
        lit('Z'),
        seq(
          chars('+-'),
          alt(seq(chars('01'), d), seq(lit('2'), chars('0123'))),
          lit(':'),
          seq(byteSet([[0x30, 0x35]]), d),
        ),
      ),
    );
    const hex = chars('0123456789abcdef');
    const h = (k: number): Expr => rep(hex, k, k);
    switch (f) {
      case 'date':
        return date;
      case 'time':
        return time;
      case 'date-time':
        return seq(date, lit('T'), time);
      default:
        return seq(h(8), lit('-'), h(4), lit('-'), h(4), lit('-'), h(4), lit('-'), h(12));
    }
  }

  private number(o: Schema, type: 'number' | 'integer', path: string): Expr {
    const bound = (k: string): number | undefined => {
      const v = o[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v))
        this.fail(`${path}.${k}`, `expected a number, got ${JSON.stringify(v)}`);
      return v;
    };
    const min = bound('minimum'),
      xmin = bound('exclusiveMinimum'),
      max = bound('maximum'),
      xmax = bound('exclusiveMaximum');
    if (type === 'integer') {
      let lo = -Infinity,
        hi = Infinity;
      if (min !== undefined) lo = Math.max(lo, Math.ceil(min));
      if (xmin !== undefined) lo = Math.max(lo, Math.floor(xmin) + 1);
      if (max !== undefined) hi = Math.min(hi, Math.floor(max));
      if (xmax !== undefined) hi = Math.min(hi, Math.ceil(xmax) - 1);
      if (lo > hi) this.fail(path, `no integer lies within the bounds (${lo} to ${hi})`);
      const limit = 10 ** MAX_INT_DIGITS - 1;
      if (Math.abs(lo) > limit && Number.isFinite(lo))
        this.fail(path, `the lower bound ${lo} has more than ${MAX_INT_DIGITS} digits`);
      if (Math.abs(hi) > limit && Number.isFinite(hi))
        this.fail(path, `the upper bound ${hi} has more than ${MAX_INT_DIGITS} digits`);
      if (lo === -Infinity && hi === Infinity) return ref('integer');
      return seq(intRange(lo, hi), ref('ws'));
    }
    // numbers: a lower bound of 0 only (no minus sign); other bounds on non-integers are refused
    for (const [k, v] of [
      ['minimum', min],
      ['exclusiveMinimum', xmin],
      ['maximum', max],
      ['exclusiveMaximum', xmax],
    ] as const)
      if (v !== undefined && !(k === 'minimum' && v === 0))
        this.fail(
          `${path}.${k}`,
          `bounds on non-integer numbers are not supported for constrained output (only minimum 0; use type integer for ranges), got ${k} ${v}`,
        );
    return min === 0 ? seq(ref('integral'), opt(ref('fraction')), opt(ref('exponent')), ref('ws')) : ref('number');
  }
}
