/**
 * "Improve the model": training on the collected feedback, in child processes, while the server keeps serving.
 * One job at a time; the page starts it and polls its progress.
 *
 *   1. export the store as it is now: corrections → `sft.jsonl`, edits / choices / rankings → `preference.jsonl`
 *      (src/feedback/export.ts), into `<outDir>/<name>/`
 *   2. `llmts sft <model> sft.jsonl` when there are corrections (run `<name>-sft`)
 *   3. `llmts dpo <the SFT checkpoint, else the model> preference.jsonl` when there are pairs (run `<name>-dpo`)
 *   4. `llmts kto <the last checkpoint> kto.jsonl` when there are at least 2 thumbs (unpaired judgments: thumbs
 *      up/down, both replies of a "both bad" choice) (run `<name>-kto`)
 *
 * Each command runs as `node bin/llmts.js …` with `--maxSteps`, `--backend` and `--report=false`; its output lines
 * are the job's log. The result is the last run's checkpoint folder; the server switches to it when asked
 * (`/api/improve/switch`), not by itself.
 *
 *   POST /api/improve  {"steps"?: 1..10000 (default 50), "lr"?: (0, 1] (default: each command's own),
 *                       "lora"?: boolean (default false: LoRA adapters, --usePeft, at 10× each command's own lr
 *                       unless lr is given; each run's adapters sit on the previous run's)}
 *                      → 202 the job; 409 while one runs; 400 with nothing to learn
 *   GET  /api/improve  → {"object": "feedback.improve", "state": "idle"|"running"|"done"|"failed", "log": [lines],
 *                         "rows": {"sft", "preference"}, "checkpoint": folder|null, "serving": folder|null,
 *                         "can_switch"}
 *   (both POSTs: Content-Type application/json only, else 415, as every body the server reads (server.ts):
 *   they start processes and change the served model, and a page of another origin can send a form or text/plain
 *   without asking, but not JSON)
 *   POST /api/improve/switch  {} → 200: the server serves the finished job's checkpoint from the next request on
 *                               (./switch_model.ts; replies are recorded under its hash); 409 before one finished
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BACKEND_CHOICES } from '../backend/registry.js';
import { fileURLToPath } from 'node:url';
import { exportFeedback } from '../feedback/export.js';
import type { FeedbackStore } from '../feedback/store.js';
import { HttpError, type Route, type RouteContext } from './routes.js';
import { DPO_DEFAULTS } from '../align/dpo_settings.js';
import { KTO_DEFAULTS } from '../align/kto_settings.js';
import { SFT_DEFAULTS } from '../align/sft_settings.js';

export interface ImproveOptions {
  store: FeedbackStore;
  /** The served model's folder (what SFT starts from). */
  modelDir: string;
  /** Where the run folders go (e.g. the model folder's parent `runs/`). */
  outDir: string;
  /** Compute backend of the training commands (default auto). */
  backend?: (typeof BACKEND_CHOICES)[number];
  /** The llmts entry point (default this package's bin/llmts.js). */
  bin?: string;
  /** The job's name (default `improve-` and the start time); the runs are `<name>-sft`, `<name>-dpo`. */
  name?: () => string;
  /** Serve a finished job's checkpoint (POST /api/improve/switch); absent: the route answers 501. */
  switchTo?: (checkpoint: string) => Promise<void>;
}

type JobState = 'idle' | 'running' | 'done' | 'failed';

/** With LoRA and no lr asked for, each command runs at this many times its own default (adapters want more). */
const LORA_LR_FACTOR = 10;

/** Most log lines kept (the oldest go first). */
const MAX_LOG = 400;

export class ImproveJob {
  state: JobState = 'idle';
  log: string[] = [];
  rows = { sft: 0, preference: 0, kto: 0 };
  checkpoint: string | null = null;
  /** The checkpoint the server was switched to, if it was. */
  serving: string | null = null;
  private child: ChildProcess | null = null;
  private stopped = false;

