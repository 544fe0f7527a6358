/**
 * Special tokens in text: finds special-token strings in a text and applies the policy (`EncodeOptions`): allowed
 * ones cut the text and become their id, others are refused (SpecialTokenError) or left in place as plain text.
 * Shared by the BPE and character-level tokenizers.
 */
import { SpecialTokenError } from '../util/errors.js';
import type { EncodeOptions, SpecialToken } from './types.js';

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

export class SpecialMatcher {
  readonly byContent: Map<string, SpecialToken>;
  private readonly re: RegExp | null;
  /** Contents of added tokens with special: false (always matched). */
  private readonly alwaysAllowed: Set<string>;

  constructor(tokens: readonly SpecialToken[]) {
    this.byContent = new Map(tokens.map((t) => [t.content, t]));
    // longest first, so '<|a|>x' wins over '<|a|>' when both exist
    const contents = [...this.byContent.keys()].filter((c) => c.length > 0).sort((a, b) => b.length - a.length);
    this.re = contents.length ? new RegExp(contents.map(escapeRegex).join('|'), 'g') : null;
    this.alwaysAllowed = new Set(tokens.filter((t) => !t.special).map((t) => t.content));
  }

  /**
   * Walk `text`: `onText(a, b)` for each stretch text[a..b) to encode as ordinary text (non-empty), `onSpecial(id)`
   * for each honoured special token, in order.
   */
  split(
    text: string,
    options: EncodeOptions | undefined,
    onText: (start: number, end: number) => void,
    onSpecial: (id: number) => void,
  ): void {
    const re = this.re;
    if (re === null) {
      if (text.length) onText(0, text.length);
      return;
    }
    const policy = options?.special ?? 'refuse';
    const allowedOpt = options?.allowed;
    const allowAll = allowedOpt === 'all';
    const allowed = allowAll || !allowedOpt ? null : new Set(allowedOpt);
    let segStart = 0;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const content = m[0];
      const tok = this.byContent.get(content)!;
      if (allowAll || this.alwaysAllowed.has(content) || allowed?.has(content)) {
        if (m.index > segStart) onText(segStart, m.index);
        onSpecial(tok.id);
        segStart = m.index + content.length;
      } else if (policy === 'refuse') {
        throw new SpecialTokenError(content, m.index);
      } else {
        // plain text: look again from the next character (a special may start inside this one)
        re.lastIndex = m.index + 1;
      }
    }
    if (segStart < text.length) onText(segStart, text.length);
  }
}
