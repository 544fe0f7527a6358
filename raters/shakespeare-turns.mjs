/**
 * A simple public rater of the `shakespeare-turns` task, to exercise the plumbing (the task's real raters are not
 * public). A plain ES module that runs with `node` alone; the vocabulary is the shipped data/tinyshakespeare.txt.
 *
 *   score = [1 or 2 lines] + [4 to 24 words] + [ends with '.', '!' or '?'] + (share of its words found in
 *           tinyshakespeare) − [it repeats the user's line] − 3·[gibberish]
 *
 * words: lower-cased runs of letters and apostrophes; "repeats": the reply equals the last user turn after lower
 * casing and dropping everything but letters; gibberish: the rule of raters/sotu-desk.mjs. compare prefers the
 * higher score, 'tie' when |score(a) − score(b)| < 0.05. No randomness: `options.seed` is accepted and unused.
 */
import fs from 'node:fs';
import { isGibberish } from './sotu-desk.mjs';

const VOCAB = new Set(
  fs
    .readFileSync(new URL('../data/tinyshakespeare.txt', import.meta.url), 'utf8')
    .toLowerCase()
    .match(/[a-z']+/g),
);
const words = (s) => s.toLowerCase().match(/[a-z']+/g) ?? [];
const letters = (s) => s.toLowerCase().replace(/[^a-z]/g, '');
export const TIE = 0.05;

export function turnScore(prompt, reply) {
  const r = reply.trim();
  const lines = r.split('\n').filter((l) => l.trim()).length;
  const w = words(r);
  const known = w.length ? w.filter((x) => VOCAB.has(x)).length / w.length : 0;
  const users = prompt.filter((m) => m.role === 'user');
  const parrot = users.length > 0 && letters(r) !== '' && letters(r) === letters(users.at(-1).content);
  return (
    (lines >= 1 && lines <= 2 ? 1 : 0) +
    (w.length >= 4 && w.length <= 24 ? 1 : 0) +
    (/[.!?]$/.test(r) ? 1 : 0) +
    known -
    (parrot ? 1 : 0) -
    3 * (isGibberish(r) ? 1 : 0)
  );
}

export function makeOracle(_options = {}) {
  return {
    name: 'shakespeare-turns-plumbing',
    score: (prompt, reply) => turnScore(prompt, reply),
    compare(prompt, a, b) {
      const d = turnScore(prompt, a) - turnScore(prompt, b);
      return Math.abs(d) < TIE ? 'tie' : d > 0 ? 'a' : 'b';
    },
  };
}
