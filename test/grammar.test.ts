/**
 * Constrained decoding: the grammar compiler and recognizer, JSON Schema → grammar (checked with Ajv, an independent
 * validator, on valid and invalid documents), vocabulary masks (the trie walk equals a brute-force check of every
 * token of GPT-2's vocabulary), the constrained draw's distribution, and the engine producing schema-valid JSON from a
 * model that knows nothing of JSON.
 */
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  alt,
  chars,
  compileGrammar,
  type Grammar,
  GrammarError,
  GrammarMatcher,
  GrammarRuntime,
  GrammarVocab,
  jsonObjectGrammar,
  jsonSchemaGrammar,
  lit,
  ref,
  rep,
  seq,
  star,
  TokenGrammar,
} from '../src/generate/grammar/index.js';
import { generate, grammarVocab } from '../src/generate/engine.js';
import { samplingDistribution, sampleAllowed } from '../src/generate/sampler.js';
import { tokenizerCodec } from '../src/chat/codec.js';
import { loadTokenizer } from '../src/tokenizer/index.js';
import type { TextTokenizer } from '../src/tokenizer/types.js';
import { Rng } from '../src/util/rng.js';
import { ByteTokenizer, FakeModel, randomBigramModel } from './generate_fakes.js';

/** Random logits over a large vocabulary, a fresh row per last token (no V×V table). */
function randomLogitsModel(V: number, seed: number): FakeModel {
  return new FakeModel({ vocabSize: V, maxPositions: 4096 }, (seq) => {
    const rng = new Rng(seed * 100_003 + seq[seq.length - 1]!);
    return Float32Array.from({ length: V }, () => rng.normal() * 2);
  });
}

const grammarOf = (rules: Record<string, ReturnType<typeof lit>>, root = 'root'): Grammar => ({
  rules: new Map(Object.entries(rules)),
  root,
});
const accepts = (g: Grammar, text: string): boolean => {
  const m = new GrammarMatcher(compileGrammar(g));
  return m.acceptString(text) && m.isAccepting();
};

describe('grammar recognizer', () => {
  it('matches sequences, alternatives, references and bounded repetition exactly', () => {
    const g = grammarOf({
      root: seq(ref('word'), star(seq(lit(' '), ref('word'))), rep(lit('!'), 1, 3)),
      word: alt(lit('ab'), lit('abc'), seq(chars('xyz'), rep(chars('0123456789'), 0, 2))),
    });
    for (const s of ['ab!', 'abc!!', 'ab abc x12!!!', 'z!', 'y9 ab!'])
      expect({ s, ok: accepts(g, s) }).toEqual({ s, ok: true });
    for (const s of ['', 'ab', 'ab!!!!', 'abcd!', 'x123!', 'ab  ab!', ' ab!', 'ab!a'])
      expect({ s, ok: accepts(g, s) }).toEqual({ s, ok: false });
  });

  it('tells a prefix (live, not accepting) from a sentence, and a finished sentence from one that may go on', () => {
    const g = compileGrammar(grammarOf({ root: seq(lit('{'), rep(chars('a'), 0, 2), lit('}')) }));
    const m = new GrammarMatcher(g);
    expect(m.acceptString('{a')).toBe(true);
    expect(m.isAccepting()).toBe(false);
    expect(m.acceptString('b')).toBe(false); // rejected: state unchanged
    expect(m.acceptString('a}')).toBe(true);
    expect(m.isAccepting()).toBe(true);
    expect(m.isComplete()).toBe(true);
    const open = new GrammarMatcher(compileGrammar(grammarOf({ root: star(lit('a')) })));
    expect(open.isAccepting()).toBe(true);
    expect(open.isComplete()).toBe(false);
  });

  it('keeps right recursion flat: a million repetitions run in bounded state', () => {
    const rt = new GrammarRuntime(compileGrammar(grammarOf({ root: seq(star(alt(lit('ab'), lit('a'))), lit('.')) })));
    let s = rt.initial;
    for (let i = 0; i < 1_000_000; i++) s = rt.advance(s, i % 3 === 2 ? 0x61 : i % 3 === 0 ? 0x61 : 0x62)!;
    expect(s.stacks.length).toBeLessThan(8);
    expect(rt.advance(s, 0x2e)!.accepting).toBe(true);
  });

  it('refuses undefined rules and left recursion by name', () => {
    expect(() => compileGrammar(grammarOf({ root: ref('nope') }))).toThrow(/root: refers to the undefined rule "nope"/);
    expect(() =>
      compileGrammar(grammarOf({ root: seq(ref('e'), lit('x')), e: alt(seq(ref('e'), lit('+')), lit('1')) })),
    ).toThrow(GrammarError);
    expect(() =>
      compileGrammar(grammarOf({ root: seq(ref('e'), lit('x')), e: alt(seq(ref('e'), lit('+')), lit('1')) })),
    ).toThrow(/e: left recursion \(e starts with e, which can start with e\)/);
    // a repeated optional item recurses in tail position only: allowed, and it terminates
    expect(accepts(grammarOf({ root: seq(star(rep(lit('a'), 0, 1)), lit('.')) }), 'aaa.')).toBe(true);
    expect(() => compileGrammar(grammarOf({ other: lit('a') }))).toThrow(/root: the root rule is not defined/);
  });
});

