/**
 * The prompts of an RL run (ppo.ts, rloo.ts) made ready for its rollouts and its evaluation:
 *
 *   - the prompts of `data` (rl_prompts.ts), each short enough to leave room for a reply in the context window;
 *   - the last evalFraction of them held out (at least one; at least 2 prompts in all);
 *   - the stop tokens: EOS and the chat template's one-token stop strings (a reply ends at any of them);
 *   - the sampling of the rollouts: responseLength tokens at most, temperature only;
 *   - the evaluation set: the reference's replies to the held-out prompts (each prompt up to 4 times, evalReplies in
 *     all), sampled once with the run seed; a reply of no tokens is scored as the first stop token alone;
 *   - the reward model folder (openRewardModel), checked against the policy's vocabulary.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../backend/backend.js';
import type { ChatTemplate } from '../chat/template.js';
import { loadRewardModel } from '../model/hf/folder.js';
import type { CausalLM } from '../model/model.js';
import type { RewardModel } from '../model/reward.js';
import { ConfigError, FileFormatError } from '../util/errors.js';
import { derivedSeed } from './ppo_batches.js';
import { readPrompts, type ReadPromptsResult, type RlPrompt } from './rl_prompts.js';
import type { PromptReply, ReplySampler, ReplySamplingOptions } from './rollout.js';

/** The settings it reads (PpoConfig and RlooConfig have them). */
export interface RlDataConfig {
  data: string[];
  badRows: 'error' | 'skip';
  evalFraction: number;
  evalReplies: number;
  responseLength: number;
  temperature: number;
  seed: number;
}

export interface RlData {
  read: ReadPromptsResult;
  train: RlPrompt[];
  held: RlPrompt[];
  /** Distinct; never empty. */
  stopTokens: number[];
  /** The rollouts' sampling, less the seed. */
  sampling: Omit<ReplySamplingOptions, 'seed'>;
  /** The reference's replies to the held-out prompts. */
  evalReplies: PromptReply[];
}

/** A reward model folder for `policy` (`--rewardModel`): a named error when it is missing or has another vocabulary. */
export async function openRewardModel(dir: string, backend: Backend, policy: CausalLM): Promise<RewardModel> {
  if (!fs.existsSync(path.join(dir, 'config.json')))
    throw new FileFormatError('E_FILE_MISSING', dir, 'no config.json here: expected a reward model folder');
  const reward = await loadRewardModel(dir, { backend });
  if (reward.config.vocabSize !== policy.config.vocabSize)
    throw new ConfigError(
      'rewardModel',
      `${dir} has a vocabulary of ${reward.config.vocabSize} tokens but the policy ${policy.config.vocabSize}: train the reward model from the same SFT model`,
    );
  return reward;
}

/** The stop tokens of a model folder: EOS and the template's one-token stop strings. */
export function stopTokensOf(
  tok: { eosId?: number | undefined },
  stopStrings: readonly string[],
  encode: (s: string) => number[],
): number[] {
  return [
    ...new Set(
      [
        tok.eosId,
        ...stopStrings
          .map((s) => encode(s))
          .filter((ids) => ids.length === 1)
          .map((ids) => ids[0]),
      ].filter((x): x is number => x !== undefined),
    ),
  ];
}

/** Read, split and encode the prompts, and sample the evaluation set from the reference. */
export async function openRlData(o: {
  c: RlDataConfig;
  /** The trainer's name in the errors ('PPO'). */
  trainer: string;
  /** The policy's folder (named when it has no stop token) and its context window. */
  modelDir: string;
  maxPositions: number;
  tok: { eosId?: number | undefined; encode(text: string, o: { allowed: 'all' }): number[] };
  template: ChatTemplate;
  /** Samples the reference's replies. */
  reference: ReplySampler;
  log: (line: string) => void;
}): Promise<RlData> {
  const { c, tok, template } = o;
  const encode = (t: string) => tok.encode(t, { allowed: 'all' });
  const read = readPrompts(c.data, template, encode, {
    badRows: c.badRows,
    maxPromptLength: o.maxPositions - 1,
    log: o.log,
  });
  const all = read.prompts;
  if (all.length < 2)
    throw new ConfigError(
      'data',
      `${c.data.join(', ')}: ${all.length} usable prompt(s); ${o.trainer} needs at least 2 (one is held out)`,
    );
  const nHeld = Math.max(1, Math.floor(all.length * c.evalFraction));
  const train = all.slice(0, all.length - nHeld),
    held = all.slice(all.length - nHeld);
  const stopTokens = stopTokensOf(tok, template.stopStrings, encode);
  if (!stopTokens.length)
    throw new ConfigError('model', `${o.modelDir}: the tokenizer has no EOS token and the template no stop token`);
  const sampling = { maxTokens: c.responseLength, temperature: c.temperature, stopTokens };
  const evalPrompts = Array.from(
    { length: Math.min(c.evalReplies, held.length * 4) },
    (_, i) => held[i % held.length]!,
  );
  const evalReplies: PromptReply[] = (
    await o.reference.sample(
      evalPrompts.map((p) => p.ids),
      { ...sampling, seed: derivedSeed(c.seed, 5, 0) },
    )
  ).map((r, i) => ({ prompt: evalPrompts[i]!.ids, reply: r.ids.length ? r.ids : [stopTokens[0]!] }));
  return { read, train, held, stopTokens, sampling, evalReplies };
}
