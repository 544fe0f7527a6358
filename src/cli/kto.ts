/**
 * `llmts kto`: Kahneman–Tversky Optimization of a fine-tuned model on TRL unpaired preference JSONL (thumbs up /
 * down; src/align/kto.ts). The settings are the table in src/align/kto_settings.ts; the command line is
 * pref_command.ts.
 */
import { kto } from '../align/kto.js';
import { buildKtoConfig, KTO_PRESETS, KTO_SETTINGS } from '../align/kto_settings.js';
import { prefMain } from './pref_command.js';
import { chatNext, presetLines } from './recipe_command.js';

function help(): string {
  return `usage: llmts kto <model-dir> <thumbs.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts kto --resume[=runs/NAME] [--maxSteps=N …]
       llmts kto --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Aligns a fine-tuned model (e.g. an 'llmts sft' checkpoint) to unpaired judgments with KTO (Ethayarajh et al. 2024):
each row is one reply with a thumbs up or down, no pairs needed. The data are TRL JSONL, plain or conversational:
  {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello."}], "label": true}
  {"prompt": "The capital of France is", "completion": " Lyon.", "label": false}
Preference rows {"prompt","chosen","rejected"} are read too, each as a desirable and an undesirable row.

The policy starts as the model, the reference is the same model frozen. The implied reward of a reply is
r = log π(y|x) − log π_ref(y|x); the reference point z0 is the batch's KL estimate from mismatched pairs (each row's
prompt with the previous row's completion in its fixed batch), detached and clamped at 0. A desirable row's loss is
desirableWeight·(1 − σ(β(r − z0))), an undesirable row's undesirableWeight·(1 − σ(β(z0 − r))); the loss counts the
completion tokens only. The reference's log-probabilities of every row and every mismatched pair are computed once,
before training, and kept in each checkpoint (reference_logps.json).

metrics.jsonl carries TRL's names: loss, learning_rate, grad_norm, epoch, num_tokens, rewards/chosen,
rewards/rejected, rewards/margins, logps/chosen, logps/rejected, kl, count/chosen, count/rejected ("chosen" =
desirable rows, "rejected" = undesirable ones), and their eval_ forms on the held-out prompts (--evalData, else the
last evalFraction of the prompts).
The checkpoint (runs/NAME/checkpoint) is a causal-LM folder with its chat template: 'llmts chat' talks to it.

Presets (--preset=NAME):
${presetLines(KTO_PRESETS)}

Settings (--key=value or --key value; TRL names such as --learning_rate, --desirable_weight, --undesirable_weight work too):
${KTO_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return prefMain(
    {
      command: 'kto',
      settings: KTO_SETTINGS,
      help,
      build: buildKtoConfig,
      run: kto,
      done: 'KTO',
      next: chatNext,
    },
    argv,
  );
}
