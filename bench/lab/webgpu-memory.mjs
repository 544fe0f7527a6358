// Device memory of a GPT-2 training step on the webgpu backend, planned without a GPU: the real backend, model and
// step (forward, backward, AdamW, as `npm run bench -- train --backend webgpu` runs them) on a counting WebGPU device
// (src/backend/webgpu/counting_gpu.ts: no memory held, no shader run, every createBuffer counted). For each shape it
// prints the device peak (every buffer: tensors, the pool's idle ones, scratch, uniform and staging) split by what
// holds it at that moment, the backend's own `memory().peak` (live tensors, as asked for), an analytic estimate of
// PyTorch eager fp32 (nanoGPT with SDPA) for the same step, and the H200's 141 GB.
// usage: npm run build:ts && node bench/lab/webgpu-memory.mjs [--cases gpt2,gpt2-b4,tiny,small] [--steps 2] [--json]
//   --cases  gpt2 (B16 T1024, V 50304), gpt2-t512 (B32 T512: the same tokens, to see what scales with T²), gpt2-b4
//            (B4 T64), tiny (B8 T128), small (B64 T256) — the bench's GPU shapes (bench/train_shapes.mjs)
//   --steps  training steps per case (default 2: the second is the steady state, AdamW's moments allocated)
//   --budget BYTES  run with the backend's memoryBudget (the pool is emptied when the next buffer would pass it)
//   --json   one JSON line per case
// The split, at the moment of the device peak (the step's largest total): parameters, their gradients, AdamW's two
// moments (identified by tensor), activations kept for backward (tensors made in the transformer body's forward),
// the head's logits and cross-entropy buffers (made from the LM head on), backward temporaries (gradients in flight),
// size-class rounding of live tensors (./buffer_pool.ts), idle pooled tensor buffers, and the rest (kernel scratch,
// the uniform ring, staging). Everything numeric in the run is zero (no shader runs): only sizes are real.
import { exitIfHelp } from '../machine.mjs';
import { GPU_SHAPES, CPU_SHAPES, gptConfig } from '../train_shapes.mjs';

exitIfHelp(import.meta.url);

const argv = process.argv.slice(2);
/** The value after flag k, else d. @param {string} k @param {string} d @returns {string} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const json = argv.includes('--json');
const steps = Number(opt('--steps', '2'));
const budget = opt('--budget', '');

const { initModel, tidy, backward, AdamW, gradNorm, clipCoefficient, Rng } = await import('../../dist/index.js');
const { createWebGpuBackend } = await import('../../dist/backend/webgpu/backend.js');
const { CountingGpu, H200_BYTES } = await import('../../dist/backend/webgpu/counting_gpu.js');
const { KEEP_PROBS_MAX } = await import('../../dist/tensor/ops_forward.js');

/** @type {Record<string, import('../train_shapes.mjs').Shape>} */
const SHAPES = {
  gpt2: GPU_SHAPES.gpt2,
  'gpt2-t512': { ...GPU_SHAPES.gpt2, B: 32, T: 512 },
  'gpt2-b4': CPU_SHAPES.gpt2,
  tiny: GPU_SHAPES.tiny,
  small: GPU_SHAPES.small,
};
const cases = opt('--cases', 'gpt2,gpt2-t512,gpt2-b4,tiny,small').split(',');
for (const c of cases)
  if (!SHAPES[c]) throw new Error(`--cases: unknown ${c}; known: ${Object.keys(SHAPES).join(', ')}`);

/**
 * PyTorch eager fp32, nanoGPT's GPT (SDPA attention: flash / memory-efficient, no T×T matrix; dropout 0; weight-tied
 * head; `logits, loss = model(x, y)` keeps the logits), AdamW (foreach), grads set to None between steps. Bytes at the
 * step's peak, the start of the head's backward: weights + grads + 2 moments (4·N floats; every grad counted, an upper
 * bound), the activations autograd saves per token and layer — LN1 input and mean/rstd (C + 2), LN1 output (C), qkv
 * (3C, which SDPA's q, k, v view), SDPA output and logsumexp (C + H), its contiguous transpose for c_proj (C), LN2
 * input and mean/rstd (C + 2), LN2 output (C), c_fc output (4C, GELU's input), GELU output (4C): 17C + H + 4 — plus
 * ln_f's input and output (2C), and four B·T·V tensors at once (logits, log_softmax's output, the gradient of each).
 * Not counted: the CUDA context (~0.5 GB), cuBLAS workspace, the caching allocator's rounding and fragmentation.
 */
