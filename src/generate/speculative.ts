/**
 * Speculative decoding's drafters: cheap guesses of the next few tokens, which the engine checks with one forward of
 * the target model over all of them (./engine.ts, `GenerateOptions.speculative`).
 *
 *   target forward over [x, d1 … dk]: (1, 1 + k) → logits (1, 1 + k, V)
 *   position i's logits give the token after d_i: the engine samples it with the row's own sampler and coin, exactly
 *   as a plain decode would; while it equals d_{i+1} the draft stands, the first that differs ends the round (it is
 *   the next token, and the cache is cut back to the positions that stand); all k standing → one more token free.
 *
 * Every token is drawn from the target's distribution with the same coin in the same order as without a drafter, so
 * the output is the same (up to float rounding: a (1, T) forward and T (1, 1) forwards agree to ~1e-6, not bit for
 * bit). With a deterministic draft (greedy from a draft model, or looked up) this "sample, then compare" check accepts
 * a drafted token with the probability the target gives it, the same rate as the rejection sampling of Leviathan et
 * al. (2023) for such a draft; it is llama.cpp's check (common_sampler_sample_and_accept_n).
 *
 * Three drafters:
 *   - PromptLookup: the last n-gram of the text so far looked up earlier in it, and what followed it there
 *     (Saxena's prompt lookup decoding; Hugging Face `prompt_lookup_num_tokens`, llama.cpp's lookup). No second
 *     model; it pays where a reply repeats its prompt or itself: code edits, extraction, JSON, quoting.
 *   - PredictedText: the reply's last tokens looked up in a text it is expected to repeat (OpenAI's Predicted
 *     Outputs, `prediction`): editing a file, most of it comes back unchanged.
 *   - DraftModel: a small model with the same tokenizer drafts greedily (llama.cpp `--model-draft`), stopping where
 *     it is unsure (its top probability under `pMin`). It keeps its own KV cache per generation.
 * A drafter of your own implements `Drafter`: any ids it returns are only ever checked, never trusted.
 */
import { argmax, logSumExp } from '../backend/sampling.js';
import { ConfigError } from '../util/errors.js';
import { noGrad, tidy } from '../tensor/tensor.js';
import type { DecoderModel } from './interfaces.js';
import { PromptCache, type TruncatableCache } from './prompt_cache.js';

/** One generation's drafting state (a draft model's KV cache, …). */
export interface DraftSession {
  /**
   * Up to `n` ids guessed to follow `context`: the prompt and every token taken so far, in order. Between calls the
   * context only grows by the tokens the target took (drafted ids it turned down never enter it).
   */
  draft(context: readonly number[], n: number): readonly number[] | Promise<readonly number[]>;
  /** Free what the session holds; called once when the generation ends. */
  dispose(): void;
}

/** Makes one DraftSession per generation, so concurrent generations never share drafting state. */
export interface Drafter {
  /** A session for one generation from `prompt` (the ids before the reply). */
  session(prompt: readonly number[]): DraftSession;
}

/** Speculative decoding settings (`GenerateOptions.speculative`). */
export interface SpeculativeOptions {
  drafter: Drafter;
  /** Most drafted tokens per target forward (default 8); the engine adapts below it (DraftSchedule). */
  maxDraft?: number;
}

/** Longest pause of drafting after misses, in tokens. */
const MAX_PAUSE = 16;

/**
 * How many tokens the next round drafts. Hugging Face's heuristic schedule: +2 after a round where the whole draft
 * stood, −1 (to 1 at least) after one where it did not. A round that takes nothing while drafting 1 also pauses
 * drafting for 1, 2, 4, … up to 16 tokens (decoded plainly), until a round takes something again: a drafter that
 * keeps missing then costs a (1, 2) forward now and then instead of at every token.
 */
export class DraftSchedule {
  private k: number;
  private pause = 0;
  private wait = 0;

  constructor(private readonly max: number) {
    this.k = max;
  }

  /** Tokens to draft this round (0: decode this token plainly). */
  next(): number {
    if (this.wait > 0) {
      this.wait--;
      return 0;
    }
    return this.k;
  }

