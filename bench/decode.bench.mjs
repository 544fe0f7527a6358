// Decode benchmark: batch 1, float32 / q8 / bf16 weights (src/model/quantize.ts), a 512-token prompt, at llama2.c's stories15M and stories110M shapes
// (random-initialised Llama-family models; speed does not depend on the weights' values). Reports time to first
// token (prefill of the prompt + the first sample) and decode tokens/s (the tokens after the first, one KV-cached
// forward each, with temperature 1 / top-p 0.9 sampling as llama2.c's run.c does), next to llama2.c's figures from
// ../shared/design/ANCHORS.md (run.c, OpenMP, 2 threads, measured on this machine: C is not run here).
// usage: node bench/decode.bench.mjs [--json] [--cases stories15M,stories110M] [--prompt 512] [--tokens N]
//                                    [--backend auto|ref|wasm] [--threads N] [--batch B] [--weights f32,q8,bf16]
// --weights: the weight storages to run side by side (default all three). For q8/bf16 each row also reports the
// quality cost on this (random) model: the relative logits error vs float32 over the prompt (‖Δ‖/‖logits‖).
// The quality on trained-like weights and real text is measured in test/quantize.test.ts (fixture models).
// --batch B also decodes B copies of the prompt as one batch and reports the aggregate tokens/s (batch_tok_s).
const argv = process.argv.slice(2);
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const cases = opt('--cases', 'stories15M,stories110M').split(',');
const promptLen = Number(opt('--prompt', 512));
const threads = opt('--threads', undefined);
const backendName = opt('--backend', 'auto');
const batch = Number(opt('--batch', 1));
const weightKinds = opt('--weights', 'f32,q8,bf16').split(',');
for (const w of weightKinds) if (!['f32', 'q8', 'bf16'].includes(w)) throw new Error(`--weights: unknown ${w} (f32, q8, bf16)`);

const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { generate } = await import('../dist/generate/engine.js');
const { Rng } = await import('../dist/util/rng.js');
const { quantizeModel, dequantizeModel } = await import('../dist/model/quantize.js');
const { noGrad, tidy } = await import('../dist/tensor/tensor.js');
const backend = await initBackend(backendName, threads ? { threads: Number(threads) } : {});

// llama2.c shapes; stories15M's own window is 256, here 1024 so the 512-token prompt fits (as in the issue).
const SHAPES = {
  stories15M: { L: 6, C: 288, H: 6, F: 768, V: 32000, peer: 214, tokens: 64 },
  stories110M: { L: 12, C: 768, H: 12, F: 2048, V: 32000, peer: 41.7, tokens: 24 },
};

function config(s) {
  return {
    family: 'llama', vocabSize: s.V, hiddenSize: s.C, numLayers: s.L, numHeads: s.H, numKvHeads: s.H, headDim: s.C / s.H,
    intermediateSize: s.F, maxPositions: 1024, normEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true,
    attentionBias: false, attentionOutBias: false, mlpBias: false, dropout: 0, bosTokenId: 1, eosTokenId: 2, padTokenId: null,
  };
}

if (!json) console.log(`backend ${backend.describe()}, prompt ${promptLen} tokens, batch 1, weights ${weightKinds.join(' / ')}`);
let failed = 0;
for (const name of cases) {
  const s = SHAPES[name];
  if (!s) throw new Error(`unknown case ${name}; known: ${Object.keys(SHAPES).join(', ')}`);
  try {
    await runCase(name, s);
  } catch (e) {
    failed++;
    const row = { bench: 'decode', case: name, backend: backend.name, error: String(e?.message ?? e).slice(0, 300) };
    console.log(json ? JSON.stringify(row) : `${name}: failed: ${row.error}`);
  }
}
// worker threads of a backend must not keep the script alive
process.exit(failed ? 1 : 0);