describe('JSON Schema → grammar (checked against Ajv)', () => {
  const ajv = new Ajv({ strict: false });
  const person = {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 8 },
      age: { type: 'integer', minimum: 0 },
      email: { type: ['string', 'null'] },
      tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 },
      home: { $ref: '#/$defs/place' },
    },
    required: ['name', 'age', 'tags'],
    additionalProperties: false,
    $defs: {
      place: { type: 'object', properties: { city: { type: 'string' }, zip: { const: 12345 } }, required: ['city'] },
    },
  };
  const valid = [
    { name: 'Ann', age: 31, tags: ['a'] },
    { name: 'Bob', age: 0, email: null, tags: ['a', 'c', 'b'] },
    { name: 'Åsa ✓', age: 7, email: 'x@y.z', tags: ['b'], home: { city: 'Malmö' } },
    { name: 'q"\\\n', age: 12, tags: ['c', 'c'], home: { city: '', zip: 12345 } },
  ];
  const invalid = [
    { name: '', age: 1, tags: ['a'] }, // minLength
    { name: 'toolongname', age: 1, tags: ['a'] }, // maxLength
    { name: 'A', age: -1, tags: ['a'] }, // minimum 0
    { name: 'A', age: 1.5, tags: ['a'] }, // integer
    { name: 'A', age: 1, tags: [] }, // minItems
    { name: 'A', age: 1, tags: ['a', 'b', 'c', 'a'] }, // maxItems
    { name: 'A', age: 1, tags: ['d'] }, // enum
    { name: 'A', tags: ['a'] }, // required
    { name: 'A', age: 1, tags: ['a'], extra: 1 }, // additionalProperties
    { name: 'A', age: 1, tags: ['a'], home: { zip: 12345 } }, // nested required
    { name: 'A', age: 1, tags: ['a'], home: { city: 'x', zip: 1 } }, // const
    { name: 'A', age: 1, tags: ['a'], email: 3 }, // type list
  ];
  const g = compileGrammar(jsonSchemaGrammar(person));
  const check = (text: string): boolean => {
    const m = new GrammarMatcher(g);
    return m.acceptString(text) && m.isAccepting();
  };

  it('accepts what Ajv accepts, compact and indented', () => {
    const validate = ajv.compile(person);
    for (const v of valid) {
      expect(validate(v)).toBe(true);
      expect({ v, ok: check(JSON.stringify(v)) }).toEqual({ v, ok: true });
      expect({ v, ok: check(JSON.stringify(v, null, 2)) }).toEqual({ v, ok: true });
    }
  });

  it('rejects what Ajv rejects', () => {
    const validate = ajv.compile(person);
    for (const v of invalid) {
      expect(validate(v)).toBe(false);
      expect({ v, ok: check(JSON.stringify(v)) }).toEqual({ v, ok: false });
    }
    expect(check('{"age": 1, "name": "A", "tags": ["a"]}')).toBe(false); // declared order
    expect(check(' {"name": "A", "age": 1, "tags": ["a"]}')).toBe(false); // nothing before the value
    expect(check('{"name": "A", "age": 01, "tags": ["a"]}')).toBe(false); // no leading zeros
  });

  it('any object for json_object; formats, tuples and recursive references', () => {
    const obj = compileGrammar(jsonObjectGrammar());
    const ok = (cg: ReturnType<typeof compileGrammar>, s: string): boolean => {
      const m = new GrammarMatcher(cg);
      return m.acceptString(s) && m.isAccepting();
    };
    expect(ok(obj, '{"a": [1, -2.5e3, true, null, {"b": "\\u00e9"}]}')).toBe(true);
    expect(ok(obj, '[1]')).toBe(false);
    expect(ok(obj, '{"a": tru}')).toBe(false);
    const tree = {
      $defs: {
        node: {
          type: 'object',
          properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' } } },
          required: ['v', 'kids'],
        },
      },
      $ref: '#/$defs/node',
    };
    const tg = compileGrammar(jsonSchemaGrammar(tree));
    expect(ok(tg, '{"v": 1, "kids": [{"v": 2, "kids": []}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]}')).toBe(true);
    expect(ok(tg, '{"v": 1, "kids": [{"v": 2}]}')).toBe(false);
    const f = compileGrammar(
      jsonSchemaGrammar({
        type: 'array',
        prefixItems: [
          { type: 'string', format: 'date' },
          { type: 'string', format: 'uuid' },
          { type: 'string', format: 'date-time' },
        ],
      }),
    );
    expect(ok(f, '["2026-12-05", "123e4567-e89b-12d3-a456-426614174000", "2026-12-05T19:44:07.5Z"]')).toBe(true);
    expect(ok(f, '["2026-13-05", "123e4567-e89b-12d3-a456-426614174000", "2026-12-05T19:44:07Z"]')).toBe(false);
    expect(ok(f, '["2026-12-05", "123e4567-e89b-12d3-a456-426614174000"]')).toBe(false);
  });

  it('patterns: what Ajv matches (ECMA-262), the string JSON-escaped between its quotes', () => {
    const schema = {
      type: 'object',
      properties: { code: { type: 'string', pattern: '^[A-Z]{2}-\\d{3}$' }, tag: { pattern: 'x' } },
      required: ['code'],
      additionalProperties: false,
    };
    const validate = ajv.compile(schema);
    const g = compileGrammar(jsonSchemaGrammar(schema));
    const ok = (v: unknown) => {
      const m = new GrammarMatcher(g);
      return m.acceptString(JSON.stringify(v)) && m.isAccepting();
    };
    const docs = [
      { code: 'AB-123' },
      { code: 'ZZ-000', tag: 'axb' },
      { code: 'AB-123', tag: '"x"\n' },
      { code: 'ab-123' },
      { code: 'AB-12' },
      { code: 'AB-1234' },
      { code: 'AB-123', tag: 'y' },
      { code: 'ÅB-123' },
    ];
    for (const v of docs) expect({ v, ok: ok(v) }).toEqual({ v, ok: validate(v) });
    expect(docs.filter((v) => validate(v)).length).toBe(3);
  });

  it('integer ranges: exactly the integers within the bounds, spelled as JSON spells them', () => {
    const ranges: [number | undefined, number | undefined, Record<string, number>][] = [
      [0, 9, { minimum: 0, maximum: 9 }],
      [1, 100, { minimum: 1, maximum: 100 }],
      [10, 99, { minimum: 10, maximum: 99 }],
      [37, 1204, { minimum: 37, maximum: 1204 }],
      [-15, 7, { minimum: -15, maximum: 7 }],
      [-1000, -10, { minimum: -1000, maximum: -10 }],
      [-99, 0, { minimum: -99, maximum: 0 }],
      [18, undefined, { minimum: 18 }],
      [undefined, -3, { maximum: -3 }],
      [undefined, 250, { exclusiveMaximum: 251 }],
      [6, 119, { exclusiveMinimum: 5, maximum: 119.5 }],
      [190, 199, { minimum: 190, maximum: 199 }],
      [100, 100, { minimum: 100, maximum: 100 }],
    ];
    for (const [lo, hi, bounds] of ranges) {
      const g = compileGrammar(jsonSchemaGrammar({ type: 'integer', ...bounds }));
      const ok = (t: string) => {
        const m = new GrammarMatcher(g);
        return m.acceptString(t) && m.isAccepting();
      };
      for (let x = -2100; x <= 2100; x++) {
        const want = (lo === undefined || x >= lo) && (hi === undefined || x <= hi);
        if (ok(String(x)) !== want) expect({ bounds, x, ok: !want }).toEqual({ bounds, x, ok: want });
      }
      for (const x of [12345, 99999, 100000, 1e15, -1e15]) {
        const want = (lo === undefined || x >= lo) && (hi === undefined || x <= hi);
        expect({ bounds, x, ok: ok(String(x)) }).toEqual({ bounds, x, ok: want });
      }
      for (const bad of ['-0', '007', '01', '+5', '1.0', '1e2'])
        expect({ bounds, bad, ok: ok(bad) }).toEqual({ bounds, bad, ok: false });
    }
  });

  it('names the unsupported keyword and where it is', () => {
    expect(() => jsonSchemaGrammar({ type: 'object', properties: { a: { type: 'number', multipleOf: 2 } } })).toThrow(
      /schema\.properties\.a\.multipleOf: the keyword "multipleOf" is not supported/,
    );
    expect(() => jsonSchemaGrammar({ type: 'number', maximum: 5 })).toThrow(
      /schema\.maximum: bounds on non-integer numbers are not supported/,
    );
    expect(() => jsonSchemaGrammar({ type: 'integer', minimum: 5, exclusiveMaximum: 5 })).toThrow(
      /schema: no integer lies within the bounds \(5 to 4\)/,
    );
    expect(() => jsonSchemaGrammar({ type: 'strin' })).toThrow(/schema\.type: unknown type "strin"/);
    expect(() => jsonSchemaGrammar({ $ref: '#/$defs/missing' })).toThrow(/points at nothing/);
    expect(() => jsonSchemaGrammar({ type: 'array', minItems: 3, maxItems: 1 })).toThrow(
      /schema\.maxItems: maxItems 1 is below minItems 3/,
    );
    expect(() => jsonSchemaGrammar({ type: 'string', maxLength: -1 })).toThrow(
      /schema\.maxLength: expected an integer ≥ 0/,
    );
    expect(() => jsonSchemaGrammar({ type: 'object', properties: {}, required: ['x'] })).toThrow(
      /schema\.required: "x" is required but not among the properties/,
    );
  });
});

