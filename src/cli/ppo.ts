/**
 * `llmts ppo`: PPO with a KL leash (src/align/ppo.ts), on the command line of rl_command.ts:
 *
 *   llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts ppo --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts ppo --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import { ppo } from '../align/ppo.js';
import { buildPpoConfig, PPO_PRESETS, PPO_SETTINGS } from '../align/ppo_settings.js';
import { presetLines } from './recipe_command.js';
import { rlMain } from './rl_command.js';

function help(): string {
  return `usage: llmts ppo <sft-dir> --rewardModel <rm-dir> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts ppo --resume[=runs/NAME] [--totalEpisodes=N …]
       llmts ppo --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (an 'llmts sft' checkpoint) to a reward model (an 'llmts reward' checkpoint) with PPO, as
TRL's PPOTrainer: batches of replies sampled from the policy (temperature only) are scored by the reward model, with
a per-token KL penalty −β·KL(π‖π_ref) to the frozen starting model (k1, or k3 with --klEstimator=k3; β fixed, or
steered to --targetKl by the adaptive controller), the score at the reply's last token (minus --missingEosPenalty
when the reply has no stop token), GAE (γ, λ), whitened advantages, the clipped policy loss and the clipped value loss,
--ppoEpochs passes over each batch in minibatches. The value model is a trained copy of the reward model
(--valueModel=reward) or a head on the policy (--valueModel=policy).

The prompts are TRL prompt-only JSONL: {"prompt": "text"} or {"prompt": [{"role": "user", "content": "..."}]}
(rendered with the chat template through the generation prompt). The last evalFraction of them are held out: the
reference's replies to them are the evaluation set (eval_loss: the policy's per-token cross-entropy on them).

metrics.jsonl carries TRL's names: objective/kl, objective/scores, objective/rlhf_reward, objective/non_score_reward,
objective/entropy, objective/kl_coef, policy/approxkl_avg, policy/clipfrac_avg, loss/policy_avg, loss/value_avg,
val/clipfrac_avg, val/ratio, val/ratio_var, val/num_eos_tokens, reply_length, eos_rate, episode, learning_rate,
grad_norm, eval_loss. The checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its chat template ('llmts chat'
talks to it), with value_model/ and ppo_state.json for --resume.

Presets (--preset=NAME):
${presetLines(PPO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --kl_coef, --num_ppo_epochs, --missing_eos_penalty work too):
${PPO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return rlMain({ command: 'ppo', settings: PPO_SETTINGS, help, build: buildPpoConfig, run: ppo, done: 'PPO' }, argv);
}
