/**
 * The run report: one self-contained `report.html` in the run folder, readable offline (the chart.js UMD bundle is
 * inlined from node_modules, nothing is fetched): training and validation loss, learning rate, throughput, the
 * samples of every checkpoint side by side (the "sample strip"), the warnings, and the run's settings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { FileFormatError } from '../util/errors.js';
import {
  readMetrics,
  type EvalRecord,
  type MetricRecord,
  type SampleRecord,
  type StepRecord,
  type WarningRecord,
} from './metrics.js';
import { writeFileAtomicSync } from '../util/fs.js';
import { scriptJson } from '../util/html.js';
import { formatDuration } from './progress.js';

/** The chart.js UMD bundle's source (minified when present). */
export function chartJsSource(): string {
  const req = createRequire(import.meta.url);
  const main = req.resolve('chart.js');
  let dir = path.dirname(main);
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  for (const f of ['dist/chart.umd.min.js', 'dist/chart.umd.js']) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return fs.readFileSync(p, 'utf8');
  }
  throw new FileFormatError(
    'E_CHARTJS',
    dir,
    'chart.js UMD bundle (dist/chart.umd.js) not found; reinstall the package',
  );
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A metric for display: `digits` decimals, or the value itself when it is not a finite number (NaN is logged as null). */
function fixed(v: number | null | undefined, digits: number): string {
  return typeof v === 'number' && Number.isFinite(v)
    ? v.toFixed(digits)
    : v === null || v === undefined
      ? 'NaN'
      : String(v);
}

/** Keep at most `n` points (evenly spaced, always the last) so big runs stay light. */
function thin<T>(a: T[], n: number): T[] {
  if (a.length <= n) return a;
  const out: T[] = [];
  const stride = a.length / n;
  for (let i = 0; i < n; i++) out.push(a[Math.floor(i * stride)]!);
  out.push(a[a.length - 1]!);
  return out;
}

const STEP_FIELDS = new Set(['type', 'step', 'loss', 'lr', 'tokensPerSec', 'mfu', 'elapsed']);
const EVAL_FIELDS = new Set(['type', 'step', 'valLoss', 'trainLoss']);

/** A chart for every other numeric field of the step and evaluation records (a recipe's own metrics). */
function otherSeries(steps: StepRecord[], evals: EvalRecord[]): { title: string; x: number[]; y: (number | null)[] }[] {
  const out: { title: string; x: number[]; y: (number | null)[] }[] = [];
  for (const [recs, known, what] of [
    [steps, STEP_FIELDS, ''],
    [evals, EVAL_FIELDS, ' (evaluation)'],
  ] as const) {
    const keys = new Set<string>();
    for (const r of recs)
      for (const [k, v] of Object.entries(r)) if (!known.has(k) && (typeof v === 'number' || v === null)) keys.add(k);
    for (const k of keys) {
      const has = (recs as readonly MetricRecord[]).filter((r) => k in r);
      out.push({
        title: `${k}${what}`,
        x: has.map((r) => r.step),
        y: has.map((r) => (r as unknown as Record<string, number | null>)[k] ?? null),
      });
    }
  }
  return out;
}

export interface ReportInput {
  title: string;
  records: MetricRecord[];
  /** Settings shown in a table (the training config). */
  config?: Record<string, unknown>;
  /** Extra facts: parameters, tokenizer, corpus, wall time, checkpoint folder. */
  summary?: Record<string, string | number>;
}

/** Render the report as one HTML string. */
export function renderReport(r: ReportInput): string {
  const steps = r.records.filter((x): x is StepRecord => x.type === 'step');
  const evals = r.records.filter((x): x is EvalRecord => x.type === 'eval');
  const samples = r.records.filter((x): x is SampleRecord => x.type === 'sample');
  const warnings = r.records.filter((x): x is WarningRecord => x.type === 'warning');
  const ts = thin(steps, 2000);
  const data = {
    step: ts.map((s) => s.step),
    loss: ts.map((s) => s.loss),
    lr: ts.map((s) => s.lr),
    tps: ts.map((s) => s.tokensPerSec),
    evalStep: evals.map((e) => e.step),
    valLoss: evals.map((e) => e.valLoss),
    trainLoss: evals.map((e) => e.trainLoss),
    other: otherSeries(ts, evals),
  };
  // Sample strip: one column per prompt, one row per checkpoint step.
  const prompts = [...new Set(samples.map((s) => s.prompt))];
  const sampleSteps = [...new Set(samples.map((s) => s.step))].sort((a, b) => a - b);
  const strip = sampleSteps
    .map((st) => {
      const cells = prompts.map((p) => {
        const s = samples.find((x) => x.step === st && x.prompt === p);
        return `<td><pre><b>${esc(p)}</b>${esc(s ? s.text : '')}</pre></td>`;
      });
      const ev = evals.find((e) => e.step === st);
      return `<tr><th>step ${st}${ev ? `<br><small>val ${fixed(ev.valLoss, 3)}</small>` : ''}</th>${cells.join('')}</tr>`;
    })
    .join('\n');
  const summary = Object.entries(r.summary ?? {})
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`)
    .join('');
  const config = Object.entries(r.config ?? {})
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(JSON.stringify(v))}</td></tr>`)
    .join('');
  const warn = warnings.length
    ? `<section><h2>Warnings</h2><ul>${warnings.map((w) => `<li class="warn">step ${w.step}: ${esc(w.message)}</li>`).join('')}</ul></section>`
    : '';
  const last = steps[steps.length - 1];
  const lastEval = evals[evals.length - 1];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1em}.charts div{position:relative;height:280px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f6f6;white-space:nowrap}pre{white-space:pre-wrap;margin:0;font:12px/1.35 ui-monospace,monospace}
