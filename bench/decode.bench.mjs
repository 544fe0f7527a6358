// Decode benchmark: batch 1, float32 (fused q/k/v and gate/up: fuseModel, as `llmts generate` decodes) / q8 / bf16
// weights (src/model/quantize.ts), at llama2.c's stories15M and stories110M shapes (random-initialised Llama-family models; the forward's speed does not depend on the weights'
// values), next to llama2.c's figures from ../shared/design/ANCHORS.md (run.c, OpenMP, float32; bench/anchors.mjs: C
// is not run here). A run.c figure is divided only when it was measured on this processor model with the same threads
// and top-p on random weights; else it is printed as "measured on <processor>" with ratio null. Two rows per model
// and weight storage (--modes):
//   llamacpp llama.cpp itself on the same weights (bench/peers/llamacpp.mjs): the model is written as the GGUF file
//            `llmts export --format gguf` writes (f32 → F32, q8 → Q8_0, q4k → Q4_K with a Q8_0 head, the blocks
//            llm.ts's q4k runs; bf16 has no row), node-llama-cpp's prebuilt
//            CPU binary decodes it in its own process on the same threads, greedy, from the first 64 ids of the
//            prompt, --tokens tokens; llm.ts decodes the same ids greedily; the two alternate --reps times and each
//            side's best is kept. ratio = llm.ts / llama.cpp, for decode and prefill. case: "stories15M q8 llamacpp".
//   runc     the row compared to llama2.c: run.c's run. The prompt is the BOS token alone, 256 tokens are generated
//            (positions 0..255) with temperature 1 and top-p --top-p, and tok/s counts the tokens after the first
//            over the time after the first, as run.c does (it starts its clock after the first forward).
//            --top-p 1.0 (the default): the same work as run.c -p 1.0 (no nucleus: both sample the full
//            distribution), so the row compares the engines. --top-p 0.9 (run.c's default): on random weights top-p
//            keeps ~28,000 of 32,000 tokens and run.c qsorts ~30k candidates per token (5–7 ms), so that row mostly
//            compares the samplers. case: "stories15M q8", mode: "runc".
//   prompt   long-context decode + prefill, a second figure not comparable to run.c's: a 512-token prompt (--prompt),
//            then --tokens tokens at positions 512+ with the same sampling. Reports time to first token (prefill of
//            the prompt + the first sample), prefill tok/s and decode tok/s after the first token. No run.c ratio
//            (run.c has no figure for this work). case: "stories15M q8 prompt512", mode: "prompt".
// Each row also reports forward_tok_s: the model alone (KV-cached forward steps at the same positions, the logits
// read back, no sampler), so tok_s / forward_tok_s says what the sampler and the engine cost per token.
// (run.c -n 256 runs 256 forwards from BOS, generating 255 tokens; here 256 tokens: the same positions, plus one.)
// Caveat: a random model's next-token distribution is nearly flat, so top-p 0.9 keeps ~28,000 of 32,000 tokens; a
// trained model's is peaked. With --top-p 0.9 the sampler's cost is measured on the flat (worst) case here (the
// Sapphire Rapids run.c figures of ANCHORS.md are on trained weights: never divided here). Sampling runs on the backend
// (the `sample` kernel, src/generate/device_sample.ts) since no penalty or top alternatives are asked.
// Without the llamacpp mode, llama.cpp's figures of ANCHORS.md are printed for context, never divided.
// bench/llamacpp.mjs prints the llama.cpp rows alone as one table (f32 / q8 × both models).
// usage: node bench/decode.bench.mjs [--json] [--cases stories15M,stories110M] [--modes llamacpp,runc,prompt] [--prompt 512]
//          [--tokens N] [--runc-tokens 256] [--top-p 1.0] [--backend auto|ref|wasm] [--threads N] [--batch B]
//          [--weights f32,q8,q4k,bf16] [--reps 3] [--no-peer] [--help]
// --top-p P: 0 < P ≤ 1, the nucleus of every row (default 1.0: no top-p, run.c -p 1.0's work; 0.9: run.c's default).
// --help, -h: print this and run nothing.
// Each row runs the same generate reps + 1 times in one process: tok_s is the median of the last reps (steady
// state, as a chat server or a long session runs); cold_tok_s is the first run of a fresh process, while V8 is
// still optimising the JavaScript and WebAssembly code (what a one-off `llmts generate` of 256 tokens sees). run.c is
// compiled ahead of time: its first run is its steady state.
// --json: one JSON line per row: bench, case, mode, weights, tok_s, tok_s_runs, cold_tok_s, forward_tok_s, gflop_s
// (2 FLOPs per weight + attention, at the mean decoded position), pct_peak (of the sgemm peak; null off the processor
// it was measured on), weight_gb_s, top_p, peer, peer_tok_s, peer_range, peer_processor, ratio (llama2.c; null when
// not comparable), llamacpp_anchors, tfjs_peer, tfjs_tok_s, ratio_vs_tfjs (runc rows), ...; first a machine line.
// TensorFlow.js (bench/peers/tfjs-llama-decode.mjs, float32) decodes the same model in the same command: wasm (its
// best; the full run.c run) and cpu (stories15M only, 32 tokens). --no-peer skips it.
// --weights: the weight storages to run side by side (default all four). For q8/q4k/bf16 each row also reports the
// quality cost on this (random) model: the relative logits error vs float32 over a 64-token prefix (‖Δ‖/‖logits‖).
// The quality on trained-like weights and real text is measured in test/quantize.test.ts (fixture models).
// --batch B (prompt mode) also decodes B copies of the prompt as one batch and reports the aggregate tokens/s.
import { compareToAnchor, anchorsFor, fmtAnchorValue, processorName } from './anchors.mjs';
import { exitIfHelp, NO_SGEMM_PEAK, printMachine, processor, sgemmPeak, usageError } from './machine.mjs';

