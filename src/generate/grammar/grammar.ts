/**
 * Grammars for constrained decoding: a context-free grammar over bytes (UTF-8 text is its bytes), written as
 * expressions per named rule and compiled to flat element arrays that the recognizer (./matcher.ts) walks.
 *
 *   Expr: a literal byte string, a byte set, a rule reference, a sequence, an alternation, a bounded repetition
 *   Grammar: rule name → Expr, and the root rule's name
 *   compileGrammar: nested alternations and repetitions become auxiliary rules (right-recursive, so repetition does
 *     not grow the recognizer's stacks); undefined rules and left recursion are GrammarErrors naming the rule.
 *
 * Both front ends produce this: JSON Schema (./json_schema.ts) and llama.cpp's GBNF text (./gbnf.ts). Working on
 * bytes, not characters, lets a token end in the middle of a multi-byte character, as byte-level BPE tokens do.
 */
import { LlmtsError } from '../../util/errors.js';

/** A grammar that cannot be built: which rule (or schema path, or GBNF line) and what is wrong. */
export class GrammarError extends LlmtsError {
  readonly where: string;
  constructor(where: string, message: string) {
    super('E_GRAMMAR', `${where}: ${message}`);
    this.where = where;
  }
}

/** A set of bytes: 256 flags (1 = member). */
export type ByteSet = Uint8Array;

export type Expr =
  | { k: 'lit'; bytes: Uint8Array }
  | { k: 'set'; set: ByteSet }
  | { k: 'ref'; name: string }
  | { k: 'seq'; items: Expr[] }
  | { k: 'alt'; items: Expr[] }
  /** item repeated min..max times (max = Infinity: unbounded). */
  | { k: 'rep'; item: Expr; min: number; max: number };

export interface Grammar {
  rules: Map<string, Expr>;
  root: string;
}

const utf8 = new TextEncoder();

/** Expression constructors. */
export const lit = (s: string | Uint8Array): Expr => ({ k: 'lit', bytes: typeof s === 'string' ? utf8.encode(s) : s });
export const ref = (name: string): Expr => ({ k: 'ref', name });
export const seq = (...items: Expr[]): Expr => (items.length === 1 ? items[0]! : { k: 'seq', items });
export const alt = (...items: Expr[]): Expr => (items.length === 1 ? items[0]! : { k: 'alt', items });
export const rep = (item: Expr, min: number, max = Infinity): Expr => ({ k: 'rep', item, min, max });
export const opt = (item: Expr): Expr => rep(item, 0, 1);
export const star = (item: Expr): Expr => rep(item, 0);
export const plus = (item: Expr): Expr => rep(item, 1);
/** The empty string. */
export const empty = (): Expr => ({ k: 'seq', items: [] });

/** A byte set from ranges [lo, hi] (inclusive), optionally negated. */
export function byteSet(ranges: readonly (readonly [number, number])[], negate = false): Expr {
  const set = new Uint8Array(256);
  for (const [lo, hi] of ranges) for (let b = lo; b <= hi; b++) set[b] = 1;
  if (negate) for (let b = 0; b < 256; b++) set[b] = set[b] ? 0 : 1;
  return { k: 'set', set };
}

/** A byte set from the characters of an ASCII string, e.g. chars('0123456789'). */
export function chars(s: string, negate = false): Expr {
  return byteSet(
    [...s].map((c) => [c.charCodeAt(0), c.charCodeAt(0)] as const),
    negate,
  );
}

/** One well-formed multi-byte UTF-8 character (U+0080 and up; surrogates excluded). */
export function utf8NonAscii(): Expr {
  const cont = byteSet([[0x80, 0xbf]]);
  return alt(
    seq(byteSet([[0xc2, 0xdf]]), cont),
    seq(lit(new Uint8Array([0xe0])), byteSet([[0xa0, 0xbf]]), cont),
    seq(byteSet([[0xe1, 0xec]]), cont, cont),
    seq(lit(new Uint8Array([0xed])), byteSet([[0x80, 0x9f]]), cont),
    seq(byteSet([[0xee, 0xef]]), cont, cont),
    seq(lit(new Uint8Array([0xf0])), byteSet([[0x90, 0xbf]]), cont, cont),
    seq(byteSet([[0xf1, 0xf3]]), cont, cont, cont),
    seq(lit(new Uint8Array([0xf4])), byteSet([[0x80, 0x8f]]), cont, cont),
  );
}

