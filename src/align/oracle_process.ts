/**
 * OracleProcess: a rater module (oracle.ts) run in its own Node process, so that a rater cannot reach into the
 * trainer's memory, its randomness is its own, and a crash or a hang is its own. `llmts rate` and `align verify`
 * use it; trainers never do (they read only the feedback file).
 *
 * Protocol (IPC, structured clone): the parent sends {id, op: 'init', url, options}, then batches
 * {id, op: 'score', items} / {id, op: 'compare', items}; the child answers {id, ok: true, result} or
 * {id, ok: false, error, index?}. The child handles one message at a time, in order, so a seeded rater gives the
 * same answers for the same sequence of calls. Every result is checked here (a finite number, 'a' | 'b' | 'tie');
 * a bad value, a throw, or the child exiting is an OracleError naming the rater file (with the last lines it
 * printed). What the rater prints goes to this process's stderr, never stdout (which may be the feedback file).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type CompareItem,
  OracleError,
  type OracleOptions,
  oracleShapeProblem,
  type ScoreItem,
  scoreProblem,
  type Verdict,
  verdictProblem,
} from './oracle.js';

/**
 * The child's program (plain JavaScript, run with `node --input-type=module -e`): no file to find next to the
 * compiled code, and nothing of llm.ts in the rater's process.
 */
const RUNNER = `
const describe = (v) => {
  if (typeof v === 'function') return { desc: 'a function' };
  if (typeof v === 'object' && v !== null) { let s; try { s = JSON.stringify(v); } catch { s = String(v); } return { desc: s.length > 60 ? s.slice(0, 57) + '...' : s }; }
  return { value: v };
};
const msg = (e) => (e && typeof e === 'object' && 'message' in e ? String(e.message) : String(e)).split('\\n')[0];
let oracle = null;
async function handle(m) {
  if (m.op === 'init') {
    let mod;
    try { mod = await import(m.url); } catch (e) { return { ok: false, error: 'cannot import it: ' + msg(e) }; }
    if (typeof mod.makeOracle !== 'function') return { ok: false, error: 'exports no makeOracle function (a rater module exports makeOracle(options) → { name, score(prompt, reply), compare(prompt, a, b) })' };
    try { oracle = await mod.makeOracle(m.options); } catch (e) { return { ok: false, error: 'makeOracle threw: ' + msg(e) }; }
    const o = oracle;
    const shape = typeof o === 'object' && o !== null ? { name: o.name, score: typeof o.score, compare: typeof o.compare } : describe(o);
    return { ok: true, result: shape };
  }
  const out = [];
  for (let i = 0; i < m.items.length; i++) {
    const it = m.items[i];
    try {
      out.push(describe(m.op === 'score' ? await oracle.score(it.prompt, it.reply, it.meta) : await oracle.compare(it.prompt, it.a, it.b, it.meta)));
    } catch (e) { return { ok: false, error: m.op + ' threw: ' + msg(e), index: i }; }
  }
  return { ok: true, result: out };
}
let chain = Promise.resolve();
process.on('message', (m) => { chain = chain.then(() => handle(m)).then((r) => process.send({ id: m.id, ...r })); });
process.on('disconnect', () => process.exit(0));
`;

/** Requests per IPC message. */
const DEFAULT_BATCH = 256;
/** Characters of the child's output kept for error messages. */
const TAIL = 2000;

interface Pending {
  what: string;
  /** Index of the batch's first request among the call's requests. */
  offset: number;
  resolve(v: unknown): void;
  reject(e: Error): void;
}
interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
  index?: number;
}
/** A result as the child sends it: the value, or a description of what could not be sent. */
type Wire = { value: unknown } | { desc: string };

export interface OracleProcessOptions {
  /** Requests per message to the child (default 256). */
  batchSize?: number;
  /** Where the rater's own output goes (default: this process's stderr). */
  echo?: (chunk: string) => void;
  /**
   * The longest the rater may go without answering while a batch waits, in ms (default: no limit). Past it the
   * process is killed and every waiting call fails with an OracleError.
   */
  timeoutMs?: number;
}

export class OracleProcess {
  /** The rater's `name`. */
  name = '';
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private tail = '';
  private exited: string | null = null;
  private readonly exitPromise: Promise<void>;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private watchdog: NodeJS.Timeout | null = null;