exitIfHelp(import.meta.url);
/** The GGUF type llama.cpp's row of each weight storage reads. @type {Record<string, 'f32' | 'q8_0' | 'q4_k'>} */
const GGUF_OF = { f32: 'f32', q8: 'q8_0', q4k: 'q4_k' };
const argv = process.argv.slice(2);
/** The value after flag k, else d. @template {string | number | undefined} D @param {string} k @param {D} d @returns {string | D} */
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
const weightKinds = opt('--weights', 'f32,q8,q4k,bf16').split(',');
const modes = opt('--modes', 'llamacpp,runc,prompt').split(',');
const runcTokens = Number(opt('--runc-tokens', 256));
const reps = Math.max(1, Number(opt('--reps', 3)));
const topP = Number(opt('--top-p', 1));
if (!(topP > 0 && topP <= 1)) usageError(`--top-p: expected 0 < P ≤ 1, got ${opt('--top-p', '')}`);
for (const m of modes)
  if (!['llamacpp', 'runc', 'prompt'].includes(m)) usageError(`--modes: unknown ${m} (llamacpp, runc, prompt)`);
for (const w of weightKinds)
  if (!['f32', 'q8', 'q4k', 'bf16'].includes(w)) usageError(`--weights: unknown ${w} (f32, q8, q4k, bf16)`);

const noPeer = argv.includes('--no-peer');

