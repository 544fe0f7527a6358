/**
 * A reward model for RLHF: a CausalLM body without its language-model head plus a bias-free `score` head (C → 1),
 * which is exactly transformers' `*ForSequenceClassification` with one label. The reward of a sequence is the score
 * of its last token's final hidden state. Parameters keep Hugging Face's names (the body's `model.…` /
 * `transformer.…` and `score.weight`), so a checkpoint loads and saves with no renaming.
 *
 * Trained on preference pairs with the Bradley–Terry loss mean(−log σ(r_chosen − r_rejected)), computed on the backend
 * with the ops that already have gradients: −log σ(d) is the cross-entropy of the two logits (0, d) against class 1.
 * Sequences may differ in length: each length is one batch (no padding, so no attention mask is needed).
 */
import { ConfigError, ShapeError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import * as O from '../tensor/ops.js';
import { tensor, type Tensor } from '../tensor/tensor.js';
import type { ModelConfig } from './config.js';
import { logSigmoidLoss } from './losses.js';
import { CausalLM, type TrainingOptions } from './model.js';
import { groupByLength, inCallerOrder } from './ragged.js';
import { loraParams, mergeLora } from './lora.js';

/** Name of the score head's weight [1, C] (transformers' `score = nn.Linear(hidden, num_labels, bias=False)`). */
export const SCORE_WEIGHT = 'score.weight';

export class RewardModel {
  readonly config: ModelConfig;
  /** The body (no language-model head); its params are shared with `params`. */
  readonly body: CausalLM;
  /** Every trainable parameter by Hugging Face name: the body's, then `score.weight`. */
  readonly params: Map<string, Tensor>;

  /**
   * `params`: the body's parameters and `score.weight` [1, C]. A language-model head (`lm_head.weight`) in the map is
   * ignored (not part of the reward model), so a causal-LM checkpoint plus a score head is accepted.
   */
  constructor(config: ModelConfig, params: Map<string, Tensor>) {
    const score = params.get(SCORE_WEIGHT);
    if (!score) throw new ConfigError(SCORE_WEIGHT, 'missing: a reward model needs a score head [1, hidden_size]');
    if (score.rank !== 2 || score.shape[0] !== 1 || score.shape[1] !== config.hiddenSize)
      throw new ShapeError(
        `${SCORE_WEIGHT}: shape [${score.shape}] but a reward model with hidden_size ${config.hiddenSize} needs [1, ${config.hiddenSize}]`,
      );
    const body = new Map([...params].filter(([n]) => n !== SCORE_WEIGHT && n !== 'lm_head.weight'));
    this.config = config;
    this.body = new CausalLM(config, body, { head: 'none' });
    this.params = new Map([...body, [SCORE_WEIGHT, score]]);
  }

  /**
   * A reward model on a language model's body (sharing its tensors: training one trains the other) with a fresh score
   * head drawn from N(0, std) — transformers' initialisation (initializer_range, 0.02).
   */
  static fromCausalLM(lm: CausalLM, rng: Rng, std = 0.02): RewardModel {
    const C = lm.config.hiddenSize;
    const w = Float32Array.from({ length: C }, () => rng.normal() * std);
    const score = tensor(w, [1, C], { backend: lm.backend, requiresGrad: true, name: SCORE_WEIGHT });
    return new RewardModel(lm.config, new Map([...lm.params, [SCORE_WEIGHT, score]]));
  }

  /**
   * What trains: the body's LoRA adapters (by PEFT name) and the score head while the body has adapters (the body's
   * weights frozen), else every parameter.
   */
  trainableParams(): Map<string, Tensor> {
    if (!this.body.lora.size) return this.params;
    return new Map([...loraParams(this.body), [SCORE_WEIGHT, this.params.get(SCORE_WEIGHT)!]]);
  }

  /** Fold the body's LoRA adapters into its weights (lora.ts mergeLora), `params` following. */
  mergeLora(): void {
    mergeLora(this.body);
    for (const [k, t] of this.body.params) this.params.set(k, t);
  }

  /** Rewards of whole sequences (token ids, each at least one token, any lengths): (N,), in the order given. */
  rewards(seqs: readonly ArrayLike<number>[], opts: TrainingOptions = {}): Tensor {
    const C = this.config.hiddenSize;
    const groups = groupByLength(seqs, 'reward sequence');
    const parts = groups.map(({ T, index, ids }) => {
      const B = index.length;
      const h = this.body.hidden(ids, B, T, opts); // (B, T, C)
      const last = O.slice(h, [0, T - 1, 0], [B, 1, C]); // (B, 1, C)
      return O.reshape(O.linear(last, this.params.get(SCORE_WEIGHT)!, null), [B]); // (B,)
    });
    return inCallerOrder(groups, parts);
  }

  /**
   * Bradley–Terry loss of preference pairs: mean over pairs of −log σ(r(chosen) − r(rejected)), a scalar tensor on
   * the tape (call backward on it). Also returns the two reward vectors (P,) for logging (accuracy, margins).
   */
  preferenceLoss(
    chosen: readonly ArrayLike<number>[],
    rejected: readonly ArrayLike<number>[],
    opts: TrainingOptions = {},
  ): { loss: Tensor; chosen: Tensor; rejected: Tensor } {
    const P = chosen.length;
    if (P === 0 || rejected.length !== P)
      throw new ShapeError(`preferenceLoss: ${P} chosen and ${rejected.length} rejected sequences (need equal, ≥ 1)`);
    const r = this.rewards([...chosen, ...rejected], opts); // (2P,)
    const rc = O.slice(r, [0], [P]),
      rr = O.slice(r, [P], [P]); // (P,) each
    return { loss: logSigmoidLoss(O.sub(rc, rr)), chosen: rc, rejected: rr };
  }
}
