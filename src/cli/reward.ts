/**
 * `llmts reward`: train a reward model from a fine-tuned model folder on TRL preference JSONL (src/align/reward.ts).
 * The settings are the table in src/align/reward_settings.ts; the command line is pref_command.ts.
 */
import { trainRewardModel } from '../align/reward.js';
import { buildRewardConfig, REWARD_PRESETS, REWARD_SETTINGS } from '../align/reward_settings.js';
import { prefMain } from './pref_command.js';
import { presetLines } from './recipe_command.js';

function help(): string {
  return `usage: llmts reward <model-dir> <prefs.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts reward --resume[=runs/NAME] [--maxSteps=N …]
       llmts reward --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Trains a reward model: the body of a fine-tuned model (e.g. an 'llmts sft' checkpoint) with a new score head on the
last token (transformers' *ForSequenceClassification), on TRL preference JSONL, one JSON object per line:
  {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}]}
  {"prompt": "The capital of France is", "chosen": " Paris.", "rejected": " Lyon.", "margin": 1.5}
  {"prompt": "...", "completions": ["a", "b", "c"], "ranking": [2, 0, 1]}      (best first: C(K,2) pairs)
Conversations are rendered with the model's chat template (ChatML when it has none); plain rows get EOS appended.
The loss is Bradley–Terry, −log σ(r_chosen − r_rejected − margin), plus centerRewardsCoefficient · (r_chosen +
r_rejected)²; a batch takes whole prompts (all pairs of one prompt together); the last evalFraction of the prompts
is held out (or --evalData).

metrics.jsonl carries TRL's names: loss, learning_rate, grad_norm, epoch, num_tokens, accuracy, rewards/chosen,
rewards/rejected, rewards/margins, and eval_loss, eval_accuracy, eval_rewards/*, eval_reward_length_correlation
(the correlation of reward with reply length over the held-out replies: near ±1 means the model pays for length).
The checkpoint (runs/NAME/checkpoint) is a *ForSequenceClassification folder with the tokenizer and chat template.

Presets (--preset=NAME):
${presetLines(REWARD_PRESETS)}

Settings (--key=value or --key value; TRL names such as --learning_rate, --center_rewards_coefficient work too):
${REWARD_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return prefMain(
    {
      command: 'reward',
      settings: REWARD_SETTINGS,
      help,
      build: buildRewardConfig,
      run: trainRewardModel,
      done: 'Reward-model training',
      next: (r) => [`checkpoint (a *ForSequenceClassification folder): ${r.checkpointDir}`],
    },
    argv,
  );
}
