/**
 * The chat page served at `/` (HTML and CSS; the scripts are ./chat_js.ts, ./feedback_js.ts, ./compare_js.ts and ./improve_js.ts): a sidebar of the
 * feedback store's conversations, the chat with streamed replies, under each reply the feedback controls, and a panel
 * that shows a clicked token's probability and alternatives. No framework, no CDN: it works offline. Kept as string
 * modules so they ship in dist/ with the compiled code (no asset copying). Model output is untrusted text: the
 * scripts only ever set `textContent` (never innerHTML), and the page's Content-Security-Policy allows scripts from
 * this origin only (no inline script), so even a reply holding `<script>` renders as the characters it is.
 */

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmts chat</title>
<link rel="stylesheet" href="/app/chat.css">
<link rel="icon" href="/app/icon.svg" type="image/svg+xml">
<script type="module" src="/app/chat.js"></script>
</head>
<body>
<header>
  <strong>llmts</strong> <span id="model">…</span>
  <label>you <input id="rater" type="text" size="10" placeholder="web" autocomplete="nickname"></label>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
  <label>max tokens <input id="max-tokens" type="number" min="1" step="1" value="256"></label>
  <label id="key-label" hidden>API key <input id="key" type="password" autocomplete="off"></label>
  <button id="reset" type="button">New chat</button>
  <button id="compare-toggle" type="button" aria-pressed="false" hidden>Compare</button>
</header>
<div id="layout">
<nav id="sidebar" aria-label="conversations">
  <h2>Conversations</h2>
  <ul id="conversations"></ul>
  <details id="improve" hidden><summary>Improve the model</summary>
    <p class="hint">SFT on your corrections, then DPO on your choices, in the background.</p>
    <label>steps <input id="improve-steps" type="number" min="1" max="10000" value="50"></label>
    <label title="train small LoRA adapters instead of every weight: faster, far smaller checkpoints"><input id="improve-lora" type="checkbox"> LoRA</label>
    <button id="improve-go" type="button">Improve</button>
    <p id="improve-state" role="status"></p>
    <button id="improve-switch" type="button" hidden>Serve it</button>
    <pre id="improve-log"></pre>
  </details>
</nav>
<div id="chat">
  <details id="system-box"><summary>System prompt</summary>
    <textarea id="system" rows="2" aria-label="system prompt (new chats)"></textarea></details>
  <main id="log" aria-live="polite"></main>
  <form id="form">
    <textarea id="input" rows="3" placeholder="Message (Enter sends, Shift+Enter for a new line)" aria-label="message" required></textarea>
    <button id="send" type="submit">Send</button>
    <button id="stop" type="button" disabled>Stop</button>
  </form>
  <section id="compare" hidden aria-label="compare two checkpoints">
    <h2>Compare two checkpoints, blind</h2>
    <textarea id="compare-input" rows="3" aria-label="prompt for both checkpoints" placeholder="A prompt both checkpoints answer"></textarea>
    <button id="compare-go" type="button">Ask both</button>
    <div id="compare-pair"></div>
    <p id="compare-stats"></p>
  </section>
  <p id="status" role="status"></p>
</div>
<aside id="tokens" hidden aria-label="token probabilities">
  <h2>Token</h2>
  <div id="tokens-body"></div>
  <p class="hint">Click or press Enter on a token of a reply.</p>
</aside>
</div>
</body>
</html>
`;

export const CHAT_CSS = `:root { font-family: system-ui, sans-serif; color-scheme: light dark; }
body { margin: 0; padding: 0 1rem; min-height: 100vh; display: flex; flex-direction: column; }
header { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; padding: .75rem 0; border-bottom: 1px solid #8884; }
header input[type=number] { width: 5rem; }
#layout { flex: 1; display: flex; gap: 1rem; }
#sidebar { width: 14rem; flex: none; border-right: 1px solid #8884; padding-right: .75rem; overflow-y: auto; }
#sidebar h2, #tokens h2 { font-size: .9rem; opacity: .7; }
#sidebar ul { list-style: none; padding: 0; margin: 0; }
#sidebar button { width: 100%; text-align: left; background: none; border: 0; padding: .35rem .5rem; border-radius: .35rem; font: inherit; cursor: pointer; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#sidebar button:hover, #sidebar button[aria-current] { background: #4a90d922; }
#chat { flex: 1; max-width: 52rem; display: flex; flex-direction: column; }
#system-box { padding-top: .5rem; font-size: .85rem; }
#system { width: 100%; font: inherit; }
#log { flex: 1; padding: 1rem 0; }
.msg { padding: .5rem .75rem; margin: .5rem 0; border-radius: .5rem; }
.msg .text, .msg.user, .msg.system { white-space: pre-wrap; }
.user { background: #4a90d922; margin-left: 4rem; }
.system { background: #d9a44a22; font-size: .85rem; }
.assistant { background: #8882; margin-right: 4rem; }
.tok { border-radius: .2rem; cursor: pointer; }
.tok:hover, .tok:focus { background: #4a90d955; outline: none; }
.tok.low { text-decoration: underline dotted #c80; }
.error { color: #c33; }
.meta { font-size: .75rem; opacity: .6; margin-top: .25rem; }
details.thinking { font-size: .85rem; opacity: .7; margin-bottom: .4rem; }
details.thinking > summary { cursor: pointer; font-style: italic; }
.actions { margin-top: .35rem; }
.actions button { font: inherit; font-size: .8rem; margin-right: .25rem; }
.nav { font-size: .8rem; margin-right: .5rem; }
.panel { margin-top: .5rem; padding: .5rem; border: 1px solid #8886; border-radius: .4rem; }
.panel textarea { width: 100%; font: inherit; }
.reasons label { display: inline-block; margin-right: .75rem; font-size: .85rem; }
.pair { display: flex; gap: .75rem; }
.side { flex: 1; padding: .4rem; background: #8881; border-radius: .3rem; }
.rank li { margin: .25rem 0; }
button.primary { font-weight: 600; }
form { display: flex; gap: .5rem; padding: .75rem 0; position: sticky; bottom: 0; background: Canvas; }
form textarea { flex: 1; font: inherit; }
#improve { margin-top: 1rem; font-size: .85rem; }
#improve input { width: 4rem; }
#improve-log { font-size: .7rem; max-height: 14rem; overflow: auto; white-space: pre-wrap; }
#compare textarea { width: 100%; font: inherit; }
#compare h2 { font-size: 1rem; }
[hidden] { display: none !important; }
#status { font-size: .8rem; opacity: .8; min-height: 1em; }
#tokens { width: 16rem; flex: none; border-left: 1px solid #8884; padding-left: .75rem; font-size: .85rem; }
#tokens table { border-collapse: collapse; }
#tokens td, #tokens th { padding: .1rem .4rem; text-align: left; }
#tokens tr.picked { font-weight: 600; }
#tokens .bar { display: inline-block; height: .6rem; background: #4a90d9; }
.hint { opacity: .6; font-size: .75rem; }
body.no-feedback #sidebar { opacity: .6; font-size: .8rem; }
`;

/** The page's icon (a speech bubble). */
export const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M2 2h12v9H7l-3 3v-3H2z" fill="#4a90d9"/></svg>
`;