.warn{color:#a40}.kpi{display:flex;gap:2em;margin:1em 0}.kpi div b{display:block;font-size:1.4em}
</style></head><body>
<h1>${esc(r.title)}</h1>
<div class="kpi">
<div><b>${last ? last.step : 0}</b>steps</div>
<div><b>${last ? fixed(last.loss, 3) : '–'}</b>last training loss</div>
<div><b>${lastEval ? fixed(lastEval.valLoss, 3) : '–'}</b>last validation loss</div>
${lastEval?.valBpb !== undefined ? `<div><b>${fixed(lastEval.valBpb, 3)}</b>validation bits/byte</div>` : ''}
</div>
${warn}
<section><h2>Curves</h2><div class="charts">
<div><canvas id="loss"></canvas></div><div><canvas id="lr"></canvas></div>
<div><canvas id="tps"></canvas></div>
${data.other.map((_, i) => `<div><canvas id="other${i}"></canvas></div>`).join('\n')}
</div></section>
<section><h2>Samples across checkpoints</h2><table>${strip || '<tr><td>no samples</td></tr>'}</table></section>
<section><h2>Run</h2><table>${summary}</table></section>
<section><h2>Settings</h2><table>${config}</table></section>
<script>${chartJsSource()}</script>
<script>
const D = ${scriptJson(data)};
const xy = (xs, ys) => xs.map((x, i) => ({ x, y: ys[i] }));
const base = (title, ylog) => ({ animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
  plugins: { title: { display: true, text: title } },
  scales: { x: { type: 'linear', title: { display: true, text: 'step' } }, y: { type: ylog ? 'logarithmic' : 'linear' } } });
if (typeof Chart !== 'undefined') {
  new Chart(document.getElementById('loss'), { type: 'line', data: { datasets: [
    { label: 'training loss', data: xy(D.step, D.loss), borderWidth: 1, pointRadius: 0, borderColor: '#4a7bd0' },
    { label: 'validation loss', data: xy(D.evalStep, D.valLoss), borderWidth: 2, pointRadius: 3, borderColor: '#d0694a' },
  ] }, options: base('loss (nats/token)') });
  new Chart(document.getElementById('lr'), { type: 'line', data: { datasets: [
    { label: 'learning rate', data: xy(D.step, D.lr), borderWidth: 1, pointRadius: 0, borderColor: '#3a3' } ] }, options: base('learning rate') });
  new Chart(document.getElementById('tps'), { type: 'line', data: { datasets: [
    { label: 'tokens/s', data: xy(D.step, D.tps), borderWidth: 1, pointRadius: 0, borderColor: '#888' } ] }, options: base('throughput (tokens/s)') });
  D.other.forEach((o, i) => new Chart(document.getElementById('other' + i), { type: 'line', data: { datasets: [
    { label: o.title, data: xy(o.x, o.y), borderWidth: 1, pointRadius: o.x.length < 50 ? 2 : 0, borderColor: '#7a4ad0' } ] }, options: base(o.title) }));
}
</script>
</body></html>
`;
}

/**
 * Write `report.html` for a run folder from its `metrics.jsonl` (and `trainer_state.json`'s config when present).
 * Returns the report's path.
 */
export function writeReport(
  runDir: string,
  extra: { title?: string; summary?: Record<string, string | number> } = {},
): string {
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(metricsFile))
    throw new FileFormatError(
      'E_NO_METRICS',
      runDir,
      'no metrics.jsonl here; is this a training run folder (runs/<name>)?',
    );
  const records = readMetrics(metricsFile);
  let config: Record<string, unknown> | undefined;
  let summary = extra.summary;
  const stateFile = findState(runDir);
  if (stateFile) {
    try {
      const st = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as {
        config?: Record<string, unknown>;
        step?: number;
        tokensSeen?: number;
        trainSeconds?: number;
        bestValLoss?: number | null;
        bestValStep?: number | null;
        model?: Record<string, unknown>;
      };
      config = st.config;
      summary ??= {
        model: JSON.stringify(st.model ?? {}),
        steps: `${st.step ?? '?'} of ${String(st.config?.['maxSteps'] ?? '?')}`,
        'tokens seen': st.tokensSeen ?? '?',
        'training time': formatDuration(st.trainSeconds ?? 0),
        'best validation loss':
          typeof st.bestValLoss === 'number' ? `${fixed(st.bestValLoss, 4)} at step ${st.bestValStep}` : '–',
        checkpoint: path.dirname(stateFile),
      };
    } catch {
      /* report without settings */
    }
  }
  const html = renderReport({
    title: extra.title ?? `llmts training run: ${path.basename(path.resolve(runDir))}`,
    records,
    config,
    ...(summary ? { summary } : {}),
  });
  const out = path.join(runDir, 'report.html');
  writeFileAtomicSync(out, html);
  return out;
}

function findState(runDir: string): string | null {
  for (const p of [path.join(runDir, 'checkpoint', 'trainer_state.json'), path.join(runDir, 'trainer_state.json')])
    if (fs.existsSync(p)) return p;
  return null;
}
