/**
 * The command line shared by `llmts reward`, `llmts dpo` and `llmts kto` (reward.ts, dpo.ts, kto.ts hold their help
 * text): recipe_command.ts's, closing with the held-out evaluation:
 *
 *   llmts <cmd> <model-dir> <prefs.jsonl …> [--preset=NAME] [--config=FILE.json] [--key=value …]
 *   llmts <cmd> --resume[=runs/NAME]          continue a run exactly where it stopped
 *   llmts <cmd> --report-only runs/NAME       (re)write runs/NAME/report.html and exit
 */
import type { PrefConfig, PrefOptions, PrefResult } from '../align/pref_run.js';
import type { RecipeOptions } from '../train/recipe.js';
import type { Settings, SettingsTable, Values } from '../util/settings.js';
import { recipeMain } from './recipe_command.js';

export interface PrefCommand<T extends SettingsTable> {
  command: 'reward' | 'dpo' | 'kto';
  settings: Settings<T>;
  help: () => string;
  build: (o: { preset?: string; file?: string; overrides?: Partial<Values<T>> }) => Values<T>;
  run: (o: PrefOptions<Values<T> & PrefConfig>) => Promise<PrefResult<Values<T>>>;
  /** The closing lines: what the checkpoint is and what to do next. */
  next: (r: PrefResult<Values<T>>, llmts: string) => string[];
  done: string;
}

export function prefMain<T extends SettingsTable>(spec: PrefCommand<T>, argv: string[]): Promise<number> {
  return recipeMain(
    {
      ...spec,
      run: (o) => spec.run(o as RecipeOptions<Values<T> & PrefConfig>),
      outcome: (r) => {
        const ev = r.finalEval;
        const acc = ev ? (ev['eval_accuracy'] ?? ev['eval_rewards/accuracies']) : undefined;
        // KTO has no pairs, so no accuracy: its held-out rewards/margins says how far apart the two kinds moved
        const margin = spec.command === 'kto' && ev ? ev['eval_rewards/margins'] : undefined;
        return `${ev ? `; eval loss ${Number(ev['eval_loss']).toFixed(4)}` : ''}${acc !== undefined ? `, held-out accuracy ${(acc * 100).toFixed(1)} %` : ''}${margin !== undefined ? `, held-out reward margin ${margin.toFixed(4)} (desirable − undesirable)` : ''}`;
      },
    },
    argv,
  );
}
