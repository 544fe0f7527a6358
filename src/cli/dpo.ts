/**
 * `llmts dpo`: Direct Preference Optimization of a fine-tuned model on TRL preference JSONL (src/align/dpo.ts).
 * The settings are the table in src/align/dpo_settings.ts; the command line is pref_command.ts.
 */
import { dpo } from '../align/dpo.js';
import { buildDpoConfig, DPO_PRESETS, DPO_SETTINGS } from '../align/dpo_settings.js';
import { prefMain } from './pref_command.js';
import { chatNext, presetLines } from './recipe_command.js';

function help(): string {
  return `usage: llmts dpo <model-dir> <prefs.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts dpo --resume[=runs/NAME] [--maxSteps=N …]
       llmts dpo --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (e.g. an 'llmts sft' checkpoint) to preferences with DPO: the policy starts as the model,
the reference is the same model frozen (its log-probabilities of every pair are computed once, before training).
The data are TRL preference JSONL (as 'llmts reward --help' shows: prompt/chosen/rejected rows, plain or
conversational, or ranking rows). The loss counts the completion tokens only; --lossType chooses sigmoid (DPO),
ipo, hinge or robust (with --labelSmoothing); --beta sets β.

metrics.jsonl carries TRL's names: loss, learning_rate, grad_norm, epoch, num_tokens, rewards/chosen,
rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, and their eval_ forms on the
held-out prompts (--evalData, else the last evalFraction of the prompts).
The checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its chat template: 'llmts chat' talks to it.

Presets (--preset=NAME):
${presetLines(DPO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --learning_rate, --loss_type, --label_smoothing work too):
${DPO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return prefMain(
    {
      command: 'dpo',
      settings: DPO_SETTINGS,
      help,
      build: buildDpoConfig,
      run: dpo,
      done: 'DPO',
      next: chatNext,
    },
    argv,
  );
}