async function runCase(name, s) {
  const rng = new Rng(1);
  const model = initModel(config(s), rng, { backend });
  const prompt = Array.from({ length: promptLen }, () => 3 + rng.int(s.V - 3));
  const tokens = Number(opt('--tokens', s.tokens));
  // float32 logits of a 64-token prefix: the reference for the quantised variants' error
  const probe = Int32Array.from(prompt.slice(0, 64));
  const logitsOf = () => noGrad(() => tidy(() => model.forward(probe, 1, probe.length)).dataSync());
  const ref = logitsOf();
  for (const kind of weightKinds) {
    let quality = {};
    if (kind !== 'f32') {
      const rep = await quantizeModel(model, kind);
      const got = logitsOf();
      let d = 0, n = 0;
      for (let i = 0; i < ref.length; i++) (d += (got[i] - ref[i]) ** 2), (n += ref[i] ** 2);
      quality = { logits_rel_err: +Math.sqrt(d / n).toExponential(2), weight_mb: +(rep.bytes / 2 ** 20).toFixed(1), f32_weight_mb: +(rep.floatBytes / 2 ** 20).toFixed(1) };
    }
    try {
      await runVariant(name, s, model, prompt, tokens, kind, quality);
    } finally {
      dequantizeModel(model);
    }
  }
  for (const t of model.params.values()) t.dispose();
}

async function runVariant(name, s, model, prompt, tokens, kind, quality) {
  // a short warm-up (compiles kernels, fills pools), then the measured run
  await generate(model, [prompt.slice(0, 16)], { maxTokens: 4, seed: 1 });
  const r = await generate(model, [prompt], { maxTokens: tokens, temperature: 1, topP: 0.9, seed: 1 });
  const c = r.choices[0];
  const n = c.ids.length;
  const decodeMs = c.timings.prefill_ms + c.timings.decode_ms - c.timings.ttft_ms; // after the first token
  const tokS = (n - 1) / (decodeMs / 1000);
  const row = {
    bench: 'decode', case: `${name}${kind === 'f32' ? '' : ' ' + kind}`, weights: kind, backend: backend.name, params: model.numParams(), prompt: promptLen, tokens: n,
    tok_s: +tokS.toFixed(2), ttft_ms: +c.timings.ttft_ms.toFixed(1), prefill_tok_s: +(promptLen / (c.timings.prefill_ms / 1000)).toFixed(1),
    peer: 'llama2.c run.c 2 threads (ANCHORS.md)', peer_tok_s: s.peer, ratio: +(tokS / s.peer).toFixed(3), ...quality,
  };
  // the model alone: KV-cached forward steps after the prompt, without the sampler (a random model's flat
  // distribution makes top-p over 32000 tokens cost ~2.5 ms a token in JavaScript; a trained model's does not)
  {
    const cache = model.newCache(1);
    noGrad(() => tidy(() => model.forward(Int32Array.from(prompt), 1, prompt.length, { cache, lastOnly: true }).dataSync()));
    const steps = Math.min(tokens, 1024 - prompt.length - 1), ts = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      noGrad(() => tidy(() => model.forward(Int32Array.of(prompt[i % prompt.length]), 1, 1, { cache, lastOnly: true }).dataSync()));
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    row.forward_tok_s = +(1000 / ts[ts.length >> 1]).toFixed(2);
    row.forward_ratio = +(row.forward_tok_s / s.peer).toFixed(3);
  }
  if (batch > 1) {
    const rb = await generate(model, Array.from({ length: batch }, () => prompt), { maxTokens: tokens, temperature: 1, topP: 0.9, seed: 1 });
    const cb = rb.choices[0];
    const ms = cb.timings.prefill_ms + cb.timings.decode_ms - cb.timings.ttft_ms;
    const nb = rb.choices.reduce((a, c) => a + c.ids.length - 1, 0);
    row.batch = batch;
    row.batch_tok_s = +(nb / (ms / 1000)).toFixed(2);
  }
  if (json) console.log(JSON.stringify(row));
  else
    console.log(
      `${name.padEnd(12)} ${kind.padEnd(4)} ${(row.params / 1e6).toFixed(1)}M params: decode ${row.tok_s} tok/s (${n} tokens), ` +
        `time to first token ${row.ttft_ms} ms (prefill ${row.prefill_tok_s} tok/s) | llama2.c ${s.peer} tok/s → ratio ${row.ratio}` +
        ` | forward only ${row.forward_tok_s} tok/s (ratio ${row.forward_ratio})` +
        (row.logits_rel_err !== undefined ? ` | logits rel. err ${row.logits_rel_err}, weights ${row.weight_mb} MiB (f32 ${row.f32_weight_mb})` : '') +
        (row.batch ? ` | batch ${row.batch}: ${row.batch_tok_s} tok/s in all` : ''),
    );
}
