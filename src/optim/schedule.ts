/**
 * Learning-rate schedule: linear warmup, then cosine decay to a floor (nanoGPT's `get_lr`, with PyTorch-style warmup
 * that reaches the peak at the last warmup step):
 *   s < warmup:            lr · (s + 1) / warmup
 *   warmup ≤ s ≤ decay:    minLr + ½ (lr − minLr) (1 + cos(π (s − warmup) / (decay − warmup)))
 *   s > decay:             minLr
 * Steps count from 0. The shared training fixture (12 steps, warmup 3, decay 11) records exactly these values.
 */

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Floor reached at `decaySteps`. */
  minLr: number;
  /** Steps of linear warmup (0 = none). */
  warmupSteps: number;
  /** Step at which the cosine reaches minLr. */
  decaySteps: number;
  /** 'constant' keeps lr after the warmup. */
  kind?: 'cosine' | 'constant';
}

/** The learning rate of step `s` (0-based). */
export function learningRate(s: number, o: ScheduleOptions): number {
  if (s < o.warmupSteps) return (o.lr * (s + 1)) / o.warmupSteps;
  if (o.kind === 'constant') return o.lr;
  if (s > o.decaySteps) return o.minLr;
  const span = o.decaySteps - o.warmupSteps;
  const ratio = span > 0 ? (s - o.warmupSteps) / span : 1;
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1 + Math.cos(Math.PI * ratio));
}

/** A schedule as a function of the step. */
export function makeSchedule(o: ScheduleOptions): (step: number) => number {
  return (s) => learningRate(s, o);
}
