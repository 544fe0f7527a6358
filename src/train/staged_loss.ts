/**
 * A loss built around values read back from the device. Some objectives decide on the host inside a step: which
 * branch of PPO's and RLOO's clipped max() wins, KTO's reference point z0, DPO's hinge mask, and the rewards and
 * log-probabilities their metrics report. A GPU backend cannot read synchronously, so such an objective returns a
 * `StagedLoss`: the tensors it needs the values of (`reads`, usually on the tape) and `finish`, which gets those
 * values and builds the rest of the loss on the same tape (or stages again). The training loop resolves it:
 *
 *   r = model.loss(…)                      inside a Scope's run (the forward, on the tape)
 *   while r is staged:  v = await read(r.reads);  r = scope.run(() => r.finish(v))
 *   backward(r)                             the whole tape, then the scope closes
 *
 * Each read is one sync point per micro-batch (a few hundred floats), where the CPU backends read at no cost. The
 * values are the tensors' own, so the host's decisions are exactly those a synchronous read would make: the same
 * steps on every backend.
 */
import { Tensor, type Scope } from '../tensor/tensor.js';
import { ConfigError } from '../util/errors.js';

/** See the header. */
export interface StagedLoss {
  /** The tensors whose values `finish` needs (read in this order). */
  readonly reads: readonly Tensor[];
  /** Build the loss from the values of `reads` (same order); may stage again. */
  finish(values: readonly ArrayLike<number>[]): LossResult;
}

/** What an objective's loss returns: the loss tensor, or a loss that needs values from the device first. */
export type LossResult = Tensor | StagedLoss;

export function staged(
  reads: readonly Tensor[],
  finish: (values: readonly ArrayLike<number>[]) => LossResult,
): StagedLoss {
  return { reads, finish };
}

/**
 * `t`'s values read synchronously (a CPU backend), for a loss function called without the values it would otherwise
 * be handed; elsewhere a ConfigError saying what to do: `fix`, e.g. "pass the values of logp (PpoObjective does)".
 */
export function readOnHost(t: Tensor, what: string, fix: string): ArrayLike<number> {
  if (!t.backend.readSync)
    throw new ConfigError('backend', `${what} on the host, and ${t.backend.name} cannot read synchronously: ${fix}`);
  return t.dataSync();
}

/** Resolve `r` with synchronous reads (a CPU backend's; a clear error elsewhere). */
export function resolveLossSync(r: LossResult): Tensor {
  while (!(r instanceof Tensor)) {
    const s: StagedLoss = r;
    const values = s.reads.map((t) => readOnHost(t, 'this loss reads values', 'resolve it with resolveLoss (await)'));
    r = s.finish(values);
  }
  return r;
}

/** Resolve `r` in `scope` (each finish runs inside it, so the tape and its tensors stay the scope's). */
export async function resolveLoss(
  r: LossResult,
  scope: Scope,
  wrap: <T>(fn: () => T) => T = (fn) => fn(),
): Promise<Tensor> {
  while (!(r instanceof Tensor)) {
    const s: StagedLoss = r;
    const values = await Promise.all(s.reads.map((t) => t.data()));
    r = scope.run(() => wrap(() => s.finish(values)));
  }
  return r;
}