describe('vocabulary masks', () => {
  let tok: TextTokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer('gpt2');
  });

  it("equal a brute-force check of every GPT-2 token, in many of a JSON schema's states", () => {
    const codec = tokenizerCodec(tok);
    const V = tok.vocabSize;
    const vocab = grammarVocab(codec, V);
    const schema = {
      type: 'object',
      properties: { n: { type: 'number' }, s: { type: 'string', maxLength: 4 }, b: { type: 'boolean' } },
    };
    const tg = new TokenGrammar(compileGrammar(jsonSchemaGrammar(schema)), vocab);
    const text = '{"n": -12.5e3, "s": "a\\"é", "b": true}';
    const bytes = new TextEncoder().encode(text);
    const c = tg.start(new Set([tok.eosId!]));
    const rt = tg.runtime;
    let s = rt.initial;
    let checked = 0;
    for (let i = 0; i <= bytes.length; i += 3) {
      // brute force: advance each token's bytes from this state
      const want: number[] = [];
      for (let id = 0; id < V; id++) {
        const b = vocab.bytes[id];
        if (b && rt.advanceBytes(s, b)) want.push(id);
      }
      const got = Array.from(tg.textIds(s));
      expect(got).toEqual(want);
      checked += want.length;
      for (let k = i; k < Math.min(i + 3, bytes.length); k++) s = rt.advance(s, bytes[k]!)!;
    }
    expect(checked).toBeGreaterThan(1000);
    expect(s.accepting).toBe(true);
    // special tokens are never text; eos only where the text is whole
    expect(vocab.bytes[tok.eosId!]).toBeNull();
    expect(c.allows(tok.eosId!)).toBe(false);
    expect(c.allowed(V)[tok.eosId!]).toBe(0);
  });
});

