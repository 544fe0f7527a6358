/**
 * The script of the inspection page (./page.ts inlines `inspectPageScript.toString()`): it reads the page's JSON data
 * and draws (1) the attention of the chosen layer and head from the chosen token (a strip of tokens shaded by weight,
 * and the whole T×T map on a canvas), (2) the logit lens as a table of layers × positions, (3) the last position's
 * next-token distribution under a temperature / top-k / top-p setting, with the tokens sampling would keep and their
 * renormalised probabilities (the sampler's arithmetic of src/backend/sampling.ts, min-p aside).
 *
 * Every token string and every number comes from the model: written with textContent and DOM properties only, never
 * as HTML. Self-contained: the function body may use nothing from outside it (it runs in the page on its own).
 */

/** The page's data, as ./page.ts writes it (the attention as base64 uint16 p·65535, the logits as base64 float32). */
export interface PageData {
  title: string;
  source: string;
  text: string;
  model: { family: string; layers: number; heads: number; kvHeads: number; hidden: number; vocab: number };
  tokens: string[];
  ids: number[];
  /** L·H·T·T probabilities quantised to uint16 (p·65535), little-endian, base64. */
  attention: string;
  lens: { label: string; ids: number[]; probs: number[] }[];
  topk: number;
  /** The last position's logits (V float32, little-endian, base64). */
  logits: string;
  vocab: [number, string][];
  sampling: { temperature: number; topK: number; topP: number };
}

