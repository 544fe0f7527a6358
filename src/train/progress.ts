/**
 * What the user sees while training: a progress bar (cli-progress) with step, loss, tokens/s, MFU and ETA on a
 * terminal; plain lines every `logInterval` steps when stdout is not a terminal; none with --quiet. Messages
 * (evaluations, samples, warnings) print above the bar, or as lines.
 */
import cliProgress from 'cli-progress';

export interface ProgressUpdate {
  /** Steps completed. */
  done: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  mfu: number;
  /** Seconds left (estimate). */
  eta: number;
}

export interface Progress {
  start(total: number, done: number): void;
  update(u: ProgressUpdate): void;
  /** A line printed above the bar. */
  log(line: string): void;
  stop(): void;
}

/** "1h02m", "3m05s", "12s". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

function fields(u: ProgressUpdate): Record<string, string> {
  return {
    loss: u.loss.toFixed(4),
    lr: u.lr.toExponential(2),
    tps: u.tokensPerSec >= 1000 ? `${(u.tokensPerSec / 1000).toFixed(1)}k` : u.tokensPerSec.toFixed(0),
    mfu: `${(100 * u.mfu).toFixed(1)}%`,
    etaS: formatDuration(u.eta),
  };
}

/** Plain lines: `step 120/1000 | loss 3.2101 | lr 1.00e-3 | 4.1k tok/s | MFU 1.2% | ETA 3m05s`. */
export class LineProgress implements Progress {
  private total = 0;
  constructor(
    private readonly every: number,
    private readonly write: (s: string) => void = (s) => process.stdout.write(s + '\n'),
  ) {}
  start(total: number): void {
    this.total = total;
  }
  update(u: ProgressUpdate): void {
    if (u.done % this.every !== 0 && u.done !== this.total && u.done !== 1) return;
    const f = fields(u);
    this.write(
      `step ${u.done}/${this.total} | loss ${f.loss} | lr ${f.lr} | ${f.tps} tok/s | MFU ${f.mfu} | ETA ${f.etaS}`,
    );
  }
  log(line: string): void {
    this.write(line);
  }
  stop(): void {}
}

/** A cli-progress bar on a terminal. */
export class BarProgress implements Progress {
  private readonly multi: cliProgress.MultiBar;
  private bar: cliProgress.SingleBar | null = null;
  constructor(stream: NodeJS.WriteStream = process.stdout) {
    this.multi = new cliProgress.MultiBar(
      {
        format: ' {bar} {value}/{total} | loss {loss} | lr {lr} | {tps} tok/s | MFU {mfu} | ETA {etaS}',
        barsize: 24,
        hideCursor: true,
        stream,
        fps: 5,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  start(total: number, done: number): void {
    this.bar = this.multi.create(total, done, { loss: '-', lr: '-', tps: '-', mfu: '-', etaS: '?' });
  }
  update(u: ProgressUpdate): void {
    this.bar?.update(u.done, fields(u));
  }
  log(line: string): void {
    this.multi.log(line.endsWith('\n') ? line : line + '\n');
  }
  stop(): void {
    this.multi.stop();
  }
}

/** --quiet: no bar and no per-step lines; messages (evaluations, samples, warnings) still print. */
export class QuietProgress implements Progress {
  constructor(private readonly write: (s: string) => void = (s) => process.stdout.write(s + '\n')) {}
  start(): void {}
  update(): void {}
  log(line: string): void {
    this.write(line);
  }
  stop(): void {}
}

/** Nothing per step when `quiet`; else the bar on a terminal, plain lines every `logInterval` steps otherwise. */
export function makeProgress(o: { quiet: boolean; logInterval: number }): Progress {
  if (o.quiet) return new QuietProgress();
  if (process.stdout.isTTY) return new BarProgress();
  return new LineProgress(o.logInterval);
}
