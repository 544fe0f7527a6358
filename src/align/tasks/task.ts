/**
 * What an alignment task is (issue 11): prompts generated in code, deterministic, with a fixed split by prompt —
 * `train` prompts for the trainers (with SFT demonstrations), `heldout` prompts for evaluation only — and the
 * public rater that judges replies to them. One file per task in this folder; index.ts is the registry.
 */
import { fileURLToPath } from 'node:url';
import type { TrlMessage } from '../../data/trl.js';

export type TaskSplit = 'train' | 'heldout';
export const TASK_SPLITS: readonly TaskSplit[] = ['train', 'heldout'];

/** One prompt of a task. */
export interface TaskItem {
  /** A stable key (what the split hashes): the same fact asked in other words has the same key. */
  key: string;
  /** The conversation so far, ending with the user turn to answer. */
  prompt: TrlMessage[];
  /** The demonstration reply (train prompts only). */
  demonstration?: string;
}

export interface AlignTask {
  name: string;
  /** One line: what the prompts are. */
  description: string;
  /** The public rater module (raters/NAME.mjs in the package). */
  oracleFile: string;
  /** The split's prompts, in a fixed order. */
  items(split: TaskSplit): readonly TaskItem[];
}

/** The conversation of a train item with its demonstration: TRL's `{"messages": …}` SFT row. */
export function demonstrationRow(item: TaskItem): { messages: TrlMessage[] } {
  if (item.demonstration === undefined) throw new Error(`task item ${item.key} has no demonstration`);
  return { messages: [...item.prompt, { role: 'assistant', content: item.demonstration }] };
}

/** The shipped public rater of a task: raters/{name}.mjs at the package root. */
export function raterFile(name: string): string {
  return fileURLToPath(new URL(`../../../raters/${name}.mjs`, import.meta.url));
}

/** FNV-1a, 32 bits: a fixed hash of a key (the split must not change between versions of Node or of this code). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Split items by their key: the keys ranked by hash (salted with the task name), the first `heldout` keys held out.
 * Items sharing a key fall on the same side. Order inside each split is the input order.
 */
export function splitByKey(task: string, items: readonly TaskItem[], heldout: number): Record<TaskSplit, TaskItem[]> {
  const keys = [...new Set(items.map((i) => i.key))];
  const ranked = keys
    .map((k) => ({ k, h: fnv1a(`${task}\u0000${k}`) }))
    .sort((a, b) => a.h - b.h || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const held = new Set(ranked.slice(0, heldout).map((r) => r.k));
  return {
    train: items.filter((i) => !held.has(i.key)),
    heldout: items.filter((i) => held.has(i.key)).map(({ demonstration: _, ...rest }) => rest),
  };
}
