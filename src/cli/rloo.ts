/**
 * `llmts rloo`: RLOO, REINFORCE with a leave-one-out baseline (src/align/rloo.ts), on the command line of
 * rl_command.ts (as `llmts ppo`):
 *
 *   llmts rloo <sft-dir> --reward <reward.mjs> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts rloo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> …
 *   llmts rloo --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts rloo --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import { rloo } from '../align/rloo.js';
import { buildRlooConfig, RLOO_PRESETS, RLOO_SETTINGS } from '../align/rloo_settings.js';
import { presetLines } from './recipe_command.js';
import { rlMain } from './rl_command.js';

function help(): string {
  return `usage: llmts rloo <sft-dir> --reward <reward.mjs> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts rloo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> …
       llmts rloo --resume[=runs/NAME] [--totalEpisodes=N …]
       llmts rloo --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (an 'llmts sft' checkpoint) to a reward with RLOO (REINFORCE Leave-One-Out; Ahmadian et
al. 2024), as TRL's RLOOTrainer: --rlooK replies are sampled for each prompt from the policy (temperature only,
batched with a KV cache); each reply's reward is its score minus β·KL(π‖π_ref) summed over its tokens (k1, or k3
with --klEstimator=k3; minus --missingEosPenalty when it has no stop token); its advantage is its reward minus the
mean reward of the other k − 1 replies to the same prompt; the loss is the clipped sequence-level ratio loss, over
--ppoEpochs passes of each batch in minibatches. No value model.

The reward is a verifiable function (--reward FILE.mjs: an ES module exporting reward(prompt, reply) → number, or a
rater module exporting makeOracle, whose score is used; prompt is the conversation [{role, content}, …], reply the
decoded reply without its stop token; several, --reward=a.mjs,b.mjs, are summed with --rewardWeights, each one's
mean and std logged as rewards/<name>/mean and /std), or a reward model (--rewardModel DIR, an 'llmts reward'
checkpoint).

The prompts are TRL prompt-only JSONL: {"prompt": "text"} or {"prompt": [{"role": "user", "content": "..."}]}
(rendered with the chat template through the generation prompt). The last evalFraction of them are held out: the
reference's replies to them are the evaluation set (eval_loss: the policy's per-token cross-entropy on them).

metrics.jsonl carries TRL's names: objective/kl, objective/scores, objective/rlhf_reward, objective/non_score_reward,
objective/entropy, objective/kl_coef, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg, val/ratio,
val/ratio_var, val/num_eos_tokens, reply_length, eos_rate, episode, learning_rate, grad_norm, eval_loss. The
checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its chat template ('llmts chat' talks to it), with
rloo_state.json for --resume.

Presets (--preset=NAME):
${presetLines(RLOO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --rloo_k, --kl_coef, --num_ppo_epochs work too):
${RLOO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return rlMain(
    { command: 'rloo', settings: RLOO_SETTINGS, help, build: buildRlooConfig, run: rloo, done: 'RLOO' },
    argv,
  );
}
