/**
 * A grammar bound to a vocabulary: per generated row, which token ids may come next, and the row's progress.
 *
 *   const g = new TokenGrammar(compileGrammar(jsonSchemaGrammar(schema)), vocab)   once per request (or schema)
 *   const c = g.start(stopTokens)                                                    once per row
 *   c.allows(id)  one token, cheap (a few memoised transitions)
 *   c.allowed()   every id, as V flags (a trie walk; cached per grammar state)
 *   c.accept(id)  take the sampled token
 *
 * A stop token (eos, <|im_end|>) is allowed exactly when the text so far is a whole sentence of the grammar; when
 * nothing more can follow, only stop tokens are. Special tokens are never allowed otherwise.
 *
 * Lazy (`{ trigger }`, llama.cpp's lazy grammars): the text is free until the trigger appears in it (a tool call's
 * `<tool_call>`); from the trigger on it must follow the grammar — whose sentences begin with the trigger — and once a
 * sentence is complete the text is free again, until the next trigger. A token must not run past the end of a
 * sentence. The row never ends for the grammar's sake, and stop tokens are allowed wherever the text is free.
 */
import { GrammarError, type CompiledGrammar } from './grammar.js';
import { GrammarRuntime, type GrammarState } from './matcher.js';
import { TokenTrie } from './token_mask.js';

/** A vocabulary's byte strings and trie, built once per tokenizer. */
export class GrammarVocab {
  readonly trie: TokenTrie;
  /** Per id: its bytes, or null (never text). */
  readonly bytes: (Uint8Array | null)[];
  constructor(
    bytesOf: (id: number) => Uint8Array | null,
    readonly size: number,
  ) {
    this.bytes = Array.from({ length: size }, (_, i) => {
      const b = bytesOf(i);
      return b && b.length > 0 ? b : null;
    });
    this.trie = TokenTrie.build((i) => this.bytes[i]!, size);
  }
}

/** Masks kept per grammar state (the walk is the costly part; states recur, e.g. inside every string). */
const MASK_CACHE = 128;

/** Options of a grammar bound to a vocabulary. */
export interface TokenGrammarOptions {
  /** Lazy: the grammar holds only from this text on (its sentences must begin with it), and again after each. */
  trigger?: string;
  /**
   * Lazy: the trigger counts only at the start of the text (after whitespace and control tokens) — Llama 3's JSON
   * calls, which are the whole reply. Text that does not start with it stays free to the end.
   */
  atStart?: boolean;
}

/** A compiled grammar and a vocabulary: shared by the rows of a request. */
export class TokenGrammar {
  readonly runtime: GrammarRuntime;
  /** The lazy trigger's bytes, or null (the grammar holds from the first token). */
  readonly trigger: Uint8Array | null;
  readonly atStart: boolean;
  private readonly masks = new Map<GrammarState, Int32Array>();
  constructor(
    grammar: CompiledGrammar | GrammarRuntime,
    readonly vocab: GrammarVocab,
    o: TokenGrammarOptions = {},
  ) {
    this.runtime = grammar instanceof GrammarRuntime ? grammar : new GrammarRuntime(grammar);
    this.trigger = o.trigger ? new TextEncoder().encode(o.trigger) : null;
    this.atStart = o.atStart ?? false;
    if (this.trigger && (this.trigger.length === 0 || !this.runtime.advanceBytes(this.runtime.initial, this.trigger)))
      throw new GrammarError(
        'trigger',
        `the grammar's sentences must begin with the trigger ${JSON.stringify(o.trigger)}`,
      );
  }

  /** A fresh row at the grammar's start; `stopTokens` end the text where the grammar allows it. */
  start(stopTokens: ReadonlySet<number>): TokenConstraint {
    return new TokenConstraint(this, stopTokens);
  }

  /** The text ids allowed from a state (cached). */
  textIds(s: GrammarState): Int32Array {
    let m = this.masks.get(s);
    if (m) {
      this.masks.delete(s); // most recently used last
      this.masks.set(s, m);
      return m;
    }
    m = this.vocab.trie.allowed(this.runtime, s);
    if (this.masks.size >= MASK_CACHE) this.masks.delete(this.masks.keys().next().value!);
    this.masks.set(s, m);
    return m;
  }
}

/**
 * Where a row is: inside a sentence (its state), or in free text (lazy grammars) with the bytes that may be the
 * trigger's beginning (`tail`; null: free to the end, an `atStart` trigger that did not come first).
 */
type Position = { state: GrammarState; tail: null } | { state: null; tail: Uint8Array | null };

