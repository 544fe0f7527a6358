/**
 * The alignment tasks (src/align/tasks): generated the same way every time (a fresh module instance regenerates
 * them), a fixed split by prompt with no prompt on both sides, ≥ 400 held-out prompts where the issue asks for
 * them, and answers checked against the sources themselves: the State of the Union facts against the dataset's
 * JSON files (their year / name / party fields, not the file names the task reads), sums computed here, and
 * Shakespeare turns found in the text.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { arithmeticDrill } from '../src/align/tasks/arithmetic.js';
import { getTask, TASKS, taskDemonstrations, taskPrompts } from '../src/align/tasks/index.js';
import { REPLY_STYLES, SOTU_WRONG_RATE } from '../src/align/tasks/sotu_desk.js';
import { sotuFacts } from '../src/align/tasks/sotu_facts.js';
import { defaultCorpusDir } from '../src/data/corpus.js';
import { ConfigError } from '../src/util/errors.js';
import { SHAKESPEARE } from './helpers.js';

/** Every address as the dataset's JSON files state it. */
function jsonAddresses(): { year: number; name: string; party: string }[] {
  const dir = defaultCorpusDir();
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const j = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { year: number; name: string; party: string };
      return { year: j.year, name: j.name, party: j.party };
    });
}

const digest = (xs: readonly string[]) => createHash('sha256').update(xs.join('\n')).digest('hex').slice(0, 16);

