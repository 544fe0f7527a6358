/**
 * The SFT objective for the training loop: a causal LM's mean next-token cross-entropy over the targets that are not
 * -100 (the masked prompt, template and padding positions), exactly `CausalLM.loss`, plus TRL's
 * `mean_token_accuracy`: the fraction of counted targets that are the logits' argmax, kept apart for training steps
 * and evaluations and read (and reset) by the metric hooks. A CPU backend's logits are read synchronously and
 * counted on the host (`argmaxHits`); elsewhere (a GPU) each row's argmax is taken on the device — the `sample`
 * kernel at temperature 0, whose tie rule (lowest id) is argmaxHits's — and only the B·T ids are read back, a
 * StagedLoss (src/train/staged_loss.ts).
 */
import type { CausalLM, ForwardOptions } from '../model/model.js';
import * as O from '../tensor/ops.js';
import { apply } from '../tensor/record.js';
import { noGrad, type Tensor } from '../tensor/tensor.js';
import { staged, type LossResult } from '../train/staged_loss.js';
import type { TrainableModel } from '../train/trainer.js';
import { ShapeError } from '../util/errors.js';
import { IGNORE_INDEX } from './sft_data.js';

/** Counted targets whose logit is the row's largest: (correct, total). */
export function argmaxHits(
  logits: ArrayLike<number>,
  targets: Int32Array,
  V: number,
): { correct: number; total: number } {
  let correct = 0,
    total = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    if (t === IGNORE_INDEX) continue;
    total++;
    const o = i * V;
    const x = logits[o + t]!;
    let best = true;
    for (let v = 0; v < V && best; v++) if (logits[o + v]! > x || (logits[o + v]! === x && v < t)) best = false;
    if (best) correct++;
  }
  return { correct, total };
}

export class SftObjective implements TrainableModel {
  private acc = { train: { correct: 0, total: 0 }, eval: { correct: 0, total: 0 } };

  constructor(readonly model: CausalLM) {}

  get params(): Map<string, Tensor> {
    return this.model.trainableParams(); // the LoRA adapters' A and B when there are adapters
  }

  loss(ids: Int32Array, targets: Int32Array, B: number, T: number, opts: ForwardOptions = {}): LossResult {
    const V = this.model.config.vocabSize;
    if (targets.length !== B * T) throw new ShapeError(`loss: ${targets.length} targets for B=${B}, T=${T}`);
    let count = 0;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      if (t === IGNORE_INDEX) continue;
      if (!(t >= 0 && t < V))
        throw new ShapeError(`loss: target id ${t} at index ${i} outside the vocabulary [0, ${V})`);
      count++;
    }
    if (count === 0) throw new ShapeError('loss: every target is ignored');
    const logits = this.model.forward(ids, B, T, opts); // (B, T, V)
    const a = this.acc[opts.training ? 'train' : 'eval'];
    if (this.model.backend.readSync) {
      const h = argmaxHits(logits.dataSync(), targets, V);
      a.correct += h.correct;
      a.total += h.total;
      return this.crossEntropy(logits, targets, B, T, count);
    }
    const N = B * T;
    const [am] = noGrad(() =>
      apply(
        'sample',
        'sample',
        [O.reshape(logits, [N, V])],
        [[N], [N, 2]],
        { temperature: 0, u: new Array<number>(N).fill(0) },
        ['i32', 'f32'],
      ),
    ); // (N,) each row's argmax, lowest id on ties
    const loss = this.crossEntropy(logits, targets, B, T, count);
    return staged([am!], ([v]) => {
      for (let i = 0; i < N; i++) {
        if (targets[i] === IGNORE_INDEX) continue;
        a.total++;
        if (v![i] === targets[i]) a.correct++;
      }
      return loss;
    });
  }

  /** The mean cross-entropy over the `count` targets that are not ignored. */
  private crossEntropy(logits: Tensor, targets: Int32Array, B: number, T: number, count: number): Tensor {
    const ce = O.crossEntropy(logits, O.ids(targets, [B * T], logits), IGNORE_INDEX); // (B·T)
    return O.scale(O.sum(ce), 1 / count);
  }

  /** Token accuracy since the last call, for training steps or evaluations (NaN when none was measured); resets it. */
  takeAccuracy(which: 'train' | 'eval'): number {
    const a = this.acc[which];
    const r = a.total ? a.correct / a.total : NaN;
    this.acc[which] = { correct: 0, total: 0 };
    return r;
  }
}
