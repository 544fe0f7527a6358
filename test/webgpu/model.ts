/**
 * In Chromium: tiny GPT-2 and Llama models (seeded init, the same weights on both backends) on ref and on webgpu —
 * forward logits, then one training step (loss, backward, AdamW with weight decay and a gradient scale) — compared
 * by relative error ‖got − want‖ / ‖want‖ of the logits, the loss, every gradient and every updated parameter.
 * Results go to window.__webgpu for test/webgpu_browser.test.ts to judge.
 *
 * One exclusion, GPT-2's key bias (the middle third of c_attn.bias): its gradient is zero up to rounding (adding a
 * constant to every key's score leaves each softmax unchanged), so Adam's first step there, ≈ lr·g/(|g| + eps), is
 * decided by each backend's rounding noise. Its parameters are left out of `params`; `keyBiasGrad` reports how small
 * that gradient is on ref.
 */
import type { Backend } from '../../src/backend/backend.js';
import { getBackend } from '../../src/backend/registry.js';
import { createWebGpuBackend } from '../../src/backend/webgpu/backend.js';
import type { ModelConfig } from '../../src/model/config.js';
import { initModel } from '../../src/model/init.js';
import { shiftTargets } from '../../src/model/model.js';
import { AdamW } from '../../src/optim/adamw.js';
import { backward } from '../../src/tensor/autograd.js';
import { noGrad } from '../../src/tensor/tensor.js';
import { Rng } from '../../src/util/rng.js';

export interface ModelCheck {
  family: string;
  logits: number;
  loss: number;
  lossRef: number;
  /** Largest relative error over the gradients, and over the parameters after the step. */
  grads: number;
  params: number;
  /** The parameter with the largest error after the step, and that error per element block (see below). */
  worstParam: string;
  /** Largest |gradient| of GPT-2's key bias on ref (0 for Llama, which has none). */
  keyBiasGrad: number;
  /** How far the step moved the parameters (relative), so matching params is not matching the initial ones. */
  moved: number;
  native: number;
  hostSteps: number;
}

export interface WebGpuModelResult {
  done: boolean;
  error?: string;
  describe: string;
  checks: ModelCheck[];
  ms: number;
}

const state: WebGpuModelResult = { done: false, describe: '', checks: [], ms: 0 };
(window as unknown as { __webgpu: WebGpuModelResult }).__webgpu = state;

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return a.length === b.length ? Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-12) : Infinity;
}

const base: ModelConfig = {
  family: 'llama',
  vocabSize: 61,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  intermediateSize: 48,
  maxPositions: 64,
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  attentionBias: false,
  attentionOutBias: false,
  mlpBias: false,
  dropout: 0,
  bosTokenId: null,
  eosTokenId: null,
  padTokenId: null,
};
const CONFIGS: ModelConfig[] = [
  base,
  {
    ...base,
    family: 'gpt2',
    numKvHeads: 4,
    intermediateSize: 128,
    attentionBias: true,
    attentionOutBias: true,
    mlpBias: true,
    tieWordEmbeddings: true,
  },
];

interface Run {
  names: string[];
  logits: Float32Array;
  loss: number;
  grads: Float32Array[];
  params: Float32Array[];
  initial: Float32Array[];
}

async function trainStep(cfg: ModelConfig, be: Backend): Promise<Run> {
  const model = initModel(cfg, new Rng(7), { std: 0.3, backend: be });
  const initial: Float32Array[] = [];
  for (const p of model.params.values()) initial.push((await p.data()) as Float32Array);
  const B = 2,
    T = 9;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 17 + 3) % cfg.vocabSize);
  const logitsT = noGrad(() => model.forward(ids, B, T));
  const logits = (await logitsT.data()) as Float32Array;
  logitsT.dispose();
  const loss = model.loss(ids, shiftTargets(ids, B, T), B, T);
  backward(loss);
  const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0.1 });
  const grads: Float32Array[] = [];
  for (const p of model.params.values()) grads.push((await p.grad!.data()) as Float32Array);
  opt.step({ gradScale: 0.5 });
  const params: Float32Array[] = [];
  for (const p of model.params.values()) params.push((await p.data()) as Float32Array);
  const l = await loss.item();
  opt.dispose();
  return { names: [...model.params.keys()], logits, loss: l, grads, params, initial };
}

/** GPT-2's key-bias slice [C, 2C) of c_attn.bias set to ref's values in `got` (see the file comment). */
function withoutKeyBias(run: Run, ref: Run, C: number): Float32Array[] {
  return run.params.map((p, k) => {
    if (!run.names[k]!.endsWith('attn.c_attn.bias')) return p;
    const q = p.slice();
    q.set(ref.params[k]!.subarray(C, 2 * C), C);
    return q;
  });
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const gpu = await createWebGpuBackend();
  state.describe = gpu.describe();
  for (const cfg of CONFIGS) {
    const before = { ...gpu.counts };
    const want = await trainStep(cfg, getBackend('ref'));
    const got = await trainStep(cfg, gpu);
    const C = cfg.hiddenSize,
      gotParams = withoutKeyBias(got, want, C);
    const worst = (xs: Float32Array[], ys: Float32Array[]) => Math.max(...xs.map((x, k) => relErr(x, ys[k]!)));
    state.checks.push({
      family: cfg.family,
      logits: relErr(got.logits, want.logits),
      loss: got.loss,
      lossRef: want.loss,
      grads: got.grads.length === want.grads.length ? worst(got.grads, want.grads) : Infinity,
      params: worst(gotParams, want.params),
      worstParam:
        got.names[gotParams.map((p, k) => relErr(p, want.params[k]!)).reduce((b, e, k, a) => (e > a[b]! ? k : b), 0)]!,
      keyBiasGrad: Math.max(
        0,
        ...want.grads.flatMap((g, k) =>
          want.names[k]!.endsWith('attn.c_attn.bias') ? [...g.subarray(C, 2 * C)].map(Math.abs) : [],
        ),
      ),
      moved: Math.min(...want.params.map((p, k) => relErr(p, want.initial[k]!))),
      native: gpu.counts.native - before.native,
      hostSteps: gpu.counts.hostSteps - before.hostSteps,
    });
  }
  gpu.dispose();
  state.ms = Math.round(performance.now() - t0);
}

main()
  .catch((e: unknown) => {
    state.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  })
  .finally(() => {
    state.done = true;
  });
