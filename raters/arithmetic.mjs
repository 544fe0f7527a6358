/**
 * O4 "exact match": the public rater of the `arithmetic` alignment task (issue 11), a verifiable reward for RLOO.
 * A plain ES module that runs with `node` alone.
 *
 * The last user turn is parsed as `a OP b` (OP: + - * × x, or plus minus times; integers, optionally negative)
 * and solved; score(prompt, reply) = 1 when the last integer in the reply (commas between thousands allowed,
 * a leading '-' read as a sign) equals the answer, else 0. A question it cannot parse scores 0. compare prefers the
 * reply with the higher score; equal scores are a tie. No randomness: `options.seed` is accepted and unused.
 */

const OPS = {
  '+': (a, b) => a + b,
  plus: (a, b) => a + b,
  '-': (a, b) => a - b,
  minus: (a, b) => a - b,
  '−': (a, b) => a - b,
};
for (const k of ['*', '×', 'x', 'times']) OPS[k] = (a, b) => a * b;

const QUESTION = /(-?\d+)\s*(\+|-|−|\*|×|x|plus|minus|times)\s*(-?\d+)/i;

/** The answer to the last user turn, or null. */
export function solveQuestion(prompt) {
  const users = prompt.filter((m) => m.role === 'user');
  const m = users.length ? QUESTION.exec(users.at(-1).content) : null;
  return m ? OPS[m[2].toLowerCase()](Number(m[1]), Number(m[3])) : null;
}

/** The last integer written in a reply, or null. */
export function lastNumber(reply) {
  const all = reply.match(/(?<![\d,])-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+/g);
  if (!all) return null;
  const s = all.at(-1);
  // "83-27" puts a '-' between two numbers: a sign only where no digit comes before it
  const at = reply.lastIndexOf(s);
  const signed = s.startsWith('-') && at > 0 && /\d/.test(reply[at - 1]) ? s.slice(1) : s;
  return Number(signed.replace(/,/g, ''));
}

export function exactMatch(prompt, reply) {
  const want = solveQuestion(prompt);
  return want !== null && lastNumber(reply) === want ? 1 : 0;
}

export function makeOracle(_options = {}) {
  return {
    name: 'arithmetic-exact-match',
    score: (prompt, reply) => exactMatch(prompt, reply),
    compare(prompt, a, b) {
      const d = exactMatch(prompt, a) - exactMatch(prompt, b);
      return d === 0 ? 'tie' : d > 0 ? 'a' : 'b';
    },
  };
}
