/**
 * DPO's objective in the training loop: a batch of pair indices (pref_batches.ts) → the policy's summed
 * log-probabilities of the chosen and rejected completions given the prompt (completion tokens only,
 * src/model/losses.ts `sequenceLogProbs`) → the DPO-family loss (pref_losses.ts) against the reference's
 * log-probabilities, which were computed once per pair before training (`referenceLogps`: the frozen starting model
 * is never run again). IPO uses per-token means of both, as TRL does. The implicit rewards β·(log π − log π_ref),
 * accuracies, margins and log-probabilities are accumulated for TRL's metrics (pref_stats.ts).
 */
import type { CausalLM } from '../model/model.js';
import { sequenceLogProbs } from '../model/losses.js';
import * as O from '../tensor/ops.js';
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ShapeError } from '../util/errors.js';
import type { PrefPair } from './pref_data.js';
import { constant, dpoFamilyLoss, type DpoLossOptions } from './pref_losses.js';
import { PrefStats } from './pref_stats.js';

/** Summed log-probabilities of every pair's chosen and rejected completion under `model`, `chunk` pairs at a time. */
export async function referenceLogps(
  model: CausalLM,
  pairs: readonly PrefPair[],
  chunk = 8,
): Promise<{ chosen: Float64Array; rejected: Float64Array }> {
  const N = pairs.length;
  const chosen = new Float64Array(N),
    rejected = new Float64Array(N);
  for (let s = 0; s < N; s += chunk) {
    const ps = pairs.slice(s, s + chunk);
    const P = ps.length;
    const t = tidy(() =>
      noGrad(() =>
        sequenceLogProbs(
          model,
          [...ps.map((p) => p.prompt), ...ps.map((p) => p.prompt)],
          [...ps.map((p) => p.chosen), ...ps.map((p) => p.rejected)],
        ),
      ),
    );
    const v = await t.data(); // (2P,)
    t.dispose();
    for (let i = 0; i < P; i++) {
      chosen[s + i] = v[i]!;
      rejected[s + i] = v[P + i]!;
    }
  }
  return { chosen, rejected };
}

export class DpoObjective implements TrainableModel {
  private stats = { train: new PrefStats(), eval: new PrefStats() };

  /** `pairs`: training then held-out pairs, as the batches number them; `ref`: their reference log-probs. */
  constructor(
    readonly model: CausalLM,
    private readonly pairs: readonly PrefPair[],
    private readonly ref: { chosen: ArrayLike<number>; rejected: ArrayLike<number> },
    private readonly o: DpoLossOptions,
  ) {
    if (ref.chosen.length !== pairs.length || ref.rejected.length !== pairs.length)
      throw new ShapeError(`DpoObjective: ${ref.chosen.length} reference log-probs for ${pairs.length} pairs`);
  }

  get params(): Map<string, Tensor> {
    return this.model.trainableParams(); // the LoRA adapters' A and B when there are adapters
  }

  loss(
    ids: Int32Array,
    _targets: Int32Array,
    B: number,
    _T: number,
    opts: { training?: boolean; dropoutSeed?: number } = {},
  ): LossResult {
    if (ids.length !== B || B === 0) throw new ShapeError(`dpo loss: ${ids.length} pair indices for B=${B}`);
    const ps = Array.from(ids, (i) => {
      const p = this.pairs[i];
      if (!p) throw new ShapeError(`dpo loss: pair index ${i} outside [0, ${this.pairs.length})`);
      return p;
    });
    const ipo = this.o.lossType === 'ipo';
    const per = (p: PrefPair, which: 'chosen' | 'rejected') => (ipo ? 1 / p[which].length : 1);
    let lp = sequenceLogProbs(
      this.model,
      [...ps.map((p) => p.prompt), ...ps.map((p) => p.prompt)],
      [...ps.map((p) => p.chosen), ...ps.map((p) => p.rejected)],
      opts,
    ); // (2B,)
    if (ipo) lp = O.mul(lp, constant([...ps.map((p) => per(p, 'chosen')), ...ps.map((p) => per(p, 'rejected'))], lp));
    const pc = O.slice(lp, [0], [B]),
      pr = O.slice(lp, [B], [B]); // (B,) each
    const rc = Array.from(ids, (i, k) => this.ref.chosen[i]! * per(ps[k]!, 'chosen'));
    const rr = Array.from(ids, (i, k) => this.ref.rejected[i]! * per(ps[k]!, 'rejected'));
    // the metrics (and hinge's mask) read the log-probabilities back first (staged_loss.ts)
    return staged([lp], ([v]) => {
      const lc = Array.prototype.slice.call(v!, 0, B) as number[],
        lr = Array.prototype.slice.call(v!, B, 2 * B) as number[];
      const loss = dpoFamilyLoss(pc, pr, rc, rr, this.o, { chosen: lc, rejected: lr });
      const b = this.o.beta;
      const training = opts.training === true;
      this.stats[training ? 'train' : 'eval'].add(
        lc.map((x, k) => b * (x - rc[k]!)),
        lr.map((x, k) => b * (x - rr[k]!)),
        {
          logps: [lc, lr],
          ...(training
            ? {}
            : { lengths: [ps.map((p) => p.chosen.length), ps.map((p) => p.rejected.length)] as [number[], number[]] }),
        },
      );
      return loss;
    });
  }

  /** The statistics since the last call, for training steps or evaluations; resets them. */
  takeStats(which: 'train' | 'eval'): PrefStats {
    const s = this.stats[which];
    this.stats[which] = new PrefStats();
    return s;
  }
}