  private constructor(
    /** The rater file, as the caller named it. */
    readonly file: string,
    o: OracleProcessOptions,
  ) {
    this.batchSize = Math.max(1, Math.floor(o.batchSize ?? DEFAULT_BATCH));
    this.timeoutMs = o.timeoutMs ?? 0;
    const echo = o.echo ?? ((s: string) => process.stderr.write(s));
    this.child = spawn(process.execPath, ['--input-type=module', '-e', RUNNER], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      cwd: path.dirname(path.resolve(file)),
    });
    const keep = (b: Buffer) => {
      const s = b.toString('utf8');
      this.tail = (this.tail + s).slice(-TAIL);
      echo(s);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.on('message', (m: Reply) => this.onReply(m));
    this.exitPromise = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.fail(`could not start the rater process: ${e.message}`);
        resolve();
      });
      this.child.on('exit', (code, signal) => {
        this.fail(`the rater process exited (${signal ? `signal ${signal}` : `code ${code}`})`);
        resolve();
      });
    });
  }

  /** Start a rater module in its own process; resolves once `makeOracle(options)` returned a rater of the right shape. */
  static async start(file: string, options: OracleOptions = {}, o: OracleProcessOptions = {}): Promise<OracleProcess> {
    if (!fs.existsSync(file)) throw new OracleError(file, 'no such file');
    const p = new OracleProcess(file, o);
    try {
      const shape = (await p.request('init', { url: pathToFileURL(path.resolve(file)).href, options })) as Record<
        string,
        unknown
      >;
      const bad =
        'desc' in shape
          ? `makeOracle returned ${String(shape['desc'])}, not an object`
          : oracleShapeProblem({
              name: shape['name'],
              score: shape['score'] === 'function' ? () => 0 : undefined,
              compare: shape['compare'] === 'function' ? () => 'tie' : undefined,
            });
      if (bad) throw new OracleError(file, bad);
      p.name = shape['name'] as string;
      return p;
    } catch (e) {
      await p.close();
      throw e;
    }
  }

  /** Scores of replies (in order), in batches. */
  async score(items: readonly ScoreItem[]): Promise<number[]> {
    return (await this.batched('score', items, scoreProblem)) as number[];
  }

  /** Verdicts on pairs of replies (in order), in batches. */
  async compare(items: readonly CompareItem[]): Promise<Verdict[]> {
    return (await this.batched('compare', items, verdictProblem)) as Verdict[];
  }

  /** End the rater process (waits for it; kills it if it does not leave within 2 s). */
  async close(): Promise<void> {
    if (this.exited === null) {
      if (this.child.connected) this.child.disconnect();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exitPromise;
      clearTimeout(timer);
    }
  }

  private async batched(
    op: 'score' | 'compare',
    items: readonly (ScoreItem | CompareItem)[],
    problem: (v: unknown) => string | null,
  ): Promise<unknown[]> {
    const out: unknown[] = [];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < items.length; i += this.batchSize) {
      const chunk = items.slice(i, i + this.batchSize);
      const job = this.request(op, { items: chunk }, i);
      job.catch(() => {}); // awaited below, in order; a later batch failing first must not go unhandled
      jobs.push(job);
    }
    for (const [k, j] of jobs.entries()) {
      const res = (await j) as Wire[];
      res.forEach((w, n) => {
        const v = 'desc' in w ? w : w.value;
        const p = 'desc' in w ? `${op} returned ${w.desc}` : problem(v);
        if (p) throw new OracleError(this.file, `${p} (request ${k * this.batchSize + n} of this call)`);
        out.push(v);
      });
    }
    return out;
  }

  private request(op: string, body: Record<string, unknown>, offset = 0): Promise<unknown> {
    if (this.exited !== null) return Promise.reject(new OracleError(this.file, this.exited));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { what: op, offset, resolve, reject });
      if (!this.watchdog) this.arm();
      this.child.send({ id, op, ...body }, (e) => {
        if (e) this.fail(`could not send to the rater process: ${e.message}`);
      });
    });
  }

  private onReply(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.arm();
    if (m.ok) p.resolve(m.result);
    else {
      const where = m.index !== undefined ? ` (request ${p.offset + m.index} of this call)` : '';
      p.reject(new OracleError(this.file, `${m.error}${where}`));
    }
  }

  /** (Re)start the no-answer timer while requests wait; stop it when none do. */
  private arm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    if (this.timeoutMs > 0 && this.pending.size > 0 && this.exited === null)
      this.watchdog = setTimeout(() => {
        this.fail(`the rater gave no answer for ${(this.timeoutMs / 1000).toFixed(1)} s (killed)`);
        this.child.kill('SIGKILL');
      }, this.timeoutMs);
  }

  /** The child is gone (or unreachable): every waiting request fails with the reason and its last output. */
  private fail(why: string): void {
    if (this.exited !== null) return;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    const tail = this.tail.trim().split('\n').slice(-3).join(' | ');
    this.exited = `${why}${tail ? `; its last output: ${tail}` : ''}`;
    for (const p of this.pending.values())
      p.reject(new OracleError(this.file, `${this.exited} while answering ${p.what}`));
    this.pending.clear();
  }
}
