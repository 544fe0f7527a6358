/**
 * The minimal chat page served at `/`: one conversation, replies streamed from POST /v1/chat/completions, a Stop
 * button, temperature, and a box for the API key when the server has one. Kept as string modules so they ship in
 * dist/ with the compiled code (no asset copying). Model output is untrusted text: the script only ever sets
 * `textContent` (never innerHTML), and the page's Content-Security-Policy allows scripts from this origin only (no
 * inline script), so even a reply holding `<script>` renders as the characters it is.
 * The feedback page (thumbs, flags, edits, comparisons) replaces this one when it lands.
 */

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmts chat</title>
<link rel="stylesheet" href="/app/chat.css">
<script type="module" src="/app/chat.js"></script>
</head>
<body>
<header>
  <strong>llmts</strong> <span id="model">…</span>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
  <label>max tokens <input id="max-tokens" type="number" min="1" step="1" value="256"></label>
  <label id="key-label" hidden>API key <input id="key" type="password" autocomplete="off"></label>
  <button id="reset" type="button">New chat</button>
</header>
<main id="log" aria-live="polite"></main>
<form id="form">
  <textarea id="input" rows="3" placeholder="Message (Enter sends, Shift+Enter for a new line)" required></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<p id="status"></p>
</body>
</html>
`;

export const CHAT_CSS = `:root { font-family: system-ui, sans-serif; color-scheme: light dark; }
body { max-width: 52rem; margin: 0 auto; padding: 0 1rem; display: flex; flex-direction: column; min-height: 100vh; }
header { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; padding: .75rem 0; border-bottom: 1px solid #8884; }
header input[type=number] { width: 5rem; }
#log { flex: 1; padding: 1rem 0; }
.msg { white-space: pre-wrap; padding: .5rem .75rem; margin: .5rem 0; border-radius: .5rem; }
.user { background: #4a90d922; margin-left: 4rem; }
.assistant { background: #8882; margin-right: 4rem; }
.error { color: #c33; }
.meta { font-size: .75rem; opacity: .6; margin-top: .25rem; }
form { display: flex; gap: .5rem; padding: .75rem 0; position: sticky; bottom: 0; background: Canvas; }
textarea { flex: 1; font: inherit; }
#status { font-size: .8rem; opacity: .7; min-height: 1em; }
`;

export const CHAT_JS = `// The chat page's script: model output is set with textContent only.
const $ = (id) => document.getElementById(id);
const log = $('log'), input = $('input'), send = $('send'), stop = $('stop'), status = $('status');
let modelName = null;
let messages = [];
let controller = null;

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('key').value || sessionStorage.getItem('llmts-key');
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

function bubble(role, text) {
  const div = document.createElement('div');
  div.className = 'msg ' + role;
  div.textContent = text;
  log.append(div);
  div.scrollIntoView({ block: 'end' });
  return div;
}

async function errorText(res) {
  try { const j = await res.json(); return j.error?.message ?? res.statusText; } catch { return res.statusText; }
}

async function loadModel() {
  const res = await fetch('/v1/models', { headers: headers() });
  if (res.status === 401) { $('key-label').hidden = false; status.textContent = 'this server needs an API key'; return; }
  if (!res.ok) { status.textContent = await errorText(res); return; }
  const j = await res.json();
  modelName = j.data[0].id;
  $('model').textContent = modelName;
  const max = j.data[0].max_tokens;
  if (max) $('max-tokens').max = String(max);
  status.textContent = '';
}

async function chat(text) {
  if (!modelName) await loadModel();
  if (!modelName) return;
  messages.push({ role: 'user', content: text });
  bubble('user', text);
  const out = bubble('assistant', '');
  const meta = document.createElement('div');
  meta.className = 'meta';
  controller = new AbortController();
  send.disabled = true; stop.disabled = false;
  let reply = '', finish = null;
  const t0 = performance.now();
  let tokens = 0;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), signal: controller.signal,
      body: JSON.stringify({
        model: modelName, messages, stream: true, stream_options: { include_usage: true },
        temperature: Number($('temperature').value), max_tokens: Number($('max-tokens').value),
      }),
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
      while ((i = buf.indexOf('\\n\\n')) >= 0) {
        const event = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!event.startsWith('data: ')) continue;
        const data = event.slice(6);
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) tokens = j.usage.completion_tokens;
        const c = j.choices[0];
        if (!c) continue;
        if (c.delta?.content) { reply += c.delta.content; out.textContent = reply; out.scrollIntoView({ block: 'end' }); }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') bubble('error', String(e.message ?? e));
    else finish = 'stopped';
  } finally {
    controller = null; send.disabled = false; stop.disabled = true;
  }
  messages.push({ role: 'assistant', content: reply });
  const s = (performance.now() - t0) / 1000;
  meta.textContent = (finish ?? '') + (tokens ? ' · ' + tokens + ' tokens · ' + (tokens / s).toFixed(1) + ' tok/s' : '');
  out.append(meta);
}

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = '';
  chat(text);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('form').requestSubmit(); }
});
stop.addEventListener('click', () => controller?.abort());
$('reset').addEventListener('click', () => { controller?.abort(); messages = []; log.textContent = ''; input.focus(); });
$('key').addEventListener('change', () => { sessionStorage.setItem('llmts-key', $('key').value); loadModel(); });
loadModel();
`;
