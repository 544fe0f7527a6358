/**
 * Raters ("oracles"): the interface every rater module implements, and an in-process loader that checks it.
 *
 * A rater is an ES module (runnable by `node` alone) exporting
 *
 *   makeOracle(options) → { name, score(prompt, reply, meta?) → number, compare(prompt, a, b, meta?) → 'a'|'b'|'tie' }
 *
 * (`makeOracle`, `score` and `compare` may return Promises). `options.seed` seeds any randomness in it. `prompt` is
 * the conversation so far (`[{role, content}, …]`, TRL's conversational form, ending with the user turn the reply
 * answers); replies are plain strings. `meta` says how a reply ended: `{ finishReason: 'stop' }` when the model
 * emitted EOS, `'length'` when it hit the length limit (as the OpenAI API's finish_reason); a rater may ignore it.
 * For `compare`, `meta` is `{ a?: ReplyMeta, b?: ReplyMeta }`.
 *
 * This follows issue 11 (the raters of the alignment proof) and AlpacaFarm's simulated annotators: trainers never
 * call a rater; `llmts rate` runs one in its own process (oracle_process.ts) and writes a feedback file in TRL JSONL.
 * A module of the wrong shape, or a call that returns a wrong value, is an OracleError naming the rater file.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TrlMessage } from '../data/trl.js';
import { LlmtsError } from '../util/errors.js';

/** How a reply ended: 'stop' = it ended with EOS (or a stop string), 'length' = cut at the token limit. */
export interface ReplyMeta {
  finishReason?: 'stop' | 'length';
}
/** The meta of the two replies a `compare` call sees. */
export interface CompareMeta {
  a?: ReplyMeta;
  b?: ReplyMeta;
}
/** Which reply a rater prefers. */
export type Verdict = 'a' | 'b' | 'tie';

/** Options passed to `makeOracle`. `seed` seeds any randomness in the rater (noisy labels, tie breaks). */
export interface OracleOptions {
  seed?: number;
  [key: string]: unknown;
}

/** What a rater module's `makeOracle` returns. */
export interface Oracle {
  name: string;
  score(prompt: TrlMessage[], reply: string, meta?: ReplyMeta): number | Promise<number>;
  compare(prompt: TrlMessage[], a: string, b: string, meta?: CompareMeta): Verdict | Promise<Verdict>;
}

/** A rater module: an ES module exporting `makeOracle`. */
export interface OracleModule {
  makeOracle(options: OracleOptions): Oracle | Promise<Oracle>;
}

/** One `score` request (a reply to a prompt). */
export interface ScoreItem {
  prompt: TrlMessage[];
  reply: string;
  meta?: ReplyMeta;
}
/** One `compare` request (two replies to a prompt). */
export interface CompareItem {
  prompt: TrlMessage[];
  a: string;
  b: string;
  meta?: CompareMeta;
}

/** A rater that breaks its contract: which file, what was wrong (a missing export, a bad return value, a crash). */
export class OracleError extends LlmtsError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('E_ORACLE', `rater ${file}: ${message}`, options);
    this.file = file;
  }
}

const SHAPE = 'a rater module exports makeOracle(options) → { name, score(prompt, reply), compare(prompt, a, b) }';

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'function') return 'a function';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Check what `makeOracle` returned; returns the problem, or null. */
export function oracleShapeProblem(o: unknown): string | null {
  if (typeof o !== 'object' || o === null) return `makeOracle returned ${describe(o)}, not an object (${SHAPE})`;
  const x = o as Record<string, unknown>;
  const missing: string[] = [];
  if (typeof x['name'] !== 'string' || !x['name']) missing.push('name (a non-empty string)');
  if (typeof x['score'] !== 'function') missing.push('score (a function)');
  if (typeof x['compare'] !== 'function') missing.push('compare (a function)');
  return missing.length ? `makeOracle's result lacks ${missing.join(', ')} (${SHAPE})` : null;
}

/** A score must be a finite number; returns the problem, or null. */
export function scoreProblem(v: unknown): string | null {
  return typeof v === 'number' && Number.isFinite(v) ? null : `score returned ${describe(v)}, not a finite number`;
}

/** A verdict must be 'a', 'b' or 'tie'; returns the problem, or null. */
export function verdictProblem(v: unknown): string | null {
  return v === 'a' || v === 'b' || v === 'tie' ? null : `compare returned ${describe(v)}, not 'a', 'b' or 'tie'`;
}

/** A rater loaded in this process, with every result checked. */
export interface LoadedOracle {
  /** The rater file (absolute). */
  file: string;
  name: string;
  score(prompt: TrlMessage[], reply: string, meta?: ReplyMeta): Promise<number>;
  compare(prompt: TrlMessage[], a: string, b: string, meta?: CompareMeta): Promise<Verdict>;
}

/** Import a rater module, check its shape, and make the rater (in this process; see OracleProcess for another). */
export async function loadOracle(file: string, options: OracleOptions = {}): Promise<LoadedOracle> {
  const abs = path.resolve(file);
  let mod: Partial<OracleModule>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Partial<OracleModule>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OracleError(
      file,
      code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(abs)
        ? 'no such file'
        : `cannot import it: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
  if (typeof mod.makeOracle !== 'function') throw new OracleError(file, `exports no makeOracle function (${SHAPE})`);
  let o: Oracle;
  try {
    o = await mod.makeOracle(options);
  } catch (e) {
    throw new OracleError(file, `makeOracle threw: ${(e as Error).message ?? String(e)}`, { cause: e });
  }
  const bad = oracleShapeProblem(o);
  if (bad) throw new OracleError(file, bad);
  const call = async <T>(what: string, f: () => T | Promise<T>, problem: (v: unknown) => string | null) => {
    let v: T;
    try {
      v = await f();
    } catch (e) {
      throw new OracleError(file, `${what} threw: ${(e as Error).message ?? String(e)}`, { cause: e });
    }
    const p = problem(v);
    if (p) throw new OracleError(file, p);
    return v;
  };
  return {
    file: abs,
    name: o.name,
    score: (prompt, reply, meta) => call('score', () => o.score(prompt, reply, meta), scoreProblem),
    compare: (prompt, a, b, meta) => call('compare', () => o.compare(prompt, a, b, meta), verdictProblem),
  };
}
