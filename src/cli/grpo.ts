/**
 * `llmts grpo`: GRPO, Group Relative Policy Optimization (src/align/grpo.ts), on the command line of rl_command.ts
 * (as `llmts rloo`):
 *
 *   llmts grpo <sft-dir> --reward <reward.mjs> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts grpo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> …
 *   llmts grpo --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts grpo --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import { grpo } from '../align/grpo.js';
import { buildGrpoConfig, GRPO_PRESETS, GRPO_SETTINGS } from '../align/grpo_settings.js';
import { presetLines } from './recipe_command.js';
import { rlMain } from './rl_command.js';

function help(): string {
  return `usage: llmts grpo <sft-dir> --reward <reward.mjs> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts grpo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> …
       llmts grpo --resume[=runs/NAME] [--totalEpisodes=N …]
       llmts grpo --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (an 'llmts sft' checkpoint) to a reward with GRPO (Group Relative Policy Optimization;
Shao et al. 2024, DeepSeekMath), as TRL's GRPOTrainer: --numGenerations replies are sampled for each prompt from the
policy (temperature only, batched with a KV cache); each reply's advantage is its reward minus its group's mean
reward, divided by the group's std (--scaleRewards=group; batch or none); every token of the reply takes it in the
clipped per-token surrogate, clip(ρ, 1 − epsilon, 1 + epsilonHigh), plus --beta × the k3 KL to the frozen reference
(β 0 by default, as TRL), averaged by --lossType (dapo; grpo, bnpo, dr_grpo; --maskTruncatedCompletions leaves out
replies cut off without a stop token), over --ppoEpochs (TRL's num_iterations, 1) passes of each batch in
minibatches. No value model.

The reward is a verifiable function (--reward FILE.mjs: an ES module exporting reward(prompt, reply) → number, or a
rater module exporting makeOracle, whose score is used; prompt is the conversation [{role, content}, …], reply the
decoded reply without its stop token; several, --reward=a.mjs,b.mjs, are summed with --rewardWeights, each one's
mean and std logged as rewards/<name>/mean and /std), or a reward model (--rewardModel DIR, an 'llmts reward'
checkpoint).

The prompts are TRL prompt-only JSONL: {"prompt": "text"} or {"prompt": [{"role": "user", "content": "..."}]}
(rendered with the chat template through the generation prompt). The last evalFraction of them are held out: the
reference's replies to them are the evaluation set (eval_loss: the policy's per-token cross-entropy on them).

metrics.jsonl carries TRL's names: reward, reward_std, frac_reward_zero_std, completions/mean_length,
completions/min_length, completions/max_length, completions/clipped_ratio, kl, clip_ratio/low_mean,
clip_ratio/high_mean, clip_ratio/region_mean, plus loss/policy_avg, objective/raw_scores, reply_length, eos_rate,
episode, learning_rate, grad_norm, eval_loss. The checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its
chat template ('llmts chat' talks to it), with grpo_state.json for --resume.

Presets (--preset=NAME):
${presetLines(GRPO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --num_generations, --num_iterations, --loss_type work too):
${GRPO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return rlMain(
    { command: 'grpo', settings: GRPO_SETTINGS, help, build: buildGrpoConfig, run: grpo, done: 'GRPO' },
    argv,
  );
}
