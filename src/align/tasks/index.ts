/**
 * The alignment tasks by name (issue 11): `sotu-desk` (O1), `arithmetic` (O4) and `shakespeare-turns`. Each is
 * generated in code with a fixed split; `getTask(name)` is what `llmts align data` and `align verify` look up.
 */
import type { TrlMessage } from '../../data/trl.js';
import { ConfigError } from '../../util/errors.js';
import { arithmetic } from './arithmetic.js';
import { shakespeareTurns } from './shakespeare_turns.js';
import { sotuDesk } from './sotu_desk.js';
import { type AlignTask, demonstrationRow, type TaskSplit } from './task.js';

export { type AlignTask, type TaskItem, type TaskSplit, TASK_SPLITS, demonstrationRow } from './task.js';

export const TASKS: Record<string, AlignTask> = {
  [sotuDesk.name]: sotuDesk,
  [arithmetic.name]: arithmetic,
  [shakespeareTurns.name]: shakespeareTurns,
};

/** A task by name; an unknown name is a ConfigError listing the tasks. */
export function getTask(name: string, field = 'task'): AlignTask {
  const t = TASKS[name];
  if (!t) throw new ConfigError(field, `unknown task '${name}' (tasks: ${Object.keys(TASKS).join(', ')})`);
  return t;
}

/** A split's prompts (conversations ending with a user turn). */
export function taskPrompts(task: AlignTask, split: TaskSplit): TrlMessage[][] {
  return task.items(split).map((i) => i.prompt);
}

/** The SFT demonstrations of the train prompts, as TRL `{"messages": …}` rows. */
export function taskDemonstrations(task: AlignTask): { messages: TrlMessage[] }[] {
  return task.items('train').map(demonstrationRow);
}