/** One row's position in the grammar. */
export class TokenConstraint {
  private pos: Position;
  /** Bytes accepted so far (for error messages). */
  private offset = 0;
  constructor(
    private readonly g: TokenGrammar,
    private readonly stopTokens: ReadonlySet<number>,
  ) {
    this.pos = g.trigger ? { state: null, tail: new Uint8Array(0) } : { state: g.runtime.initial, tail: null };
  }

  /** The text so far is a whole sentence of the grammar (lazy: or free text). */
  get accepting(): boolean {
    return this.pos.state === null || this.pos.state.accepting;
  }

  /** Nothing more may follow: the row should end (never for a lazy grammar). */
  get complete(): boolean {
    return this.g.trigger === null && this.pos.state !== null && this.pos.state.complete;
  }

  /** The position after `bytes`, or null if the grammar rejects them. */
  private after(p: Position, bytes: Uint8Array): Position | null {
    const rt = this.g.runtime;
    const trig = this.g.trigger;
    if (!trig) {
      const s = rt.advanceBytes(p.state!, bytes);
      return s ? { state: s, tail: null } : null;
    }
    let state = p.state;
    let tail = p.tail;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (state) {
        const next = rt.advance(state, b);
        if (!next) return null;
        if (next.complete) {
          // the sentence ends here: free text again, and a token must end with it
          if (i < bytes.length - 1) return null;
          return { state: null, tail: new Uint8Array(0) };
        }
        state = next;
        continue;
      }
      if (tail === null) continue; // free to the end
      if (this.g.atStart) {
        // the trigger only as the first text (whitespace before it allowed)
        if (tail.length === 0 && (b === 0x20 || b === 0x0a || b === 0x09 || b === 0x0d)) continue;
        const w = new Uint8Array(tail.length + 1);
        w.set(tail);
        w[tail.length] = b;
        if (w.length === trig.length && w.every((x, k) => x === trig[k])) {
          state = rt.advanceBytes(rt.initial, trig);
          tail = null;
        } else tail = w.length < trig.length && w.every((x, k) => x === trig[k]) ? w : null;
        continue;
      }
      // free text: watch for the trigger in the last bytes
      const w = new Uint8Array(Math.min(tail.length + 1, trig.length));
      w.set(tail.subarray(tail.length - (w.length - 1)));
      w[w.length - 1] = b;
      if (w.length === trig.length && w.every((x, k) => x === trig[k])) {
        state = rt.advanceBytes(rt.initial, trig);
        tail = null;
      } else tail = w.length === trig.length ? w.subarray(1) : w;
    }
    return state ? { state, tail: null } : { state: null, tail };
  }

  /** Whether `id` may come next. */
  allows(id: number): boolean {
    if (this.stopTokens.has(id)) return this.accepting;
    const b = this.g.vocab.bytes[id];
    if (!b) return this.pos.state === null; // control tokens only in free text
    return this.after(this.pos, b) !== null;
  }

  /** Every id that may come next, as flags over the vocabulary (1 = allowed). Throws if none is. */
  allowed(V: number): Uint8Array {
    const flags = new Uint8Array(V);
    let any = false;
    if (this.pos.state === null) {
      // free text: everything but the tokens that start a sentence the grammar then rejects
      const last = this.g.trigger![this.g.trigger!.length - 1]!;
      const open = this.pos.tail !== null;
      for (let id = 0; id < V; id++) {
        const b = this.g.vocab.bytes[id];
        if (open && b?.includes(last) && !this.after(this.pos, b)) continue;
        flags[id] = 1;
        any = true;
      }
      return flags;
    }
    for (const id of this.g.textIds(this.pos.state))
      if (id < V) {
        const b = this.g.vocab.bytes[id]!;
        // lazy: a token must not run past the sentence's end (the trie walk cannot see the end)
        if (this.g.trigger && !this.after(this.pos, b)) continue;
        flags[id] = 1;
        any = true;
      }
    if (this.pos.state.accepting)
      for (const id of this.stopTokens)
        if (id < V) {
          flags[id] = 1;
          any = true;
        }
    if (!any)
      throw new GrammarError(
        'grammar',
        `no token of the vocabulary can continue the text after ${this.offset} bytes${this.pos.state.accepting ? ' (it is complete, but no stop token was given)' : ''}`,
      );
    return flags;
  }

  /** Take the sampled token (it must be allowed). */
  accept(id: number): void {
    if (this.stopTokens.has(id)) return;
    const b = this.g.vocab.bytes[id];
    if (!b) {
      if (this.pos.state === null) return; // a control token in free text
      throw new GrammarError('grammar', `token ${id} is not text, after ${this.offset} bytes`);
    }
    const p = this.after(this.pos, b);
    if (!p) throw new GrammarError('grammar', `token ${id} does not continue the text after ${this.offset} bytes`);
    this.pos = p;
    this.offset += b.length;
  }
}
