/**
 * The inspection page: ONE self-contained HTML file (inline CSS and script, nothing fetched, works offline) from an
 * `Inspection` (./inspect.ts): attention maps per layer and head, the logit lens, and the last position's next-token
 * distribution under temperature / top-k / top-p. The data travel as JSON in a <script type="application/json">
 * element (every '<' escaped, so no token can close it); the script (./page_client.ts) writes every model string with
 * textContent. The static text of the page is ours; nothing from the model goes through HTML.
 */
import { ConfigError } from '../util/errors.js';
import { scriptJson } from '../util/html.js';
import type { Inspection } from './inspect.js';
import { inspectPageScript, type PageData } from './page_client.js';

export interface PageOptions {
  /** The page's heading (default: 'Inside the model'). */
  title?: string;
  /** Where the model came from (its folder), shown under the title. */
  source?: string;
  /** The text inspected, shown on the page. */
  text?: string;
  /** The sampler controls' starting values (default temperature 1, top-k 0 = off, top-p 1 = off). */
  sampling?: { temperature?: number; topK?: number; topP?: number };
}

/** Base64 of the bytes of a typed array (little-endian, as every platform this runs on). */
function base64(a: ArrayBufferView): string {
  const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The most attention weights (layers · heads · T²) a page carries: 16 M, 32 MiB as uint16 (~43 MB of base64). */
export const PAGE_MAX_ATTENTION = 1 << 24;

/** The page's data: attention quantised to uint16 (p·65535: steps of 1.5e-5), the lens rounded to 5 digits. */
export function pageData(ins: Inspection, o: PageOptions = {}): PageData {
  const T = ins.ids.length;
  const n = ins.numLayers * ins.numHeads * T * T;
  if (n > PAGE_MAX_ATTENTION) {
    const most = Math.floor(Math.sqrt(PAGE_MAX_ATTENTION / (ins.numLayers * ins.numHeads)));
    throw new ConfigError(
      'text',
      `${T} tokens make ${ins.numLayers} layers × ${ins.numHeads} heads × ${T}² = ${n} attention weights, more than one page holds (${PAGE_MAX_ATTENTION}): inspect at most ${most} tokens of this model`,
    );
  }
  const q = new Uint16Array(ins.numLayers * ins.numHeads * T * T); // (L, H, T, T)
  ins.attention.forEach((a, l) => {
    for (let i = 0; i < a.length; i++) q[l * a.length + i] = Math.round(Math.min(1, Math.max(0, a[i]!)) * 65535);
  });
  return {
    title: o.title ?? 'Inside the model',
    source: o.source ?? '',
    text: o.text ?? '',
    model: {
      family: ins.family,
      layers: ins.numLayers,
      heads: ins.numHeads,
      kvHeads: ins.numKvHeads,
      hidden: ins.hiddenSize,
      vocab: ins.vocabSize,
    },
    tokens: ins.tokens,
    ids: ins.ids,
    attention: base64(q),
    lens: ins.lens.map((r) => ({
      label: r.label,
      ids: Array.from(r.ids),
      probs: Array.from(r.probs, (p) => Number(p.toPrecision(5))),
    })),
    topk: ins.topk,
    logits: base64(ins.lastLogits),
    vocab: [...ins.vocab],
    sampling: { temperature: 1, topK: 0, topP: 1, ...o.sampling },
  };
}

/** The whole page as an HTML string. */
export function inspectionHtml(ins: Inspection, o: PageOptions = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>llm.ts inspect</title>
<style>${CSS}</style>
</head>
<body>
<h1 id="title"></h1>
<p id="source" class="muted"></p>

<section>
<h2>1 · Attention: where each token looks</h2>
<p class="muted">Click a token (or a row of the map) to see how much of its attention goes to each earlier token in the
chosen layer and head. Shade ∝ √probability; later tokens are masked (causal).</p>
<div class="controls"><label>layer <select id="layer"></select></label> <label>head <select id="head"></select></label></div>
<div id="tokens" class="strip"></div>
<p id="attn-note"></p>
<div class="row">
<div><canvas id="attn-canvas" aria-label="attention map: rows are queries, columns are keys"></canvas>
<p class="muted small">rows: the token looking (query) · columns: the token looked at (key) · orange: the chosen token</p></div>
<div><p class="muted small">Every layer × head for the chosen token: the token it looks at most (click to open).</p><div id="overview"></div></div>
</div>
</section>

<section>
<h2>2 · The logit lens: the next-token guess after each layer</h2>
<p class="muted">Each layer's residual stream read through the final norm and the output head. A cell shows the most likely
next token at that position after that layer, shaded by its probability (hover for the top ${ins.topk}); underlined: it is
the token that actually comes next. The top row is the model's own prediction.</p>
<div class="scroll"><table id="lens" class="lens"></table></div>
</section>

<section>
<h2>3 · What sampling would keep after the last token</h2>
<div class="controls">
<label>temperature <input id="temperature" type="range" min="0" max="2" step="0.05"> <span id="temperature-value"></span></label>
<label>top-k <input id="top-k" type="number" min="0" step="1" style="width:5em"></label>
<label>top-p <input id="top-p" type="range" min="0.01" max="1" step="0.01"> <span id="top-p-value"></span></label>
</div>
<p id="dist-note"></p>
<table id="dist" class="dist"></table>
</section>

<script type="application/json" id="inspect-data">${scriptJson(pageData(ins, o))}</script>
<script>(${inspectPageScript.toString()})();</script>
</body>
</html>
`;
}

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1200px; color: #111; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
.muted { color: #555; } .small { font-size: 12px; }
.controls { margin: 8px 0; display: flex; gap: 18px; flex-wrap: wrap; align-items: center; }
.strip { font: 15px/2.1 ui-monospace, "SFMono-Regular", Menlo, monospace; }
.tok { padding: 2px 1px; margin: 0 1px; border-radius: 3px; cursor: pointer; white-space: pre; border: 1px solid transparent; }
.tok.query { border-color: #f97316; box-shadow: 0 0 0 1px #f97316; }
.row { display: flex; gap: 28px; flex-wrap: wrap; align-items: flex-start; }
canvas { border: 1px solid #ddd; image-rendering: pixelated; cursor: pointer; max-width: 100%; }
table { border-collapse: collapse; }
.grid td, .grid th, .lens td, .lens th { border: 1px solid #e5e7eb; padding: 2px 5px; font: 12px ui-monospace, Menlo, monospace; white-space: pre; }
.grid td { cursor: pointer; min-width: 3em; text-align: center; } .grid td.current { outline: 2px solid #f97316; }
.grid th, .lens th { background: #f8fafc; font-weight: 600; text-align: left; }
.lens td { text-align: center; min-width: 2.2em; } .lens td.hit { text-decoration: underline; font-weight: 700; }
.scroll { overflow-x: auto; }
.dist td, .dist th { padding: 2px 8px; text-align: left; font-size: 13px; }
.dist .tokcell { font-family: ui-monospace, Menlo, monospace; white-space: pre; }
.dist tr.dropped { color: #aaa; }
.barcell { width: 260px; } .bar { height: 10px; background: #2563eb; border-radius: 2px; }
`;
