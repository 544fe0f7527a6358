/**
 * The grammar recognizer: which bytes may come next, byte by byte (llama.cpp's llama-grammar approach).
 *
 * A position in the grammar is a stack: the element to match next on top, below it where to continue once the
 * current rule ends. A recognizer state is the set of stacks the bytes so far leave alive, each with a byte set on
 * top (rule references are expanded into their alternatives at once; a finished rule pops to its continuation, and
 * a continuation that would only end its own rule is skipped, so right recursion does not grow the stacks). A state
 * holding the empty stack is accepting: the text so far is a whole sentence of the grammar.
 *
 * Stacks are hash-consed (one object per distinct stack), so states are sets of object ids, interned too: the same
 * state reached twice is the same object and remembers, per byte, the state that byte leads to. Token masks walk
 * a trie of the vocabulary through these memoised transitions (./token_mask.ts), so most steps are an array lookup.
 */
import { type CompiledGrammar, END, SET } from './grammar.js';

const utf8 = new TextEncoder();

/** One stack cell: the element at `pos` to match, then `next` (null: the bottom). Interned: equal stacks are one object. */
export interface StackNode {
  readonly pos: number;
  readonly next: StackNode | null;
  readonly id: number;
}

/** A set of live stacks after some bytes; interned per runtime. */
export class GrammarState {
  /** Stacks whose top is a byte set. */
  readonly stacks: readonly StackNode[];
  /** The empty stack is among them: the bytes so far form a whole sentence. */
  readonly accepting: boolean;
  /** Memoised transitions: byte → next state (null = rejected; undefined = not computed yet). */
  readonly edges: (GrammarState | null | undefined)[] = new Array(256);
  constructor(
    stacks: readonly StackNode[],
    accepting: boolean,
    readonly key: string,
  ) {
    this.stacks = stacks;
    this.accepting = accepting;
  }
  /** Nothing more can follow (only the empty stack is left). */
  get complete(): boolean {
    return this.stacks.length === 0;
  }
}

/** Interned states past this count clear the tables (memory bound; correctness is unaffected). */
const MAX_STATES = 20_000;

/**
 * One compiled grammar's interning tables and memoised transitions. Share it between the matchers of one grammar
 * (a batch's rows, successive requests with the same schema).
 */
export class GrammarRuntime {
  private nodes = new Map<string, StackNode>();
  private states = new Map<string, GrammarState>();
  private nodeCount = 0;
  readonly initial: GrammarState;

  constructor(readonly g: CompiledGrammar) {
    const out = new Set<StackNode>();
    let accept = false;
    const seen = new Set<StackNode>();
    for (const s of g.alts[g.root]!) accept = this.expand(this.node(s, null), out, seen) || accept;
    this.initial = this.state(out, accept);
  }

  private node(pos: number, next: StackNode | null): StackNode {
    const key = `${pos},${next === null ? -1 : next.id}`;
    let n = this.nodes.get(key);
    if (!n) {
      n = { pos, next, id: this.nodeCount++ };
      this.nodes.set(key, n);
    }
    return n;
  }

  /** Add the stacks `n` expands to (top on a byte set) to `out`; returns true if the empty stack is reached. */
  private expand(n: StackNode, out: Set<StackNode>, seen: Set<StackNode>): boolean {
    if (seen.has(n)) return false;
    seen.add(n);
    const { kind, arg, alts } = this.g;
    const k = kind[n.pos]!;
    if (k === SET) {
      out.add(n);
      return false;
    }
    if (k === END) return n.next === null ? true : this.expand(n.next, out, seen);
    // REF: continue after it (skipped when only END follows: a tail call), enter each alternative
    const cont = kind[n.pos + 1] === END ? n.next : this.node(n.pos + 1, n.next);
    let accept = false;
    for (const s of alts[arg[n.pos]!]!) {
      // an alternative that is empty continues at once
      const child = kind[s] === END ? cont : this.node(s, cont);
      if (child === null) accept = true;
      else accept = this.expand(child, out, seen) || accept;
    }
    return accept;
  }

  private state(stacks: Set<StackNode>, accepting: boolean): GrammarState {
    const list = [...stacks].sort((a, b) => a.id - b.id);
    const key = `${accepting ? 'A' : ''}${list.map((n) => n.id).join(',')}`;
    let s = this.states.get(key);
    if (!s) {
      if (this.states.size >= MAX_STATES) this.states = new Map();
      s = new GrammarState(list, accepting, key);
      this.states.set(key, s);
    }
    return s;
  }

  /** The state after one more byte, or null if the grammar rejects it. */
  advance(s: GrammarState, b: number): GrammarState | null {
    const memo = s.edges[b];
    if (memo !== undefined) return memo;
    const { kind, arg, sets } = this.g;
    const out = new Set<StackNode>();
    const seen = new Set<StackNode>();
    let accept = false;
    for (const n of s.stacks) {
      if (sets[arg[n.pos]!]![b] !== 1) continue;
      // matched: move past the byte set
      const after = kind[n.pos + 1] === END ? n.next : this.node(n.pos + 1, n.next);
      if (after === null) accept = true;
      else accept = this.expand(after, out, seen) || accept;
    }
    const r = out.size === 0 && !accept ? null : this.state(out, accept);
    s.edges[b] = r;
    if (this.nodes.size > MAX_STATES * 8) this.nodes = new Map(); // bound memory; equal stacks may then be two objects
    return r;
  }

  /** The state after some bytes, or null if rejected along the way. */
  advanceBytes(s: GrammarState, bytes: ArrayLike<number>): GrammarState | null {
    let cur: GrammarState | null = s;
    for (let i = 0; i < bytes.length && cur; i++) cur = this.advance(cur, bytes[i]!);
    return cur;
  }
}

/** A recognizer over one text: feed it bytes, ask whether the text so far is accepted. */
export class GrammarMatcher {
  readonly runtime: GrammarRuntime;
  state: GrammarState;
  constructor(g: CompiledGrammar | GrammarRuntime) {
    this.runtime = g instanceof GrammarRuntime ? g : new GrammarRuntime(g);
    this.state = this.runtime.initial;
  }
  /** Feed bytes; false (and the state unchanged) if the grammar rejects them. */
  acceptBytes(bytes: ArrayLike<number>): boolean {
    const s = this.runtime.advanceBytes(this.state, bytes);
    if (!s) return false;
    this.state = s;
    return true;
  }
  /** Feed a string's UTF-8 bytes. */
  acceptString(text: string): boolean {
    return this.acceptBytes(utf8.encode(text));
  }
  /** The text so far is a whole sentence of the grammar. */
  isAccepting(): boolean {
    return this.state.accepting;
  }
  /** Nothing more may follow. */
  isComplete(): boolean {
    return this.state.complete;
  }
  clone(): GrammarMatcher {
    const m = new GrammarMatcher(this.runtime);
    m.state = this.state;
    return m;
  }
}
