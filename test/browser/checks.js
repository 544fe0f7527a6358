// The checks of the browser test (test/browser.test.ts), run by page.js on the page's main thread or, with
// ?worker=1, by checks_worker.js in a module Web Worker (the wasm backend then waits with Atomics.wait, and its own
// workers are nested). Plain JavaScript: the browser loads it as is.
import {
  initBackend,
  getBackend,
  tensor,
  tidy,
  ops,
  modelFromHf,
  decodeSafetensors,
  generate,
  Rng,
  trainBpe,
  toTokenizerJson,
  tokenizerFromJson,
  chatmlTemplate,
  jinjaTemplate,
  Conversation,
} from '/dist/browser.js';

function relErr(a, b) {
  if (a.length !== b.length) return Infinity;
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12);
}

function randn(rng, n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Run `f(...inputs)` on wasm and on ref with the same random inputs: relative error, and whether wasm split it. */
async function compare(name, shapes, f, rng) {
  const wasm = getBackend('wasm'),
    ref = getBackend('ref');
  const data = shapes.map((s) =>
    randn(
      rng,
      s.reduce((a, b) => a * b, 1),
    ),
  );
  const run = async (backend) => {
    const y = tidy(() => f(...data.map((d, i) => tensor(d, shapes[i], { backend }))));
    const v = await y.data();
    y.dispose();
    return v;
  };
  const before = wasm.parallelDispatches;
  const [a, b] = [await run(wasm), await run(ref)];
  return { name, relErr: relErr(a, b), split: wasm.parallelDispatches > before };
}

/** The checks; `p`: { fixture, threads (undefined: the backend's default), tokens, quick }. */
export async function runChecks(p) {
  const { fixture, threads, tokens: newTokens, quick } = p;
  const out = {
    done: false,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    inWorker: typeof window === 'undefined',
  };
  const t0 = performance.now();
  const wasm = await initBackend('wasm', threads === undefined ? {} : { threads });
  out.describe = wasm.describe();
  out.threads = wasm.threads;
  out.hardwareConcurrency = navigator.hardwareConcurrency;
  if (quick) return out;

  // kernels against the ref backend (sizes big enough to be split across the threads)
  const rng = new Rng(7);
  out.kernels = [
    // big enough that the page's main thread, done with its share, outspins MAIN_SPIN while a worker finishes
    await compare(
      'matmul',
      [
        [256, 512],
        [512, 384],
      ],
      (a, b) => ops.matmul(a, b),
      rng,
    ),
    await compare(
      'attention',
      [
        [2, 48, 4, 32],
        [2, 48, 2, 32],
        [2, 48, 2, 32],
      ],
      (q_, k, v) => ops.attention(q_, k, v),
      rng,
    ),
    await compare('layernorm', [[512, 256], [256], [256]], (x, w, b) => ops.layerNorm(x, w, b, 1e-5), rng),
  ];

  // a Hugging Face fixture: logits against transformers' own, then greedy decoding with the KV cache
  const base = `/fixtures/hf/${fixture}`;
  const get = async (f) => {
    const r = await fetch(`${base}/${f}`);
    if (!r.ok) throw new Error(`GET ${base}/${f}: ${r.status}`);
    return r;
  };
  const [config, weights, refLogits, reference] = await Promise.all([
    get('config.json').then((r) => r.json()),
    get('model.safetensors').then((r) => r.arrayBuffer()),
    get('reference_logits.safetensors').then((r) => r.arrayBuffer()),
    get('reference.json').then((r) => r.json()),
  ]);
  const model = modelFromHf(config, new Uint8Array(weights), { backend: wasm, source: base });
  const want = decodeSafetensors(new Uint8Array(refLogits), 'reference_logits.safetensors').tensors;
  const ids = want.get('input_ids');
  const [B, T] = ids.shape;
  const logits = tidy(() => model.forward(Int32Array.from(ids.data), B, T));
  out.logitsShape = logits.shape;
  out.logitsRelErr = relErr(await logits.data(), want.get('logits').data);
  logits.dispose();
  const prompt = reference.greedy_prompt?.[0] ?? Array.from(ids.data.slice(0, 8));
  const res = await generate(model, prompt, { maxTokens: newTokens, temperature: 0, seed: 1 });
  out.prompt = prompt;
  out.generated = res.choices[0].ids;
  out.referenceGreedy = reference.greedy_output?.[0] ?? null;

  // tokenizer core and chat templates, no file access
  const bpe = trainBpe('the cat sat on the mat. the cat ate the rat. '.repeat(20), { vocabSize: 280, pattern: 'gpt2' });
  const tok = tokenizerFromJson(JSON.stringify(toTokenizerJson(bpe)));
  const text = 'the rat sat on the cat';
  out.tokenizer = {
    same: JSON.stringify(tok.encode(text)) === JSON.stringify(bpe.encode(text)),
    roundTrip: tok.decode(tok.encode(text)) === text,
  };
  const msgs = [{ role: 'user', content: 'hi' }];
  const jinja = jinjaTemplate(
    '{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}',
  );
  out.chat = {
    chatml: chatmlTemplate().render(msgs),
    jinja: jinja.render(msgs),
    conversation: typeof Conversation === 'function',
  };

  out.ms = Math.round(performance.now() - t0);
  return out;
}