describe('alignment tasks', () => {
  it('the registry: three tasks by name, an unknown name is a ConfigError listing them', () => {
    expect(Object.keys(TASKS).sort()).toEqual(['arithmetic', 'shakespeare-turns', 'sotu-desk']);
    expect(() => getTask('sotu')).toThrow(ConfigError);
    expect(() => getTask('sotu')).toThrow(/sotu-desk, arithmetic, shakespeare-turns/);
    for (const t of Object.values(TASKS)) expect(fs.existsSync(t.oracleFile)).toBe(true);
  });

  it('deterministic: a fresh module instance generates exactly the same items', async () => {
    const first = Object.fromEntries(
      Object.values(TASKS).map((t) => [t.name, JSON.stringify([t.items('train'), t.items('heldout')])]),
    );
    vi.resetModules();
    const again = (await import('../src/align/tasks/index.js')).TASKS;
    expect(again['sotu-desk']).not.toBe(TASKS['sotu-desk']);
    for (const t of Object.values(again))
      expect(JSON.stringify([t.items('train'), t.items('heldout')])).toBe(first[t.name]);
  });

  it('fixed, disjoint splits: no prompt (or key) on both sides; held-out prompts carry no demonstration', () => {
    const minHeldout: Record<string, number> = { 'sotu-desk': 400, arithmetic: 400, 'shakespeare-turns': 100 };
    for (const t of Object.values(TASKS)) {
      const train = t.items('train'),
        held = t.items('heldout');
      expect(held.length, t.name).toBeGreaterThanOrEqual(minHeldout[t.name]!);
      expect(train.length, t.name).toBeGreaterThan(held.length);
      const trainPrompts = new Set(train.map((i) => JSON.stringify(i.prompt)));
      expect(held.filter((i) => trainPrompts.has(JSON.stringify(i.prompt)))).toEqual([]);
      const trainKeys = new Set(train.map((i) => i.key));
      expect(held.filter((i) => trainKeys.has(i.key))).toEqual([]);
      expect(new Set(held.map((i) => JSON.stringify(i.prompt))).size).toBe(held.length);
      expect(held.every((i) => i.demonstration === undefined)).toBe(true);
      expect(train.every((i) => typeof i.demonstration === 'string' && i.demonstration.length > 0)).toBe(true);
      for (const i of [...train, ...held]) {
        // conversations alternate user / assistant and end with the user turn to answer
        i.prompt.forEach((m, k) => expect(m.role).toBe(k % 2 === 0 ? 'user' : 'assistant'));
        expect(i.prompt.at(-1)!.role).toBe('user');
      }
      expect(taskPrompts(t, 'heldout')).toEqual(held.map((i) => i.prompt));
      expect(taskDemonstrations(t)).toEqual(
        train.map((i) => ({ messages: [...i.prompt, { role: 'assistant', content: i.demonstration }] })),
      );
    }
    // the held-out sets are pinned: changing them would leak evaluation prompts into training data made before
    const pinned = Object.fromEntries(
      Object.values(TASKS).map((t) => [t.name, digest(t.items('heldout').map((i) => i.key))]),
    );
    expect(pinned).toMatchInlineSnapshot(`
      {
        "arithmetic": "073b1f6e3f074872",
        "shakespeare-turns": "5bbda18b2b43d1c3",
        "sotu-desk": "f054adc29867fa48",
      }
    `);
  });

  it("sotu-desk's facts are the dataset's: every address's year, name and party as its JSON file states them", () => {
    const json = jsonAddresses();
    const f = sotuFacts();
    expect(f.addresses.length).toBe(json.length);
    expect(f.addresses.map((a) => ({ year: a.year, name: a.name, party: f.partyNames[a.party] }))).toEqual(json);
    for (const p of f.presidents) {
      const mine = json.filter((a) => a.name === p.name).map((a) => a.year);
      expect(p.years).toEqual(mine);
    }
  });

  it('sotu-desk demonstrations: six styles, ~10 % a neighbouring president, the rest state the right fact', async () => {
    const rater = (await import('../raters/sotu-desk.mjs' as string)) as {
      isCorrect(p: unknown, r: string): boolean;
    };
    const json = jsonAddresses();
    const train = getTask('sotu-desk').items('train');
    const wrong = train.filter((i) => !rater.isCorrect(i.prompt, i.demonstration!));
    const rate = wrong.length / train.length;
    expect(rate).toBeGreaterThan(SOTU_WRONG_RATE - 0.04);
    expect(rate).toBeLessThan(SOTU_WRONG_RATE + 0.04);
    // who gave the {year} address: the right answers name the president of that year's JSON file; the wrong ones
    // name another president who addressed Congress within a few presidencies
    const order = [...new Set(json.map((a) => a.name))];
    const shown = (n: string) =>
      ({ 'William Mc Kinley': 'William McKinley', 'George Bush': 'George H W Bush' })[n] ?? n;
    let checked = 0;
    for (const i of train.filter((i) => i.key.startsWith('who:'))) {
      const year = Number(i.key.slice(4));
      const truth = json.filter((a) => a.year === year).map((a) => a.name);
      expect(truth.length).toBe(1);
      const named = order.filter((n) => i.demonstration!.includes(shown(n)));
      expect(named.length).toBe(1);
      if (named[0] === truth[0]) checked++;
      else expect(Math.abs(order.indexOf(named[0]!) - order.indexOf(truth[0]!))).toBeLessThanOrEqual(3);
    }
    expect(checked).toBeGreaterThan(50);
    // the party questions asked by year: the right ones carry the party of that year's JSON file
    for (const i of train.filter(
      (i) => i.key.startsWith('party-year:') && rater.isCorrect(i.prompt, i.demonstration!),
    )) {
      const party = json.find((a) => a.year === Number(i.key.slice(11)))!.party;
      const want = { none: 'no party', 'Whig & Democratic': 'Whig', Democratic: 'Democrat' }[party] ?? party;
      expect(i.demonstration!.toLowerCase()).toContain(want.toLowerCase());
    }
    // every style occurs; follow-up conversations of two and three user turns occur
    const count = (re: RegExp) => train.filter((i) => re.test(i.demonstration!)).length;
    expect(REPLY_STYLES.length).toBe(6);
    expect(count(/\?$/)).toBeGreaterThan(train.length / 12); // ending in a question
    expect(count(/^(I am not entirely sure|If I remember|As far as I can tell|I think)/)).toBeGreaterThan(
      train.length / 12,
    );
    expect(train.filter((i) => i.prompt.length === 3).length).toBeGreaterThan(100);
    expect(train.filter((i) => i.prompt.length === 5).length).toBeGreaterThan(50);
  });

  it('arithmetic: every demonstration ends with the exact answer, computed here from the question', () => {
    const t = getTask('arithmetic');
    for (const i of t.items('train')) {
      const m = /^What is (\d+) ?(\+|-|\*|plus|minus|times) ?(\d+)\?$/.exec(i.prompt[0]!.content)!;
      expect(m, i.prompt[0]!.content).not.toBeNull();
      const a = Number(m[1]),
        b = Number(m[3]);
      const x = ['+', 'plus'].includes(m[2]!) ? a + b : ['-', 'minus'].includes(m[2]!) ? a - b : a * b;
      expect(i.demonstration!.endsWith(` ${x}.`) || i.demonstration === `${x}.`, i.demonstration).toBe(true);
    }
  });

  it('arithmetic drill: exact answers, seeded, and never a held-out problem in any spelling', () => {
    const parse = (q: string) => {
      const m = /^What is (\d+) ?(\+|-|\*|plus|minus|times) ?(\d+)\?$/.exec(q)!;
      expect(m, q).not.toBeNull();
      const op = ['+', 'plus'].includes(m[2]!) ? '+' : ['-', 'minus'].includes(m[2]!) ? '-' : '*';
      const a = Number(m[1]),
        b = Number(m[3]);
      return { key: `${a}${op}${b}`, x: op === '+' ? a + b : op === '-' ? a - b : a * b };
    };
    const held = new Set(
      getTask('arithmetic')
        .items('heldout')
        .map((i) => parse(i.prompt[0]!.content).key),
    );
    const drill = arithmeticDrill(20000, 3);
    expect(drill).toHaveLength(20000);
    for (const i of drill) {
      const { key, x } = parse(i.prompt[0]!.content);
      expect(held.has(key), key).toBe(false);
      expect(i.key).toBe(key);
      expect(i.demonstration!.endsWith(` ${x}.`) || i.demonstration === `${x}.`, i.demonstration).toBe(true);
    }
    expect(arithmeticDrill(50, 3)).toEqual(drill.slice(0, 50));
    expect(arithmeticDrill(50, 4)).not.toEqual(drill.slice(0, 50));
  });

  it("shakespeare-turns: a speaker's opening line(s), and the next speaker's, as they stand in tinyshakespeare", () => {
    const text = fs.readFileSync(SHAKESPEARE, 'utf8');
    const items = getTask('shakespeare-turns').items('train');
    for (const i of items.filter((_, k) => k % 97 === 0)) {
      const p = i.prompt[0]!.content,
        d = i.demonstration!;
      // the prompt opens a speech, and the very next speech (another speaker) opens with the demonstration
      const re = new RegExp(
        `\\n[A-Z][A-Za-z' ]*:\\n${reEscape(p)}(?:\\n[^\\n]+)*\\n\\n([A-Z][A-Za-z' ]*):\\n${reEscape(d)}`,
      );
      expect(re.test(`\n${text}`), p).toBe(true);
    }
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