const { spawnSync } = await import('node:child_process');
const path = await import('node:path');
const { fileURLToPath } = await import('node:url');
const here = path.dirname(fileURLToPath(import.meta.url));
const { initBackend } = await import('../dist/backend/registry.js');
const { initModel } = await import('../dist/model/init.js');
const { generate } = await import('../dist/generate/engine.js');
const { Rng } = await import('../dist/util/rng.js');
const { fuseModel, quantizeModel, dequantizeModel } = await import('../dist/model/quantize.js');
const { noGrad, tidy } = await import('../dist/tensor/tensor.js');
const { compareWithLlamaCpp, writeGgufForPeer } = await import('./peers/llamacpp.mjs');
const backend = await initBackend(
  /** @type {import('../dist/backend/registry.js').BackendName | 'auto'} */ (backendName),
  threads ? { threads: Number(threads) } : {},
);
const nThreads = /** @type {{ threads?: number }} */ (backend).threads ?? 1;
printMachine('decode', nThreads, json);
const cpu = processor();
const sgemm = sgemmPeak(nThreads);
/** The run.c figure the runc rows are held to: same work (top-p 1.0) or run.c's default (0.9) on random weights. */
const runcQuery = { peer: 'run.c', threads: nThreads, top_p: topP, weights: 'f32', model: 'random' };
const runcLabel =
  topP === 1
    ? 'run.c -p 1.0, same sampler work'
    : topP === 0.9
      ? "run.c default top-p 0.9: mostly the samplers' cost on random weights"
      : `top-p ${topP}: no run.c figure at this top-p`;

// llama2.c shapes (window 1024, so the 512-token prompt fits) and the prompt mode's token count
const { STORIES, storiesConfig: config } = await import('./stories.mjs');
/**
 * A stories shape with the prompt mode's token count, and the TensorFlow.js runs once made.
 * @typedef {{ L: number, C: number, H: number, F: number, V: number, tokens: number, tfjs?: PeerRun[] }} Shape
 * @typedef {{ peer: string, tok_s?: number, error?: string }} PeerRun
 */
/** @type {Record<string, Shape>} */
const SHAPES = {
  stories15M: { ...STORIES.stories15M, tokens: 64 },
  stories110M: { ...STORIES.stories110M, tokens: 24 },
};

if (!json) {
  console.log(
    `backend ${backend.describe()}, batch 1, weights ${weightKinds.join(' / ')}; runc: BOS + ${runcTokens} tokens (T 1, top-p ${topP === 1 ? '1.0' : topP}) against ${runcLabel}; prompt: ${promptLen}-token prompt`,
  );
  if (!sgemm) console.log(`% of sgemm peak omitted: ${NO_SGEMM_PEAK}`);
}
let failed = 0;
for (const name of cases) {
  const s = SHAPES[name];
  if (!s) throw new Error(`unknown case ${name}; known: ${Object.keys(SHAPES).join(', ')}`);
  if (!json && modes.includes('runc') && !modes.includes('llamacpp')) printLlamaCpp(name);
  try {
    await runCase(name, s);
  } catch (e) {
    failed++;
    const row = {
      bench: 'decode',
      case: name,
      backend: backend.name,
      error: String(e instanceof Error ? e.message : e).slice(0, 300),
    };
    console.log(json ? JSON.stringify(row) : `${name}: failed: ${row.error}`);
  }
}
// worker threads of a backend must not keep the script alive (and webgpu's device must be destroyed first: Dawn's
// exit otherwise waits)
backend.dispose();
process.exit(failed ? 1 : 0);

/**
 * TensorFlow.js decoding the same model (bench/peers/tfjs-llama-decode.mjs: float32 weights, its own KV cache as
 * tensors, sampling from the logits read back), run.c's run: BOS and `tokens` tokens. wasm: the full run; cpu (~10
 * tok/s at 15M): 32 tokens, and only at stories15M.
 */
function tfjsPeers(/** @type {string} */ name, /** @type {Shape} */ s) {
  if (noPeer) return [];
  /** @type {PeerRun[]} */
  const out = [];
  /** @type {[string, number][]} */
  const runs = [
    ['wasm', runcTokens],
    ...(name === 'stories15M' ? /** @type {[string, number][]} */ ([['cpu', 32]]) : []),
  ];
  for (const [b, tokens] of runs) {
    const r = spawnSync(
      process.execPath,
      [path.join(here, 'peers/tfjs-llama-decode.mjs'), b, s.L, s.C, s.H, s.F, s.V, tokens].map(String),
      { encoding: 'utf8', timeout: 600_000 },
    );
    const line = (r.stdout ?? '')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop();
    out.push(
      line
        ? JSON.parse(line)
        : {
            peer: `tfjs-${b}`,
            error: (
              (r.stderr || '')
                .split('\n')
                .filter((l) => /Error/.test(l))
                .pop() ?? 'failed'
            ).slice(0, 200),
          },
    );
  }
  return out;
}

