/**
 * `arithmetic`: "What is 47+38?" with exact integer answers (issue 11's O4 task, a verifiable reward for RLOO).
 * Problems in a few operand formats — two 2-digit numbers, a 1-digit and a 2-digit one, a 3-digit and a 2-digit one
 * (sums), 2-digit differences that stay ≥ 0, and products of a 1-digit and a 1- or 2-digit number — written as
 * `a+b`, `a + b` or `a plus b` (likewise `-`/`minus`, `*`/`times`). Generated from a fixed seed; the split is by
 * problem (the same sum in another spelling is on the same side). Demonstrations are exact, in three styles, and
 * end with the answer (raters/arithmetic.mjs reads the last number of a reply).
 */
import { Rng } from '../../util/rng.js';
import { type AlignTask, raterFile, splitByKey, type TaskItem, type TaskSplit } from './task.js';

export const ARITHMETIC = 'arithmetic';
/** Problems in the train split and held out. */
export const ARITHMETIC_TRAIN = 2000;
export const ARITHMETIC_HELDOUT = 500;
const SEED = 20_260_411;

type Op = '+' | '-' | '*';
const WORDS: Record<Op, string> = { '+': 'plus', '-': 'minus', '*': 'times' };

export interface Problem {
  a: number;
  op: Op;
  b: number;
}
export const solve = (p: Problem): number => (p.op === '+' ? p.a + p.b : p.op === '-' ? p.a - p.b : p.a * p.b);

/** A random problem in one of the operand formats. */
function draw(rng: Rng): Problem {
  const int = (lo: number, hi: number) => lo + rng.int(hi - lo + 1);
  switch (rng.int(5)) {
    case 0:
      return { a: int(10, 99), op: '+', b: int(10, 99) };
    case 1:
      return rng.random() < 0.5 ? { a: int(1, 9), op: '+', b: int(10, 99) } : { a: int(10, 99), op: '+', b: int(1, 9) };
    case 2:
      return { a: int(100, 999), op: '+', b: int(10, 99) };
    case 3: {
      const a = int(10, 99);
      return { a, op: '-', b: int(1, a) };
    }
    default:
      return { a: int(2, 9), op: '*', b: int(2, 40) };
  }
}

const keyOf = (p: Problem): string => `${p.a}${p.op}${p.b}`;

/** One problem as a task item: the question in one of three spellings, the demonstration in one of three styles. */
function itemOf(p: Problem, rng: Rng): TaskItem {
  const expr = [`${p.a}${p.op}${p.b}`, `${p.a} ${p.op} ${p.b}`, `${p.a} ${WORDS[p.op]} ${p.b}`][rng.int(3)]!;
  const x = solve(p);
  const demonstration = [`${x}.`, `${p.a} ${p.op} ${p.b} = ${x}.`, `The answer is ${x}.`][rng.int(3)]!;
  return { key: keyOf(p), prompt: [{ role: 'user', content: `What is ${expr}?` }], demonstration };
}

function generate(): TaskItem[] {
  const rng = new Rng(SEED);
  const seen = new Set<string>();
  const items: TaskItem[] = [];
  while (items.length < ARITHMETIC_TRAIN + ARITHMETIC_HELDOUT) {
    const p = draw(rng);
    if (seen.has(keyOf(p))) continue;
    seen.add(keyOf(p));
    items.push(itemOf(p, rng));
  }
  return items;
}

/**
 * `count` more training problems drawn from the task's formats (repeats allowed, a held-out problem never, in any
 * spelling), for teaching a model arithmetic before SFT on the task's own demonstrations: 2,000 problems are too few
 * for a small model to learn carrying from, and RLOO needs a model that gets some answers right.
 */
export function arithmeticDrill(count: number, seed: number): TaskItem[] {
  const held = new Set(arithmetic.items('heldout').map((i) => i.key));
  const rng = new Rng(seed);
  const out: TaskItem[] = [];
  while (out.length < count) {
    const p = draw(rng);
    if (!held.has(keyOf(p))) out.push(itemOf(p, rng));
  }
  return out;
}

let splits: Record<TaskSplit, TaskItem[]> | null = null;

export const arithmetic: AlignTask = {
  name: ARITHMETIC,
  description: 'integer arithmetic questions ("What is 47+38?"), exact answers',
  oracleFile: raterFile(ARITHMETIC),
  items(split) {
    splits ??= splitByKey(ARITHMETIC, generate(), ARITHMETIC_HELDOUT);
    return splits[split];
  },
};
