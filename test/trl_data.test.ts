/**
 * TRL JSONL datasets (src/data/trl.ts): every type in plain and conversational form is detected and read; each kind
 * of bad row is a TrlRowError naming the file, the line and the field; the skip policy counts what it skips; rankings
 * become C(K,2) pairs in preference order; the writer round-trips exactly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  formatTrlJsonl,
  parseTrlJsonl,
  rankingToPairs,
  readTrlDataset,
  TrlRowError,
  writeTrlDataset,
  type RankingRow,
  type TrlKind,
  type TrlRow,
} from '../src/data/trl.js';
import { FileFormatError } from '../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llmts-trl-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const u = (content: string) => ({ role: 'user' as const, content });
const a = (content: string) => ({ role: 'assistant' as const, content });
const sys = (content: string) => ({ role: 'system' as const, content });

/** Two rows of each type and form. */
const SAMPLES: { kind: TrlKind; form: 'plain' | 'conversational'; rows: TrlRow[] }[] = [
  {
    kind: 'language_modeling',
    form: 'plain',
    rows: [{ text: 'The sky is blue.' }, { text: 'ünïcødé ☃ "quoted"\nnew line' }],
  },
  {
    kind: 'language_modeling',
    form: 'conversational',
    rows: [
      { messages: [sys('Be brief.'), u('Hi'), a('Hello!')] },
      { messages: [u('2+2?'), a('4'), u('and 3+3?'), a('6')] },
    ],
  },
  {
    kind: 'prompt_completion',
    form: 'plain',
    rows: [
      { prompt: 'The capital of France is', completion: ' Paris.' },
      { prompt: 'x', completion: '' },
    ],
  },
  {
    kind: 'prompt_completion',
    form: 'conversational',
    rows: [
      { prompt: [u('Capital of France?')], completion: [a('Paris.')] },
      { prompt: [sys('s'), u('q')], completion: [a('r')] },
    ],
  },
  {
    kind: 'preference',
    form: 'plain',
    rows: [
      { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' },
      { prompt: 'p', chosen: 'c', rejected: 'r', margin: 1.5 },
    ],
  },
  {
    kind: 'preference',
    form: 'conversational',
    rows: [
      { prompt: [u('Sky?')], chosen: [a('Blue.')], rejected: [a('Green.')], margin: -0.25 },
      { prompt: [u('q')], chosen: [a('c')], rejected: [a('r')] },
    ],
  },
  {
    kind: 'unpaired_preference',
    form: 'plain',
    rows: [
      { prompt: 'The sky is', completion: ' blue.', label: true },
      { prompt: 'The sky is', completion: ' green.', label: false },
    ],
  },
  {
    kind: 'unpaired_preference',
    form: 'conversational',
    rows: [
      { prompt: [u('Sky?')], completion: [a('Blue.')], label: true },
      { prompt: [u('Sky?')], completion: [a('Green.')], label: false },
    ],
  },
  {
    kind: 'ranking',
    form: 'plain',
    rows: [
      { prompt: 'Sky:', completions: [' green', ' blue', ' red'], ranking: [1, 2, 0] },
      { prompt: 'p', completions: ['x', 'y'], ranking: [0, 1] },
    ],
  },
  {
    kind: 'ranking',
    form: 'conversational',
    rows: [
      { prompt: [u('Sky?')], completions: [[a('Green')], [a('Blue')]], ranking: [1, 0] },
      { prompt: [u('q')], completions: [[a('x')], [a('y')], [a('z')]], ranking: [2, 0, 1] },
    ],
  },
];

describe('reading TRL datasets', () => {
  for (const s of SAMPLES) {
    it(`${s.kind} (${s.form}): detected from the first row and read as written`, () => {
      const text = s.rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
      const ds = parseTrlJsonl(`\n${text}\n`, 'd.jsonl'); // blank lines are not rows
      expect(ds.kind).toBe(s.kind);
      expect(ds.form).toBe(s.form);
      expect(ds.rows).toEqual(s.rows);
      expect(ds.lines).toEqual([2, 3]);
      expect(ds.skipped).toEqual([]);
    });
  }

  it('reads a file from disk, CRLF line ends too; fields outside the type are ignored and counted', () => {
    const f = path.join(tmp, 'crlf.jsonl');
    fs.writeFileSync(
      f,
      '{"prompt":"a","completion":"b","id":7}\r\n{"prompt":"c","completion":"d","id":8,"source":"x"}\r\n',
    );
    const ds = readTrlDataset(f);
    expect(ds.rows).toEqual([
      { prompt: 'a', completion: 'b' },
      { prompt: 'c', completion: 'd' },
    ]);
    expect(ds.ignoredFields).toEqual({ id: 2, source: 1 });
  });

  it('a missing file or a folder is a FileFormatError naming it', () => {
    expect(() => readTrlDataset(path.join(tmp, 'nope.jsonl'))).toThrow(/nope\.jsonl: no such file/);
    expect(() => readTrlDataset(tmp)).toThrow(FileFormatError);
  });
});

/** The TrlRowError of parsing `lines` (as a file called bad.jsonl). */
function badRow(lines: string[], opts: Parameters<typeof parseTrlJsonl>[2] = {}): TrlRowError {
  try {
    parseTrlJsonl(lines.join('\n'), 'bad.jsonl', opts);
  } catch (e) {
    expect(e).toBeInstanceOf(TrlRowError);
    return e as TrlRowError;
  }
  throw new Error('no error');
}

describe('bad rows: a TrlRowError with file, line and field', () => {
  const ok = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}';
  const cases: { name: string; row: string; field: string; message: RegExp }[] = [
    { name: 'bad JSON', row: '{"messages": [', field: '', message: /not valid JSON/ },
    { name: 'not an object', row: '[1, 2]', field: '', message: /expected a JSON object/ },
    {
      name: 'a role other than system/user/assistant',
      row: '{"messages":[{"role":"tool","content":"x"}]}',
      field: 'messages[0].role',
      message: /expected "system", "user" or "assistant", got "tool"/,
    },
    {
      name: 'content not a string',
      row: '{"messages":[{"role":"user","content":5}]}',
      field: 'messages[0].content',
      message: /expected a string, got 5/,
    },
    { name: 'an empty conversation', row: '{"messages":[]}', field: 'messages', message: /empty conversation/ },
    { name: 'messages not a list', row: '{"messages":"hi"}', field: 'messages', message: /expected a list of/ },
    {
      name: 'a message that is not an object',
      row: '{"messages":["hi"]}',
      field: 'messages[0]',
      message: /expected a \{"role", "content"\} message/,
    },
    {
      name: 'a row of another type',
      row: '{"prompt":"a","completion":"b"}',
      field: '',
      message: /expected a language_modeling row/,
    },
    {
      name: 'the plain form in a conversational file',
      row: '{"text":"a"}',
      field: 'messages',
      message: /conversational form/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = badRow([ok, c.row, ok]);
      expect(e.line).toBe(2);
      expect(e.field).toBe(c.field);
      expect(e.file).toBe('bad.jsonl');
      expect(e.message).toMatch(/^bad\.jsonl \[line 2\]: /);
      expect(e.message).toMatch(c.message);
    });
  }

  const typed: { name: string; lines: string[]; line: number; field: string; message: RegExp }[] = [
    {
      name: 'missing completion',
      lines: ['{"prompt":"a","completion":"b"}', '{"prompt":"a"}'],
      line: 2,
      field: 'completion',
      message: /missing/,
    },
    {
      name: 'missing prompt',
      lines: ['{"prompt":"a","chosen":"b","rejected":"c"}', '{"chosen":"b","rejected":"c"}'],
      line: 2,
      field: 'prompt',
      message: /missing/,
    },
    {
      name: 'a list prompt in a plain file',
      lines: ['{"prompt":"a","completion":"b"}', '{"prompt":[{"role":"user","content":"a"}],"completion":"b"}'],
      line: 2,
      field: 'prompt',
      message: /plain form/,
    },
    {
      name: 'a string completion in a conversational file',
      lines: ['{"prompt":[{"role":"user","content":"a"}],"completion":"b"}'],
      line: 1,
      field: 'completion',
      message: /conversational form/,
    },
    {
      name: 'margin not a number',
      lines: ['{"prompt":"a","chosen":"b","rejected":"c","margin":"big"}'],
      line: 1,
      field: 'margin',
      message: /finite number/,
    },
    {
      name: 'label not a boolean',
      lines: ['{"prompt":"a","completion":"b","label":1}'],
      line: 1,
      field: 'label',
      message: /true or false/,
    },
    {
      name: 'ranking with a repeated index',
      lines: ['{"prompt":"a","completions":["x","y","z"],"ranking":[0,0,1]}'],
      line: 1,
      field: 'ranking[1]',
      message: /twice.*permutation/,
    },
    {
      name: 'ranking with an index out of range',
      lines: ['{"prompt":"a","completions":["x","y"],"ranking":[0,2]}'],
      line: 1,
      field: 'ranking[1]',
      message: /index 0\.\.1/,
    },
    {
      name: 'ranking of the wrong length',
      lines: ['{"prompt":"a","completions":["x","y","z"],"ranking":[0,1]}'],
      line: 1,
      field: 'ranking',
      message: /3 indices/,
    },
    {
      name: 'fewer than two completions',
      lines: ['{"prompt":"a","completions":["x"],"ranking":[0]}'],
      line: 1,
      field: 'completions',
      message: /at least 2/,
    },
    {
      name: 'no TRL fields at all',
      lines: ['{"question":"a","answer":"b"}'],
      line: 1,
      field: '',
      message: /no TRL dataset fields/,
    },
  ];
  for (const c of typed) {
    it(c.name, () => {
      const e = badRow(c.lines);
      expect([e.line, e.field]).toEqual([c.line, c.field]);
      expect(e.message).toMatch(c.message);
      expect(e.message).toContain(`bad.jsonl [line ${c.line}]`);
    });
  }

  it('a file of a type the caller cannot use is an error at its first row, even when skipping bad rows', () => {
    const e = badRow(['', '{"prompt":"a","chosen":"b","rejected":"c"}'], {
      expect: ['language_modeling', 'prompt_completion'],
      onBadRow: 'skip',
    });
    expect(e.line).toBe(2);
    expect(e.message).toMatch(/a preference dataset, but this needs language_modeling or prompt_completion rows/);
  });
});

