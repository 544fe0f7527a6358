/**
 * The page's Compare script (/app/compare.js), shown when `llmts serve --compare DIR` keeps a second checkpoint:
 * one prompt, both checkpoints' replies side by side in an order the server drew (src/server/compare_route.ts), the
 * choice posted as a `choice` judgment, and the candidate's running win rate with its 95 % interval. Model output
 * only ever goes into textContent.
 */
export const COMPARE_JS = `// The Compare view: the served checkpoint and the --compare one answer the same prompt; the two replies come back in
// an order the server drew, without their names; the person's choice is a "choice" judgment, and the running score
// (the candidate's win rate over decided choices, with its 95% Wilson interval) is read back from GET /api/compare.
const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

const pc = (x) => (100 * x).toFixed(0) + '%';

async function showStats(app) {
  const s = await app.api('GET', '/api/compare');
  const decided = s.wins + s.losses;
  $('compare-stats').textContent =
    s.candidate.name + ' vs ' + s.base.name + ': ' + s.wins + ' wins, ' + s.losses + ' losses, ' + s.ties + ' ties, ' +
    s.both_bad + ' both bad' + (decided ? ' · win rate ' + pc(s.win_rate) + ' (95% CI ' + pc(s.ci95[0]) + '–' + pc(s.ci95[1]) + ')' : '');
}

async function compare(app) {
  const text = $('compare-input').value.trim();
  if (!text) { $('compare-input').focus(); return; }
  const go = $('compare-go');
  go.disabled = true;
  const pair = $('compare-pair');
  pair.textContent = 'both checkpoints are answering…';
  try {
    const c = await app.api('POST', '/api/conversations', { title: 'compare: ' + text.slice(0, 50) });
    const u = await app.api('POST', '/api/conversations/' + c.id + '/messages', { parent_id: null, role: 'user', content: text, author: app.rater() });
    const r = await app.api('POST', '/api/compare', { parent_id: u.id, temperature: Number($('temperature').value), max_tokens: Number($('max-tokens').value) });
    pair.textContent = '';
    const sides = el('div', { class: 'pair' },
      el('div', { class: 'side' }, el('strong', { text: '1' }), el('div', { class: 'text', text: r.replies[0] })),
      el('div', { class: 'side' }, el('strong', { text: '2' }), el('div', { class: 'text', text: r.replies[1] })));
    const verdicts = el('div', { role: 'group', 'aria-label': 'which reply is better?' });
    for (const [value, label] of [['a', '1 is better'], ['b', '2 is better'], ['tie', 'Tie'], ['both_bad', 'Both bad']]) {
      const b = el('button', { type: 'button', text: label, 'aria-label': 'compare: ' + label, class: 'verdict' });
      b.addEventListener('click', async () => {
        try {
          await app.api('POST', '/api/judgments', { kind: 'choice', rater: app.rater(), message_ids: r.message_ids, value });
          pair.textContent = 'saved';
          await showStats(app);
          app.refreshSidebar();
        } catch (e) { app.say(String(e.message ?? e), true); }
      });
      verdicts.append(b);
    }
    pair.append(sides, verdicts);
  } catch (e) {
    pair.textContent = '';
    app.say(String(e.message ?? e), true);
  } finally { go.disabled = false; }
}

/** Show the Compare button when the server has a --compare checkpoint. */
export async function setupCompare(app) {
  try { await app.api('GET', '/api/compare'); } catch { return; }
  const toggle = $('compare-toggle');
  toggle.hidden = false;
  toggle.addEventListener('click', () => {
    const on = $('compare').hidden;
    $('compare').hidden = !on;
    $('log').hidden = on;
    $('form').hidden = on;
    toggle.setAttribute('aria-pressed', String(on));
    if (on) { showStats(app); $('compare-input').focus(); }
  });
  $('compare-go').addEventListener('click', () => compare(app));
}
`;
