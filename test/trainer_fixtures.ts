/**
 * One small data set for every alignment trainer, for tests that run them all on two backends
 * (test/staged_loss.test.ts, test/webgpu_rlhf.test.ts): a tiny SFT policy and a probe reward model
 * (./ppo_helpers.ts) with prompt-only rows (PPO, RLOO), a tiny base model (./sft_helpers.ts) with conversations
 * (SFT), preference pairs (DPO, reward model) and thumbs (KTO: every third reply undesirable).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeProbeRewardModel, makeSftPolicy, promptRows } from './ppo_helpers.js';
import { prefRows } from './prefs_helpers.js';
import { colorRows, makeTinyModel, writeJsonl } from './sft_helpers.js';

export interface TrainerFixtures {
  /** The temporary folder holding everything (the caller removes it). */
  tmp: string;
  sftDir: string;
  rmDir: string;
  prompts: string;
  base: string;
  chats: string;
  pairs: string;
  pairsEval: string;
  thumbs: string;
}

/** Write the fixtures into a new temporary folder; `n` rows of each kind (the held-out pairs: n / 3). */
export async function makeTrainerFixtures(label: string, n: number): Promise<TrainerFixtures> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `llmts-${label}-`));
  const sftDir = await makeSftPolicy(tmp, 30);
  const base = path.join(tmp, 'base');
  await makeTinyModel(base);
  const file = (name: string, rows: Record<string, unknown>[]) => writeJsonl(path.join(tmp, name), rows);
  return {
    tmp,
    sftDir,
    rmDir: (await makeProbeRewardModel(sftDir, path.join(tmp, 'rm'))).dir,
    prompts: file('prompts.jsonl', promptRows(n)),
    base,
    chats: file('chats.jsonl', colorRows(2 * n, 5)),
    pairs: file('pairs.jsonl', prefRows(n, 1)),
    pairsEval: file('pairs-eval.jsonl', prefRows(Math.ceil(n / 3), 2, { offset: 1000 })),
    thumbs: file(
      'thumbs.jsonl',
      prefRows(n, 3).map((r, i) => ({
        prompt: r['prompt'],
        completion: r[i % 3 ? 'chosen' : 'rejected'],
        label: !!(i % 3),
      })),
    ),
  };
}
