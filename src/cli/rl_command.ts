/**
 * The command line shared by `llmts ppo`, `llmts rloo` and `llmts grpo` (ppo.ts, rloo.ts, grpo.ts hold their help text):
 * recipe_command.ts's, closing with the last batch of rollouts and the held-out loss:
 *
 *   llmts <cmd> <sft-dir> <reward …> <prompts.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts <cmd> --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts <cmd> --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import type { RlResult } from '../align/rl_loop.js';
import type { RecipeOptions } from '../train/recipe.js';
import type { Settings, SettingsTable, Values } from '../util/settings.js';
import { chatNext, recipeMain } from './recipe_command.js';

export interface RlCommand<T extends SettingsTable> {
  command: 'ppo' | 'rloo' | 'grpo';
  settings: Settings<T>;
  help: () => string;
  build: (o: { preset?: string; file?: string; overrides?: Partial<Values<T>> }) => Values<T>;
  run: (o: RecipeOptions<Values<T>>) => Promise<RlResult<Values<T>>>;
  /** The algorithm's name, first word of the closing line ('PPO'). */
  done: string;
}

export function rlMain<T extends SettingsTable>(spec: RlCommand<T>, argv: string[]): Promise<number> {
  return recipeMain(
    {
      ...spec,
      outcome: (r) => {
        const b = r.lastBatch;
        return `${b ? `; last batch: score ${b['objective/scores']!.toFixed(3)}, KL ${b['objective/kl']!.toFixed(3)} nats, EOS ${(b['eos_rate']! * 100).toFixed(0)} %` : ''}${r.finalEvalLoss !== null ? `; eval loss ${r.finalEvalLoss.toFixed(4)}` : ''}`;
      },
      next: chatNext,
    },
    argv,
  );
}
