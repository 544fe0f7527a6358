/**
 * Rollouts for on-policy training (PPO, and RLOO: rloo.ts), as TRL's PPOTrainer makes them:
 *
 *   1. sample a reply to each prompt from the policy with temperature only (no top-k / top-p / penalties), stopping at
 *      a stop token (EOS, the template's end-of-turn marker; kept as the reply's last token: the policy chose to stop)
 *      or at maxTokens;
 *   2. score prompt ++ reply teacher-forced, under the SAME distribution the tokens were drawn from (logits / T):
 *      the policy's log-probabilities of the reply tokens (π_old), the frozen reference's, the value model's value of
 *      the state before each reply token, and the reward model's score of the whole sequence (its last token).
 *
 * Sampling goes through one interface, `ReplySampler`, so the engine behind it can be swapped (batched ragged
 * sampling). Scoring and the PPO objective read the reply tokens' log-probabilities with the same function
 * (`replyLogprobs`), so at the first PPO step the new log-probabilities equal the old ones and the ratio is 1.
 *
 * Positions: the model reads prompt ++ reply minus its last token (length P + R − 1); the reply's token j is
 * predicted at position P − 1 + j, which is also where the value of the state before it is read.
 */
import { generate } from '../generate/engine.js';
import type { CausalLM, TrainingOptions } from '../model/model.js';
import { groupByLength, type LengthGroup } from '../model/ragged.js';
import { SCORE_WEIGHT, type RewardModel } from '../model/reward.js';
import * as O from '../tensor/ops.js';
import { noGrad, tidy, type Tensor } from '../tensor/tensor.js';
import { ConfigError } from '../util/errors.js';

/** A sampled reply: its ids (with the stop token last when one ended it) and whether a stop token ended it. */
export interface SampledReply {
  ids: number[];
  ended: boolean;
}

export interface ReplySamplingOptions {
  maxTokens: number;
  /** > 0: logits / temperature, nothing else. */
  temperature: number;
  /** Ids that end a reply (kept as its last token). */
  stopTokens: readonly number[];
  seed: number;
}

/** Where replies come from: one call for a batch of prompts. */
export interface ReplySampler {
  sample(prompts: readonly (readonly number[])[], o: ReplySamplingOptions): Promise<SampledReply[]>;
}

/** Replies from the generation engine (src/generate/engine.ts; prompts of equal length decode as one batch). */
export function engineReplySampler(model: CausalLM): ReplySampler {
  return {
    async sample(prompts, o) {
      if (!(o.temperature > 0))
        throw new ConfigError('temperature', `rollouts sample with a temperature > 0, got ${o.temperature}`);
      const r = await generate(model, prompts as (readonly number[])[], {
        maxTokens: o.maxTokens,
        temperature: o.temperature,
        topK: 0,
        topP: 1,
        minP: 0,
        stopTokens: o.stopTokens,
        seed: o.seed,
      });
      return r.choices.map((c) => {
        const stop = c.stopped_by && 'token' in c.stopped_by ? c.stopped_by.token : null;
        return stop !== null ? { ids: [...c.ids, stop], ended: true } : { ids: [...c.ids], ended: false };
      });
    },
  };
}

/** A prompt and its reply, in token ids (each at least one token). */
export interface PromptReply {
  prompt: readonly number[];
  reply: readonly number[];
}

/** A scored rollout. Per-token arrays have one entry per reply token. */
export interface Rollout extends PromptReply {
  /** The prompt's index in the run's prompt list. */
  promptIndex: number;
  /** A stop token ended the reply. */
  ended: boolean;
  /** log π_old of each reply token (logits / T). */
  logprobs: number[];
  /** log π_ref of each reply token (logits / T). */
  refLogprobs: number[];
  /** V of the state before each reply token. */
  values: number[];
  /** The reward model's score of prompt ++ reply. */
  score: number;
}

/** Model inputs grouped by length (prompt ++ reply minus the last token), and each group's reply-token targets. */
export function replyGroups(items: readonly PromptReply[]): { groups: LengthGroup[]; targets: Int32Array[] } {
  items.forEach((x, i) => {
    if (!x.prompt.length) throw new ConfigError(`rollout ${i}`, 'empty prompt');
    if (!x.reply.length) throw new ConfigError(`rollout ${i}`, 'empty reply');
  });
  const groups = groupByLength(
    items.map((x) => [...x.prompt, ...x.reply].slice(0, -1)),
    'rollout',
  );
  const targets = groups.map((g) => {
    const t = new Int32Array(g.index.length * g.T).fill(-100);
    g.index.forEach((i, b) => {
      const { prompt, reply } = items[i]!;
      for (let j = 0; j < reply.length; j++) t[b * g.T + prompt.length - 1 + j] = reply[j]!;
    });
    return t;
  });
  return { groups, targets };
}

