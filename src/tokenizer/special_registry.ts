/**
 * The special (added) tokens of a BPE tokenizer, shared by the byte-level `Tokenizer` and the SentencePiece-style
 * `SpmTokenizer`: registered with their checks (an id that is already an ordinary token, a content or id given twice
 * with another partner), looked up by text or id, their bytes for decoding, the matcher that finds them in text, and
 * new ones appended after the last id (chat roles added for fine-tuning).
 */
import { VocabularyError } from '../util/errors.js';
import type { ModelErrorFn } from './bpe_merge.js';
import { encodeUtf8 } from './bytes.js';
import { SpecialMatcher } from './special_tokens.js';
import type { SpecialToken } from './types.js';

export class SpecialRegistry {
  /** In registration order. */
  readonly list: SpecialToken[] = [];
  readonly byId = new Map<number, SpecialToken>();
  /** Text → id. */
  readonly byContent = new Map<string, number>();
  /** Each special token's text as UTF-8, by id. */
  readonly bytes = new Map<number, Uint8Array>();
  matcher = new SpecialMatcher([]);
  /** Max special id + 1 (0 when there are none). */
  end = 0;

  /** @param isOrdinary whether an id is an ordinary token (a special token may not take it) */
  constructor(private readonly isOrdinary: (id: number) => boolean) {}

  /** Register tokens; a malformed one goes to `fail` (naming `added_tokens[i]`), else VocabularyError. */
  register(tokens: readonly SpecialToken[], fail?: ModelErrorFn): void {
    tokens.forEach((t, i) => {
      const bad = (msg: string): never => {
        if (fail) return fail(`added_tokens[${i}]`, msg);
        throw new VocabularyError(`special token ${JSON.stringify(t.content)}: ${msg}`);
      };
      if (!Number.isInteger(t.id) || t.id < 0) bad(`id ${t.id} is not a non-negative integer`);
      if (typeof t.content !== 'string' || t.content.length === 0) bad('content must be a non-empty string');
      if (this.isOrdinary(t.id)) bad(`id ${t.id} is already an ordinary token`);
      const prevId = this.byContent.get(t.content);
      if (prevId !== undefined && prevId !== t.id) bad(`content is already special token ${prevId}`);
      const prev = this.byId.get(t.id);
      if (prev && prev.content !== t.content)
        bad(`id ${t.id} is already special token ${JSON.stringify(prev.content)}`);
      if (prevId !== undefined) return;
      const tok = { id: t.id, content: t.content, special: t.special };
      this.list.push(tok);
      this.byId.set(t.id, tok);
      this.byContent.set(t.content, t.id);
      this.bytes.set(t.id, encodeUtf8(t.content));
      if (t.id + 1 > this.end) this.end = t.id + 1;
    });
    this.matcher = new SpecialMatcher(this.list);
  }

  /** Append the contents not yet special from id `next` on; returns every content's id. */
  add(contents: readonly string[], next: number): number[] {
    const fresh: SpecialToken[] = [];
    for (const c of contents) {
      if (this.byContent.has(c) || fresh.some((f) => f.content === c)) continue;
      fresh.push({ id: next++, content: c, special: true });
    }
    this.register(fresh);
    return contents.map((c) => this.byContent.get(c)!);
  }

  /** The id of a special token's text; VocabularyError listing the ones there are. */
  id(token: string): number {
    const id = this.byContent.get(token);
    if (id === undefined)
      throw new VocabularyError(
        `no special token ${JSON.stringify(token)} (have: ${[...this.byContent.keys()].join(', ') || 'none'})`,
      );
    return id;
  }
}