/** FLOPs of one decode step at position pos: 2 per weight of every linear (head included) + attention's 4·L·C·(pos + 1). */
function flopsPerToken(/** @type {Shape} */ s, /** @type {number} */ pos) {
  return 2 * (s.L * (4 * s.C * s.C + 3 * s.C * s.F) + s.V * s.C) + 4 * s.L * s.C * (pos + 1);
}

/**
 * A tensor's elements, then the tensor freed: an asynchronous read, as a GPU backend (webgpu) has no dataSync.
 * @param {import('../dist/tensor/tensor.js').Tensor} t
 */
async function readFree(t) {
  const d = await t.data();
  t.dispose();
  return d;
}

async function runCase(/** @type {string} */ name, /** @type {Shape} */ s) {
  const rng = new Rng(1);
  s.tfjs = modes.includes('runc') ? tfjsPeers(name, s) : [];
  const model = initModel(config(s), rng, { backend });
  const prompt = Array.from({ length: promptLen }, () => 3 + rng.int(s.V - 3));
  const tokens = Number(opt('--tokens', s.tokens));
  // float32 logits of a 64-token prefix: the reference for the quantised variants' error
  const probe = Int32Array.from(prompt.slice(0, 64));
  const logitsOf = () => readFree(noGrad(() => tidy(() => model.forward(probe, 1, probe.length))));
  const ref = await logitsOf();
  // llama.cpp's files, written from the float32 weights before any quantisation
  const fs = await import('node:fs');
  const os = await import('node:os');
  const tmp = modes.includes('llamacpp') ? fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-decode-gguf-')) : '';
  /** @type {Map<string, string>} */
  const ggufs = new Map();
  try {
    for (const kind of modes.includes('llamacpp') ? weightKinds.filter((k) => k in GGUF_OF) : []) {
      const file = path.join(tmp, `${name}-${kind}.gguf`);
      await writeGgufForPeer(model, file, GGUF_OF[kind]);
      ggufs.set(kind, file);
    }
    await runKinds(name, s, model, prompt, tokens, ref, logitsOf, ggufs);
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  for (const t of model.params.values()) t.dispose();
}

/**
 * Every weight kind and mode of one case.
 * @param {string} name @param {Shape} s @param {import('../dist/model/model.js').CausalLM} model @param {number[]} prompt
 * @param {number} tokens @param {ArrayLike<number>} ref @param {() => Promise<ArrayLike<number>>} logitsOf
 * @param {Map<string, string>} ggufs
 */
async function runKinds(name, s, model, prompt, tokens, ref, logitsOf, ggufs) {
  for (const kind of weightKinds) {
    /** @type {Record<string, number>} */
    let quality = {};
    if (kind !== 'f32') {
      const rep = await quantizeModel(model, /** @type {'q8' | 'q4k' | 'bf16'} */ (kind));
      const got = await logitsOf();
      let d = 0,
        n = 0;
      for (let i = 0; i < ref.length; i++) (d += (got[i] - ref[i]) ** 2), (n += ref[i] ** 2);
      quality = {
        logits_rel_err: +Math.sqrt(d / n).toExponential(2),
        weight_mb: +(rep.bytes / 2 ** 20).toFixed(1),
        f32_weight_mb: +(rep.floatBytes / 2 ** 20).toFixed(1),
      };
    } else await fuseModel(model); // as `llmts generate` decodes float32: q/k/v and gate/up fused (same logits)
    try {
      for (const mode of modes)
        if (mode === 'llamacpp') await runLlamaCpp(name, model, prompt.slice(0, 64), tokens, kind, ggufs.get(kind));
        else if (mode === 'runc') await runVariant(name, s, model, [1], runcTokens, kind, quality, mode);
        else await runVariant(name, s, model, prompt, tokens, kind, quality, mode);
    } finally {
      dequantizeModel(model);
    }
  }
}

/**
 * The llamacpp row: llama.cpp on the GGUF of the same weights against llm.ts, greedy, alternating.
 * @param {string} name @param {import('../dist/model/model.js').CausalLM} model @param {number[]} prompt
 * @param {number} tokens @param {string} kind @param {string | undefined} file
 */
async function runLlamaCpp(name, model, prompt, tokens, kind, file) {
  /** @type {Record<string, any>} */
  const row = {
    bench: 'decode',
    case: `${name}${kind === 'f32' ? '' : ` ${kind}`} llamacpp`,
    mode: 'llamacpp',
    weights: kind,
    backend: backend.name,
    prompt: prompt.length,
    tokens,
  };
  if (!file) row.error = `no GGUF type for ${kind} weights (llama.cpp rows: f32, q8, q4k)`;
  else
    try {
      Object.assign(row, { gguf: GGUF_OF[kind], threads: nThreads });
      Object.assign(row, await compareWithLlamaCpp(model, file, prompt, tokens, nThreads, reps));
    } catch (e) {
      row.error = String(e instanceof Error ? e.message : e).slice(0, 300);
    }
  if (json) console.log(JSON.stringify(row));
  else
    console.log(
      `${name.padEnd(12)} ${kind.padEnd(4)} ${`llamacpp (greedy, ${prompt.length} + ${tokens})`.padEnd(22)} ` +
        (row.error
          ? `no row: ${row.error}`
          : `decode ${row.decode_tok_s} tok/s vs llama.cpp ${row.llamacpp_decode_tok_s} (${row.gguf}, ${nThreads} threads) → ×${row.decode_ratio}` +
            ` | prefill ${row.prefill_tok_s} vs ${row.llamacpp_prefill_tok_s} tok/s → ×${row.prefill_ratio}` +
            ` | runs ${row.decode_runs.join(', ')} / ${row.llamacpp_decode_runs.join(', ')} | first ${row.ids_agree}/${tokens} greedy ids agree`),
    );
}

/**
 * @param {string} name @param {Shape} s @param {import('../dist/model/model.js').CausalLM} model @param {number[]} prompt
 * @param {number} tokens @param {string} kind @param {Record<string, number>} quality @param {string} mode
 */
async function runVariant(name, s, model, prompt, tokens, kind, quality, mode) {
  // The same generate `reps` + 1 times: the first run is the cold one (a fresh process: JavaScript and WebAssembly
  // code still being optimised by V8, memory being grown; reported as cold_tok_s), tok_s is the median of the rest.
  const once = async () => {
    const r = await generate(model, [prompt], { maxTokens: tokens, temperature: 1, topP, seed: 1 });
    const c = r.choices[0];
    const decodeMs = c.timings.prefill_ms + c.timings.decode_ms - c.timings.ttft_ms; // after the first token
    return { c, tokS: (c.ids.length - 1) / (decodeMs / 1000) };
  };
  const cold = await once();
  const runs = [];
  for (let i = 0; i < reps; i++) runs.push(await once());
  runs.sort((a, b) => a.tokS - b.tokS);
  const { c, tokS } = runs[runs.length >> 1];
  const n = c.ids.length;
  const P = prompt.length;
  // positions P .. P + n − 1 were decoded: the mean FLOPs of those steps, and the weight bytes each step reads
  const flops = flopsPerToken(s, P + (n - 1) / 2);
  const gflopS = (flops * tokS) / 1e9;
  // q8: 32 int8 + a float32 scale per block; q4k: 152 bytes per 256 (its head is q8: counted as q4k here)
  const bytesPerWeight = kind === 'q8' ? 36 / 32 : kind === 'q4k' ? 152 / 256 : kind === 'bf16' ? 2 : 4;
  const weightGBs = ((s.L * (4 * s.C * s.C + 3 * s.C * s.F) + s.V * s.C) * bytesPerWeight * tokS) / 1e9;
  const best = (s.tfjs ?? [])
    .filter((q) => q.tok_s)
    .reduce((/** @type {PeerRun | null} */ a, q) => (!a || (q.tok_s ?? 0) > (a.tok_s ?? 0) ? q : a), null);
  // run.c on this processor model, same threads and top-p, random weights: a ratio; else "measured on …", no ratio
  const runc = mode === 'runc' ? compareToAnchor(`decode-${name}`, cpu.key, runcQuery, tokS) : null;
  /** @type {Record<string, any>} one JSON line of results */
  const row = {
    bench: 'decode',
    case: `${name}${kind === 'f32' ? '' : ' ' + kind}${mode === 'runc' ? '' : ` prompt${P}`}`,
    mode,
    weights: kind,
    backend: backend.name,
    params: model.numParams(),
    prompt: P,
    tokens: n,
    tok_s: +tokS.toFixed(2),
    tok_s_runs: runs.map((r) => +r.tokS.toFixed(1)),
    cold_tok_s: +cold.tokS.toFixed(2),
    ttft_ms: +c.timings.ttft_ms.toFixed(1),
    ...(mode === 'prompt' ? { prefill_tok_s: +(P / (c.timings.prefill_ms / 1000)).toFixed(1) } : {}),
    top_p: topP,
    peer: runc?.anchor ? `llama2.c ${runcLabel}, ${runc.anchor.conditions.threads} threads` : null,
    peer_about: runc?.anchor?.about ?? null,
    peer_tok_s: runc?.anchor?.value ?? null,
    peer_range: runc?.anchor?.range ?? null,
    peer_processor: runc?.processor ?? null,
    ratio: runc?.ratio == null ? null : +runc.ratio.toFixed(3),
    gflop_s: +gflopS.toFixed(2),
    pct_peak: sgemm ? +((100 * gflopS) / sgemm.gflop_s).toFixed(2) : null,
    weight_gb_s: +weightGBs.toFixed(2),
    ...(mode === 'runc' && best
      ? { tfjs_peer: best.peer, tfjs_tok_s: best.tok_s, ratio_vs_tfjs: +(tokS / (best.tok_s ?? NaN)).toFixed(2) }
      : {}),
    ...(mode === 'runc' && s.tfjs?.length ? { tfjs_peers: s.tfjs } : {}),
    ...(mode === 'runc' ? { llamacpp_anchors: llamaCppContext(name) } : {}),
    ...quality,
  };
  // the model alone: KV-cached forward steps at the same positions (after the prompt), the logits read back, no sampler
  {
    const cache = model.newCache(1);
    await readFree(noGrad(() => tidy(() => model.forward(Int32Array.from(prompt), 1, P, { cache, lastOnly: true }))));
    /** @type {number[]} */
    const ts = [];
    const steps = Math.min(tokens, 1024 - P - 1);
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await readFree(
        noGrad(() => tidy(() => model.forward(Int32Array.of(c.ids[i % n] ?? 3), 1, 1, { cache, lastOnly: true }))),
      );
      ts.push(performance.now() - t0);
    }
    cache.reset();
    // mean, as tok_s is (a median would flatter the long-context end of the runc run)
    row.forward_tok_s = +(1000 / (ts.reduce((a, b) => a + b, 0) / ts.length)).toFixed(2);
    // our model alone against run.c's whole run: only where run.c's sampler is cheap (-p 1.0), else null
    row.forward_ratio =
      runc?.comparable && runc.anchor && topP === 1 ? +(row.forward_tok_s / runc.anchor.value).toFixed(3) : null;
  }
  if (batch > 1 && mode === 'prompt') {
    const rb = await generate(
      model,
      Array.from({ length: batch }, () => prompt),
      { maxTokens: tokens, temperature: 1, topP, seed: 1 },
    );
    const cb = rb.choices[0];
    const ms = cb.timings.prefill_ms + cb.timings.decode_ms - cb.timings.ttft_ms;
    const nb = rb.choices.reduce((a, c) => a + c.ids.length - 1, 0);
    row.batch = batch;
    row.batch_tok_s = +(nb / (ms / 1000)).toFixed(2);
  }
  if (json) console.log(JSON.stringify(row));
  else
    console.log(
      `${name.padEnd(12)} ${kind.padEnd(4)} ${mode === 'runc' ? `runc (BOS, ${n} tokens)`.padEnd(22) : `prompt ${P}, ${n} tokens`.padEnd(22)} ` +
        `${(row.params / 1e6).toFixed(1)}M params: decode ${row.tok_s} tok/s (median of ${reps}; cold first run ${row.cold_tok_s})` +
        ` (${row.gflop_s} GFLOP/s${sgemm ? `, ${row.pct_peak}% of ${sgemm.gflop_s} sgemm peak` : ''}; weights read at ${row.weight_gb_s} GB/s)` +
        (mode === 'runc'
          ? ` | ${runcLabel}: ${runc?.text}`
          : ` | time to first token ${row.ttft_ms} ms (prefill ${row.prefill_tok_s} tok/s)`) +
        (row.tfjs_peer
          ? ` | TensorFlow.js ${row.tfjs_peer.replace('tfjs-', '')} ${row.tfjs_tok_s} tok/s (f32) → ×${row.ratio_vs_tfjs}` +
            ((s.tfjs?.length ?? 0) > 1
              ? ` (${(s.tfjs ?? [])
                  .filter((q) => q !== best)
                  .map((q) => `${q.peer} ${q.tok_s ?? 'failed'}`)
                  .join(', ')})`
              : '')
          : '') +
        ` | forward only ${row.forward_tok_s} tok/s` +
        (row.logits_rel_err !== undefined
          ? ` | logits rel. err ${row.logits_rel_err}, weights ${row.weight_mb} MiB (f32 ${row.f32_weight_mb})`
          : '') +
        (row.batch ? ` | batch ${row.batch}: ${row.batch_tok_s} tok/s in all` : ''),
    );
}

