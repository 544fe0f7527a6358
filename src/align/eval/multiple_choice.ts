/**
 * Multiple-choice evaluation by log-likelihood, as lm-evaluation-harness scores its `multiple_choice` tasks
 * (HellaSwag, ARC, PIQA, …): each choice is a continuation of the question's context; the model picks the choice of
 * highest log-likelihood (`acc`), or of highest log-likelihood per character of the choice (`acc_norm`, which does
 * not favour short answers). A choice is encoded as the harness encodes a (context, continuation) pair: the context's
 * trailing spaces move to the continuation, the continuation's ids are those of context + continuation after the
 * context's own, so a word merged across the boundary is scored as the model reads it.
 *
 * Questions are JSONL rows: {"context": "…", "choices": ["…", …], "answer": <index>}, also spelled as the harness's
 * processed documents (`query` / `ctx`, `endings` / `options`, `gold` / `label`, a label may be a numeric string).
 * They are trusted text: a chat template's markers in a context are the special tokens they spell (`llmts eval`
 * encodes so, as the harness's Hugging Face tokenizer does).
 * Accuracy comes with its 95 % Wilson interval (./judge.ts).
 */
import fs from 'node:fs';
import { TrlRowError } from '../../data/trl.js';
import { continuationLogprobs } from '../../model/continuations.js';
import type { CausalLM } from '../../model/model.js';
import { ConfigError } from '../../util/errors.js';
import { wilsonInterval } from './judge.js';

export interface ChoiceQuestion {
  context: string;
  choices: string[];
  /** Index of the right choice. */
  answer: number;
}

const CONTEXT_KEYS = ['context', 'query', 'ctx', 'question'];
const CHOICE_KEYS = ['choices', 'endings', 'options'];
const ANSWER_KEYS = ['answer', 'gold', 'label'];

/** The questions of a JSONL file (a bad row: a TrlRowError naming the file, line and field). */
export function readChoiceQuestions(file: string): ChoiceQuestion[] {
  if (!fs.existsSync(file)) throw new ConfigError('questions', `no such file: ${file}`);
  const out: ChoiceQuestion[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const n = i + 1;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (e) {
        throw new TrlRowError(file, n, '', `not JSON: ${(e as Error).message}`);
      }
      if (typeof row !== 'object' || row === null || Array.isArray(row))
        throw new TrlRowError(file, n, '', 'expected an object {"context", "choices", "answer"}');
      const r = row as Record<string, unknown>;
      const pick = (keys: string[]) => keys.find((k) => r[k] !== undefined);
      const ck = pick(CONTEXT_KEYS),
        chk = pick(CHOICE_KEYS),
        ak = pick(ANSWER_KEYS);
      if (!ck || typeof r[ck] !== 'string')
        throw new TrlRowError(
          file,
          n,
          ck ?? 'context',
          `expected the question's text as a string (${CONTEXT_KEYS.join(', ')})`,
        );
      const choices = chk ? r[chk] : undefined;
      if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string' && c !== ''))
        throw new TrlRowError(file, n, chk ?? 'choices', 'expected a list of at least two non-empty strings');
      const raw = ak ? r[ak] : undefined;
      const answer = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof answer !== 'number' || !Number.isInteger(answer) || answer < 0 || answer >= choices.length)
        throw new TrlRowError(
          file,
          n,
          ak ?? 'answer',
          `expected the right choice's index in 0 … ${choices.length - 1}, got ${JSON.stringify(raw)}`,
        );
      out.push({ context: r[ck] as string, choices: choices as string[], answer });
    });
  if (!out.length) throw new ConfigError('questions', `${file} holds no question`);
  return out;
}

export interface ChoiceResult {
  /** Log-likelihood of each choice. */
  logprobs: number[];
  /** The choice of highest log-likelihood, and of highest log-likelihood per character. */
  pick: number;
  pickNorm: number;
}

export interface MultipleChoiceReport {
  n: number;
  acc: number;
  accNorm: number;
  /** 95 % Wilson intervals. */
  accInterval: { low: number; high: number };
  accNormInterval: { low: number; high: number };
  /** Expected accuracy of a uniform guess: the mean of 1 / choices. */
  chance: number;
  results: ChoiceResult[];
}

/** (context, continuation) → (context ids, continuation ids), as the harness's _encode_pair. */
export function encodePair(
  encode: (text: string) => number[],
  context: string,
  continuation: string,
  bos?: number,
): { context: number[]; continuation: number[] } {
  const spaces = context.length - context.trimEnd().length;
  if (spaces > 0) {
    continuation = context.slice(context.length - spaces) + continuation;
    context = context.slice(0, context.length - spaces);
  }
  const whole = encode(context + continuation);
  const ctx = encode(context);
  const pre = bos !== undefined ? [bos] : [];
  return { context: [...pre, ...ctx], continuation: whole.slice(ctx.length) };
}

/** Score `questions` with `model` (see the top of this file). */
export async function evalMultipleChoice(
  model: CausalLM,
  encode: (text: string) => number[],
  questions: readonly ChoiceQuestion[],
  opts: { bos?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<MultipleChoiceReport> {
  const results: ChoiceResult[] = [];
  let right = 0,
    rightNorm = 0,
    chance = 0;
  for (const q of questions) {
    const pairs = q.choices.map((c) => encodePair(encode, q.context, c, opts.bos));
    const ctx = pairs[0]!.context;
    // a choice that merges with the context's last token gets its own context; the rest share one batch
    const shared = pairs.every((p) => p.context.length === ctx.length && p.context.every((id, i) => id === ctx[i]));
    const scores = shared
      ? await continuationLogprobs(
          model,
          ctx,
          pairs.map((p) => p.continuation),
        )
      : (await Promise.all(pairs.map((p) => continuationLogprobs(model, p.context, [p.continuation])))).flat();
    const logprobs = scores.map((s) => s.logprob);
    const argmax = (xs: number[]) => xs.reduce((best, x, i) => (x > xs[best]! ? i : best), 0);
    const pick = argmax(logprobs);
    const pickNorm = argmax(logprobs.map((lp, i) => lp / q.choices[i]!.length));
    if (pick === q.answer) right++;
    if (pickNorm === q.answer) rightNorm++;
    chance += 1 / q.choices.length;
    results.push({ logprobs, pick, pickNorm });
    opts.onProgress?.(results.length, questions.length);
  }
  const n = questions.length;
  return {
    n,
    acc: right / n,
    accNorm: rightNorm / n,
    accInterval: wilsonInterval(right, n),
    accNormInterval: wilsonInterval(rightNorm, n),
    chance: chance / n,
    results,
  };
}
