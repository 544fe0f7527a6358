/**
 * Dynamic loss scaling, as PyTorch's torch.amp.GradScaler: with f16 matmul operands (the webgpu backend's f16 path,
 * src/backend/webgpu/matmul_wgsl.ts) the backward products take the output gradient as an f16 operand, and the
 * per-token gradients of a mean loss over B·T tokens (dlogits ≈ p/(B·T): ≈ 6e-5·p at B16 T1024) fall below f16's
 * smallest subnormal (6e-8) and flush to zero. So backward is seeded with S instead of 1 (every gradient is S times
 * the true one: exactly, barring overflow, while S is a power of two, as the defaults keep it), and the optimizer
 * unscales (AdamW's gradScale, the clipping norm divided by S). When a gradient comes out non-finite (S too large: an
 * f16 operand overflowed past 65504), the step is skipped and S halved; after `growthInterval` good steps in a row S
 * doubles.
 *
 *   init 2^16, growth ×2 every 2000 good steps, backoff ×0.5 on inf/NaN (GradScaler's defaults)
 *
 * Below MIN_LOSS_SCALE (1) it does not back off any further: a non-finite gradient there is a real divergence.
 * The state (scale, good steps in a row) lives in the loop state (trainer.ts LoopState.lossScale), so a resumed run
 * takes the steps an uninterrupted one would have.
 */
import { ConfigError } from '../util/errors.js';

/** The scaler's state, saved with checkpoints. */
export interface LossScaleState {
  /** The current scale S (a power of two). */
  scale: number;
  /** Good (finite-gradient) steps since the scale last changed. */
  goodSteps: number;
}

export interface LossScalerOptions {
  /** Starting scale (default 2^16, GradScaler's init_scale). */
  initScale?: number;
  /** Multiplier after `growthInterval` good steps in a row (default 2). */
  growthFactor?: number;
  /** Multiplier on a non-finite gradient (default 0.5). */
  backoffFactor?: number;
  /** Good steps in a row before growing (default 2000). */
  growthInterval?: number;
}

/** The scale below which a non-finite gradient is a divergence rather than a reason to back off. */
export const MIN_LOSS_SCALE = 1;

/** What `update` decided for one step. */
export type LossScaleVerdict = 'step' | 'skip' | 'diverged';

export class LossScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  private s: LossScaleState;

  constructor(opts: LossScalerOptions = {}, state?: LossScaleState) {
    const init = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(init >= MIN_LOSS_SCALE) || !Number.isFinite(init))
      throw new ConfigError('initScale', `expected a finite number ≥ ${MIN_LOSS_SCALE}, got ${init}`);
    if (!(this.growthFactor > 1)) throw new ConfigError('growthFactor', `expected > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1))
      throw new ConfigError('backoffFactor', `expected between 0 and 1, got ${this.backoffFactor}`);
    if (!(Number.isSafeInteger(this.growthInterval) && this.growthInterval >= 1))
      throw new ConfigError('growthInterval', `expected a whole number ≥ 1, got ${this.growthInterval}`);
    this.s = state ? { ...state } : { scale: init, goodSteps: 0 };
  }

  /** The scale the next backward is seeded with. */
  get scale(): number {
    return this.s.scale;
  }

  /** After a step's backward: were all gradients finite? Returns what the step does, and moves the scale. */
  update(finite: boolean): LossScaleVerdict {
    if (finite) {
      if (++this.s.goodSteps >= this.growthInterval) {
        this.s.scale *= this.growthFactor;
        this.s.goodSteps = 0;
      }
      return 'step';
    }
    if (this.s.scale <= MIN_LOSS_SCALE) return 'diverged';
    this.s.scale = Math.max(MIN_LOSS_SCALE, this.s.scale * this.backoffFactor);
    this.s.goodSteps = 0;
    return 'skip';
  }

  getState(): LossScaleState {
    return { ...this.s };
  }
}