/** Element kinds of a compiled grammar. */
export const END = 0;
export const SET = 1;
export const REF = 2;

/**
 * A grammar as flat arrays. Each alternative of each rule is a run of elements ending in END; `kind[p]`/`arg[p]`
 * describe element p (SET: index into `sets`; REF: rule index). `alts[r]` are the start positions of rule r's
 * alternatives.
 */
export interface CompiledGrammar {
  kind: Int32Array;
  arg: Int32Array;
  sets: ByteSet[];
  alts: number[][];
  names: string[];
  root: number;
}

/** Most rules a compiled grammar may have (auxiliary ones included): a guard against runaway repetition bounds. */
const MAX_RULES = 200_000;

/** Compile a grammar to flat arrays, checking references and left recursion. */
export function compileGrammar(g: Grammar): CompiledGrammar {
  if (!g.rules.has(g.root)) throw new GrammarError(g.root, 'the root rule is not defined');
  const names: string[] = [];
  const index = new Map<string, number>();
  const bodies: Expr[][][] = []; // rule → alternatives → sequence of atoms (lit bytes as sets, sets, refs)
  const ruleId = (name: string): number => {
    let id = index.get(name);
    if (id === undefined) {
      id = names.length;
      names.push(name);
      index.set(name, id);
      bodies.push([]);
    }
    return id;
  };
  const undefinedRefs = new Map<string, string>();
  let aux = 0;
  const fresh = (base: string): number => {
    if (names.length >= MAX_RULES)
      throw new GrammarError(base, `the grammar needs more than ${MAX_RULES} rules (a repetition bound too large?)`);
    return ruleId(`${base}~${aux++}`);
  };

  // flatten an expression into one sequence of atoms, creating auxiliary rules for nested alternations/repetitions
  const flatten = (e: Expr, owner: string, out: Expr[]): void => {
    switch (e.k) {
      case 'lit':
        for (const b of e.bytes) {
          const set = new Uint8Array(256);
          set[b] = 1;
          out.push({ k: 'set', set });
        }
        return;
      case 'set':
        out.push(e);
        return;
      case 'ref':
        if (!g.rules.has(e.name)) undefinedRefs.set(e.name, owner);
        out.push({ k: 'ref', name: names[ruleId(e.name)]! });
        return;
      case 'seq':
        for (const it of e.items) flatten(it, owner, out);
        return;
      case 'alt': {
        const r = fresh(owner);
        bodies[r] = e.items.map((it) => seqOf(it, owner));
        out.push({ k: 'ref', name: names[r]! });
        return;
      }
      case 'rep': {
        const { min, max } = e;
        if (!Number.isInteger(min) || min < 0 || !(max === Infinity || (Number.isInteger(max) && max >= min)))
          throw new GrammarError(owner, `bad repetition bounds {${min},${max === Infinity ? '' : max}}`);
        for (let i = 0; i < min; i++) flatten(e.item, owner, out);
        if (max === min) return;
        const body = seqOf(e.item, owner);
        if (max === Infinity) {
          // S ::= item S | ε  (right recursive: the recognizer's tail call keeps stacks flat)
          const r = fresh(owner);
          bodies[r] = [[...body, { k: 'ref', name: names[r]! }], []];
          out.push({ k: 'ref', name: names[r]! });
          return;
        }
        // R_n ::= item R_{n-1} | ε, R_1 ::= item | ε
        let inner: number | null = null;
        for (let n = 1; n <= max - min; n++) {
          const r = fresh(owner);
          bodies[r] = [inner === null ? [...body] : [...body, { k: 'ref', name: names[inner]! }], []];
          inner = r;
        }
        out.push({ k: 'ref', name: names[inner!]! });
        return;
      }
    }
  };
  const seqOf = (e: Expr, owner: string): Expr[] => {
    const out: Expr[] = [];
    flatten(e, owner, out);
    return out;
  };

  for (const [name, e] of g.rules) {
    const r = ruleId(name);
    bodies[r] = e.k === 'alt' ? e.items.map((it) => seqOf(it, name)) : [seqOf(e, name)];
  }
  for (const [name, owner] of undefinedRefs) throw new GrammarError(owner, `refers to the undefined rule "${name}"`);

  // flat arrays
  let size = 0;
  for (const b of bodies) for (const a of b) size += a.length + 1;
  const kind = new Int32Array(size);
  const arg = new Int32Array(size);
  const sets: ByteSet[] = [];
  const setIndex = new Map<string, number>();
  const alts: number[][] = [];
  let p = 0;
  for (const b of bodies) {
    const starts: number[] = [];
    for (const a of b) {
      starts.push(p);
      for (const el of a) {
        if (el.k === 'set') {
          const key = setKey(el.set);
          let si = setIndex.get(key);
          if (si === undefined) {
            si = sets.length;
            sets.push(el.set);
            setIndex.set(key, si);
          }
          kind[p] = SET;
          arg[p] = si;
        } else {
          kind[p] = REF;
          arg[p] = index.get((el as { name: string }).name)!;
        }
        p++;
      }
      kind[p++] = END;
    }
    alts.push(starts);
  }
  const cg: CompiledGrammar = { kind, arg, sets, alts, names, root: index.get(g.root)! };
  checkLeftRecursion(cg);
  return cg;
}