  /** After a round: `accepted` of its `drafted` tokens stood. */
  update(accepted: number, drafted: number): void {
    if (accepted > 0) this.pause = 0;
    if (accepted === drafted) this.k = Math.min(this.max, this.k + 2);
    else {
      if (accepted === 0 && this.k === 1) this.wait = this.pause = Math.min(MAX_PAUSE, Math.max(1, this.pause * 2));
      this.k = Math.max(1, this.k - 1);
    }
  }
}

/** Drafted and accepted token counts of one generation (llama-server's draft_n, draft_n_accepted). */
export interface DraftStats {
  /** Target forwards that checked a draft. */
  rounds: number;
  drafted: number;
  accepted: number;
}

export const DEFAULT_MAX_DRAFT = 8;

/** `speculative` as given, checked. @internal */
export function resolveSpeculative(s: SpeculativeOptions | undefined): Required<SpeculativeOptions> | undefined {
  if (s === undefined) return undefined;
  if (typeof (s as Partial<SpeculativeOptions> | null)?.drafter?.session !== 'function')
    throw new ConfigError(
      'speculative.drafter',
      'expected a Drafter (an object with session()): new PromptLookup() or new DraftModel(model)',
    );
  const maxDraft = s.maxDraft ?? DEFAULT_MAX_DRAFT;
  if (!Number.isInteger(maxDraft) || maxDraft < 1 || maxDraft > 64)
    throw new ConfigError('speculative.maxDraft', `expected an integer in 1..64, got ${String(maxDraft)}`);
  return { drafter: s.drafter, maxDraft };
}

/**
 * The draft after the last n-gram of `context`: the most recent earlier place where the last g tokens occur
 * (g from `maxNgram` down to `minNgram`), and the up to n tokens that followed them there. A continuation that runs
 * into the end of the context goes on with its own guesses, so a repeating stretch is drafted as repeating on.
 */
export function lookupDraft(context: readonly number[], n: number, maxNgram = 3, minNgram = 1): number[] {
  const L = context.length;
  for (let g = Math.min(maxNgram, L - 1); g >= minNgram; g--) {
    // match at s: context[s .. s+g) equals the last g tokens, with s + g < L (something followed it)
    for (let s = L - g - 1; s >= 0; s--) {
      let j = 0;
      while (j < g && context[s + j] === context[L - g + j]) j++;
      if (j < g) continue;
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const at = s + g + i;
        out.push(at < L ? context[at]! : out[at - L]!);
      }
      return out;
    }
  }
  return [];
}

export interface PromptLookupOptions {
  /** Longest n-gram looked up (default 3). */
  maxNgram?: number;
  /** Shortest (default 1). */
  minNgram?: number;
}

/** The n-gram settings with their defaults, checked (PromptLookup and PredictedText take the same). */
function ngramSettings(opts: PromptLookupOptions): Required<PromptLookupOptions> {
  const { maxNgram = 3, minNgram = 1 } = opts;
  if (!Number.isInteger(minNgram) || minNgram < 1)
    throw new ConfigError('minNgram', `expected an integer ≥ 1, got ${String(minNgram)}`);
  if (!Number.isInteger(maxNgram) || maxNgram < minNgram)
    throw new ConfigError('maxNgram', `expected an integer ≥ minNgram (${minNgram}), got ${String(maxNgram)}`);
  return { maxNgram, minNgram };
}

/** Drafts by looking the text's last n-gram up earlier in the text (prompt and reply). */
export class PromptLookup implements Drafter {
  readonly maxNgram: number;
  readonly minNgram: number;

  constructor(opts: PromptLookupOptions = {}) {
    ({ maxNgram: this.maxNgram, minNgram: this.minNgram } = ngramSettings(opts));
  }

  session(): DraftSession {
    return {
      draft: (context, n) => lookupDraft(context, n, this.maxNgram, this.minNgram),
      dispose() {},
    };
  }
}

/**
 * The draft from a known text (`source`) the reply is expected to follow: the last g tokens of the reply (g from
 * `maxNgram` down to `minNgram`, never more than the reply has) looked up in the source, preferring the first match
 * that ends at or after `cursor` (where the last draft left off: the reply walks through the source in order), else
 * the first anywhere; the up to n source tokens after it. Returns the draft and where it starts in the source.
 */
