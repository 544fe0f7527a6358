/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW): decoupled weight decay, bias-corrected moments, ε added to
 * the bias-corrected √v. One fused kernel per parameter updates param, m and v in place (`applyInPlace`: a backend
 * without `adamw` runs it on ref); `gradScale` folds the gradient-clipping coefficient into the same pass.
 */
import type { Backend } from '../backend/backend.js';
import { ConfigError } from '../util/errors.js';
import { applyInPlace } from '../tensor/record.js';
import { tensor, zeros } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';

export interface AdamWOptions {
  /** Learning rate (may be overridden per step by a schedule). */
  lr: number;
  /** (β1, β2), default (0.9, 0.999) as PyTorch. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay, default 0.01 as PyTorch. */
  weightDecay?: number;
  /** Which parameters decay (by name); default all (PyTorch applies it to every parameter it is given). */
  decay?: (name: string) => boolean;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of steps taken (PyTorch's `state['step']`). */
  stepCount = 0;
  private readonly m = new Map<string, Tensor>();
  private readonly v = new Map<string, Tensor>();
  private readonly decays: Map<string, boolean>;

  constructor(
    readonly params: Map<string, Tensor>,
    opts: AdamWOptions,
  ) {
    const [b1, b2] = opts.betas ?? [0.9, 0.999];
    const checks: [string, number, boolean][] = [
      ['lr', opts.lr, opts.lr >= 0],
      ['betas[0]', b1, b1 >= 0 && b1 < 1],
      ['betas[1]', b2, b2 >= 0 && b2 < 1],
      ['eps', opts.eps ?? 1e-8, (opts.eps ?? 1e-8) >= 0],
      ['weightDecay', opts.weightDecay ?? 0.01, (opts.weightDecay ?? 0.01) >= 0],
    ];
    for (const [k, val, ok] of checks)
      if (!ok || !Number.isFinite(val)) throw new ConfigError(`adamw.${k}`, `invalid value ${val}`);
    this.lr = opts.lr;
    this.beta1 = b1;
    this.beta2 = b2;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    this.decays = new Map([...params.keys()].map((n) => [n, opts.decay ? opts.decay(n) : true]));
    for (const [name, p] of params) {
      this.m.set(name, zeros(p.shape, { backend: p.backend }));
      this.v.set(name, zeros(p.shape, { backend: p.backend }));
    }
  }

  /**
   * One update of every parameter that has a gradient: one multi-tensor kernel call per (backend, decays or not)
   * group rather than one per parameter.
   */
  step(opts: { lr?: number; gradScale?: number } = {}): void {
    this.stepCount++;
    const lr = opts.lr ?? this.lr;
    const groups = new Map<Backend, Map<boolean, [Tensor[], Tensor[]]>>();
    for (const [name, p] of this.params) {
      if (!p.grad) continue;
      const decay = this.decays.get(name) ?? true;
      let byDecay = groups.get(p.backend);
      if (!byDecay) groups.set(p.backend, (byDecay = new Map()));
      let g = byDecay.get(decay);
      if (!g) byDecay.set(decay, (g = [[], []]));
      g[0].push(p.grad);
      g[1].push(p, this.m.get(name)!, this.v.get(name)!);
    }
    for (const byDecay of groups.values()) {
      for (const [decay, [grads, outs]] of byDecay) {
        applyInPlace('adamw', grads, outs, {
          lr,
          beta1: this.beta1,
          beta2: this.beta2,
          eps: this.eps,
          weightDecay: decay ? this.weightDecay : 0,
          step: this.stepCount,
          gradScale: opts.gradScale ?? 1,
        });
      }
    }
  }

  /** Drop every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params.values()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Moments by `<param>.exp_avg` / `<param>.exp_avg_sq` (PyTorch's state names), for checkpoints. */
  async stateDict(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const name of this.params.keys()) {
      out[`${name}.exp_avg`] = (await this.m.get(name)!.data()) as Float32Array;
      out[`${name}.exp_avg_sq`] = (await this.v.get(name)!.data()) as Float32Array;
    }
    return out;
  }

  /** Restore moments and the step count written by stateDict. */
  loadStateDict(state: Record<string, Float32Array>, stepCount: number): void {
    for (const [name, p] of this.params) {
      for (const [suffix, map] of [
        ['exp_avg', this.m],
        ['exp_avg_sq', this.v],
      ] as const) {
        const d = state[`${name}.${suffix}`];
        if (!d || d.length !== p.size)
          throw new ConfigError(
            `${name}.${suffix}`,
            `optimizer state missing or of the wrong size (expected ${p.size} values)`,
          );
        map.get(name)!.dispose();
        map.set(name, tensor(d, p.shape, { backend: p.backend }));
      }
    }
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}
