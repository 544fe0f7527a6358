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

/** A compiled grammar and a vocabulary: shared by the rows of a request. */
export class TokenGrammar {
  readonly runtime: GrammarRuntime;
  private readonly masks = new Map<GrammarState, Int32Array>();
  constructor(
    grammar: CompiledGrammar | GrammarRuntime,
    readonly vocab: GrammarVocab,
  ) {
    this.runtime = grammar instanceof GrammarRuntime ? grammar : new GrammarRuntime(grammar);
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

/** One row's position in the grammar. */
export class TokenConstraint {
  private state: GrammarState;
  /** Bytes accepted so far (for error messages). */
  private offset = 0;
  constructor(
    private readonly g: TokenGrammar,
    private readonly stopTokens: ReadonlySet<number>,
  ) {
    this.state = g.runtime.initial;
  }

  /** The text so far is a whole sentence of the grammar. */
  get accepting(): boolean {
    return this.state.accepting;
  }

  /** Nothing more may follow: the row should end. */
  get complete(): boolean {
    return this.state.complete;
  }

  /** Whether `id` may come next. */
  allows(id: number): boolean {
    if (this.stopTokens.has(id)) return this.state.accepting;
    const b = this.g.vocab.bytes[id];
    if (!b) return false;
    return this.g.runtime.advanceBytes(this.state, b) !== null;
  }

  /** Every id that may come next, as flags over the vocabulary (1 = allowed). Throws if none is. */
  allowed(V: number): Uint8Array {
    const flags = new Uint8Array(V);
    let any = false;
    for (const id of this.g.textIds(this.state))
      if (id < V) {
        flags[id] = 1;
        any = true;
      }
    if (this.state.accepting)
      for (const id of this.stopTokens)
        if (id < V) {
          flags[id] = 1;
          any = true;
        }
    if (!any)
      throw new GrammarError(
        'grammar',
        `no token of the vocabulary can continue the text after ${this.offset} bytes${this.state.accepting ? ' (it is complete, but no stop token was given)' : ''}`,
      );
    return flags;
  }

  /** Take the sampled token (it must be allowed). */
  accept(id: number): void {
    if (this.stopTokens.has(id)) return;
    const b = this.g.vocab.bytes[id];
    const s = b ? this.g.runtime.advanceBytes(this.state, b) : null;
    if (!s) throw new GrammarError('grammar', `token ${id} does not continue the text after ${this.offset} bytes`);
    this.state = s;
    this.offset += b!.length;
  }
}