/** Reply-token positions of a group, row-major in (B·T), in item order within the group. */
function replyPositions(g: LengthGroup, items: readonly PromptReply[]): number[] {
  const out: number[] = [];
  g.index.forEach((i, b) => {
    const { prompt, reply } = items[i]!;
    for (let j = 0; j < reply.length; j++) out.push(b * g.T + prompt.length - 1 + j);
  });
  return out;
}

/** Gather positions `pos` of a flat (M,) tensor: (n,), differentiable. */
function gather(flat: Tensor, pos: readonly number[]): Tensor {
  const M = flat.size;
  return O.reshape(O.embedding(O.reshape(flat, [M, 1]), O.ids(pos, [pos.length], flat)), [pos.length]);
}

/** Concatenate per-group token vectors back into item order (items' reply tokens one after another): (n,). */
function inItemOrder(groups: readonly LengthGroup[], items: readonly PromptReply[], parts: Tensor[]): Tensor {
  const all = parts.length === 1 ? parts[0]! : O.concat(parts, 0); // group order
  const start = new Array<number>(items.length);
  let at = 0;
  for (const g of groups) for (const i of g.index) (start[i] = at), (at += items[i]!.reply.length);
  const order: number[] = [];
  items.forEach((x, i) => {
    for (let j = 0; j < x.reply.length; j++) order.push(start[i]! + j);
  });
  return order.every((k, n) => k === n) ? all : gather(all, order);
}

/**
 * log π(reply token | everything before it) under logits / temperature, for every reply token of every item, in item
 * order: (n,) with n = Σ reply lengths. On the tape unless called under noGrad.
 */
export function replyLogprobs(
  model: CausalLM,
  items: readonly PromptReply[],
  temperature: number,
  opts: TrainingOptions = {},
): Tensor {
  const { groups, targets } = replyGroups(items);
  const parts = groups.map((g, k) => {
    const B = g.index.length;
    let logits = model.forward(g.ids, B, g.T, opts); // (B, T, V)
    if (temperature !== 1) logits = O.scale(logits, 1 / temperature);
    const nll = O.crossEntropy(logits, O.ids(targets[k]!, [B * g.T], logits), -100); // (B·T), 0 where ignored
    return O.scale(gather(nll, replyPositions(g, items)), -1); // (n_g,)
  });
  return inItemOrder(groups, items, parts);
}

/** The value model's value of the state before every reply token, in item order: (n,). */
export function replyValues(value: RewardModel, items: readonly PromptReply[], opts: TrainingOptions = {}): Tensor {
  const { groups } = replyGroups(items);
  const C = value.config.hiddenSize;
  const parts = groups.map((g) => {
    const B = g.index.length;
    const h = value.body.hidden(g.ids, B, g.T, opts); // (B, T, C)
    const v = O.linear(O.reshape(h, [B * g.T, C]), value.params.get(SCORE_WEIGHT)!, null); // (B·T, 1)
    return gather(O.reshape(v, [B * g.T]), replyPositions(g, items)); // (n_g,)
  });
  return inItemOrder(groups, items, parts);
}

/** Split a flat per-token vector (item order) into one array per item. */
export function perItem(flat: ArrayLike<number>, items: readonly PromptReply[]): number[][] {
  let at = 0;
  return items.map((x) => {
    const r = Array.from({ length: x.reply.length }, (_, j) => flat[at + j]!);
    at += x.reply.length;
    return r;
  });
}

async function read(fn: () => Tensor): Promise<Float32Array | Float64Array> {
  const t = tidy(() => noGrad(fn));
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

/** The models a rollout is scored with. */
export interface ScoringModels {
  policy: CausalLM;
  reference: CausalLM;
  value: RewardModel;
  reward: RewardModel;
}

/**
 * Score sampled replies (step 2 of the header), `chunk` rollouts per forward. `promptIndex[i]` is the prompt of
 * item i in the run's list.
 */
export async function scoreRollouts(
  m: ScoringModels,
  items: readonly (PromptReply & { ended: boolean; promptIndex: number })[],
  temperature: number,
  /** What the reward model reads for an item (reward_input.ts); default: prompt ++ reply ids as sampled. */
  rewardIds: (x: PromptReply & { promptIndex: number }) => number[] = (x) => [...x.prompt, ...x.reply],
  chunk = 16,
): Promise<Rollout[]> {
  const out: Rollout[] = [];
  for (let s = 0; s < items.length; s += chunk) {
    const part = items.slice(s, s + chunk);
    const lp = perItem(await read(() => replyLogprobs(m.policy, part, temperature)), part);
    const rl = perItem(await read(() => replyLogprobs(m.reference, part, temperature)), part);
    const vs = perItem(await read(() => replyValues(m.value, part)), part);
    const sc = await read(() => m.reward.rewards(part.map(rewardIds)));
    part.forEach((x, i) =>
      out.push({
        prompt: [...x.prompt],
        reply: [...x.reply],
        promptIndex: x.promptIndex,
        ended: x.ended,
        logprobs: lp[i]!,
        refLogprobs: rl[i]!,
        values: vs[i]!,
        score: sc[i]!,
      }),
    );
  }
  return out;
}
