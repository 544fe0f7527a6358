/**
 * The offline HTML report of `llmts align verify` (verify.ts): the headline figures beside the issue's thresholds,
 * the controls, PPO's curves (objective/kl, objective/scores, objective/rlhf_reward, eos_rate, … from its
 * metrics.jsonl), each policy's win rate against SFT plotted against √KL, the reward model's accuracy and its
 * calibration (a reliability diagram and table with the ECE, and its accuracy by the rater's margin), gold win rate
 * against √KL along PPO's checkpoints with DPO at each β and best-of-n at its analytic KL, and a fixed-prompt table of
 * replies. Charts are the training report's chart.js bundle, inlined (nothing is fetched).
 */
import path from 'node:path';
import { readMetrics, type StepRecord } from '../train/metrics.js';
import { chartJsSource } from '../train/report.js';
import { writeFileAtomicSync } from '../util/fs.js';
import { scriptJson } from '../util/html.js';
import type { VerifyFigures } from './verify.js';
import type { VerifySettings } from './verify_settings.js';

export interface VerifyReportInput {
  figures: VerifyFigures;
  table: { prompt: string; replies: Record<string, string> }[];
  /** The PPO run folder (its metrics.jsonl gives the curves). */
  ppoRunDir: string;
  settings: VerifySettings;
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)} %`);
const num = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

/** PPO's curves to plot: TRL's names as logged. */
const PPO_CURVES = [
  'objective/scores',
  'objective/kl',
  'objective/rlhf_reward',
  'objective/entropy',
  'policy/approxkl_avg',
  'policy/clipfrac_avg',
  'val/ratio',
  'reply_length',
  'eos_rate',
  'loss/value_avg',
];

/** The report as one HTML string. */
export function renderVerifyReport(r: VerifyReportInput): string {
  const f = r.figures;
  const steps = readMetrics(path.join(r.ppoRunDir, 'metrics.jsonl')).filter((x): x is StepRecord => x.type === 'step');
  const curves = PPO_CURVES.map((k) => {
    const has = steps.filter((s) => typeof (s as unknown as Record<string, unknown>)[k] === 'number');
    return { title: k, x: has.map((s) => s.step), y: has.map((s) => (s as unknown as Record<string, number>)[k]!) };
  }).filter((c) => c.x.length);
  const points = Object.entries(f.policies)
    .filter(([, p]) => p.win_rate !== undefined)
    .map(([name, p]) => ({
      name,
      x: name === 'bon' ? Math.sqrt(f.bon_kl_bound) : name === 'sft_aa' ? 0 : Math.sqrt(Math.max(0, p.kl ?? 0)),
      y: p.win_rate!,
    }));
  const row = (name: string, value: string, want: string, ok?: boolean) =>
    `<tr><th>${esc(name)}</th><td>${esc(value)}</td><td>${esc(want)}</td><td>${ok === undefined ? '' : ok ? '✓' : '✗'}</td></tr>`;
  const headline = [
    row('RM held-out pair accuracy', pct(f.rm_accuracy), '≥ 85 %', f.rm_accuracy >= 0.85),
    row(
      'PPO win rate vs SFT (95 % CI low)',
      `${pct(f.ppo_win_rate)} (${pct(f.ppo_win_rate_ci_low)})`,
      '≥ 70 % (> 65 %)',
      f.ppo_win_rate >= 0.7 && f.ppo_win_rate_ci_low > 0.65,
    ),
    row('PPO KL(π‖SFT), nats', num(f.ppo_kl), '≤ 5, ≥ −0.05', f.ppo_kl <= 5 && f.ppo_kl >= -0.05),
    row('DPO win rate vs SFT', pct(f.dpo_win_rate), '≥ 65 %', f.dpo_win_rate >= 0.65),
    row(
      'DPO rewards/accuracies (held-out pairs)',
      pct(f.dpo_rewards_accuracy),
      '≥ 70 %',
      f.dpo_rewards_accuracy >= 0.7,
    ),
    row('DPO KL(π‖SFT), nats', num(f.dpo_kl), '', undefined),
    row(
      `best-of-${r.settings.evaluate.bestOf} under the RM vs SFT`,
      pct(f.bon_win_rate),
      `KL ≤ ${num(f.bon_kl_bound)} nats`,
    ),
  ].join('');
  const controls = [
    row(
      'A/A: SFT vs SFT (another sampling seed)',
      pct(f.aa_win_rate),
      '50 ± 5 %',
      Math.abs(f.aa_win_rate - 0.5) <= 0.05,
    ),
    row(
      'flipped labels (p ½): RM accuracy',
      pct(f.shuffled_rm_accuracy),
      '50 ± 5 %',
      Math.abs(f.shuffled_rm_accuracy - 0.5) <= 0.05,
    ),
    row(
      'flipped labels (p ½): PPO win rate',
      pct(f.shuffled_ppo_win_rate),
      '50 ± 7 %',
      Math.abs(f.shuffled_ppo_win_rate - 0.5) <= 0.07,
    ),
    row(
      'distinct replies: PPO / SFT',
      `${num(f.distinct_ratio)} / ${num(f.distinct_ratio_sft)}`,
      '≥ 0.5× SFT',
      f.distinct_ratio >= 0.5 * f.distinct_ratio_sft,
    ),
    row('EOS rate (PPO)', pct(f.eos_rate), '≥ 95 %', f.eos_rate >= 0.95),
  ].join('');
  const names = Object.keys(f.policies);
  const policyRows = names
    .map((n) => {
      const p = f.policies[n]!;
      return `<tr><th>${esc(n)}</th><td>${pct(p.win_rate)}</td><td>${pct(p.win_rate_ci_low)} – ${pct(p.win_rate_ci_high)}</td><td>${num(p.kl)}</td><td>${num(p.gold_score)}</td><td>${num(p.distinct_ratio)}</td><td>${pct(p.eos_rate)}</td><td>${num(p.mean_words, 1)}</td></tr>`;
    })
    .join('');
  const table = r.table
    .map(
      (t) =>
        `<tr><td><pre>${esc(t.prompt)}</pre></td>${names.map((n) => `<td><pre>${esc(t.replies[n] ?? '')}</pre></td>`).join('')}</tr>`,
    )
    .join('');
  const cal = f.rm_calibration;
  const calRows = cal.bins
    .map(
      (b) =>
        `<tr><td>${num(b.low, 2)} – ${num(b.high, 2)}</td><td>${num(b.p_mean)}</td><td>${num(b.freq)}</td><td>${b.n}</td></tr>`,
    )
    .join('');
  const marginRows = f.rm_accuracy_by_margin
    .map((g) => `<tr><td>${num(g.low, 2)} – ${num(g.high, 2)}</td><td>${g.n}</td><td>${pct(g.accuracy)}</td></tr>`)
    .join('');
  const curveRows = f.ppo_curve
    .map(
      (c) =>
        `<tr><th>PPO step ${c.step}</th><td>${num(c.kl)}</td><td>${num(c.sqrt_kl)}</td><td>${pct(c.win_rate)}</td><td>${pct(c.win_rate_ci_low)} – ${pct(c.win_rate_ci_high)}</td><td></td></tr>`,
    )
    .join('');
  const betaRows = f.dpo_betas
    .map(
      (d) =>
        `<tr><th>DPO β ${d.beta}</th><td>${num(d.kl)}</td><td>${num(d.sqrt_kl)}</td><td>${pct(d.win_rate)}</td><td>${pct(d.win_rate_ci_low)} – ${pct(d.win_rate_ci_high)}</td><td>${pct(d.rewards_accuracy)}</td></tr>`,
    )
    .join('');
  const bonRow = `<tr><th>best-of-${r.settings.evaluate.bestOf} (analytic KL)</th><td>${num(f.bon_kl_bound)}</td><td>${num(Math.sqrt(f.bon_kl_bound))}</td><td>${pct(f.bon_win_rate)}</td><td></td><td></td></tr>`;
  const curveChart = {
    ppo: [
      { x: 0, y: 0.5, label: 'SFT (step 0)' },
      ...f.ppo_curve.map((c) => ({ x: c.sqrt_kl, y: c.win_rate, label: `step ${c.step}` })),
    ],
    dpo: f.dpo_betas.map((d) => ({ x: d.sqrt_kl, y: d.win_rate, label: `β ${d.beta}` })),
    bon: [{ x: Math.sqrt(f.bon_kl_bound), y: f.bon_win_rate, label: `best-of-${r.settings.evaluate.bestOf}` }],
    cal: cal.bins.map((b) => ({ x: b.p_mean, y: b.freq, n: b.n })),
  };
  const seconds = Object.entries(f.seconds)
    .map(([k, v]) => `${k} ${v} s`)
    .join(', ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>align verify: ${esc(f.task)}, ${esc(f.oracle)}, seed ${f.seed}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1em}.charts div{position:relative;height:260px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f6f6;white-space:nowrap}pre{white-space:pre-wrap;margin:0;font:12px/1.35 ui-monospace,monospace}
</style></head><body>
<h1>align verify: ${esc(f.task)}, rater ${esc(f.oracle)}, seed ${f.seed} (${f.mode})</h1>
<p>${f.train_prompts} train prompts × ${r.settings.sample.perPrompt} replies → ${f.pairs} pairs (${f.tied_pairs} tied);
${f.heldout_prompts} held-out prompts. Wall ${f.wall_s} s (${esc(seconds)})${f.sft_cached ? '; SFT from the cache' : ''}.</p>
<section><h2>The proof</h2><table><tr><th></th><th>figure</th><th>issue 11 asks</th><th></th></tr>${headline}</table></section>
<section><h2>Controls</h2><table><tr><th></th><th>figure</th><th>expected</th><th></th></tr>${controls}</table></section>
<section><h2>Policies on the held-out prompts</h2><table>
<tr><th></th><th>win rate vs SFT</th><th>95 % CI</th><th>KL(π‖SFT)</th><th>gold score</th><th>distinct</th><th>EOS</th><th>words</th></tr>${policyRows}</table></section>
<section><h2>Win rate against √KL</h2><div class="charts"><div><canvas id="wkl"></canvas></div></div>
<p>best-of-n at its analytic KL bound log n − (n − 1)/n; A/A at 0.</p></section>
<section><h2>Gold win rate against √KL: PPO checkpoints, DPO at each β, best-of-n</h2>
<div class="charts"><div><canvas id="curve"></canvas></div></div>
<table><tr><th></th><th>KL(π‖SFT)</th><th>√KL</th><th>win rate vs SFT</th><th>95 % CI</th><th>rewards/accuracies</th></tr>${curveRows}${betaRows}${bonRow}</table>
<p>Every point is judged against SFT's reply by the rater's <code>compare</code> on the same held-out prompts, its
KL estimated on its own replies; PPO's line starts at SFT itself (√KL 0, 50 %); best-of-n sits at its analytic KL
bound.</p></section>
<section><h2>Reward model calibration (held-out pairs)</h2>
<p>${cal.pairs} held-out pairs (accuracy ${pct(cal.accuracy)}), each counted in both orders: predicted
P(first ≻ second) = σ(r<sub>first</sub> − r<sub>second</sub>) against how often the rater preferred the first.
Expected calibration error ${num(cal.ece)}.</p>
<div class="charts"><div><canvas id="cal"></canvas></div></div>
<table><tr><th>predicted</th><th>mean predicted</th><th>observed frequency</th><th>n</th></tr>${calRows}</table>
<p>Accuracy by how strongly the rater preferred (the feedback's margin, weakest first; equal margins stay together):</p>
<table><tr><th>margin</th><th>pairs</th><th>accuracy</th></tr>${marginRows}</table></section>
<section><h2>PPO curves</h2><div class="charts">
${curves.map((_, i) => `<div><canvas id="c${i}"></canvas></div>`).join('\n')}
</div></section>
<section><h2>Replies to fixed held-out prompts</h2><table><tr><th>prompt</th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr>${table}</table></section>
<script>${chartJsSource()}</script>
<script>
const C = ${scriptJson(curves)}, P = ${scriptJson(points)}, K = ${scriptJson(curveChart)};
const base = (title, xt) => ({ animation: false, maintainAspectRatio: false, plugins: { title: { display: true, text: title } },
  scales: { x: { type: 'linear', title: { display: true, text: xt } } } });
if (typeof Chart !== 'undefined') {
  C.forEach((c, i) => new Chart(document.getElementById('c' + i), { type: 'line', data: { datasets: [
    { label: c.title, data: c.x.map((x, k) => ({ x, y: c.y[k] })), borderWidth: 1, pointRadius: c.x.length < 50 ? 2 : 0, borderColor: '#7a4ad0' } ] },
    options: base(c.title, 'step') }));
  new Chart(document.getElementById('wkl'), { type: 'scatter', data: { datasets: P.map((p, i) => ({ label: p.name,
    data: [{ x: p.x, y: p.y }], pointRadius: 6, backgroundColor: ['#4a7bd0', '#d0694a', '#3a3', '#888', '#a4a'][i % 5] })) },
    options: base('win rate vs SFT against √KL(π‖SFT)', '√KL (√nats)') });
  new Chart(document.getElementById('curve'), { type: 'scatter', data: { datasets: [
    { label: 'PPO checkpoints', data: K.ppo, showLine: true, pointRadius: 4, borderColor: '#d0694a', backgroundColor: '#d0694a' },
    { label: 'DPO at each β', data: K.dpo, showLine: true, pointRadius: 4, borderColor: '#3a3', backgroundColor: '#3a3' },
    { label: 'best-of-n (analytic KL)', data: K.bon, pointRadius: 6, pointStyle: 'triangle', backgroundColor: '#4a7bd0' } ] },
    options: { ...base('gold win rate vs SFT against √KL(π‖SFT)', '√KL (√nats)'),
      scales: { x: { type: 'linear', min: 0, title: { display: true, text: '√KL (√nats)' } }, y: { grace: '10%' } },
      plugins: { title: { display: true, text: 'gold win rate vs SFT against √KL(π‖SFT)' },
        tooltip: { callbacks: { label: (c) => c.raw.label + ': ' + (100 * c.raw.y).toFixed(1) + ' % at √KL ' + c.raw.x.toFixed(3) } } } } });
  new Chart(document.getElementById('cal'), { type: 'scatter', data: { datasets: [
    { label: 'observed frequency', data: K.cal, showLine: true, pointRadius: 4, borderColor: '#7a4ad0', backgroundColor: '#7a4ad0' },
    { label: 'perfect calibration', data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true, pointRadius: 0, borderDash: [4, 4], borderColor: '#888' } ] },
    options: { ...base('reward model calibration (held-out pairs)', 'predicted P(first ≻ second)'),
      scales: { x: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'predicted P(first ≻ second)' } },
        y: { min: 0, max: 1, title: { display: true, text: 'observed frequency' } } } } });
}
</script>
</body></html>
`;
}

/** Write the report (atomically). */
export function writeVerifyReport(file: string, r: VerifyReportInput): void {
  writeFileAtomicSync(file, renderVerifyReport(r));
}