/**
 * llama.cpp's figures for this model from ANCHORS.md, for context only (greedy, GGUF; the llamacpp mode runs the real
 * peer), never divided: [{ weights, threads, tok_s, processor, about }], this processor's first.
 * @param {string} name
 */
function llamaCppContext(name) {
  return anchorsFor(`decode-${name}`, { peer: 'llama.cpp' })
    .sort((a, b) => Number(b.processor === cpu.key) - Number(a.processor === cpu.key))
    .map((a) => ({
      weights: a.conditions.weights,
      threads: a.conditions.threads,
      tok_s: a.value,
      processor: processorName(a.processor),
      about: a.about,
    }));
}

/** The llama.cpp context line printed once per case: "llama.cpp Q8_0 800 tok/s, F32 373 (2 threads) measured on …". */
function printLlamaCpp(/** @type {string} */ name) {
  /** @type {Map<string, string[]>} */
  const byWhere = new Map();
  for (const a of anchorsFor(`decode-${name}`, { peer: 'llama.cpp', threads: nThreads })) {
    const where = `${processorName(a.processor)}, ${a.about}`;
    byWhere.set(where, [
      ...(byWhere.get(where) ?? []),
      `${a.conditions.weights} ${fmtAnchorValue(a).replace('llama.cpp ', '')}`,
    ]);
  }
  const parts = [...byWhere].map(([where, figs]) => `${figs.join(', ')} measured on ${where}`);
  console.log(
    `${name}: llama.cpp (not run: --modes llamacpp runs it; ANCHORS.md context, no ratio), ${nThreads} thread(s): ${parts.join('; ') || 'no figure'}`,
  );
}