function setKey(s: ByteSet): string {
  let k = '';
  for (let i = 0; i < 256; i += 8) {
    let v = 0;
    for (let j = 0; j < 8; j++) v = (v << 1) | s[i + j]!;
    k += String.fromCharCode(65 + v);
  }
  return k;
}

/** Which rules can match the empty string. */
export function nullableRules(g: CompiledGrammar): boolean[] {
  const nullable = g.alts.map(() => false);
  for (let changed = true; changed; ) {
    changed = false;
    g.alts.forEach((starts, r) => {
      if (nullable[r]) return;
      for (const s of starts) {
        let p = s;
        while (g.kind[p] === REF && nullable[g.arg[p]!]) p++;
        if (g.kind[p] === END) {
          nullable[r] = true;
          changed = true;
          return;
        }
      }
    });
  }
  return nullable;
}

/**
 * Refuse left recursion that grows the stack (A ::= B "x" with B ::= A …, through nullable prefixes): the recognizer
 * would loop. A cycle of references that each end their alternative (S ::= x? S, i.e. `(x?)*`) re-enters the same
 * continuation and is allowed: the recognizer's expansion stops at a stack it has already seen.
 */
function checkLeftRecursion(g: CompiledGrammar): void {
  const nullable = nullableRules(g);
  // edges r → q where q can be the first thing r matches; `grows`: something follows the reference
  const edges: { to: number; grows: boolean }[][] = g.alts.map((starts) => {
    const out: { to: number; grows: boolean }[] = [];
    for (const s of starts)
      for (let p = s; g.kind[p] === REF; p++) {
        out.push({ to: g.arg[p]!, grows: g.kind[p + 1] !== END });
        if (!nullable[g.arg[p]!]) break;
      }
    return out;
  });
  // strongly connected components (Tarjan, iterative): a growing edge inside one is a looping left recursion
  const n = g.alts.length;
  const order = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const comp = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  let counter = 0,
    comps = 0;
  for (let root = 0; root < n; root++) {
    if (order[root]! >= 0) continue;
    const work: [number, number][] = [[root, 0]];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const [v, i] = top;
      if (i < edges[v]!.length) {
        top[1]++;
        const w = edges[v]![i]!.to;
        if (order[w]! < 0) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          work.push([w, 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v]!, order[w]!);
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const u = work[work.length - 1]![0];
        low[u] = Math.min(low[u]!, low[v]!);
      }
      if (low[v] === order[v]) {
        for (;;) {
          const w = stack.pop()!;
          onStack[w] = 0;
          comp[w] = comps;
          if (w === v) break;
        }
        comps++;
      }
    }
  }
  for (let r = 0; r < n; r++)
    for (const e of edges[r]!)
      if (e.grows && comp[e.to] === comp[r])
        throw new GrammarError(
          g.names[r]!,
          `left recursion (${g.names[r]} starts with ${g.names[e.to]}, which can start with ${g.names[r]}): rewrite it right-recursively`,
        );
}