describe('the constrained draw', () => {
  it('is the sampling distribution restricted to the allowed ids (chi-square over 40,000 draws)', () => {
    const V = 12;
    const rng0 = new Rng(3);
    const logits = Float32Array.from({ length: V }, () => rng0.normal() * 1.5);
    const allowed = Uint8Array.from({ length: V }, (_, i) => (i % 3 === 1 ? 0 : 1));
    for (const opts of [{ temperature: 0.8 }, { temperature: 1, topK: 6 }, { temperature: 1.2, topP: 0.7 }]) {
      const q = samplingDistribution(logits, opts);
      let qa = 0;
      for (let i = 0; i < V; i++) if (allowed[i]) qa += q[i]!;
      const want = Array.from(q, (p, i) => (allowed[i] ? p / qa : 0));
      // the engine's procedure: draw from q; if rejected, draw again among the allowed ids
      const rng = new Rng(11);
      const counts = new Array(V).fill(0);
      const N = 40_000;
      for (let n = 0; n < N; n++) {
        let u = rng.random();
        let acc = 0,
          id = V - 1;
        for (let i = 0; i < V; i++) if (u < (acc += q[i]!)) (id = i), (u = 2);
        if (!allowed[id]) id = sampleAllowed(logits, opts, rng, new Map(), allowed).id;
        counts[id]++;
      }
      let chi = 0,
        dof = -1;
      for (let i = 0; i < V; i++) {
        if (want[i] === 0) {
          expect(counts[i]).toBe(0);
          continue;
        }
        chi += (counts[i] - N * want[i]!) ** 2 / (N * want[i]!);
        dof++;
      }
      expect(dof).toBeGreaterThanOrEqual(2);
      expect(chi).toBeLessThan(dof + 5 * Math.sqrt(2 * dof) + 5); // far in the tail (p < 1e-4)
    }
  });

  it('at temperature 0 takes the best allowed id; the logprob stays the model’s', () => {
    const logits = Float32Array.of(5, 1, 4, 3);
    const allowed = Uint8Array.of(0, 1, 0, 1);
    const r = sampleAllowed(logits, { temperature: 0, topLogprobs: 2 }, new Rng(1), new Map(), allowed);
    expect(r.id).toBe(3);
    const lse = Math.log(Math.exp(5) + Math.exp(1) + Math.exp(4) + Math.exp(3));
    expect(r.logprob).toBeCloseTo(3 - lse, 6);
    expect(r.top.map((t) => t.id)).toEqual([0, 2]);
  });
});