/** @param {import('../train_shapes.mjs').Shape} s @param {number} N parameters */
function torchEstimate(s, N) {
  const BT = s.B * s.T,
    C = s.C;
  const states = 4 * N * 4;
  const acts = s.L * (17 * C + s.H + 4) * BT * 4 + 2 * C * BT * 4;
  const head = 4 * BT * s.V * 4;
  return { total: states + acts + head, states, acts, head };
}

/** @typedef {Record<string, number | string>} Split bytes by what holds them, and `phase` */
/** @typedef {import('../../dist/backend/webgpu/counting_gpu.js').CountingBuffer} CountingBuffer */

/** One case: the steps on a counting device, the split at the device peak. */
/** @param {string} name @param {import('../train_shapes.mjs').Shape} s */
async function plan(name, s) {
  /** Live tensors' device buffers: gpu buffer → { bytes asked, phase it was made in }. */
  /** @type {Map<unknown, { bytes: number, phase: string }>} */
  const tensors = new Map();
  let phase = 'setup',
    step = 0,
    lastPeak = 0;
  /** Device peak growth by step and phase. @type {Record<string, number>} */
  const growth = {};
  // the model's private lmHead and AdamW's private moments are looked at: untyped here
  /** @type {any} */
  let model = null;
  /** @type {any} */
  let optim = null;
  /** The split at the device peak and at the live tensors' peak (the latest, largest of each). */
  /** @type {Split | null} */
  let split = null;
  /** @type {Split | null} */
  let tensorSplit = null;
  let tensorBest = 0;
  /** @param {any[]} list tensors (or null) @returns {Set<unknown>} their device buffers */
  const idsOf = (list) => new Set(list.filter(Boolean).map((t) => t.buf.gpu));
  const gpu = new CountingGpu({
    onPeak(live) {
      if (!model) return;
      split = classify(live);
      const key = `${step}:${phase}`;
      growth[key] = (growth[key] ?? 0) + gpu.stats.peak - lastPeak;
      lastPeak = gpu.stats.peak;
    },
  });
  /** What holds the device's `live` buffers now. @param {ReadonlySet<CountingBuffer>} live @returns {Split} */
  function classify(live) {
    {
      const params = idsOf([...model.params.values()]);
      const grads = idsOf([...model.params.values()].map((p) => p.grad));
      const moments = idsOf([...(optim?.m.values() ?? []), ...(optim?.v.values() ?? [])]);
      /** @type {Record<string, number>} */
      const out = {
        params: 0,
        grads: 0,
        moments: 0,
        activations: 0,
        head: 0,
        backward: 0,
        other_tensors: 0,
        rounding: 0,
        pool_idle: 0,
        scratch: 0,
        uniform_staging: 0,
      };
      for (const b of live) {
        const t = tensors.get(b);
        if (t) {
          out.rounding += b.size - t.bytes;
          const k = params.has(b)
            ? 'params'
            : grads.has(b)
              ? 'grads'
              : moments.has(b)
                ? 'moments'
                : t.phase === 'forward'
                  ? 'activations'
                  : t.phase === 'head'
                    ? 'head'
                    : t.phase === 'backward'
                      ? 'backward'
                      : 'other_tensors';
          out[k] += t.bytes;
        } else if (b.kind === 'tensor') out.pool_idle += b.size;
        else if (b.kind === 'scratch') out.scratch += b.size;
        else out.uniform_staging += b.size;
      }
      return { phase, ...out };
    }
  }
  const backend = await createWebGpuBackend({ gpu, ...(budget ? { memoryBudget: Number(budget) } : {}) });
  const alloc = backend.alloc.bind(backend),
    free = backend.free.bind(backend);
  backend.alloc = (length, dtype) => {
    const buf = /** @type {import('../../dist/backend/webgpu/core.js').GpuBuf} */ (alloc(length, dtype));
    tensors.set(buf.gpu, { bytes: Math.max(4, length * 4), phase });
    const inUse = backend.memory().inUse;
    if (model && inUse > tensorBest) {
      tensorBest = inUse;
      tensorSplit = classify(gpu.liveBuffers());
    }
    return buf;
  };
  backend.free = (buf) => {
    tensors.delete(/** @type {import('../../dist/backend/webgpu/core.js').GpuBuf} */ (buf).gpu);
    free(buf);
  };
  const rng = new Rng(1);
  model = initModel(gptConfig(s), rng, { backend });
  const head = model.lmHead.bind(model);
  model.lmHead = (/** @type {unknown} */ x) => {
    phase = 'head';
    return head(x);
  };
  optim = new AdamW(model.params, { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1 });
  const ids = Int32Array.from({ length: s.B * s.T }, () => rng.int(s.V));
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    step = i + 1;
    phase = 'forward';
    const loss = tidy(() => {
      const l = model.loss(ids, ids, s.B, s.T);
      phase = 'backward';
      backward(l);
      phase = 'after';
      return l;
    });
    await loss.item();
    loss.dispose();
    phase = 'optimizer';
    const norm = await gradNorm(model.params);
    optim.step({ gradScale: clipCoefficient(norm, 1) });
    optim.zeroGrad();
    await backend.sync();
  }
  const ms = performance.now() - t0;
  const N = model.numParams();
  const mem = backend.memory();
  const st = gpu.stats;
  const res = {
    case: name,
    B: s.B,
    T: s.T,
    L: s.L,
    C: s.C,
    V: s.V,
    params: N,
    device_peak: st.peak,
    device_peak_by_kind: { ...st.peakByKind },
    tensor_peak: mem.peak,
    split,
    tensor_split: tensorSplit,
    peak_growth: growth,
    pooled_after: mem.pooled,
    buffers_created: st.created,
    keeps_probs: s.B * s.H * s.T * s.T <= KEEP_PROBS_MAX,
    torch_estimate: torchEstimate(s, N),
    h200_bytes: H200_BYTES,
    plan_ms: Math.round(ms),
  };
  for (const t of model.params.values()) t.dispose();
  optim.dispose();
  backend.dispose();
  return res;
}

