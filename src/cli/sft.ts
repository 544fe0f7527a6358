/**
 * `llmts sft`: supervised fine-tuning of a pretrained model on TRL-format JSONL (src/align/sft.ts).
 *
 *   llmts sft <model-dir> <data.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts sft --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts sft --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 *
 * The settings are the table in src/align/sft_settings.ts; the command line is recipe_command.ts's.
 */
import { sft } from '../align/sft.js';
import { buildSftConfig, SFT_PRESETS, SFT_SETTINGS } from '../align/sft_settings.js';
import { chatNext, presetLines, recipeMain } from './recipe_command.js';

function help(): string {
  return `usage: llmts sft <model-dir> <data.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
       llmts sft --resume[=runs/NAME] [--maxSteps=N …]
       llmts sft --report-only runs/NAME     (re)write runs/NAME/report.html from its metrics.jsonl

Fine-tunes a pretrained model (a Hugging Face folder with config.json, model.safetensors and tokenizer.json, e.g.
a checkpoint of 'llmts train') on TRL-format JSONL, one JSON object per line:
  {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
  {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}
  {"prompt": "The capital of France is", "completion": " Paris."}
  {"text": "plain text to continue"}
Conversations are rendered with the model's chat template (ChatML when it has none); the loss counts only the
assistant replies (their text and the end-of-turn token) or the completion (+ EOS): --completionOnly=false counts
every token. Roles are system, user and assistant. A bad row stops the run naming file and line (--badRows=skip
skips and counts it); examples longer than maxLength are truncated and counted. Batches pad to their longest example.

metrics.jsonl carries TRL's names: loss, learning_rate, grad_norm, epoch, num_tokens, mean_token_accuracy, and
eval_loss, eval_mean_token_accuracy on the held-out rows (--evalData, else the last evalFraction of the rows).
The checkpoint (runs/NAME/checkpoint) is a Hugging Face folder with the tokenizer and the chat template it was
tuned with: 'llmts chat runs/NAME/checkpoint' talks to it.

Presets (--preset=NAME):
${presetLines(SFT_PRESETS)}

Settings (--key=value or --key value; TRL names such as --learning_rate, --num_train_epochs, --max_length work too):
${SFT_SETTINGS.describe()}

Ctrl-C finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.`;
}

export function main(argv: string[]): Promise<number> {
  return recipeMain(
    {
      command: 'sft',
      settings: SFT_SETTINGS,
      help,
      build: buildSftConfig,
      run: sft,
      done: 'Fine-tuning',
      outcome: (r) => (r.finalEvalLoss !== null ? `; eval loss ${r.finalEvalLoss.toFixed(4)}` : ''),
      next: chatNext,
    },
    argv,
  );
}