export function sourceDraft(
  source: readonly number[],
  reply: readonly number[],
  n: number,
  cursor: number,
  maxNgram = 3,
  minNgram = 1,
): { draft: number[]; at: number } {
  const S = source.length,
    R = reply.length;
  for (let g = Math.min(maxNgram, R); g >= minNgram; g--) {
    let best = -1;
    for (let p = 0; p + g < S; p++) {
      let j = 0;
      while (j < g && source[p + j] === reply[R - g + j]) j++;
      if (j < g) continue;
      if (best < 0) best = p;
      if (p + g >= cursor) {
        best = p;
        break;
      }
    }
    if (best >= 0) return { draft: source.slice(best + g, best + g + n), at: best + g };
  }
  return { draft: [], at: cursor };
}

/**
 * Drafts from a text the reply is expected to repeat for the most part: OpenAI's Predicted Outputs (`prediction`),
 * e.g. a file being edited, whose unchanged stretches then cost one check per draft instead of one step per token.
 * The reply's last tokens are looked up in the predicted ids (sourceDraft). `ids`: the prediction, tokenised.
 */
export class PredictedText implements Drafter {
  readonly maxNgram: number;
  readonly minNgram: number;

  constructor(
    readonly ids: readonly number[],
    opts: PromptLookupOptions = {},
  ) {
    ({ maxNgram: this.maxNgram, minNgram: this.minNgram } = ngramSettings(opts));
  }

  session(prompt: readonly number[]): DraftSession {
    const start = prompt.length; // where the reply starts in the context
    let cursor = 0;
    return {
      draft: (context, n) => {
        const r = sourceDraft(this.ids, context.slice(start), n, cursor, this.maxNgram, this.minNgram);
        cursor = r.at;
        return r.draft;
      },
      dispose() {},
    };
  }
}

export interface DraftModelOptions {
  /** Stop drafting at a token the draft model gives less than this probability (default 0.5; 0: never). */
  pMin?: number;
}

/**
 * A small model drafts greedily. It must share the target's tokenizer (the same ids mean the same text); ids past
 * the target's vocabulary are dropped by the engine. Its cache must be cut-back-able (KVCache): `CausalLM` is.
 */
export class DraftModel implements Drafter {
  readonly pMin: number;

  constructor(
    readonly model: DecoderModel<TruncatableCache>,
    opts: DraftModelOptions = {},
  ) {
    const { pMin = 0.5 } = opts;
    if (!(pMin >= 0 && pMin <= 1))
      throw new ConfigError('pMin', `expected a probability in [0, 1], got ${String(pMin)}`);
    this.pMin = pMin;
  }

  session(): DraftSession {
    return new ModelDraftSession(this.model, this.pMin);
  }
}

/** One generation's draft model state: a KV cache over the context, cut back to what still stands each round. */
class ModelDraftSession implements DraftSession {
  private readonly pc: PromptCache;

  constructor(
    private readonly model: DecoderModel<TruncatableCache>,
    private readonly pMin: number,
  ) {
    this.pc = new PromptCache(model);
  }

  async draft(context: readonly number[], n: number): Promise<number[]> {
    const model = this.model;
    n = Math.min(n, model.config.maxPositions - context.length);
    if (n <= 0 || context.length === 0) return [];
    const { cache, reused } = this.pc.take(context, context.length + n);
    const fed = [...context];
    const out: number[] = [];
    const forward = (ids: Int32Array, lastOnly: boolean) =>
      tidy(() => noGrad(() => model.forward(ids, 1, ids.length, lastOnly ? { cache, lastOnly } : { cache })));
    try {
      // (1, P − reused) → (1, 1, V), then (1, 1) → (1, 1, V) per drafted token
      let t = forward(Int32Array.from(context.slice(reused)), true);
      for (;;) {
        let row: ArrayLike<number>;
        try {
          row = await t.data();
        } finally {
          t.dispose();
        }
        const id = argmax(row); // greedy, and its probability: softmax(row)[id]
        if (Math.exp(row[id]! - logSumExp(row)) < this.pMin) break;
        out.push(id);
        if (out.length >= n) break;
        t = forward(Int32Array.of(id), false);
        fed.push(id);
      }
    } finally {
      this.pc.settle(fed);
    }
    return out;
  }

  dispose(): void {
    this.pc.dispose();
  }
}
