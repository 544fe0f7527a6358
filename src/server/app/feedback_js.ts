/**
 * The page's feedback script (/app/feedback.js): under each reply thumbs, flag with Open-Assistant's reasons, edit
 * (a correction: SFT data), regenerate then choose A / B / tie / both bad (a preference pair), rank K replies, Inspect
 * (the views of `llmts inspect` for this reply, from POST /v1/inspect, in a new tab); and the token view (each token's probability and the alternatives the model weighed, from the reply's logprobs). Each
 * action is one POST /api/judgments (src/server/feedback_api.ts). Model output only ever goes into textContent.
 */
export const FEEDBACK_JS = `// The feedback controls under a reply: thumbs, flag with reasons, edit (a correction), regenerate then choose A/B,
// rank the replies, and the token-probability view. Every action is one POST /api/judgments; the store answers only
// after it has committed. Model text is set with textContent only.

import { splitThinking } from '/app/thinking.js';

// Open-Assistant's labels (src/feedback/types.ts FLAG_REASONS).
export const FLAG_REASONS = [
  ['spam', 'spam'], ['fails_task', 'fails the task'], ['not_appropriate', 'not appropriate'], ['pii', 'personal data'],
  ['hate_speech', 'hate speech'], ['sexual_content', 'sexual content'], ['lang_mismatch', 'wrong language'],
  ['moral_judgement', 'moral judgement'], ['political_content', 'political content'],
];

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function button(text, label, onClick, cls) {
  return el('button', { type: 'button', text, 'aria-label': label, title: label, class: cls ?? '', on: { click: onClick } });
}

async function judge(app, body) {
  try {
    const j = await app.api('POST', '/api/judgments', { rater: app.rater(), ...body });
    app.say('saved: ' + j.kind + (j.value ? ' ' + j.value : '') + ' (#' + j.id + ')');
    return j;
  } catch (e) { app.say(String(e.message ?? e), true); return null; }
}

// ── the reply's text: one focusable span per token when its log-probs are known ─────────────────────────────────

const pct = (lp) => (100 * Math.exp(lp)).toFixed(lp > Math.log(0.001) ? 1 : 3) + '%';

function showToken(t) {
  const panel = document.getElementById('tokens');
  panel.hidden = false;
  const body = document.getElementById('tokens-body');
  body.textContent = '';
  body.append(el('p', {}, el('code', { text: JSON.stringify(t.token) }), ' p = ' + pct(t.logprob)));
  const alts = t.top_logprobs ?? [];
  if (!alts.length) { body.append(el('p', { text: 'no alternatives were kept for this reply' })); return; }
  const table = el('table', {}, el('tr', {}, el('th', { text: 'token' }), el('th', { text: 'p' }), el('th', { text: '' })));
  for (const a of alts) {
    const bar = el('span', { class: 'bar' });
    bar.style.width = Math.max(1, Math.round(100 * Math.exp(a.logprob))) + 'px';
    const row = el('tr', a.token === t.token ? { class: 'picked' } : {}, el('td', {}, el('code', { text: JSON.stringify(a.token) })), el('td', { text: pct(a.logprob) }), el('td', {}, bar));
    table.append(row);
  }
  body.append(table);
}

/**
 * The reply's text: token spans when the log-probs spell the text, else the text itself; a thinking model's
 * <think>…</think> folded above its answer (open it to read the thinking).
 */
export function replyText(app, r) {
  const { reasoning, answer } = splitThinking(r.content);
  if (reasoning !== null) {
    const think = el('details', { class: 'thinking' }, el('summary', { text: 'thinking' }), el('div', { class: 'text', text: reasoning }));
    return el('div', {}, think, el('div', { class: 'text', text: answer }));
  }
  const div = el('div', { class: 'text' });
  const lps = r.logprobs ?? [];
  if (lps.length && lps.map((t) => t.token).join('') === r.content) {
    for (const t of lps) {
      const low = t.logprob < Math.log(0.2);
      const s = el('span', { class: 'tok' + (low ? ' low' : ''), tabindex: '0', role: 'button', title: pct(t.logprob) });
      s.textContent = t.token;
      s.addEventListener('click', () => showToken(t));
      s.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); showToken(t); } });
      div.append(s);
    }
  } else div.textContent = r.content;
  return div;
}

// ── the actions ─────────────────────────────────────────────────────────────────────────────────────────────────

/** The reasons panel: checkboxes of FLAG_REASONS and a submit; "min" reasons needed. */
function reasonsPanel(title, min, onSubmit, onCancel) {
  const boxes = FLAG_REASONS.map(([v, label]) => el('label', {}, el('input', { type: 'checkbox', value: v }), ' ' + label));
  const form = el('fieldset', { class: 'panel reasons' }, el('legend', { text: title }), ...boxes);
  form.append(
    button('Send', title, () => {
      const reasons = boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value);
      if (reasons.length < min) { boxes[0].firstChild.focus(); return; }
      onSubmit(reasons);
    }, 'primary'),
    button('Cancel', 'cancel', onCancel),
  );
  return form;
}

function editPanel(app, turn, r, onDone) {
  const ta = el('textarea', { rows: '4', 'aria-label': 'the corrected reply' });
  ta.value = r.content;
  const save = button('Save correction', 'save the correction', async () => {
    if (!ta.value.trim() || ta.value === r.content) { ta.focus(); return; }
    const j = await judge(app, { kind: 'edit', message_id: r.id, content: ta.value });
    if (!j) return;
    turn.replies.push({ id: j.message.id, content: j.message.content, logprobs: [], meta: '', editOf: r.id });
    turn.shown = turn.replies.length - 1;
    onDone();
  }, 'primary');
  setTimeout(() => ta.focus());
  return el('div', { class: 'panel edit' }, ta, el('div', {}, save, button('Cancel', 'cancel the edit', onDone)));
}

/** A vs B: the two newest model replies of a turn side by side, and the four verdicts. */
function choosePanel(app, turn, a, b, onDone) {
  const A = turn.replies[a], B = turn.replies[b];
  const verdict = (value, text) => button(text, 'verdict: ' + text, async () => {
    const j = await judge(app, { kind: 'choice', message_ids: [A.id, B.id], value });
    if (!j) return;
    turn.pending = null;
    if (value === 'a') turn.shown = a;
    if (value === 'b') turn.shown = b;
    onDone();
  }, 'verdict');
  return el('div', { class: 'panel choose', role: 'group', 'aria-label': 'which reply is better?' },
    el('div', { class: 'pair' },
      el('div', { class: 'side' }, el('strong', { text: 'A' }), el('div', { class: 'text', text: A.content })),
      el('div', { class: 'side' }, el('strong', { text: 'B' }), el('div', { class: 'text', text: B.content }))),
    el('div', {}, verdict('a', 'A is better'), verdict('b', 'B is better'), verdict('tie', 'Tie'), verdict('both_bad', 'Both bad')));
}

/** Rank every stored reply of the turn: a select of places per reply, best = 1. */
function rankPanel(app, turn, onDone) {
  const items = turn.replies.filter((r) => r.id !== null);
  const K = items.length;
  const selects = items.map((r, k) => {
    const s = el('select', { 'aria-label': 'place of reply ' + (k + 1) });
    for (let p = 1; p <= K; p++) s.append(el('option', { value: String(p), text: String(p) }));
    s.value = String(k + 1);
    return s;
  });
  const rows = items.map((r, k) => el('li', {}, selects[k], ' ', el('span', { class: 'text', text: r.content })));
  const submit = button('Save ranking', 'save the ranking', async () => {
    const places = selects.map((s) => Number(s.value));
    if (new Set(places).size !== K) { app.say('give each reply a different place', true); return; }
    const ranking = places.map((p, k) => [p, k]).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
    const j = await judge(app, { kind: 'ranking', message_ids: items.map((r) => r.id), ranking });
    if (j) onDone();
  }, 'primary');
  return el('div', { class: 'panel rank' }, el('p', { text: 'Place each reply (1 = best):' }), el('ol', {}, ...rows),
    el('div', {}, submit, button('Cancel', 'cancel the ranking', onDone)));
}

/** The bar under an assistant turn (index i): thumbs, flag, edit, regenerate, replies ‹ k/K ›, rank, choose. */
export function replyActions(app, turn, i) {
  const r = turn.replies[turn.shown];
  const box = el('div', { class: 'actions' });
  const bar = el('div', { class: 'bar-row' });
  box.append(bar);
  const slot = el('div', {});
  box.append(slot);
  const open = (panel) => { slot.textContent = ''; if (panel) slot.append(panel); };
  const last = i === app.turns.length - 1;
  const stored = app.feedback && r.id !== null;

  if (turn.replies.length > 1) {
    const nav = el('span', { class: 'nav' },
      button('‹', 'previous reply', () => { turn.shown = (turn.shown + turn.replies.length - 1) % turn.replies.length; app.turns.length = i + 1; app.render(); }),
      el('span', { text: ' ' + (turn.shown + 1) + '/' + turn.replies.length + ' ' }),
      button('›', 'next reply', () => { turn.shown = (turn.shown + 1) % turn.replies.length; app.turns.length = i + 1; app.render(); }));
    bar.append(nav);
  }
  if (stored) {
    bar.append(
      button('▲ Good', 'thumbs up', () => judge(app, { kind: 'thumbs', message_id: r.id, value: 'up' }), 'up'),
      button('▼ Bad', 'thumbs down', () => open(reasonsPanel('Thumbs down: why? (optional)', 0, async (reasons) => {
        if (await judge(app, { kind: 'thumbs', message_id: r.id, value: 'down', reasons })) open(null);
      }, () => open(null))), 'down'),
      button('⚑ Flag', 'flag this reply', () => open(reasonsPanel('Flag: what is wrong?', 1, async (reasons) => {
        if (await judge(app, { kind: 'flag', message_id: r.id, reasons })) open(null);
      }, () => open(null))), 'flag'),
      button('✎ Edit', 'edit this reply into a better one', () => open(editPanel(app, turn, r, () => { app.turns.length = i + 1; app.render(); })), 'edit'),
    );
  }
  bar.append(button('↻ Regenerate', 'generate another reply to compare', async () => {
    if (app.controller) return;
    app.turns.length = i + 1;
    const live = el('div', { class: 'text' });
    open(el('div', { class: 'panel' }, el('strong', { text: 'B' }), live));
    const nr = await app.stream(i - 1, (s) => { live.textContent = s; });
    if (!nr) { open(null); return; }
    const a = turn.shown;
    turn.replies.push(nr);
    turn.shown = turn.replies.length - 1;
    turn.pending = app.feedback && nr.id !== null && turn.replies[a].id !== null ? [a, turn.shown] : null;
    app.render();
  }, 'regen'));
  // look inside this reply: POST /v1/inspect (format "link") and open the page in a tab opened now, on the click
  bar.append(button('Inspect', 'look inside: attention maps, logit lens, next-token distribution', async () => {
    const w = window.open('', '_blank');
    try {
      const j = await app.api('POST', '/v1/inspect', { model: app.model, messages: app.messages(i - 1), reply: r.content, format: 'link' });
      if (w) w.location.href = j.url; else window.open(j.url, '_blank');
      app.say('the inspection opened in a new tab');
    } catch (e) { w?.close(); app.say(String(e.message ?? e), true); }
  }, 'inspect'));
  const rankable = turn.replies.filter((x) => x.id !== null).length;
  if (app.feedback && rankable >= 2)
    bar.append(button('Rank', 'rank all ' + rankable + ' replies', () => open(rankPanel(app, turn, () => open(null))), 'rank'));
  if (turn.pending && last) open(choosePanel(app, turn, turn.pending[0], turn.pending[1], () => app.render()));
  return box;
}
`;