const GB = (/** @type {number} */ b) => `${(b / 1e9).toFixed(3)} GB`;
for (const name of cases) {
  const r = await plan(name, SHAPES[name]);
  if (json) {
    console.log(JSON.stringify(r));
    continue;
  }
  const t = r.torch_estimate;
  console.log(
    `${name}: ${r.params.toLocaleString()} params, L${r.L} C${r.C} V${r.V}, B${r.B} T${r.T} (${r.buffers_created} buffers made, planned in ${r.plan_ms} ms)`,
  );
  console.log(
    `  device peak ${GB(r.device_peak)} (${((100 * r.device_peak) / r.h200_bytes).toFixed(1)} % of an H200's 141 GB); live tensors' peak (memory().peak) ${GB(r.tensor_peak)}`,
  );
  /** @type {[string, Split | null][]} */
  const splits = [
    ['the device peak', r.split],
    ["the live tensors' peak", r.tensor_split],
  ];
  for (const [what, sp] of splits) {
    if (!sp) continue;
    const parts = Object.entries(sp)
      .filter(([k, v]) => k !== 'phase' && Number(v) > 0.0005e9)
      .map(([k, v]) => `${k} ${GB(Number(v))}`);
    console.log(`  at ${what} (during ${sp.phase}): ${parts.join(', ')}`);
  }
  console.log(
    `  the device peak grew in (step:phase): ${Object.entries(r.peak_growth)
      .map(([k, v]) => `${k} +${GB(v)}`)
      .join(', ')}`,
  );
  console.log(
    `  PyTorch fp32 eager (estimate): ${GB(t.total)} = states ${GB(t.states)} + activations ${GB(t.acts)} + 4 B·T·V ${GB(t.head)}; ours ÷ theirs ${(r.device_peak / t.total).toFixed(2)}`,
  );
  console.log(
    `  attention probabilities ${r.keeps_probs ? 'KEPT for backward (B·H·T² ≤ KEEP_PROBS_MAX: scales with T²)' : 'not kept (flash: nothing B·H·T²)'}`,
  );
}
