/**
 * The reward model's objective in the training loop: a batch of pair indices (pref_batches.ts) → the rewards of
 * prompt + chosen and prompt + rejected (src/model/reward.ts, the score of the last token) → the Bradley–Terry loss
 * with margins and reward centring (pref_losses.ts). Rewards, accuracy and (on evaluations) each reply's reward and
 * length are accumulated for TRL's metrics (pref_stats.ts), read back from the device (a StagedLoss, on any backend).
 */
import type { RewardModel } from '../model/reward.js';
import * as O from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ShapeError } from '../util/errors.js';
import type { PrefPair } from './pref_data.js';
import { bradleyTerryLoss } from './pref_losses.js';
import { PrefStats } from './pref_stats.js';

export class RewardObjective implements TrainableModel {
  private stats = { train: new PrefStats(), eval: new PrefStats() };

  /** `pairs`: the training pairs then the held-out pairs, as the batches number them. */
  constructor(
    readonly model: RewardModel,
    private readonly pairs: readonly PrefPair[],
    private readonly centerCoef: number,
  ) {}

  get params(): Map<string, Tensor> {
    return this.model.trainableParams(); // the body's LoRA adapters and the score head when there are adapters
  }

  loss(
    ids: Int32Array,
    _targets: Int32Array,
    B: number,
    _T: number,
    opts: { training?: boolean; dropoutSeed?: number } = {},
  ): LossResult {
    if (ids.length !== B || B === 0) throw new ShapeError(`reward loss: ${ids.length} pair indices for B=${B}`);
    const ps = Array.from(ids, (i) => {
      const p = this.pairs[i];
      if (!p) throw new ShapeError(`reward loss: pair index ${i} outside [0, ${this.pairs.length})`);
      return p;
    });
    const seqs = [...ps.map((p) => [...p.prompt, ...p.chosen]), ...ps.map((p) => [...p.prompt, ...p.rejected])];
    const r = this.model.rewards(seqs, opts); // (2B,) chosen then rejected
    const rc = O.slice(r, [0], [B]),
      rr = O.slice(r, [B], [B]); // (B,) each
    const loss = bradleyTerryLoss(
      rc,
      rr,
      ps.map((p) => p.margin),
      this.centerCoef,
    );
    // the metrics read the rewards back (staged_loss.ts)
    return staged([r], ([v]) => {
      const training = opts.training === true;
      this.stats[training ? 'train' : 'eval'].add(
        Array.prototype.slice.call(v!, 0, B) as number[],
        Array.prototype.slice.call(v!, B, 2 * B) as number[],
        training ? {} : { lengths: [ps.map((p) => p.chosen.length), ps.map((p) => p.rejected.length)] },
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
