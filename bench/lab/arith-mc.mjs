// Multiple-choice arithmetic questions for `llmts eval`: n two-digit additions (a seeded draw) that none of a prompts
// file's questions ask, each rendered with a checkpoint's own chat template as the context, the right sum among three
// near misses (±1, ±10, ±11, −9: the errors a weak adder makes) as "The answer is N." choices.
// usage: npm run build:ts && node bench/lab/arith-mc.mjs <checkpoint> <prompts.jsonl> <out.jsonl> [--n 200] [--seed 2026]
//        node bin/llmts.js eval <checkpoint> <out.jsonl>
import fs from 'node:fs';
import { chatmlTemplate, loadChatTemplate } from '../../dist/chat/template.js';
import { Rng } from '../../dist/util/rng.js';
import { exitIfHelp } from '../machine.mjs';

exitIfHelp(import.meta.url);
const argv = process.argv.slice(2);
/** The value after flag k, else d. @param {string} k @param {string} d @returns {string} */
const opt = (k, d) => {
  const i = argv.indexOf(k);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : d;
};
const [checkpoint, promptsFile, out] = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
if (!checkpoint || !promptsFile || !out) {
  console.error('usage: node bench/lab/arith-mc.mjs <checkpoint> <prompts.jsonl> <out.jsonl> [--n 200] [--seed 2026]');
  process.exit(2);
}
const n = Number(opt('--n', '200'));
const tpl = await loadChatTemplate(checkpoint, () => chatmlTemplate());
const rng = new Rng(Number(opt('--seed', '2026')));
/** The questions the prompts file asks (its first user message). */
const seen = new Set(
  fs
    .readFileSync(promptsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const p = JSON.parse(l).prompt;
      return typeof p === 'string' ? p : p[0].content;
    }),
);
const rows = [];
while (rows.length < n) {
  const a = 10 + rng.int(90),
    b = 10 + rng.int(90);
  const q = `What is ${a}+${b}?`;
  if (seen.has(q)) continue;
  seen.add(q);
  const s = a + b;
  const wrong = [...new Set([s + 1, s - 1, s + 10, s - 10, s + 11, s - 9].filter((x) => x > 0 && x !== s))];
  rng.shuffle(wrong);
  const choices = [s, ...wrong.slice(0, 3)].map((x) => `The answer is ${x}.`);
  rng.shuffle(choices);
  rows.push({
    context: tpl.render([{ role: 'user', content: q }]),
    choices,
    answer: choices.indexOf(`The answer is ${s}.`),
  });
}
fs.writeFileSync(out, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
console.log(`wrote ${out}: ${rows.length} questions (${tpl.kind} template of ${checkpoint})`);
