/**
 * The device memory a training step needs on the webgpu backend, planned without a GPU: the real backend on the
 * counting WebGPU device (../backend/webgpu/counting_gpu.ts: no memory held, no shader run, every createBuffer
 * counted; made through ../backend/registry.ts createCountingWebGpu), the real model, and `steps` real training steps (forward, backward, gradient norm, AdamW, as `llmts plan`
 * times them). The figures are the backend's own allocations, exact for its allocation order (docs/BACKENDS.md,
 * "Memory"); bench/lab/webgpu-memory.mjs splits them by what holds them.
 */
import { createCountingWebGpu } from '../backend/registry.js';
import type { ModelConfig } from '../model/config.js';
import { initModel } from '../model/init.js';
import { AdamW } from '../optim/adamw.js';
import { clipCoefficient, gradNorm } from '../optim/clip.js';
import { backward } from '../tensor/autograd.js';
import { tidy } from '../tensor/tensor.js';
import { Rng } from '../util/rng.js';

export interface WebGpuStepPlan {
  /** Device bytes held at most: tensors at their pooled size classes, idle pooled buffers, scratch, uniforms, staging. */
  devicePeak: number;
  /** The backend's `memory().peak`: live tensors at the bytes they asked for. */
  tensorPeak: number;
  /** Weights and AdamW's moments, live between steps. */
  between: number;
  /** createBuffer calls. */
  buffers: number;
}

/** Plan `steps` (default 2: the second the steady state) training steps of `m` at B × T on a counting device. */
export async function planWebGpuStep(
  m: ModelConfig,
  B: number,
  T: number,
  opts: { steps?: number; gpu?: Parameters<typeof createCountingWebGpu>[0] } = {},
): Promise<WebGpuStepPlan> {
  const { backend, stats } = await createCountingWebGpu(opts.gpu);
  try {
    const model = initModel(m, new Rng(1), { backend });
    const opt = new AdamW(model.params, { lr: 1e-3, weightDecay: 0.1 });
    const rng = new Rng(2);
    const ids = Int32Array.from({ length: B * T }, () => rng.int(m.vocabSize));
    for (let s = 0; s < (opts.steps ?? 2); s++) {
      const l = tidy(() => {
        const l = model.loss(ids, ids, B, T, { training: true, dropoutSeed: s });
        backward(l);
        return l;
      });
      await l.item();
      l.dispose();
      const n = await gradNorm(model.params);
      opt.step({ gradScale: clipCoefficient(n, 1) });
      opt.zeroGrad();
      await backend.sync();
    }
    const mem = backend.memory();
    const d = stats();
    const plan = { devicePeak: d.peak, tensorPeak: mem.peak, between: mem.inUse, buffers: d.created };
    opt.dispose();
    for (const p of model.params.values()) p.dispose();
    return plan;
  } finally {
    backend.dispose();
  }
}