describe('the skip policy', () => {
  it('skips bad rows, counts them and says which; the type comes from the first valid row', () => {
    const ds = parseTrlJsonl(
      [
        'not json',
        '{"prompt":"a","completion":"b"}',
        '{"prompt":"c"}',
        '{"prompt":"d","completion":"e"}',
        '{"text":"x"}',
      ].join('\n'),
      'f.jsonl',
      { onBadRow: 'skip' },
    );
    expect(ds.kind).toBe('prompt_completion');
    expect(ds.rows).toEqual([
      { prompt: 'a', completion: 'b' },
      { prompt: 'd', completion: 'e' },
    ]);
    expect(ds.lines).toEqual([2, 4]);
    expect(ds.skipped.map((s) => [s.line, s.field])).toEqual([
      [1, ''],
      [3, 'completion'],
      [5, ''],
    ]);
  });

  it('a file with no good row is an error either way', () => {
    expect(() => parseTrlJsonl('nope\n{"x":1}\n', 'f.jsonl', { onBadRow: 'skip' })).toThrow(
      /every row was bad \(2 skipped; the first, line 1/,
    );
    expect(() => parseTrlJsonl('\n\n', 'f.jsonl')).toThrow(/f\.jsonl: no rows/);
  });
});

describe('rankings to pairs', () => {
  it('K ranked replies give C(K,2) pairs, each chosen ranked above its rejected, best-chosen first', () => {
    const row: RankingRow = { prompt: 'p', completions: ['c0', 'c1', 'c2', 'c3'], ranking: [2, 0, 3, 1] }; // c2 > c0 > c3 > c1
    const pairs = rankingToPairs(row);
    expect(pairs.map((x) => [x.chosen, x.rejected])).toEqual([
      ['c2', 'c0'],
      ['c2', 'c3'],
      ['c2', 'c1'],
      ['c0', 'c3'],
      ['c0', 'c1'],
      ['c3', 'c1'],
    ]);
    expect(pairs.every((x) => x.prompt === 'p')).toBe(true);
    expect(rankingToPairs({ prompt: 'p', completions: ['a', 'b'], ranking: [1, 0] })).toEqual([
      { prompt: 'p', chosen: 'b', rejected: 'a' },
    ]);
  });

  it('a ranking that is not a permutation is refused', () => {
    expect(() => rankingToPairs({ prompt: 'p', completions: ['a', 'b', 'c'], ranking: [0, 0, 1] })).toThrow(
      /not a permutation/,
    );
  });
});

describe('writing', () => {
  for (const s of SAMPLES) {
    it(`${s.kind} (${s.form}) round-trips exactly`, () => {
      const text = formatTrlJsonl(s.rows);
      const back = parseTrlJsonl(text, 'w.jsonl');
      expect(back.rows).toEqual(s.rows);
      expect(formatTrlJsonl(back.rows)).toBe(text);
      const f = path.join(tmp, `${s.kind}-${s.form}.jsonl`);
      writeTrlDataset(f, s.rows);
      expect(fs.readFileSync(f, 'utf8')).toBe(text);
      expect(readTrlDataset(f).rows).toEqual(s.rows);
    });
  }

  it('puts fields in the type order and refuses rows that would not read back, leaving no file', () => {
    expect(formatTrlJsonl([{ rejected: 'r', margin: 2, chosen: 'c', prompt: 'p' } as TrlRow])).toBe(
      '{"prompt":"p","chosen":"c","rejected":"r","margin":2}\n',
    );
    const f = path.join(tmp, 'refused.jsonl');
    expect(() => writeTrlDataset(f, [{ messages: [{ role: 'tool', content: 'x' }] } as unknown as TrlRow])).toThrow(
      TrlRowError,
    );
    expect(fs.existsSync(f)).toBe(false);
  });
});
