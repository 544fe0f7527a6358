/**
 * KTO's objective in the training loop: a batch of row indices (kto_data.ts: a fixed batch) →
 *   1. the policy's log-probabilities of each row's mismatched pair (its prompt with its partner's completion),
 *      without gradient, and the reference point z0 = max(0, mean(policy − reference)) (kto_loss.ts);
 *   2. the policy's summed log-probabilities of each row's completion given its prompt (completion tokens only,
 *      src/model/losses.ts `sequenceLogProbs`) → the KTO loss against the reference's, with z0 detached.
 * The reference's log-probabilities of every matched and mismatched pair were computed once before training
 * (`ktoReferenceLogps`): the frozen starting model is never run again. Rewards β·(log π − log π_ref), log-probs and
 * z0 are accumulated for TRL's metrics (pref_stats.ts KtoStats). z0 and the metrics are read back from the device (a
 * StagedLoss, src/train/staged_loss.ts), so KTO trains on every backend.
 */
import { sequenceLogProbs } from '../model/losses.js';
import type { CausalLM } from '../model/model.js';
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ShapeError } from '../util/errors.js';
import { referenceLogps } from './dpo_objective.js';
import type { KtoRow } from './kto_data.js';
import { klReferencePoint, ktoLoss, type KtoLossOptions } from './kto_loss.js';
import { KtoStats } from './pref_stats.js';

/** The reference log-probabilities of every row: of its completion, and of its mismatched (KL) pair. */
export interface KtoReference {
  completion: Float64Array;
  kl: Float64Array;
}

/** Summed log-probabilities under `model` of each row's completion and of its KL pair, `chunk` rows at a time. */
export async function ktoReferenceLogps(model: CausalLM, rows: readonly KtoRow[], chunk = 8): Promise<KtoReference> {
  const r = await referenceLogps(
    model,
    rows.map((x) => ({ prompt: x.prompt, chosen: x.completion, rejected: x.kl, margin: 0, group: x.group })),
    chunk,
  );
  return { completion: r.chosen, kl: r.rejected };
}

export class KtoObjective implements TrainableModel {
  private stats = { train: new KtoStats(), eval: new KtoStats() };

  /** `rows`: training then held-out rows, as the batches number them; `ref`: their reference log-probs. */
  constructor(
    readonly model: CausalLM,
    private readonly rows: readonly KtoRow[],
    private readonly ref: KtoReference,
    private readonly o: KtoLossOptions,
  ) {
    if (ref.completion.length !== rows.length || ref.kl.length !== rows.length)
      throw new ShapeError(
        `KtoObjective: ${ref.completion.length} / ${ref.kl.length} reference log-probs for ${rows.length} rows`,
      );
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
    if (ids.length !== B || B < 2) throw new ShapeError(`kto loss: ${ids.length} row indices for B=${B} (need ≥ 2)`);
    const rs = Array.from(ids, (i) => {
      const r = this.rows[i];
      if (!r) throw new ShapeError(`kto loss: row index ${i} outside [0, ${this.rows.length})`);
      return r;
    });
    // 1. the reference point, from the mismatched pairs, detached (read back: staged_loss.ts)
    const pk = tidy(() =>
      noGrad(() =>
        sequenceLogProbs(
          this.model,
          rs.map((r) => r.prompt),
          rs.map((r) => r.kl),
          opts,
        ),
      ),
    ); // (B,) its forward's intermediates freed now
    return staged([pk], ([pkv]) => {
      const z0 = klReferencePoint(
        pkv!,
        Array.from(ids, (i) => this.ref.kl[i]!),
      );
      // 2. the rows' log-probabilities on the tape, and the loss; their values for the metrics
      const lp = sequenceLogProbs(
        this.model,
        rs.map((r) => r.prompt),
        rs.map((r) => r.completion),
        opts,
      ); // (B,)
      const ref = Array.from(ids, (i) => this.ref.completion[i]!);
      const desirable = rs.map((r) => r.desirable);
      const loss = ktoLoss(lp, ref, desirable, z0, this.o);
      return staged([lp], ([lpv]) => {
        const v = Float64Array.from(lpv!);
        this.stats[opts.training === true ? 'train' : 'eval'].add(
          Array.from(v, (x, k) => this.o.beta * (x - ref[k]!)),
          v,
          desirable,
          z0,
        );
        return loss;
      });
    });
  }

  /** The statistics since the last call, for training steps or evaluations; resets them. */
  takeStats(which: 'train' | 'eval'): KtoStats {
    const s = this.stats[which];
    this.stats[which] = new KtoStats();
    return s;
  }
}
