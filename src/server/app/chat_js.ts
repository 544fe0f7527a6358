/**
 * The page's main script (/app/chat.js): the conversation, replies streamed from POST /v1/chat/completions and linked
 * to the feedback store (src/server/reply_link.ts), the sidebar of stored conversations. The feedback controls are in
 * ./feedback_js.ts. A string module so it ships in dist/ with the compiled code; model output only ever goes into
 * textContent.
 */
export const CHAT_JS = String.raw`// The chat page: conversations in a sidebar, replies streamed from /v1/chat/completions and recorded in the feedback
// store (the request's "llmts": {"parent_id"} names the stored user message; the response names the stored reply).
// Model output is untrusted: it is only ever set as textContent, never as HTML.
import { setupCompare } from '/app/compare.js';
import { replyActions, replyText } from '/app/feedback.js';
import { setupImprove } from '/app/improve.js';
import { splitThinking } from '/app/thinking.js';

const $ = (id) => document.getElementById(id);
const log = $('log'), input = $('input'), send = $('send'), stop = $('stop'), status = $('status');
const app = {
  model: null, feedback: false, conversationId: null, turns: [], controller: null,
  rater: () => $('rater').value.trim() || 'web',
  api, stream: streamReply, render, say, refreshSidebar, messages: (i) => messagesUpTo(i),
};
// turns: {role: 'system'|'user', id, content} | {role: 'assistant', parentId, replies: [{id, content, logprobs, meta, editOf}], shown, pending}

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('key').value || sessionStorage.getItem('llmts-key');
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

function say(text, isError) {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

async function errorText(res) {
  try { const j = await res.json(); return j.error?.message ?? res.statusText; } catch { return res.statusText; }
}

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) $('key-label').hidden = false;
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

async function loadModel() {
  try {
    const j = await api('GET', '/v1/models');
    app.model = j.data[0].id;
    $('model').textContent = app.model;
    if (j.data[0].max_tokens) $('max-tokens').max = String(j.data[0].max_tokens);
    say('');
  } catch (e) { say(String(e.message ?? e), true); return; }
  const res = await fetch('/api/conversations?limit=1', { headers: headers() });
  app.feedback = res.ok;
  document.body.classList.toggle('no-feedback', !app.feedback);
  if (app.feedback) { refreshSidebar(); setupCompare(app); setupImprove(app); }
  else $('conversations').textContent = 'This server keeps no feedback (--no-db).';
}

// ── the conversation as the API and the store see it ────────────────────────────────────────────────────────────

/** The messages up to and including turn i (assistant turns: the reply shown, its answer without the thinking). */
function messagesUpTo(i) {
  return app.turns.slice(0, i + 1).map((t) =>
    t.role === 'assistant' ? { role: 'assistant', content: splitThinking(t.replies[t.shown].content).answer } : { role: t.role, content: t.content });
}

/** The stored id of the last message of the shown path (null: none yet). */
function lastId() {
  const t = app.turns[app.turns.length - 1];
  if (!t) return null;
  return t.role === 'assistant' ? t.replies[t.shown].id : t.id;
}

/**
 * Stream one reply to the user turn at index "userIndex"; returns {content, logprobs, id, meta} or null when stopped.
 * onText(text) sees the reply grow. A server that splits a thinking model's reply (reasoning_format deepseek) sends
 * reasoning_content apart: the reply's text is then <think>reasoning</think> and the answer, as the model wrote it.
 */
async function streamReply(userIndex, onText) {
  const user = app.turns[userIndex];
  app.controller = new AbortController();
  send.disabled = true; stop.disabled = false;
  let content = '', reasoning = '', finish = null, tokens = 0, id = null;
  const text = () => (reasoning ? '<think>' + reasoning + (content ? '</think>' + content : '') : content);
  const logprobs = [];
  const t0 = performance.now();
  try {
    const body = {
      model: app.model, messages: messagesUpTo(userIndex), stream: true, stream_options: { include_usage: true },
      temperature: Number($('temperature').value), max_tokens: Number($('max-tokens').value),
      logprobs: true, top_logprobs: 5,
    };
    if (app.feedback && user.id) body.llmts = { parent_id: user.id };
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), signal: app.controller.signal, body: JSON.stringify(body),
    });
    if (res.status === 401) $('key-label').hidden = false;
    if (!res.ok) throw new Error(await errorText(res));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6);
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) tokens = j.usage.completion_tokens;
        if (j.llmts) id = j.llmts.message_ids[0];
        const c = j.choices[0];
        if (!c) continue;
        if (c.logprobs?.content) logprobs.push(...c.logprobs.content);
        if (c.delta?.reasoning_content) { reasoning += c.delta.reasoning_content; onText(text()); }
        if (c.delta?.content) { content += c.delta.content; onText(text()); }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') { say('stopped: the reply is not kept'); return null; }
    say(String(e.message ?? e), true);
    return null;
  } finally {
    app.controller = null; send.disabled = false; stop.disabled = true;
  }
  const s = (performance.now() - t0) / 1000;
  const meta = (finish ?? '') + (tokens ? ' · ' + tokens + ' tokens · ' + (tokens / s).toFixed(1) + ' tok/s' : '');
  return { id, content: text(), logprobs, meta, editOf: null };
}

// ── rendering ───────────────────────────────────────────────────────────────────────────────────────────────────

function render() {
  log.textContent = '';
  app.turns.forEach((t, i) => {
    const div = document.createElement('div');
    div.className = 'msg ' + t.role;
    if (t.role !== 'assistant') {
      div.textContent = t.content;
    } else {
      const r = t.replies[t.shown];
      div.append(replyText(app, r));
      if (r.meta === null) { log.append(div); return; } // still streaming
      const meta = document.createElement('div');
      meta.className = 'meta';
      meta.textContent = r.meta + (r.editOf ? ' · your correction' : '') + (r.id ? ' · #' + r.id : '');
      div.append(meta);
      div.append(replyActions(app, t, i));
    }
    log.append(div);
  });
  log.lastElementChild?.scrollIntoView({ block: 'end' });
}

async function chat(text) {
  if (!app.model) await loadModel();
  if (!app.model) return;
  const turn = { role: 'user', id: null, content: text };
  try {
    if (app.feedback) {
      if (app.conversationId === null) {
        const c = await api('POST', '/api/conversations', { title: text.slice(0, 60) });
        app.conversationId = c.id;
        const sys = $('system').value.trim();
        if (sys) {
          const m = await api('POST', '/api/conversations/' + c.id + '/messages', { parent_id: null, role: 'system', content: sys, author: app.rater() });
          app.turns.push({ role: 'system', id: m.id, content: sys });
        }
      }
      const m = await api('POST', '/api/conversations/' + app.conversationId + '/messages', {
        parent_id: lastId(), role: 'user', content: text, author: app.rater(),
      });
      turn.id = m.id;
    } else if (app.turns.length === 0 && $('system').value.trim()) {
      app.turns.push({ role: 'system', id: null, content: $('system').value.trim() });
    }
  } catch (e) { say(String(e.message ?? e), true); return; }
  app.turns.push(turn);
  const a = { role: 'assistant', parentId: turn.id, replies: [{ id: null, content: '', logprobs: [], meta: null, editOf: null }], shown: 0, pending: null };
  app.turns.push(a);
  render();
  const live = log.lastElementChild.querySelector('.text');
  const r = await streamReply(app.turns.length - 2, (s) => { live.textContent = s; live.scrollIntoView({ block: 'end' }); });
  if (r) a.replies[0] = r;
  else {
    // no reply: the turn is taken back (a stored user turn without a reply stays a leaf of the tree)
    app.turns.length -= 2;
    if (!input.value) input.value = text;
  }
  render();
  if (app.feedback) refreshSidebar();
}

// ── the sidebar: the store's conversations ──────────────────────────────────────────────────────────────────────

async function refreshSidebar() {
  const list = $('conversations');
  try {
    const j = await api('GET', '/api/conversations?limit=100');
    list.textContent = '';
    for (const c of j.data) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = c.title || 'conversation ' + c.id;
      b.title = c.message_count + ' messages · ' + c.updated_at;
      if (c.id === app.conversationId) b.setAttribute('aria-current', 'true');
      b.addEventListener('click', () => openConversation(c.id));
      li.append(b);
      list.append(li);
    }
  } catch (e) { say(String(e.message ?? e), true); }
}

/** Rebuild the turns from a stored tree: at each step the latest child (a reply that was answered, else the latest). */
async function openConversation(id) {
  if (app.controller) return;
  const j = await api('GET', '/api/conversations/' + id);
  const kids = new Map();
  for (const m of j.messages) { const k = m.parent_id ?? 0; if (!kids.has(k)) kids.set(k, []); kids.get(k).push(m); }
  const turns = [];
  let at = 0;
  for (;;) {
    const cs = kids.get(at);
    if (!cs?.length) break;
    const asst = cs.filter((m) => m.role === 'assistant');
    if (asst.length) {
      const replies = asst.map((m) => ({ id: m.id, content: m.content, logprobs: m.logprobs ?? [], meta: m.edit_of ? '' : 'stored', editOf: m.edit_of }));
      let shown = asst.length - 1;
      for (let k = asst.length - 1; k >= 0; k--) if (kids.has(asst[k].id)) { shown = k; break; }
      turns.push({ role: 'assistant', parentId: at, replies, shown, pending: null });
      at = asst[shown].id;
    } else {
      const m = cs[cs.length - 1];
      turns.push({ role: m.role, id: m.id, content: m.content });
      at = m.id;
    }
  }
  app.conversationId = id;
  app.turns = turns;
  render();
  refreshSidebar();
  say('');
}

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || app.controller) return;
  input.value = '';
  chat(text);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('form').requestSubmit(); }
});
stop.addEventListener('click', () => app.controller?.abort());
$('reset').addEventListener('click', () => {
  app.controller?.abort(); app.turns = []; app.conversationId = null; render(); refreshSidebar(); input.focus();
});
$('key').addEventListener('change', () => { sessionStorage.setItem('llmts-key', $('key').value); loadModel(); });
$('rater').value = localStorage.getItem('llmts-rater') ?? '';
$('rater').addEventListener('change', () => localStorage.setItem('llmts-rater', $('rater').value));
loadModel();
`;
