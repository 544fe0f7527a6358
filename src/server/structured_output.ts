/**
 * Structured output: a request's constraint on the reply's text, read from the body and compiled for the served
 * vocabulary (src/generate/grammar). Three spellings, at most one per request:
 *   response_format: { "type": "json_object" }                              any JSON object       (OpenAI)
 *   response_format: { "type": "json_schema", "json_schema": { "name", "schema", "strict"? } }      (OpenAI)
 *   json_schema: { …a JSON Schema… }                                         (llama-server)
 *   grammar: "root ::= …"                                                    llama.cpp GBNF (llama-server)
 * `response_format: { "type": "text" }` is no constraint. A schema or grammar that cannot be compiled is a 400 naming
 * the field and the part of it at fault. Compiled grammars are kept per served model (the last 32 distinct ones), so
 * a client asking with the same schema again reuses its tables, masks included.
 */
import { grammarVocab } from '../generate/engine.js';
import {
  compileGrammar,
  type Grammar,
  GrammarError,
  jsonObjectGrammar,
  jsonSchemaGrammar,
  parseGbnf,
  TokenGrammar,
  type TokenGrammarOptions,
} from '../generate/grammar/index.js';
import { badParam, type Body } from './openai_params.js';
import type { ServedModel } from './served_model.js';

/** The body fields this reads. */
export const STRUCTURED_FIELDS = ['response_format', 'json_schema', 'grammar'];

const KEEP = 32;
const compiled = new WeakMap<ServedModel, Map<string, TokenGrammar>>();

/** The request's grammar over the served vocabulary, or null (free text). */
export function readStructuredOutput(b: Body, served: ServedModel): TokenGrammar | null {
  const given = STRUCTURED_FIELDS.filter((k) => b.get(k) !== undefined);
  const rf = b.get('response_format');
  const textOnly = given.length === 1 && given[0] === 'response_format' && isText(rf);
  if (given.length === 0 || textOnly) return null;
  if (given.length > 1) throw badParam(given[1]!, `give at most one of ${given.join(', ')}`);
  const field = given[0]!;
  let key: string;
  let build: () => Grammar;
  if (field === 'response_format') {
    const o = rf as { type?: unknown; json_schema?: unknown };
    if (typeof o !== 'object' || Array.isArray(o))
      throw badParam('response_format', "Invalid 'response_format': expected an object with a 'type'");
    if (o.type === 'json_object') {
      key = 'object';
      build = jsonObjectGrammar;
    } else if (o.type === 'json_schema') {
      const js = o.json_schema as { schema?: unknown; name?: unknown } | undefined;
      if (typeof js !== 'object' || js === null || Array.isArray(js))
        throw badParam('response_format.json_schema', "expected an object with 'name' and 'schema'");
      if (js.name !== undefined && (typeof js.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(js.name)))
        throw badParam('response_format.json_schema.name', 'expected a-z, A-Z, 0-9, _ or -, at most 64 characters');
      const schema = js.schema ?? {};
      key = `schema:${JSON.stringify(schema)}`;
      build = () => jsonSchemaGrammar(schema, 'response_format.json_schema.schema');
    } else
      throw badParam(
        'response_format.type',
        `Invalid 'response_format.type': expected text, json_object or json_schema, got ${JSON.stringify(o.type)}`,
      );
  } else if (field === 'json_schema') {
    const schema = b.get('json_schema');
    key = `schema:${JSON.stringify(schema)}`;
    build = () => jsonSchemaGrammar(schema, 'json_schema');
  } else {
    const text = b.string('grammar')!;
    key = `gbnf:${text}`;
    build = () => parseGbnf(text, 'grammar');
  }
  return servedGrammar(served, key, build, field);
}

/**
 * A grammar compiled for the served vocabulary, kept under `key` (the last 32 per model); a GrammarError is a 400
 * on `field`.
 */
export function servedGrammar(
  served: ServedModel,
  key: string,
  build: () => Grammar,
  field: string,
  o: TokenGrammarOptions = {},
): TokenGrammar {
  let byKey = compiled.get(served);
  if (!byKey) compiled.set(served, (byKey = new Map()));
  const hit = byKey.get(key);
  if (hit) {
    byKey.delete(key);
    byKey.set(key, hit);
    return hit;
  }
  let g: TokenGrammar;
  try {
    g = new TokenGrammar(compileGrammar(build()), grammarVocab(served.codec, served.model.config.vocabSize), o);
  } catch (e) {
    if (e instanceof GrammarError) throw badParam(field, e.message);
    throw e;
  }
  if (byKey.size >= KEEP) byKey.delete(byKey.keys().next().value!);
  byKey.set(key, g);
  return g;
}

function isText(rf: unknown): boolean {
  return typeof rf === 'object' && rf !== null && (rf as { type?: unknown }).type === 'text';
}