  constructor(private readonly o: ImproveOptions) {}

  private say(line: string): void {
    this.log.push(line);
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
  }

  /** Export the rows and start the commands; throws HttpError 409 / 400 when it cannot start. */
  start(steps: number, lr?: number, lora = false): void {
    if (this.state === 'running')
      throw new HttpError(409, 'an improvement is already running', 'invalid_request_error');
    const sft = exportFeedback(this.o.store, 'sft').rows;
    const prefs = exportFeedback(this.o.store, 'preference').rows;
    const thumbs = exportFeedback(this.o.store, 'kto').rows;
    if (sft.length === 0 && prefs.length === 0 && thumbs.length < 2)
      throw new HttpError(
        400,
        'nothing to learn from yet: edit a reply (a correction), choose between two replies, or judge two replies (thumbs) first',
        'invalid_request_error',
      );
    const name = this.o.name?.() ?? `improve-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const dir = path.join(this.o.outDir, name);
    fs.mkdirSync(dir, { recursive: true });
    const write = (file: string, rows: readonly unknown[]) => {
      fs.writeFileSync(path.join(dir, file), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
      return path.join(dir, file);
    };
    this.state = 'running';
    this.log = [];
    this.checkpoint = null;
    this.rows = { sft: sft.length, preference: prefs.length, kto: thumbs.length };
    this.say(`exported ${sft.length} sft rows, ${prefs.length} preference pairs and ${thumbs.length} thumbs to ${dir}`);
    const lrArgs = (own: number) => {
      const l = lr ?? (lora ? own * LORA_LR_FACTOR : undefined);
      return l === undefined ? [] : [`--lr=${l}`, `--minLr=${l / 10}`];
    };
    const shared = [
      `--maxSteps=${steps}`,
      `--backend=${this.o.backend ?? 'auto'}`,
      `--outDir=${this.o.outDir}`,
      '--report=false',
      ...(lora ? ['--usePeft'] : []),
    ];
    const plan: { args: string[]; checkpoint: string }[] = [];
    let base = this.o.modelDir;
    if (sft.length) {
      const data = write('sft.jsonl', sft);
      const common = [...shared, ...lrArgs(SFT_DEFAULTS.lr)];
      plan.push({ args: ['sft', base, data, `--evalData=${data}`, `--name=${name}-sft`, ...common], checkpoint: '' });
      base = path.join(this.o.outDir, `${name}-sft`, 'checkpoint');
      plan.at(-1)!.checkpoint = base;
    }
    if (prefs.length) {
      const data = write('preference.jsonl', prefs);
      const common = [...shared, ...lrArgs(DPO_DEFAULTS.lr)];
      plan.push({
        args: ['dpo', base, data, `--evalData=${data}`, `--name=${name}-dpo`, ...common],
        checkpoint: path.join(this.o.outDir, `${name}-dpo`, 'checkpoint'),
      });
      base = path.join(this.o.outDir, `${name}-dpo`, 'checkpoint');
    }
    if (thumbs.length === 1)
      this.say('KTO skipped: one thumbs judgment; KTO needs at least 2 (its KL estimate pairs rows)');
    if (thumbs.length >= 2) {
      const data = write('kto.jsonl', thumbs);
      const common = [...shared, ...lrArgs(KTO_DEFAULTS.lr)];
      plan.push({
        args: ['kto', base, data, `--evalData=${data}`, `--name=${name}-kto`, ...common],
        checkpoint: path.join(this.o.outDir, `${name}-kto`, 'checkpoint'),
      });
    }
    void this.run(plan);
  }

  private async run(plan: { args: string[]; checkpoint: string }[]): Promise<void> {
    const bin = this.o.bin ?? fileURLToPath(new URL('../../bin/llmts.js', import.meta.url));
    for (const step of plan) {
      if (this.stopped) return;
      this.say(`$ llmts ${step.args.join(' ')}`);
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [bin, ...step.args], { stdio: ['ignore', 'pipe', 'pipe'] });
        this.child = child;
        let partial = '';
        const onData = (d: Buffer) => {
          const lines = (partial + d.toString()).split(/\r?\n|\r/);
          partial = lines.pop()!;
          for (const l of lines) if (l.trim()) this.say(l);
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('error', (e) => {
          this.say(`cannot start: ${e.message}`);
          resolve(-1);
        });
        child.on('close', (c) => {
          if (partial.trim()) this.say(partial);
          resolve(c);
        });
      });
      this.child = null;
      if (code !== 0) {
        this.say(`llmts ${step.args[0]} failed (exit ${code})`);
        this.state = 'failed';
        return;
      }
      this.checkpoint = step.checkpoint;
    }
    this.say(`done: the improved checkpoint is ${this.checkpoint}`);
    this.state = 'done';
  }

  /** Serve the finished job's checkpoint (only that folder: a web client names no path). */
  async switchToResult(): Promise<void> {
    if (!this.o.switchTo) throw new HttpError(501, 'this server cannot switch models', 'invalid_request_error');
    if (this.state !== 'done' || !this.checkpoint)
      throw new HttpError(409, 'no finished improvement to serve', 'invalid_request_error');
    await this.o.switchTo(this.checkpoint);
    this.serving = this.checkpoint;
    this.say(`now serving ${this.checkpoint}`);
  }

  /** End a running command (the server is closing). */
  stop(): void {
    this.stopped = true;
    this.child?.kill('SIGTERM');
  }

  toJson() {
    return {
      object: 'feedback.improve',
      state: this.state,
      log: this.log,
      rows: this.rows,
      checkpoint: this.checkpoint,
      serving: this.serving,
      can_switch: this.o.switchTo !== undefined,
    };
  }
}

/** The improve routes (see the header). */
export function improveRoute(job: ImproveJob): Route {
  const send = (ctx: RouteContext, status: number, body: unknown) => {
    ctx.res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    ctx.res.end(JSON.stringify(body));
  };
  return async (ctx) => {
    if (ctx.url.pathname === '/api/improve/switch') {
      if (ctx.method !== 'POST')
        throw new HttpError(405, `${ctx.method} is not allowed on /api/improve/switch; use POST`);
      await ctx.json(); // its body ({}) says nothing: reading it is what holds the switch to JSON only (415)
      await job.switchToResult();
      send(ctx, 200, job.toJson());
      return true;
    }
    if (ctx.url.pathname !== '/api/improve') return false;
    if (ctx.method === 'GET') {
      send(ctx, 200, job.toJson());
      return true;
    }
    if (ctx.method !== 'POST')
      throw new HttpError(405, `${ctx.method} is not allowed on /api/improve; it takes GET, POST`);
    const body = (await ctx.json()) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'expected a JSON object as the body');
    for (const k of Object.keys(body))
      if (k !== 'steps' && k !== 'lr' && k !== 'lora')
        throw new HttpError(400, `unknown field ${JSON.stringify(k)}; expected steps, lr, lora`, undefined, k);
    const steps = body['steps'] ?? 50;
    if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1 || steps > 10_000)
      throw new HttpError(400, 'steps: expected an integer 1..10000', 'invalid_request_error', 'steps');
    const lr = body['lr'];
    if (lr !== undefined && (typeof lr !== 'number' || !(lr > 0 && lr <= 1)))
      throw new HttpError(400, 'lr: expected a number in (0, 1]', 'invalid_request_error', 'lr');
    const lora = body['lora'] ?? false;
    if (typeof lora !== 'boolean')
      throw new HttpError(400, 'lora: expected true or false', 'invalid_request_error', 'lora');
    job.start(steps, lr, lora);
    send(ctx, 202, job.toJson());
    return true;
  };
}