/** Runs in the page: builds every view from the JSON in <script id="inspect-data">. */
export function inspectPageScript(): void {
  const D = JSON.parse(document.getElementById('inspect-data')!.textContent!) as PageData;
  const T = D.tokens.length,
    L = D.model.layers,
    H = D.model.heads,
    V = D.model.vocab;
  const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const $ = (id: string) => document.getElementById(id)!;
  const bytes = (b64: string): Uint8Array => {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  };
  const attn = new Uint16Array(bytes(D.attention).buffer); // (L, H, T, T)
  const logits = new Float32Array(bytes(D.logits).buffer); // (V)
  const vocab = new Map(D.vocab);
  /** A token as it shows: whitespace made visible. */
  const show = (s: string) => s.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥').replace(/\r/g, '␍');
  const name = (id: number) => show(vocab.get(id) ?? `⟨${id}⟩`);
  const pct = (p: number) => (p >= 0.995 ? '100%' : p >= 0.001 ? `${(p * 100).toFixed(1)}%` : `${p.toExponential(1)}`);
  /** Shade of a probability: white → blue (alpha √p, so that small weights stay visible). */
  const shade = (p: number) => `rgba(37, 99, 235, ${Math.sqrt(Math.max(0, Math.min(1, p))).toFixed(3)})`;
  const ink = (p: number) => (p > 0.45 ? '#fff' : '#111');

  $('title').textContent = D.title;
  $('source').textContent =
    `${D.source} · ${D.model.family}, ${L} layers × ${H} heads${D.model.kvHeads !== H ? ` (${D.model.kvHeads} key/value heads)` : ''}, width ${D.model.hidden}, vocabulary ${V} · ${T} tokens`;

  // ---------------------------------------------------------------- (1) attention
  let layer = L - 1,
    head = 0, // -1: the mean over heads
    query = T - 1;
  const layerSel = $('layer') as HTMLSelectElement,
    headSel = $('head') as HTMLSelectElement;
  for (let l = 0; l < L; l++) layerSel.append(new Option(`layer ${l + 1}`, String(l)));
  headSel.append(new Option('mean of heads', '-1'));
  for (let h = 0; h < H; h++) {
    const kv = Math.floor((h * D.model.kvHeads) / H);
    headSel.append(new Option(D.model.kvHeads !== H ? `head ${h + 1} (kv ${kv + 1})` : `head ${h + 1}`, String(h)));
  }
  layerSel.value = String(layer);
  headSel.value = String(head);
  /** p(query t attends to key s) in the chosen layer and head (or the mean over heads). */
  const weight = (l: number, h: number, t: number, s: number): number => {
    if (h >= 0) return attn[((l * H + h) * T + t) * T + s]! / 65535;
    let sum = 0;
    for (let j = 0; j < H; j++) sum += attn[((l * H + j) * T + t) * T + s]!;
    return sum / 65535 / H;
  };
  const strip = $('tokens');
  const spans = D.tokens.map((tok, i) => {
    const s = el('span', show(tok), 'tok');
    s.dataset['i'] = String(i);
    s.addEventListener('click', () => {
      query = i;
      drawAttention();
    });
    strip.append(s);
    return s;
  });
  const canvas = $('attn-canvas') as HTMLCanvasElement;
  const cell = Math.max(3, Math.min(24, Math.floor(520 / T)));
  canvas.width = canvas.height = cell * T;
  canvas.addEventListener('click', (e) => {
    const r = canvas.getBoundingClientRect();
    const t = Math.floor(((e.clientY - r.top) / r.height) * T);
    if (t >= 0 && t < T) {
      query = t;
      drawAttention();
    }
  });
  function drawAttention(): void {
    spans.forEach((s, i) => {
      const p = i <= query ? weight(layer, head, query, i) : 0;
      s.style.background = i <= query ? shade(p) : 'transparent';
      s.style.color = i <= query ? ink(p) : '#bbb';
      s.classList.toggle('query', i === query);
      s.title =
        i <= query ? `${pct(p)} of ${JSON.stringify(D.tokens[query])}'s attention` : 'after the chosen token: masked';
    });
    const g = canvas.getContext('2d')!;
    g.fillStyle = '#fff';
    g.fillRect(0, 0, canvas.width, canvas.height);
    for (let t = 0; t < T; t++) {
      for (let s = 0; s <= t; s++) {
        g.fillStyle = shade(weight(layer, head, t, s));
        g.fillRect(s * cell, t * cell, cell, cell);
      }
    }
    g.strokeStyle = '#f97316';
    g.lineWidth = Math.max(1, cell / 6);
    g.strokeRect(0.5, query * cell + 0.5, (query + 1) * cell - 1, cell - 1);
    let best = 0;
    for (let s = 1; s <= query; s++) if (weight(layer, head, query, s) > weight(layer, head, query, best)) best = s;
    $('attn-note').textContent =
      `${JSON.stringify(show(D.tokens[query]!))} (position ${query + 1}) looks most at ` +
      `${JSON.stringify(show(D.tokens[best]!))} (position ${best + 1}, ${pct(weight(layer, head, query, best))}) in layer ${layer + 1}, ${head < 0 ? 'averaged over heads' : `head ${head + 1}`}.`;
    drawOverview();
  }
  /** Every layer × head for the chosen token: where each one looks most. */
  function drawOverview(): void {
    const box = $('overview');
    box.replaceChildren();
    const table = el('table', undefined, 'grid');
    const hr = el('tr');
    hr.append(el('th', ''));
    for (let h = 0; h < H; h++) hr.append(el('th', `head ${h + 1}`));
    table.append(hr);
    for (let l = 0; l < L; l++) {
      const tr = el('tr');
      tr.append(el('th', `layer ${l + 1}`));
      for (let h = 0; h < H; h++) {
        let best = 0;
        for (let s = 1; s <= query; s++) if (weight(l, h, query, s) > weight(l, h, query, best)) best = s;
        const p = weight(l, h, query, best);
        const td = el('td', name(D.ids[best]!));
        td.style.background = shade(p);
        td.style.color = ink(p);
        td.title = `layer ${l + 1}, head ${h + 1}: ${pct(p)} on position ${best + 1}`;
        if (l === layer && h === head) td.classList.add('current');
        td.addEventListener('click', () => {
          layer = l;
          head = h;
          layerSel.value = String(l);
          headSel.value = String(h);
          drawAttention();
        });
        tr.append(td);
      }
      table.append(tr);
    }
    box.append(table);
  }
  layerSel.addEventListener('change', () => {
    layer = Number(layerSel.value);
    drawAttention();
  });
  headSel.addEventListener('change', () => {
    head = Number(headSel.value);
    drawAttention();
  });
  drawAttention();

  // ---------------------------------------------------------------- (2) the logit lens
  const lens = $('lens') as HTMLTableElement;
  const k = D.topk;
  const head0 = el('tr');
  head0.append(el('th', 'next token after →'));
  D.tokens.forEach((t) => head0.append(el('th', show(t), 'postok')));
  lens.append(head0);
  // the rows from the last layer (the model's own output) down to the embeddings, as the lens is usually drawn
  for (let r = D.lens.length - 1; r >= 0; r--) {
    const row = D.lens[r]!;
    const tr = el('tr');
    tr.append(el('th', row.label));
    for (let t = 0; t < T; t++) {
      const id = row.ids[t * k]!,
        p = row.probs[t * k]!;
      const td = el('td', name(id));
      td.style.background = shade(p);
      td.style.color = ink(p);
      if (t + 1 < T && id === D.ids[t + 1]) td.classList.add('hit');
      const alts: string[] = [];
      for (let j = 0; j < k; j++) alts.push(`${name(row.ids[t * k + j]!)}  ${pct(row.probs[t * k + j]!)}`);
      td.title = `${row.label}, after ${JSON.stringify(show(D.tokens[t]!))}:\n${alts.join('\n')}`;
      tr.append(td);
    }
    lens.append(tr);
  }

  // ---------------------------------------------------------------- (3) the next-token distribution
  // ids by logit, largest first, lowest id first among equals: every sampler setting keeps a prefix of this order
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[i]!);
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i]! - max);
  const tempIn = $('temperature') as HTMLInputElement,
    topKIn = $('top-k') as HTMLInputElement,
    topPIn = $('top-p') as HTMLInputElement;
  tempIn.value = String(D.sampling.temperature);
  topKIn.value = String(D.sampling.topK);
  topPIn.value = String(D.sampling.topP);
  /** What sampling keeps: the kept prefix of `order` and each kept token's renormalised probability. */
  function kept(temperature: number, topK: number, topP: number): { n: number; probs: number[] } {
    if (!(temperature > 0)) return { n: 1, probs: [1] }; // greedy: the argmax alone
    const thr = topK > 0 && topK < V ? logits[order[topK - 1]!]! : -Infinity;
    let n = 0,
      sum = 0;
    const w: number[] = [];
    for (const id of order) {
      if (logits[id]! < thr) break;
      const x = Math.exp((logits[id]! - max) / temperature);
      w.push(x);
      sum += x;
      n++;
    }
    if (topP < 1) {
      // the largest weights while the mass before each is < topP of the total
      let before = 0,
        m = 0;
      while (m < n && before < topP * sum) before += w[m++]!;
      n = Math.max(1, m);
      sum = 0;
      for (let i = 0; i < n; i++) sum += w[i]!;
    }
    return { n, probs: w.slice(0, n).map((x) => x / sum) };
  }
  const dist = $('dist') as HTMLTableElement;
  const SHOWN = 20;
  function drawDist(): void {
    const temperature = Number(tempIn.value),
      topK = Math.max(0, Math.floor(Number(topKIn.value) || 0)),
      topP = Math.min(1, Math.max(0, Number(topPIn.value)));
    $('temperature-value').textContent = temperature.toFixed(2);
    $('top-p-value').textContent = topP.toFixed(2);
    const { n, probs } = kept(temperature, topK, topP);
    dist.replaceChildren();
    const hr = el('tr');
    for (const h of ['#', 'token', 'model (T = 1)', 'after the settings', '']) hr.append(el('th', h));
    dist.append(hr);
    for (let r = 0; r < Math.min(SHOWN, V); r++) {
      const id = order[r]!;
      const p0 = Math.exp(logits[id]! - max) / z;
      const tr = el('tr', undefined, r < n ? 'kept' : 'dropped');
      tr.dataset['id'] = String(id);
      const bar = el('div', undefined, 'bar');
      bar.style.width = `${r < n ? (probs[r]! * 100).toFixed(2) : 0}%`;
      const barCell = el('td', undefined, 'barcell');
      barCell.append(bar);
      tr.append(el('td', String(r + 1)), el('td', name(id), 'tokcell'), el('td', pct(p0)));
      tr.append(el('td', r < n ? pct(probs[r]!) : 'dropped'), barCell);
      dist.append(tr);
    }
    $('dist-note').textContent =
      `${n} of ${V} tokens kept${n > SHOWN ? ` (the first ${SHOWN} shown)` : ''}; ` +
      (temperature > 0
        ? `they hold ${pct(mass(n))} of the model's probability.`
        : 'temperature 0 is greedy: the most likely token alone.');
  }
  /** The model's probability (T = 1) of the first n tokens of `order`. */
  function mass(n: number): number {
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(logits[order[i]!]! - max) / z;
    return s;
  }
  for (const i of [tempIn, topKIn, topPIn]) i.addEventListener('input', drawDist);
  drawDist();
}