describe('generation under a grammar', () => {
  const ajv = new Ajv({ strict: false });
  const schema = {
    type: 'object',
    properties: {
      answer: { enum: ['yes', 'no'] },
      score: { type: 'integer' },
      why: { type: 'string', maxLength: 12 },
      code: { type: 'string', pattern: '^[a-z]{3}[0-9]$' },
      items: { type: 'array', items: { type: 'number' }, maxItems: 3 },
    },
    required: ['answer', 'score', 'why', 'code', 'items'],
    additionalProperties: false,
  };

  it('a model that knows nothing of JSON writes schema-valid JSON, byte-level and with GPT-2 tokens', async () => {
    const validate = ajv.compile(schema);
    const g = jsonSchemaGrammar(schema);
    const tok = await loadTokenizer('gpt2');
    const V = tok.vocabSize;
    // random logits over GPT-2's vocabulary: the grammar does all the work
    const gptModel = randomLogitsModel(V, 9);
    const byteModel = randomBigramModel(300, 4096, 4);
    for (const [model, codec, eos] of [
      [byteModel, new ByteTokenizer({ 299: new Uint8Array(0) }), 299],
      [gptModel, tokenizerCodec(tok), tok.eosId!],
    ] as const) {
      for (let seed = 1; seed <= 4; seed++) {
        const r = await generate(model, [eos === 299 ? 10 : eos], {
          grammar: g,
          tokenizer: codec,
          stopTokens: [eos],
          maxTokens: 400,
          seed,
          temperature: seed === 4 ? 0 : 1,
        });
        const c = r.choices[0]!;
        expect(c.finish_reason).toBe('stop');
        const v = JSON.parse(c.text) as unknown;
        expect({ text: c.text, ok: validate(v) }).toEqual({ text: c.text, ok: true });
      }
    }
  });

  it('ends a row when the grammar is complete, without a stop token', async () => {
    const g: Grammar = { rules: new Map([['root', seq(lit('ok'), rep(lit('!'), 1, 2))]]), root: 'root' };
    const r = await generate(randomBigramModel(300, 512, 2), [10], {
      grammar: g,
      tokenizer: new ByteTokenizer(),
      maxTokens: 50,
      seed: 1,
    });
    expect(['ok!', 'ok!!']).toContain(r.choices[0]!.text);
    if (r.choices[0]!.text === 'ok!!') expect(r.choices[0]!.stopped_by).toEqual({ grammar: true });
  });

  it('lazy: free text until the trigger, the grammar from it to the end of a sentence, then free again', async () => {
    // a byte model drawn to the trigger token '<call>' (id 300): after it, only 1–3 digits and '</call>' may follow
    const V = 302;
    const rng = new Rng(21);
    const table = Array.from({ length: V }, () => Float32Array.from({ length: V }, () => rng.normal()));
    for (const row of table) row[300] = 3;
    const model = new FakeModel({ vocabSize: V, maxPositions: 4096 }, (seq) => table[seq[seq.length - 1]!]!);
    const codec = new ByteTokenizer({ 300: '<call>', 301: '7</call>' });
    const g: Grammar = {
      rules: new Map([['root', seq(lit('<call>'), rep(chars('0123456789'), 1, 3), lit('</call>'))]]),
      root: 'root',
    };
    const vocab = grammarVocab(codec, V);
    const tg = new TokenGrammar(compileGrammar(g), vocab, { trigger: '<call>' });
    let calls = 0;
    for (let seed = 1; seed <= 3; seed++) {
      const r = await generate(model, [65], { grammar: tg, tokenizer: codec, maxTokens: 120, seed });
      const c = r.choices[0]!;
      expect(c.finish_reason).toBe('length'); // a completed sentence does not end the row
      const text = c.text;
      // every trigger is followed by a whole sentence (or the text ends inside one)
      const parts = text.split('<call>').slice(1);
      for (const [k, p] of parts.entries())
        if (k < parts.length - 1 || p.includes('</call>')) expect(p).toMatch(/^[0-9]{1,3}<\/call>/);
        else expect(p).toMatch(/^[0-9]{0,3}(<|<\/|<\/c|<\/ca|<\/cal|<\/call)?$/);
      calls += parts.length;
      // and between sentences the text is free: the model's other bytes appear
      expect(text.replace(/<call>[0-9]{1,3}<\/call>/g, '').length).toBeGreaterThan(10);
    }
    expect(calls).toBeGreaterThan(5);
    expect(() => new TokenGrammar(compileGrammar(g), vocab, { trigger: '<cal!>' })).toThrow(
      /trigger: the grammar's sentences must begin with the trigger/,
    );
  });

  it('lazy at the start: a reply that begins with the trigger is held to the grammar; one that does not stays free', () => {
    const codec = new ByteTokenizer({ 300: new Uint8Array(0) });
    const vocab = grammarVocab(codec, 301);
    const g: Grammar = { rules: new Map([['root', seq(lit('{'), rep(chars('ab'), 1, 2), lit('}'))]]), root: 'root' };
    const tg = new TokenGrammar(compileGrammar(g), vocab, { trigger: '{', atStart: true });
    const run = (text: string): boolean => {
      const c = tg.start(new Set([300]));
      for (const b of new TextEncoder().encode(text)) {
        if (!c.allows(b)) return false;
        c.accept(b);
      }
      return c.allows(300); // may it end here?
    };
    expect(run('  {ab}')).toBe(true);
    expect(run('{ab')).toBe(false); // inside the call: no end yet
    expect(run('{x}')).toBe(false);
    expect(run('so {x} and {{')).toBe(true); // did not begin with it: free text
    expect(run('\n{a}\n{b}')).toBe(true); // after a call, whitespace and another
    expect(run('{a} {q')).toBe(false);
  });

  it('needs a tokenizer, and says so', async () => {
    await expect(generate(randomBigramModel(), [1], { grammar: jsonObjectGrammar() })).rejects.toThrow(
      /grammar: constrained decoding needs a tokenizer/,
    );
  });

  it('lets a grammar use added tokens that are text (special: false), never control tokens', async () => {
    const { Tokenizer } = await import('../src/tokenizer/index.js');
    const tok = new Tokenizer({
      tokenBytes: Array.from({ length: 256 }, (_, i) => Uint8Array.of(i)),
      merges: [],
      specialTokens: [
        { id: 256, content: '<tool_call>', special: false },
        { id: 257, content: '<|im_end|>', special: true },
      ],
    });
    const vocab = grammarVocab(tokenizerCodec(tok), 258);
    expect(vocab.bytes[257]).toBeNull();
    const tg = new TokenGrammar(
      compileGrammar({ rules: new Map([['root', alt(lit('<tool_call>'), lit('<|im_end|>'))]]), root: 'root' }),
      vocab,
    );
    expect(Array.from(tg.textIds(tg.runtime.initial))).toEqual([0x3c, 256]);
  });

  it('shares one vocabulary table per tokenizer across codecs', async () => {
    const tok = await loadTokenizer('gpt2');
    const a = grammarVocab(tokenizerCodec(tok), tok.vocabSize);
    expect(grammarVocab(tokenizerCodec(tok, { specials: 'none' }), tok.vocabSize)).toBe(a);
    expect(a).toBeInstanceOf(GrammarVocab);
  });
});
